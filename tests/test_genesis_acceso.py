"""G2 — the Portal Génesis entry, "Afiliados" sign-in by Tipo + número, the first-login
gates (new password, then the carta) and "¿Olvidó su contraseña?" (issue 9, point 3)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from blueprints.genesis import service
from core import genesis
from core.clock import utcnow
from models import Account, EpsUser, OneTimeCode, UserSession
from tests.factories import PASSWORD, make_eps_afiliado, make_eps_user, make_user

LOGIN_FAILED = "El tipo o el número de documento o la contraseña no son correctos."
NEW_PASSWORD = "Brisa-Marina-2031"
NEUTRAL = "Si el documento está registrado, enviamos un código al celular registrado"
WRONG_CODE = "El código no es correcto, venció o ya se usó."


def ingresar(client, numero: str, password: str = PASSWORD, tipo: str = "CC", **kwargs):
    return client.post(
        "/genesis/afiliados",
        data={"tipo_documento": tipo, "numero_documento": numero, "password": password},
        **kwargs,
    )


def first_login_account(**over) -> Account:
    """An account fresh from registration: SMS password, carta not accepted."""
    fields = dict(
        carta=False,
        must_change_password=True,
        temp_password_expires_at=utcnow() + timedelta(hours=24),
    )
    fields.update(over)
    return make_eps_user(make_eps_afiliado(), **fields)


def numero_of(account: Account) -> str:
    return account.eps.afiliado.numero_documento


def fresh(account: Account) -> Account:
    return Account.get_by_id(account.id)


# --- the entry and the login page --------------------------------------------------------


def test_portal_genesis_offers_the_afiliados_and_ips_entries_and_no_dead_link(db, client):
    page = client.get("/genesis")
    assert page.status_code == 200
    assert "Portal Génesis" in page.text
    assert 'href="/genesis/afiliados">Afiliados</a>' in page.text
    assert 'href="/ips">IPS</a>' in page.text  # the Mesa de Ayuda IPS (manual 004, I1)
    for link in re.findall(r'href="(/[^"]*)"', page.text):
        assert client.get(link).status_code in (200, 302), link


def test_login_page_has_the_manuals_fields_and_links(db, client):
    page = client.get("/genesis/afiliados").text
    assert "Tipo de documento" in page and "Número de documento" in page
    assert "Contraseña" in page and ">Ingresar</button>" in page
    assert '<option selected value="CC">Cédula de ciudadanía</option>' in page
    assert 'value="NI"' not in page  # NIT is for IPS
    assert 'href="/genesis/registro">hacer Clic aquí</a>' in page
    assert 'href="/genesis/olvide">¿Olvidó su contraseña?</a>' in page


@pytest.mark.parametrize("typed", ["1000000101", "1.000.000.101", " 1 000 000 101 ", "01000000101"])
def test_login_by_tipo_and_a_normalised_numero(db, client, typed):
    make_eps_user(make_eps_afiliado(numero_documento="1000000101"))
    response = ingresar(client, typed)
    assert response.status_code == 303 and response.headers["Location"] == "/genesis/oficina"
    assert client.get("/genesis/oficina").status_code == 200


def test_login_goes_back_to_a_local_next_only(db, client):
    account = make_eps_user()
    here = ingresar(client, numero_of(account), query_string={"next": "/genesis/carta-de-derechos"})
    assert here.headers["Location"] == "/genesis/carta-de-derechos"
    client.post("/genesis/salir")
    away = ingresar(client, numero_of(account), query_string={"next": "https://evil.example/"})
    assert away.headers["Location"] == "/genesis/oficina"


@pytest.mark.parametrize(
    "case", ["wrong password", "unknown document", "other type", "hanna account"]
)
def test_login_failures_share_one_message(db, client, case):
    account = make_eps_user(make_eps_afiliado(numero_documento="73888001"))
    numero, password, tipo = "73888001", PASSWORD, "CC"
    if case == "wrong password":
        password = "Otra-Clave-9988"
    elif case == "unknown document":
        numero = "73888999"
    elif case == "other type":
        tipo = "CE"
    else:
        hanna = make_user(numero_documento="73888002")
        numero = hanna.hanna.numero_documento
    response = ingresar(client, numero, password, tipo)
    assert response.status_code == 422
    assert LOGIN_FAILED in response.text
    assert f'value="{numero}"' in response.text  # the input is kept
    assert UserSession.select().where(UserSession.account == account).count() == 0


def test_an_expired_temporary_password_does_not_sign_in(db, client, clock):
    clock.set(datetime(2026, 3, 2, 10, 0))
    account = first_login_account()
    clock.advance(hours=24, seconds=1)
    response = ingresar(client, numero_of(account))
    assert response.status_code == 422
    assert (
        "contraseña temporal venció" in response.text and "¿Olvidó su contraseña?" in response.text
    )
    assert UserSession.select().count() == 0


def test_a_fresh_temporary_password_signs_in_to_the_password_change(db, client, clock):
    clock.set(datetime(2026, 3, 2, 10, 0))
    account = first_login_account()
    clock.advance(hours=23, minutes=59)
    response = ingresar(client, numero_of(account))
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).headers["Location"] == "/genesis/cambiar-clave"


@pytest.mark.parametrize("estado", ["INACTIVO", "RETIRADO", "FALLECIDO"])
def test_an_affiliate_no_longer_active_cannot_sign_in(db, client, estado):
    account = make_eps_user(make_eps_afiliado(estado=estado))
    response = ingresar(client, numero_of(account))
    assert response.status_code == 422 and "no está activa" in response.text
    assert UserSession.select().count() == 0


def test_a_disabled_account_cannot_sign_in(db, client):
    account = make_eps_user(status=Account.DISABLED)
    response = ingresar(client, numero_of(account))
    assert response.status_code == 422 and "Su usuario no está activo" in response.text


def test_login_answers_a_partial_for_htmx(db, client, htmx):
    account = make_eps_user()
    wrong = ingresar(client, numero_of(account), "Mala-Clave-0000", headers=htmx)
    assert wrong.status_code == 422 and "<html" not in wrong.text
    assert wrong.text.lstrip().startswith('<div id="ingreso"')
    assert "HX-Request" in wrong.headers["Vary"]
    right = ingresar(client, numero_of(account), headers=htmx)
    assert right.status_code == 204 and right.headers["HX-Redirect"] == "/genesis/oficina"


def test_a_signed_in_member_opening_the_login_goes_to_the_office(db, client, auth):
    auth.login(client, make_eps_user())
    assert client.get("/genesis/afiliados").headers["Location"] == "/genesis/oficina"


def test_login_posts_are_rate_limited_per_client(limited_app):
    client = limited_app.test_client()
    answers = [ingresar(client, "73888777", "Mala-Clave-0000").status_code for _ in range(11)]
    assert answers == [422] * 10 + [429]


def test_salir_ends_the_session(db, client):
    account = make_eps_user()
    ingresar(client, numero_of(account))
    out = client.post("/genesis/salir")
    assert out.status_code == 303 and out.headers["Location"] == "/genesis/afiliados"
    assert UserSession.get().end_reason == UserSession.LOGOUT
    assert client.get("/genesis/oficina").status_code == 302  # signed out: to the login


# --- the first-login gates -----------------------------------------------------------


def gated_paths(app) -> list[str]:
    """Every GET route of the app, a parametrized one with sample values."""
    paths = set()
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.endpoint != "static":
            paths.add(re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "1", rule.rule)))
    return sorted(paths)


@pytest.mark.parametrize(
    "stage, gate",
    [("temporary password", "/genesis/cambiar-clave"), ("carta", "/genesis/carta-de-derechos")],
)
def test_no_page_opens_before_the_first_login_steps(db, app, client, auth, stage, gate):
    over = {} if stage == "temporary password" else {"must_change_password": False}
    auth.login(client, first_login_account(**over))
    paths = gated_paths(app)
    assert "/genesis/oficina" in paths and "/genesis/afiliados" in paths
    for path in paths:
        response = client.get(path)
        if path == gate:
            assert response.status_code == 200, path
            continue
        assert response.status_code == 303, path
        assert response.headers["Location"] == gate, path


def test_the_gates_answer_htmx_with_a_redirect_header(db, client, auth, htmx):
    auth.login(client, first_login_account())
    response = client.get("/genesis/oficina", headers=htmx)
    assert (
        response.status_code == 401 and response.headers["HX-Redirect"] == "/genesis/cambiar-clave"
    )


def test_salir_stays_open_behind_the_gates(db, client, auth):
    account = first_login_account()
    auth.login(client, account)
    out = client.post("/genesis/salir")
    assert out.status_code == 303 and out.headers["Location"] == "/genesis/afiliados"
    assert UserSession.get().ended_at is not None


@pytest.mark.parametrize(
    "new, confirm, message",
    [
        ("corta1A", "corta1A", "Falta"),
        ("todoenminusculas12", "todoenminusculas12", "Falta"),
        (NEW_PASSWORD, "Brisa-Marina-2032", "Las contraseñas no coinciden."),
        ("", "", "Este campo es obligatorio."),
    ],
)
def test_the_new_password_follows_the_h1_rules(db, client, auth, new, confirm, message):
    account = first_login_account()
    auth.login(client, account)
    response = client.post("/genesis/cambiar-clave", data={"password": new, "confirm": confirm})
    assert response.status_code == 422 and message in response.text
    assert 'id="password-error"' in response.text or 'id="confirm-error"' in response.text
    assert fresh(account).must_change_password


def test_the_new_password_may_not_contain_the_members_document(db, client, auth):
    account = first_login_account()
    auth.login(client, account)
    numero = numero_of(account)
    response = client.post(
        "/genesis/cambiar-clave", data={"password": f"Ab-{numero}", "confirm": f"Ab-{numero}"}
    )
    assert response.status_code == 422 and "documento" in response.text


def test_the_temporary_password_cannot_stay(db, client, auth):
    account = first_login_account(password=NEW_PASSWORD)  # as if the SMS had carried this one
    auth.login(client, account)
    response = client.post(
        "/genesis/cambiar-clave", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 422 and "distinta de la contraseña temporal" in response.text


def test_first_login_changes_the_password_then_records_the_carta(db, app, client, clock, outbox):
    clock.set(datetime(2026, 3, 2, 10, 0))
    account = first_login_account()
    ingresar(client, numero_of(account))
    other = app.test_client()  # another browser with the SMS password
    ingresar(other, numero_of(account))

    page = client.get("/genesis/cambiar-clave")
    assert "Su nueva contraseña debe contener" in page.text
    changed = client.post(
        "/genesis/cambiar-clave", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    now = fresh(account)
    assert not now.must_change_password and now.eps.temp_password_expires_at is None
    # This browser stays signed in and meets the carta; the other one was signed out.
    assert (
        client.get(changed.headers["Location"]).headers["Location"] == "/genesis/carta-de-derechos"
    )
    assert other.get("/genesis/oficina").status_code == 302

    carta = client.get("/genesis/carta-de-derechos")
    assert "Carta de derechos y deberes de los afiliados" in carta.text
    assert "Elegir libremente la IPS" in carta.text and "PQRSF" in carta.text
    refused = client.post("/genesis/carta-de-derechos", data={})
    assert refused.status_code == 422 and "carta de derechos y deberes" in refused.text
    assert fresh(account).eps.carta_accepted_at is None

    clock.advance(minutes=3)
    accepted = client.post("/genesis/carta-de-derechos", data={"acepto": "y"})
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/genesis/oficina"
    profile = EpsUser.get(EpsUser.account == account.id)
    assert profile.carta_accepted_at == utcnow()
    assert profile.carta_version == genesis.CARTA_VERSION
    assert client.get("/genesis/oficina").status_code == 200
    # Done once: the gates' pages no longer ask.
    assert client.get("/genesis/cambiar-clave").headers["Location"] == "/genesis/oficina"
    again = client.get("/genesis/carta-de-derechos")
    assert again.status_code == 200 and "Usted aceptó esta carta el" in again.text
    client.post("/genesis/carta-de-derechos", data={"acepto": "y"})
    assert EpsUser.get(EpsUser.account == account.id).carta_accepted_at == profile.carta_accepted_at
    # The new password signs in.
    client.post("/genesis/salir")
    assert ingresar(client, numero_of(account), NEW_PASSWORD).status_code == 303


def test_gate_pages_are_not_for_other_kinds_of_account(db, client, auth):
    auth.login(client, make_user())
    assert client.get("/genesis/cambiar-clave").status_code == 404
    assert client.get("/genesis/carta-de-derechos").status_code == 404


def test_gate_pages_send_the_anonymous_to_the_genesis_login(db, client):
    response = client.get("/genesis/cambiar-clave")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/genesis/afiliados?next=")


# --- ¿Olvidó su contraseña? ---------------------------------------------------------------


def olvide(client, numero: str, tipo: str = "CC"):
    return client.post("/genesis/olvide", data={"tipo_documento": tipo, "numero_documento": numero})


def code_of(outbox) -> str:
    return re.search(r"es (\d{6})\.", outbox.all("sms")[-1].body_text).group(1)


def restablecer(client, code: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    return client.post(
        "/genesis/olvide/codigo",
        data={"codigo": code, "password": password, "confirm": confirm or password},
    )


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", html)


def test_forgot_password_sends_a_code_and_sets_the_new_password(db, app, client, outbox):
    account = first_login_account()  # even an expired SMS password is replaced this way
    asked = olvide(client, numero_of(account))
    assert asked.status_code == 303 and asked.headers["Location"] == "/genesis/olvide/codigo"
    page = client.get("/genesis/olvide/codigo")
    assert NEUTRAL in page.text and "300****101" not in page.text
    [message] = outbox.all("sms")
    assert message.recipient == account.eps.afiliado.celular
    row = OneTimeCode.get()
    assert row.purpose == "genesis_reset" and code_of(outbox) not in row.code_hash
    assert row.expires_at - row.created_at == timedelta(minutes=10)

    done = restablecer(client, code_of(outbox))
    assert done.status_code == 303 and done.headers["Location"] == "/genesis/afiliados"
    now = fresh(account)
    assert not now.must_change_password and now.eps.temp_password_expires_at is None
    assert ingresar(app.test_client(), numero_of(account), NEW_PASSWORD).status_code == 303
    # The request is spent with the session: the same form again goes back to the start.
    again = restablecer(client, code_of(outbox), "Otra-Brisa-7788")
    assert again.status_code == 302 and again.headers["Location"] == "/genesis/olvide"


def test_forgot_password_answers_the_same_for_an_unknown_document(db, app, outbox):
    account = make_eps_user(make_eps_afiliado(numero_documento="73777001"))
    known, unknown = app.test_client(), app.test_client()
    a, b = olvide(known, "73777001"), olvide(unknown, "73777002")
    assert (a.status_code, a.headers["Location"]) == (b.status_code, b.headers["Location"])
    page_a = without_csrf(known.get("/genesis/olvide/codigo").text)
    page_b = without_csrf(unknown.get("/genesis/olvide/codigo").text)
    assert page_a == page_b
    assert len(outbox.all("sms")) == 1 and OneTimeCode.get().account_id == account.id
    wrong_a = without_csrf(restablecer(known, "000000").text)
    wrong_b = without_csrf(restablecer(unknown, "000000").text)
    assert wrong_a == wrong_b and WRONG_CODE in wrong_a


def test_a_code_dies_after_five_wrong_tries(db, client, outbox):
    account = make_eps_user()
    olvide(client, numero_of(account))
    code = code_of(outbox)
    wrong = "111111" if code != "111111" else "222222"
    for _ in range(service.CODE_TRIES):
        response = restablecer(client, wrong)
        assert response.status_code == 422 and WRONG_CODE in response.text
    late = restablecer(client, code)
    assert late.status_code == 422 and WRONG_CODE in late.text
    assert fresh(account).password_hash == account.password_hash


def test_a_right_code_with_a_weak_password_keeps_the_code_for_another_try(db, client, outbox):
    account = make_eps_user()
    olvide(client, numero_of(account))
    code = code_of(outbox)
    for _ in range(service.CODE_TRIES + 1):
        weak = restablecer(client, code, "debil")
        assert weak.status_code == 422 and "Falta" in weak.text and WRONG_CODE not in weak.text
        assert f'value="{code}"' in weak.text  # the code stays in the form
    assert restablecer(client, code).status_code == 303


def test_a_code_expires_after_ten_minutes(db, client, outbox, clock):
    account = make_eps_user()
    olvide(client, numero_of(account))
    clock.advance(minutes=10, seconds=1)
    assert WRONG_CODE in restablecer(client, code_of(outbox)).text


@pytest.mark.parametrize("numero", ["73777010", "73777011"])
def test_asking_again_within_a_minute_sends_nothing_for_any_document(db, client, outbox, numero):
    make_eps_user(make_eps_afiliado(numero_documento="73777010"))
    olvide(client, numero)
    sent = len(outbox.all("sms"))
    again = olvide(client, numero)
    assert again.status_code == 303
    assert (
        "Hace menos de un minuto se pidió un código" in client.get(again.headers["Location"]).text
    )
    assert len(outbox.all("sms")) == sent


@pytest.mark.parametrize("numero", ["73777020", "73777021"])
def test_codes_a_day_are_capped_per_document_alike(db, client, outbox, clock, numero):
    make_eps_user(make_eps_afiliado(numero_documento="73777020"))
    for _ in range(service.CODE_DAILY_CAP):
        assert olvide(client, numero).status_code == 303
        clock.advance(seconds=61)
    capped = olvide(client, numero)
    assert capped.status_code == 429 and "en las últimas 24 horas" in capped.text


def test_the_code_page_needs_a_request_first(db, client):
    response = client.get("/genesis/olvide/codigo")
    assert response.status_code == 302 and response.headers["Location"] == "/genesis/olvide"


def test_a_reset_ends_the_other_sessions(db, app, client, outbox):
    account = make_eps_user()
    other = app.test_client()
    ingresar(other, numero_of(account))
    olvide(client, numero_of(account))
    restablecer(client, code_of(outbox))
    assert other.get("/genesis/oficina").status_code == 302
    assert UserSession.get(UserSession.account == account.id).end_reason == UserSession.RESET


def test_reset_posts_are_rate_limited_per_client(limited_app):
    client = limited_app.test_client()
    answers = [olvide(client, f"7377710{i}").status_code for i in range(6)]
    assert answers == [303] * 5 + [429]
