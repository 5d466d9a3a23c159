"""G1 — "Registro al Sistema Génesis": Validar, the proof of identity, consent, FINALIZAR,
the SMS with a 24-hour password, and the limits (issue 9, point 2)."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta

import pytest

import models
from blueprints.genesis import service
from core import genesis
from core.clock import utcnow
from models import Account, EpsUser, Message
from tests.factories import make_eps_afiliado, make_eps_user

NOT_ACTIVE = "No encontramos un afiliado activo con ese documento"
REGISTERED = "El usuario ya se encuentra registrado"
WRONG_PROOF = "El número celular o la fecha de expedición no coinciden"
NO_CONSENT = "marque «Acepto»"
EXHAUSTED = "Superó el número de intentos de validación"
MOBILE, ISSUED = "3004567101", "02/05/2003"  # the factory's EPS data


def validar(client, numero: str, tipo: str = "CC", **kwargs):
    return client.post(
        "/genesis/registro", data={"tipo_documento": tipo, "numero_documento": numero}, **kwargs
    )


def ficha_of(html: str) -> str:
    return re.search(r'name="ficha" type="hidden" value="([^"]+)"', html).group(1)


def finalizar(client, ficha: str, celular=MOBILE, fecha=ISSUED, acepto=True, **kwargs):
    data = {"ficha": ficha, "celular": celular, "fecha_expedicion": fecha}
    if acepto:
        data["acepto"] = "y"
    return client.post("/genesis/registro/datos", data=data, **kwargs)


def ficha_for(client, afiliado) -> str:
    page = validar(client, afiliado.numero_documento, afiliado.tipo_documento)
    assert page.status_code == 200, page.text
    return ficha_of(page.text)


def alert_of(html: str) -> str:
    return re.search(r'class="error-summary" role="alert">([^<]+)<', html).group(1)


def temp_password_of(sms: Message) -> str:
    return re.search(r"temporal: (\S+) \(", sms.body_text).group(1)


def sms(outbox) -> list[Message]:
    return outbox.all("sms")


# --- step 1: Validar -------------------------------------------------------------------


def test_login_page_links_to_registration_with_the_manuals_words(db, client):
    page = client.get("/genesis/afiliados").text
    assert "con estado Activo. Si su estado es Activo y aun no se ha registrado" in page
    assert '<a href="/genesis/registro">hacer Clic aquí</a>' in page


def test_an_active_affiliate_goes_on_to_the_proof_of_identity(db, client):
    afiliado = make_eps_afiliado()
    page = validar(client, afiliado.numero_documento)
    assert page.status_code == 200
    for words in ("Número Celular", "Fecha de expedición del documento", "FINALIZAR"):
        assert words in page.text
    assert "Política de Privacidad de Datos" in page.text and "<details" in page.text
    assert "Ley 1581 de 2012" in page.text  # readable inline, no new tab needed
    assert 'href="/genesis/politica-de-privacidad"' in page.text
    assert service.document_of_ticket(ficha_of(page.text), secret="test-secret") == (
        "CC",
        afiliado.numero_documento,
    )
    assert afiliado.primer_nombre not in page.text  # the document alone shows no name


def test_the_document_is_normalised_before_the_look_up(db, client):
    afiliado = make_eps_afiliado(numero_documento="1000000101")
    assert validar(client, " 1.000.000.101 ").status_code == 200
    assert ficha_for(client, afiliado)


@pytest.mark.parametrize(
    "estado, exists",
    [("INACTIVO", True), ("SUSPENDIDO", True), ("RETIRADO", True), (None, False)],
)
def test_validar_gives_one_answer_for_unknown_and_not_active(db, client, estado, exists):
    if exists:
        make_eps_afiliado(numero_documento="73999001", estado=estado)
    page = validar(client, "73999001")
    assert page.status_code == 422
    assert NOT_ACTIVE in page.text and 'name="ficha"' not in page.text
    assert 'value="73999001"' in page.text  # the input is kept


def test_validar_shows_the_already_registered_notice_with_the_way_in(db, client):
    make_eps_user(make_eps_afiliado(numero_documento="73999002"))
    page = validar(client, "73999002")
    assert page.status_code == 200
    assert REGISTERED in page.text and 'name="ficha"' not in page.text
    assert 'href="/genesis/afiliados"' in page.text and 'href="/genesis/olvide"' in page.text


@pytest.mark.parametrize("numero", ["", "12", "ABC123", "1" * 30])
def test_validar_refuses_a_malformed_document_next_to_the_field(db, client, numero):
    page = validar(client, numero)
    assert page.status_code == 422
    assert 'id="numero_documento-error"' in page.text


def test_validar_refuses_a_document_type_affiliates_do_not_have(db, client):
    page = validar(client, "8901020441", tipo="NI")  # a NIT is for IPS
    assert page.status_code == 422 and 'id="tipo_documento-error"' in page.text


def test_validar_answers_a_partial_for_htmx_and_the_whole_page_without(db, client, htmx):
    afiliado = make_eps_afiliado()
    partial = validar(client, afiliado.numero_documento, headers=htmx)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div id="registro">')
    assert "HX-Request" in partial.headers["Vary"]
    page = validar(client, afiliado.numero_documento)
    assert "<html" in page.text and '<div id="registro">' in page.text
    assert "HX-Request" in page.headers["Vary"]
    first = client.get("/genesis/registro")
    assert (
        'hx-post="/genesis/registro"' in first.text and 'action="/genesis/registro"' in first.text
    )


# --- step 2: the proof, the consent, FINALIZAR ----------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"celular": "3004567102"}, WRONG_PROOF),
        ({"fecha": "03/05/2003"}, WRONG_PROOF),
        ({"celular": "3109999999", "fecha": "01/01/1999"}, WRONG_PROOF),
        ({"acepto": False}, NO_CONSENT),
        ({"celular": "12345"}, "celular colombiano"),
        ({"fecha": "31/02/2003"}, "no existe"),
        ({"fecha": "mañana"}, "dd/mm/aaaa"),
    ],
)
def test_finalizar_refuses_without_the_proof_or_the_consent(db, client, outbox, change, message):
    afiliado = make_eps_afiliado()
    page = finalizar(client, ficha_for(client, afiliado), **change)
    assert page.status_code == 422
    assert message in page.text
    assert Account.select().count() == 0 and sms(outbox) == []
    assert 'name="ficha"' in page.text  # still on step 2, the input kept
    if "celular" in change:
        assert f'value="{change["celular"]}"' in page.text


def test_a_wrong_mobile_and_a_wrong_date_read_the_same(db, client):
    afiliado = make_eps_afiliado()
    ficha = ficha_for(client, afiliado)
    wrong_mobile = finalizar(client, ficha, celular="3004567199")
    wrong_date = finalizar(client, ficha, fecha="02/05/2004")
    assert alert_of(wrong_mobile.text) == alert_of(wrong_date.text)
    assert WRONG_PROOF in alert_of(wrong_mobile.text)
    for page in (wrong_mobile, wrong_date):
        assert 'id="celular-error"' not in page.text
        assert 'id="fecha_expedicion-error"' not in page.text


def test_the_date_of_a_date_input_is_accepted_too(db, client, outbox):
    afiliado = make_eps_afiliado()
    done = finalizar(
        client, ficha_for(client, afiliado), fecha="2003-05-02", celular="300 456 7101"
    )
    assert done.status_code == 303
    assert EpsUser.select().count() == 1


def test_finalizar_creates_the_account_and_sends_one_sms_with_a_password_that_signs_in(
    db, client, outbox, clock
):
    clock.set(datetime(2026, 3, 2, 10, 0))
    afiliado = make_eps_afiliado(email="rosa@example.com")
    done = finalizar(client, ficha_for(client, afiliado))
    assert done.status_code == 303 and done.headers["Location"] == "/genesis/registro/exito"
    notice = client.get("/genesis/registro/exito")
    assert "Registro exitoso" in notice.text and "300****101" in notice.text

    account = Account.get(Account.kind == Account.EPS)
    profile = account.eps
    assert account.login == genesis.login_of("CC", afiliado.numero_documento)
    assert account.status == Account.ACTIVE and account.must_change_password
    assert (account.celular, account.email) == (afiliado.celular, "rosa@example.com")
    assert profile.afiliado_id == afiliado.id
    assert profile.privacy_accepted_at == utcnow()
    assert profile.privacy_version == genesis.PRIVACY_VERSION
    assert profile.temp_password_expires_at == utcnow() + timedelta(hours=24)
    assert profile.carta_accepted_at is None

    [message] = sms(outbox)
    assert message.recipient == afiliado.celular
    assert "registro en el Portal Génesis fue exitoso" in message.body_text
    assert "24 horas" in message.body_text
    password = temp_password_of(message)
    assert len(password) == 10 and not set(password) & set("0O1lI")
    assert password not in account.password_hash

    signed = client.post(
        "/genesis/afiliados",
        data={
            "tipo_documento": "CC",
            "numero_documento": afiliado.numero_documento,
            "password": password,
        },
    )
    assert signed.status_code == 303
    assert client.get("/genesis/oficina").headers["Location"] == "/genesis/cambiar-clave"


def test_the_success_notice_needs_a_registration_in_this_browser(db, client):
    response = client.get("/genesis/registro/exito")
    assert response.status_code == 302 and response.headers["Location"] == "/genesis/registro"


def test_finalizar_answers_htmx_with_a_redirect_header(db, client, htmx):
    afiliado = make_eps_afiliado()
    done = finalizar(client, ficha_for(client, afiliado), headers=htmx)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/genesis/registro/exito"
    wrong = finalizar(
        client, ficha_for(client, make_eps_afiliado()), celular="3110000000", headers=htmx
    )
    assert wrong.status_code == 422 and wrong.text.lstrip().startswith('<div id="registro">')


def test_an_affiliate_who_stopped_being_active_between_the_steps_is_refused(db, client):
    afiliado = make_eps_afiliado()
    ficha = ficha_for(client, afiliado)
    models.EpsAfiliado.update(estado="RETIRADO").where(
        models.EpsAfiliado.id == afiliado.id
    ).execute()
    page = finalizar(client, ficha)
    assert page.status_code == 422 and NOT_ACTIVE in page.text
    assert Account.select().count() == 0


# --- the token between the steps ----------------------------------------------------


def test_replaying_the_step_two_form_after_success_says_already_registered(db, app, outbox):
    afiliado = make_eps_afiliado()
    first = app.test_client()
    ficha = ficha_for(first, afiliado)
    assert finalizar(first, ficha).status_code == 303
    replay = finalizar(app.test_client(), ficha)  # a fresh browser, the same form
    assert replay.status_code == 200 and REGISTERED in replay.text
    assert Account.select().count() == 1 and len(sms(outbox)) == 1


@pytest.mark.parametrize("tamper", ["swap", "flip", "empty", "other-purpose"])
def test_a_tampered_step_two_token_is_refused(db, app, client, tamper):
    victim = make_eps_afiliado()
    mine = make_eps_afiliado()
    ficha = ficha_for(client, mine)
    if tamper == "swap":  # the same payload shape, signed by nobody
        forged = service.registration_ticket("CC", victim.numero_documento, secret="not-ours")
    elif tamper == "flip":
        forged = ficha[:-3] + ("AAA" if ficha[-3:] != "AAA" else "BBB")
    elif tamper == "empty":
        forged = ""
    else:
        forged = service.reset_ticket("CC", victim.numero_documento, secret="test-secret")
    page = finalizar(client, forged)
    assert page.status_code == 422 and "No pudimos leer la solicitud" in page.text
    assert Account.select().count() == 0


def test_an_old_step_two_token_asks_to_validate_again(db, client, monkeypatch):
    afiliado = make_eps_afiliado()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 21 * 60)  # itsdangerous reads time.time
    ficha = ficha_for(client, afiliado)
    monkeypatch.setattr(time, "time", real)
    page = finalizar(client, ficha)
    assert page.status_code == 422 and "Valídelo de nuevo" in page.text
    assert 'name="ficha"' not in page.text and Account.select().count() == 0


# --- limits ------------------------------------------------------------------------


def test_wrong_proofs_are_limited_per_document_even_across_browsers(db, app, outbox):
    afiliado = make_eps_afiliado()
    for i in range(service.PROOF_TRIES):
        client = app.test_client()  # a new browser each time: the count is the document's
        page = finalizar(client, ficha_for(client, afiliado), celular=f"311000000{i}")
        assert page.status_code == 422 and WRONG_PROOF in page.text
    client = app.test_client()
    refused = finalizar(client, ficha_for(client, afiliado))  # right this time: still refused
    assert refused.status_code == 429 and EXHAUSTED in refused.text
    assert Account.select().count() == 0 and sms(outbox) == []
    other = make_eps_afiliado()  # another document keeps its own tries
    assert finalizar(client, ficha_for(client, other)).status_code == 303


def test_the_document_tries_come_back_after_a_day(db, client, clock):
    afiliado = make_eps_afiliado()
    for _ in range(service.PROOF_TRIES):
        finalizar(client, ficha_for(client, afiliado), celular="3110000000")
    assert finalizar(client, ficha_for(client, afiliado)).status_code == 429
    clock.advance(hours=24, seconds=1)
    assert finalizar(client, ficha_for(client, afiliado)).status_code == 303


def test_registration_posts_are_limited_per_client(limited_app):
    client = limited_app.test_client()
    make_eps_afiliado(numero_documento="73999100")
    answers = [validar(client, "73999100").status_code for _ in range(10)]
    answers.append(finalizar(client, "x").status_code)  # both steps share the budget
    assert answers == [200] * 10 + [429]


# --- two FINALIZAR at once ---------------------------------------------------------


def test_two_concurrent_finalizar_make_one_account_and_one_sms(db, app, outbox):
    afiliado = make_eps_afiliado()
    ficha = ficha_for(app.test_client(), afiliado)
    models.db.close()
    barrier, answers, errors = threading.Barrier(4, timeout=30), [], []

    def press() -> None:
        try:
            client = app.test_client()
            barrier.wait()
            page = finalizar(client, ficha)
            answers.append((page.status_code, REGISTERED in page.text))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    models.db.connect(reuse_if_open=True)
    assert errors == []
    assert sorted(answers) == [(200, True)] * 3 + [(303, False)]
    assert Account.select().count() == 1 and EpsUser.select().count() == 1
    assert len(sms(outbox)) == 1


# --- the policy and CSRF ---------------------------------------------------------------


def test_the_privacy_policy_has_its_own_page(db, client):
    page = client.get("/genesis/politica-de-privacidad")
    assert page.status_code == 200
    assert "Ley 1581 de 2012" in page.text and "datos sensibles" in page.text
    assert genesis.PRIVACY_VERSION in page.text


def test_registration_posts_need_the_csrf_token(db, app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    afiliado = make_eps_afiliado()
    assert validar(client, afiliado.numero_documento).status_code == 400
    ficha = service.registration_ticket("CC", afiliado.numero_documento, secret="test-secret")
    assert finalizar(client, ficha).status_code == 400
    assert Account.select().count() == 0


def test_a_mobile_another_account_typed_in_proves_nothing_for_a_month(db, client, outbox, clock):
    head = make_eps_afiliado()
    spouse = make_eps_afiliado(cabeza=head, parentesco="CONYUGE", celular="3109876543")
    cotizante = make_eps_user(head)
    # The cotizante puts their own number on the spouse's data (G3, "Actualizar")…
    genesis.update_contact(
        cotizante,
        spouse,
        {
            "celular": MOBILE,
            "email": spouse.email,
            "direccion": spouse.direccion,
            "municipio": spouse.municipio,
        },
    )
    # …and cannot register as the spouse with it.
    refused = finalizar(client, ficha_for(client, spouse), celular=MOBILE)
    assert refused.status_code == 422 and WRONG_PROOF in alert_of(refused.text)
    assert not EpsUser.select().where(EpsUser.afiliado == spouse.id).exists()

    clock.advance(seconds=31 * 24 * 3600)
    done = finalizar(client, ficha_for(client, spouse), celular=MOBILE)
    assert done.status_code == 303
