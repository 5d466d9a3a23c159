"""PQRSF over HTTP (SPEC G6, G7): filing with its legal term, the radicado, following it by code."""

from __future__ import annotations

import html as htmllib
import io
import re
from datetime import datetime
from pathlib import Path

import pytest

import models
from blueprints.accounts import service as accounts
from blueprints.pqrs.forms import (
    CONTACT_REQUIRED,
    EMAIL_ERROR,
    NO_TIPO,
    NO_TIPO_DOCUMENTO,
    RADICADO_ERROR,
    new_form_key,
)
from blueprints.pqrs.views import CAPTCHA_WRONG, FOLLOW_LIMIT, LINK_INVALID, NO_MATCH
from blueprints.public import service as captchas
from core import colombia, pqrs, tokens
from core.clock import utcnow
from core.workdays import DueState
from models import Account, Attachment, HannaUser, Message, Pqrs, PqrsMensaje
from tests.factories import PASSWORD, make_eps_user, make_user
from tests.sample_files import pdf_bytes
from tests.test_activation import caja, quiz_taker, start, wrong_answers  # noqa: F401

RADICADO = re.compile(r"/pqrs/radicado/(PQR-\d{4}-[2-9A-HJKMNP-Z]{6})\Z")


def form(**over) -> dict:
    """A valid PQRSF form with a fresh form key."""
    data = dict(
        tipo="peticion",
        tipo_documento="CC",
        numero_documento="1045123456",
        nombre="Ana María Pérez Gómez",
        email="ana.perez@example.com",
        celular="3001234567",
        descripcion="Solicito copia de la respuesta a mi solicitud de subsidio de vivienda.",
        form_key=new_form_key(),
    )
    data.update(over)
    return data


def send(client, **over):
    """POST the form (multipart when a file is in it)."""
    data = form(**over)
    multipart = any(isinstance(v, tuple) for v in data.values())
    return client.post(
        "/pqrs", data=data, content_type="multipart/form-data" if multipart else None
    )


def filed(client, **over) -> str:
    """File a PQRSF and return its radicado."""
    answer = send(client, **over)
    assert answer.status_code == 303, answer.text
    return RADICADO.search(answer.headers["Location"]).group(1)


def files_on_disk(upload_dir: Path) -> list[str]:
    if not upload_dir.exists():
        return []
    return sorted(str(p.relative_to(upload_dir)) for p in upload_dir.rglob("*") if p.is_file())


def error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', html)
    return htmllib.unescape(found.group(1)) if found else ""


def consultar(client, radicado, tipo="CC", numero="1045123456", **headers):
    return client.post(
        "/pqrs/consulta",
        data={"tipo_documento": tipo, "numero_documento": numero, "radicado": radicado},
        headers=headers,
    )


def normalized(html: str) -> str:
    """The page without what differs on every render (CSRF tokens) or echoes the input."""
    html = re.sub(r'name="csrf_token" value="[^"]*"', "", html)
    return re.sub(r' value="[^"]*"| selected', "", html)


# --- the page and the terms ---------------------------------------------------------------


def test_the_form_shows_every_type_with_its_legal_term(db, client):
    page = client.get("/pqrs")
    assert page.status_code == 200
    for tipo in pqrs.TIPOS.values():
        assert f"<td>{tipo.nombre}</td><td>{tipo.term_days} días hábiles</td>" in page.text
        assert f'value="{tipo.code}"' in page.text
    for label in ("Tipo de PQRSF", "Tipo de documento", "Nombres y apellidos", "Celular"):
        assert label in page.text
    assert 'name="adjunto"' in page.text and 'enctype="multipart/form-data"' in page.text


@pytest.mark.parametrize(
    "tipo, days",
    [
        ("peticion", 15),
        ("queja", 15),
        ("reclamo", 15),
        ("denuncia", 15),
        ("sugerencia", 15),
        ("felicitacion", 15),
        ("documentos", 10),
        ("consulta", 30),
        ("desbloqueo", 15),
    ],
)
def test_each_type_carries_its_term_in_working_days(db, client, tipo, days):
    radicado = filed(client, tipo=tipo)
    row = Pqrs.get(Pqrs.radicado == radicado)
    assert row.term_days == days == pqrs.TIPOS[tipo].term_days
    page = client.get(f"/pqrs?tipo={tipo}").text
    assert f"Plazo de respuesta: {days} días hábiles." in page


@pytest.mark.parametrize(
    "moment, tipo, due",
    [
        # Friday 20 March 2026, before the Monday holiday of San José (23 March), and
        # Holy Thursday and Friday (2 and 3 April) inside the term.
        (datetime(2026, 3, 20, 10, 0), "peticion", "15/04/2026"),
        (datetime(2026, 3, 20, 10, 0), "documentos", "08/04/2026"),
        (datetime(2026, 3, 20, 10, 0), "consulta", "07/05/2026"),  # 1 May is a holiday too
        # After 18:00 it is received on the next working day: Tuesday the 24th.
        (datetime(2026, 3, 20, 19, 0), "peticion", "16/04/2026"),
        # On a Saturday, the same.
        (datetime(2026, 3, 21, 9, 0), "peticion", "16/04/2026"),
    ],
)
def test_due_dates_skip_weekends_and_holidays(db, client, clock, moment, tipo, due):
    clock.set(moment)
    radicado = filed(client, tipo=tipo)
    row = Pqrs.get(Pqrs.radicado == radicado)
    assert colombia.format_date(row.due_on) == due
    page = client.get(f"/pqrs/radicado/{radicado}").text
    assert f"<strong>{due}</strong>" in page


def test_due_states_for_staff_lists(db, client, clock):
    clock.set(datetime(2026, 3, 20, 10, 0))
    row = Pqrs.get(Pqrs.radicado == filed(client))  # due 15/04/2026
    assert pqrs.due_state(row) is DueState.AL_DIA
    clock.set(datetime(2026, 4, 10, 9, 0))  # three working days before
    assert pqrs.due_state(row) is DueState.POR_VENCER
    clock.set(datetime(2026, 4, 16, 9, 0))
    assert pqrs.due_state(row) is DueState.VENCIDO
    row.estado = Pqrs.RESPONDIDA
    assert pqrs.due_state(row) is None
    assert pqrs.extension_left(row) == 15
    assert pqrs.extended_due_on(row, 15) == datetime(2026, 5, 7).date()


# --- validation -------------------------------------------------------------------------


LONG_NAME = "A" * 161
LONG_TEXT = "x" * (pqrs.DESCRIPCION_MAX + 1)
INVALID = [
    ("no_tipo", {"tipo": ""}, "tipo", NO_TIPO),
    ("unknown_tipo", {"tipo": "amenaza"}, "tipo", NO_TIPO),
    ("no_document_type", {"tipo_documento": ""}, "tipo_documento", NO_TIPO_DOCUMENTO),
    ("unknown_document_type", {"tipo_documento": "XX"}, "tipo_documento", NO_TIPO_DOCUMENTO),
    ("no_number", {"numero_documento": ""}, "numero_documento", "Escriba el número de documento."),
    ("letters_in_a_cedula", {"numero_documento": "10AB45"}, "numero_documento", "solo números"),
    ("no_name", {"nombre": "  "}, "nombre", "Escriba sus nombres y apellidos."),
    ("long_name", {"nombre": LONG_NAME}, "nombre", "hasta 160 caracteres"),
    ("bad_email", {"email": "ana@@example"}, "email", EMAIL_ERROR),
    ("bad_mobile", {"celular": "6051234567"}, "celular", colombia.MOBILE_ERROR),
    ("no_contact", {"email": "", "celular": ""}, "email", CONTACT_REQUIRED),
    ("no_description", {"descripcion": " "}, "descripcion", "Escriba la descripción"),
    ("long_description", {"descripcion": LONG_TEXT}, "descripcion", "hasta 2000 caracteres"),
]


@pytest.mark.parametrize(
    "over, field, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_bad_input_is_422_with_the_message_next_to_the_field(
    db, client, outbox, over, field, message
):
    answer = send(client, **{"nombre": "Luz Dary Caro", **over})
    assert answer.status_code == 422
    assert message in error_of(answer.text, field)
    assert f'aria-describedby="{field}' in answer.text or f'{field}-error"' in answer.text
    kept = "Luz Dary Caro" if field != "nombre" else "Solicito copia de la respuesta"
    assert kept in answer.text  # the rest of the input is kept
    assert Pqrs.select().count() == 0 and outbox.all() == []


def test_a_file_where_the_description_belongs_is_refused(db, client):
    data = form()
    data["descripcion"] = (io.BytesIO(b"Solicito copia de mi respuesta"), "texto.txt")
    answer = client.post("/pqrs", data=data, content_type="multipart/form-data")
    assert answer.status_code == 422
    assert "Escriba la descripción" in error_of(answer.text, "descripcion")
    assert Pqrs.select().count() == 0


def test_a_form_without_a_key_of_ours_is_refused(db, client):
    answer = send(client, form_key="x")
    assert answer.status_code == 422 and "El formulario venció" in answer.text
    assert Pqrs.select().count() == 0


# --- the attachment -----------------------------------------------------------------------


def test_a_file_is_checked_by_content_and_nothing_is_kept_when_refused(db, app, client, outbox):
    upload_dir = Path(app.config["UPLOAD_DIR"])
    lying = (io.BytesIO(b"<html><script>alert(1)</script></html>"), "soporte.pdf")
    answer = send(client, adjunto=lying)
    assert answer.status_code == 422 and "Solo se aceptan archivos" in error_of(
        answer.text, "adjunto"
    )
    assert Pqrs.select().count() == 0 and Attachment.select().count() == 0 and outbox.all() == []
    assert files_on_disk(upload_dir) == []


def test_two_files_are_refused(db, client):
    data = form()
    data["adjunto"] = [(io.BytesIO(pdf_bytes()), "a.pdf"), (io.BytesIO(pdf_bytes()), "b.pdf")]
    answer = client.post("/pqrs", data=data, content_type="multipart/form-data")
    assert answer.status_code == 422 and "un solo archivo" in answer.text
    assert Pqrs.select().count() == 0


def test_a_body_over_the_cap_gets_a_spanish_413(db, client):
    big = (io.BytesIO(b"%PDF-1.4\n" + b"0" * (pqrs.MAX_BODY + 10)), "grande.pdf")
    answer = send(client, adjunto=big)
    assert answer.status_code == 413 and "10 MB" in answer.text
    assert Pqrs.select().count() == 0


def test_the_attachment_is_served_only_to_its_filer(db, app, client, auth):
    filer = make_user()
    auth.login(client, filer)
    radicado = filed(client, adjunto=(io.BytesIO(pdf_bytes()), "soporte médico.pdf"))
    url = f"/pqrs/radicado/{radicado}/adjunto"
    own = client.get(url)
    assert own.status_code == 200 and own.data.startswith(b"%PDF-")
    assert own.headers["Content-Disposition"].startswith("attachment;")
    assert "soporte" in client.get(f"/pqrs/radicado/{radicado}").text
    # The same account from another browser: its own filing.
    assert auth.login(app.test_client(), filer).get(url).status_code == 200
    # Anyone else: as if there were no file.
    assert app.test_client().get(url).status_code == 404
    assert auth.login(app.test_client(), make_user()).get(url).status_code == 404
    assert app.test_client().get("/pqrs/radicado/PQR-2026-ZZZZZZ/adjunto").status_code == 404


def test_an_anonymous_filer_gets_the_file_in_the_same_browser_only(db, app, client):
    radicado = filed(client, adjunto=(io.BytesIO(pdf_bytes()), "orden.pdf"))
    assert client.get(f"/pqrs/radicado/{radicado}/adjunto").status_code == 200
    assert app.test_client().get(f"/pqrs/radicado/{radicado}/adjunto").status_code == 404
    without = filed(client)
    assert client.get(f"/pqrs/radicado/{without}/adjunto").status_code == 404


# --- the captcha -------------------------------------------------------------------------


def captcha_key(html: str) -> str:
    return re.search(r'name="captcha_key" value="([^"]+)"', html).group(1)


def test_the_anonymous_must_answer_the_captcha(db, app, client):
    app.config["CAPTCHA"] = "image"
    key = captcha_key(client.get("/pqrs").text)
    wrong = send(client, captcha_key=key, captcha="zzzzzz")
    assert wrong.status_code == 422 and CAPTCHA_WRONG in error_of(wrong.text, "captcha")
    missing = send(client)
    assert missing.status_code == 422 and Pqrs.select().count() == 0
    key = captcha_key(missing.text)
    with app.app_context():
        text = captchas.challenge(key).text
    assert send(client, captcha_key=key, captcha=text).status_code == 303


def test_a_signed_in_filer_is_not_asked_for_a_captcha(db, app, client, auth):
    app.config["CAPTCHA"] = "image"
    auth.login(client, make_user())
    assert 'name="captcha_key"' not in client.get("/pqrs").text
    assert send(client).status_code == 303


def test_refrescar_without_javascript_keeps_the_input(db, app, client):
    app.config["CAPTCHA"] = "image"
    answer = send(client, accion="refrescar", nombre="Luz Dary Caro")
    assert answer.status_code == 200 and 'value="Luz Dary Caro"' in answer.text
    assert 'name="captcha_key"' in answer.text and Pqrs.select().count() == 0


# --- prefill, the radicado page, messages ------------------------------------------------


def test_a_signed_in_hanna_user_finds_their_identity_prefilled(db, client, auth):
    user = make_user(primer_nombre="LUZ", primer_apellido="CARO")
    auth.login(client, user)
    page = client.get("/pqrs").text
    assert f'value="{user.hanna.numero_documento}"' in page
    assert 'value="Luz Caro"' in page and f'value="{user.email}"' in page


def test_a_signed_in_genesis_user_finds_their_identity_prefilled(db, client, auth):
    account = make_eps_user()
    auth.login(client, account)
    page = client.get("/pqrs").text
    assert f'value="{account.eps.afiliado.numero_documento}"' in page
    assert 'value="Rosa Elena Díaz Mejía"' in page


def test_a_genesis_user_finds_the_contact_data_they_last_updated(db, client, auth):
    account = make_eps_user()
    Account.update(email="viejo@example.com", celular="3000000001").where(
        Account.id == account.id
    ).execute()
    afiliado = account.eps.afiliado
    afiliado.email, afiliado.celular = "rosa.nueva@example.com", "3157654321"
    afiliado.save()
    auth.login(client, Account.get_by_id(account.id))
    page = client.get("/pqrs").text
    assert 'value="rosa.nueva@example.com"' in page and 'value="3157654321"' in page
    assert "viejo@example.com" not in page


def test_filing_shows_the_radicado_type_and_due_date(db, client, clock):
    clock.set(datetime(2026, 3, 20, 10, 0))
    answer = send(client, tipo="queja")
    assert answer.status_code == 303
    radicado = RADICADO.search(answer.headers["Location"]).group(1)
    assert radicado.startswith("PQR-2026-")
    page = client.get(answer.headers["Location"]).text
    for words in (radicado, "Queja", "15 días hábiles", "15/04/2026", "Consulta PQRDS"):
        assert words in page
    row = Pqrs.get(Pqrs.radicado == radicado)
    assert (row.tipo, row.estado, row.account_id, row.cuenta_bloqueada_id) == (
        "queja",
        Pqrs.RADICADA,
        None,
        None,
    )
    assert row.celular == "3001234567" and row.numero_documento == "1045123456"


def test_the_radicado_page_is_only_for_its_filer(db, app, client, auth):
    radicado = filed(client)
    url = f"/pqrs/radicado/{radicado}"
    assert client.get(url).status_code == 200
    stranger = app.test_client().get(url)
    assert stranger.status_code == 302 and stranger.headers["Location"].endswith("/pqrs/consulta")
    assert radicado not in stranger.text
    other = auth.login(app.test_client(), make_user()).get(url)
    assert other.status_code == 302
    # A signed-in filer sees it from any browser.
    filer = make_user()
    signed = auth.login(app.test_client(), filer)
    mine = filed(signed)
    assert auth.login(app.test_client(), filer).get(f"/pqrs/radicado/{mine}").status_code == 200
    assert app.test_client().get(f"/pqrs/radicado/{mine}").status_code == 302


def test_email_and_sms_carry_the_radicado_and_the_due_date(db, client, outbox, clock):
    clock.set(datetime(2026, 3, 20, 10, 0))
    radicado = filed(client)
    (mail,) = outbox.all(Message.EMAIL)
    assert mail.recipient == "ana.perez@example.com" and radicado in mail.subject
    assert radicado in mail.body_text and "15/04/2026" in mail.body_text
    assert "http://localhost/pqrs/consulta" in mail.body_text
    (sms,) = outbox.all(Message.SMS)
    assert sms.recipient == "3001234567" and radicado in sms.body_text
    assert "15/04/2026" in sms.body_text
    assert pqrs.is_gsm7_single(sms.body_text), sms.body_text


@pytest.mark.parametrize(
    "over, channels",
    [({"celular": ""}, [Message.EMAIL]), ({"email": ""}, [Message.SMS])],
    ids=["email_only", "sms_only"],
)
def test_only_the_given_contacts_are_told(db, client, outbox, over, channels):
    filed(client, **over)
    assert [m.channel for m in outbox.all()] == channels


def test_the_sms_stays_one_gsm7_part_with_a_long_address(db):
    row = Pqrs(radicado="PQR-2026-7K3M9Q", due_on=datetime(2026, 4, 15).date())
    text = pqrs.sms_text(row, "https://portal.cajacopi.example/" + "x" * 120)
    assert pqrs.is_gsm7_single(text) and "PQR-2026-7K3M9Q" in text
    assert not pqrs.is_gsm7_single("Petición N° 1")  # ó and ° would make it 70-character parts


def test_a_double_submit_gives_the_first_radicado(db, client, outbox):
    data = form()
    first = client.post("/pqrs", data=data)
    again = client.post("/pqrs", data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert Pqrs.select().count() == 1 and len(outbox.all()) == 2


def test_the_same_form_key_from_someone_else_shows_nothing_of_the_first(db, app, client):
    data = form()
    radicado = filed(client, **data)
    # The same browser (a shared PC's back button), someone else's document: a stale form.
    replay = client.post("/pqrs", data={**data, "numero_documento": "1098765432"})
    assert replay.status_code == 422 and "El formulario venció" in replay.text
    assert radicado not in replay.text and Pqrs.select().count() == 1
    # Another browser: the key means nothing there; it files its own PQRSF, never the first.
    other = app.test_client().post("/pqrs", data={**data, "numero_documento": "1098765432"})
    assert other.status_code == 303 and radicado not in other.location
    assert Pqrs.select().count() == 2


# --- desbloqueo from the blocked page -------------------------------------------------------


def blocked_user() -> tuple[Account, str]:
    """A Hanna account blocked by the quiz, and its activation link (which shows the blocked page)."""
    user = make_user(
        status=Account.BLOCKED,
        primer_nombre="MARTA",
        primer_apellido="ROJAS",
        segundo_apellido="DÍAZ",
    )
    HannaUser.update(blocked_at=utcnow(), quiz_failures=3).where(
        HannaUser.account == user.id
    ).execute()
    return user, accounts.activation_link(user, secret="test-secret", base_url="")


def pqrs_link(page: str) -> str:
    found = re.search(r'href="(/pqrs\?[^"]+)"', page)
    assert found, "no PQRSF link on the page"
    return htmllib.unescape(found.group(1))


def token_of(link: str) -> str:
    return re.search(r"cuenta=([^&]+)", link).group(1)


def test_the_blocked_page_links_to_a_prefilled_desbloqueo(db, client, outbox):
    user, activation = blocked_user()
    page = client.get(activation)
    assert page.status_code == 403 and "bloqueado" in page.text
    link = pqrs_link(page.text)
    assert "tipo=desbloqueo" in link and "cajacopi.com" not in page.text
    form_page = client.get(link).text
    assert '<option selected value="desbloqueo">' in form_page
    assert f'value="{user.hanna.numero_documento}"' in form_page
    assert 'value="Marta Rojas Díaz"' in form_page and f'value="{user.email}"' in form_page
    answer = send(
        client,
        tipo="desbloqueo",
        cuenta=token_of(link),
        numero_documento=user.hanna.numero_documento,
        email=user.email,
        celular="",
    )
    row = Pqrs.get(Pqrs.radicado == RADICADO.search(answer.headers["Location"]).group(1))
    assert row.tipo == Pqrs.DESBLOQUEO and row.cuenta_bloqueada_id == user.id
    assert row.account_id is None


def test_a_user_blocked_by_the_quiz_reaches_the_link(db, caja, client):  # noqa: F811
    user, link = quiz_taker(caja)
    for _ in range(3):
        start(client, link)
        page = client.post(link, data=wrong_answers(user))
    assert page.status_code == 403
    form_page = client.get(pqrs_link(page.text))
    assert LINK_INVALID not in form_page.text
    assert f'value="{user.hanna.numero_documento}"' in form_page.text


def test_signing_in_to_a_blocked_account_gives_the_same_link(db, client):
    """A user who comes back days later: the right password shows the signed link again."""
    user, _ = blocked_user()
    page = client.post("/", data={"email": user.email, "password": PASSWORD})
    assert page.status_code == 422 and "Su usuario está bloqueado" in page.text
    form_page = client.get(pqrs_link(page.text))
    assert LINK_INVALID not in form_page.text
    assert f'value="{user.hanna.numero_documento}"' in form_page.text


def test_a_wrong_password_for_a_blocked_account_gives_no_link(db, client):
    user, _ = blocked_user()
    page = client.post("/", data={"email": user.email, "password": "Otra-Clave-2031"})
    assert page.status_code == 422 and "bloqueado" not in page.text
    assert "cuenta=" not in page.text


def forged(token: str) -> str:
    return token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")


def test_a_forged_link_prefills_nothing_and_files_nothing(db, client, outbox):
    user, activation = blocked_user()
    token = token_of(pqrs_link(client.get(activation).text))
    page = client.get(f"/pqrs?tipo=desbloqueo&cuenta={forged(token)}").text
    assert LINK_INVALID in page and user.hanna.numero_documento not in page
    answer = send(client, tipo="desbloqueo", cuenta=forged(token))
    assert answer.status_code == 422 and LINK_INVALID in answer.text
    assert Pqrs.select().count() == 0 and outbox.all() == []
    # A link signed for another purpose names no account either.
    other = tokens.make_token("test-secret", tokens.RESET, {"a": user.id, "u": ""})
    assert send(client, tipo="desbloqueo", cuenta=other).status_code == 422


def test_the_blocked_account_is_never_taken_from_a_plain_field(db, client):
    user, _ = blocked_user()
    radicado = filed(
        client, tipo="desbloqueo", cuenta_bloqueada=str(user.id), cuenta_bloqueada_id=str(user.id)
    )
    assert Pqrs.get(Pqrs.radicado == radicado).cuenta_bloqueada_id is None


def test_the_link_names_the_account_only_for_a_desbloqueo(db, client):
    user, activation = blocked_user()
    token = token_of(pqrs_link(client.get(activation).text))
    radicado = filed(client, tipo="queja", cuenta=token)
    assert Pqrs.get(Pqrs.radicado == radicado).cuenta_bloqueada_id is None


def test_the_link_is_done_once_staff_unblock_the_account(db, client):
    user, activation = blocked_user()
    token = token_of(pqrs_link(client.get(activation).text))
    HannaUser.update(unblocked_at=utcnow()).where(HannaUser.account == user.id).execute()
    Account.update(status=Account.ACTIVE).where(Account.id == user.id).execute()
    assert pqrs.blocked_account("test-secret", token) is None
    assert send(client, tipo="desbloqueo", cuenta=token).status_code == 422


# --- G6: Consulta PQRDS -------------------------------------------------------------------


def test_the_consulta_page_has_the_manual_fields(db, client):
    page = client.get("/pqrs/consulta")
    assert page.status_code == 200
    for words in (
        "Consulta PQRDS",
        "Tipo de documento",
        "Número de documento",
        "Código de la PQRDS",
        "Consultar",
    ):
        assert words in page.text


def test_all_three_matching_show_the_state_dates_and_answers(db, app, client, clock):
    clock.set(datetime(2026, 3, 20, 10, 0))
    radicado = filed(client, tipo="reclamo")
    row = Pqrs.get(Pqrs.radicado == radicado)
    stranger = app.test_client()
    pending = consultar(stranger, radicado)
    assert pending.status_code == 200 and "Aún no hay respuesta" in pending.text
    for words in ("Reclamo", "Radicada, en trámite", "20/03/2026 10:00", "15/04/2026"):
        assert words in pending.text
    PqrsMensaje.create(pqrs=row, tipo=PqrsMensaje.CIUDADANO, texto="Nota interna del ciudadano")
    PqrsMensaje.create(
        pqrs=row, tipo=PqrsMensaje.RESPUESTA, texto="Su reclamo fue resuelto a favor."
    )
    Pqrs.update(estado=Pqrs.RESPONDIDA).where(Pqrs.id == row.id).execute()
    answered = consultar(stranger, radicado.lower().replace("-", ""), numero="1.045.123.456")
    assert "Su reclamo fue resuelto a favor." in answered.text and "Respondida" in answered.text
    assert "Nota interna" not in answered.text


def test_a_wrong_code_document_or_type_get_the_very_same_answer(db, app, client):
    radicado = filed(client)
    filed(client, numero_documento="1098765432")  # someone else's PQRSF exists too
    unknown = "PQR-2026-ZZZZZZ" if radicado != "PQR-2026-ZZZZZZ" else "PQR-2026-YYYYYY"
    answers = []
    for code, tipo, numero in (
        (unknown, "CC", "1045123456"),  # wrong code
        (radicado, "CC", "1098765432"),  # wrong document number
        (radicado, "CE", "1045123456"),  # wrong document type
    ):
        answer = consultar(app.test_client(), code, tipo=tipo, numero=numero)
        assert NO_MATCH in htmllib.unescape(answer.text)
        assert radicado not in answer.text.replace(f'value="{radicado}"', "")
        answers.append(
            (
                answer.status_code,
                normalized(answer.text),
            )
        )
    assert answers[0] == answers[1] == answers[2]


def test_a_malformed_code_is_a_field_error(db, client):
    answer = consultar(client, "12345")
    assert answer.status_code == 422 and RADICADO_ERROR in error_of(answer.text, "radicado")


def test_the_consulta_answers_htmx_with_its_partial(db, client, htmx):
    radicado = filed(client)
    answer = consultar(client, radicado, **htmx)
    assert '<section class="panel" id="consulta"' in answer.text and "<html" not in answer.text
    assert "HX-Request" in answer.headers["Vary"]


def test_tries_are_counted_per_code_before_comparing(db, app, client):
    radicado = filed(client)
    for _ in range(pqrs.FOLLOW_TRIES):
        assert consultar(app.test_client(), radicado, numero="1098765432").status_code == 200
    right = consultar(app.test_client(), radicado)  # the right document, now too late
    assert right.status_code == 429 and FOLLOW_LIMIT in htmllib.unescape(right.text)
    assert "Radicada, en trámite" not in right.text
    # An unknown code is limited just the same: the answer tells nothing of existence.
    unknown = "PQR-2026-ZZZZZZ" if radicado != "PQR-2026-ZZZZZZ" else "PQR-2026-YYYYYY"
    for _ in range(pqrs.FOLLOW_TRIES):
        consultar(app.test_client(), unknown)
    assert consultar(app.test_client(), unknown).status_code == 429


# --- rate limits ---------------------------------------------------------------------------


def test_filing_is_limited_per_contact(db, app, outbox):
    for i in range(pqrs.FILINGS_PER_CONTACT):
        assert filed(app.test_client(), numero_documento=f"104512345{i}")
    refused = send(app.test_client(), numero_documento="1045123459")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert Pqrs.select().count() == pqrs.FILINGS_PER_CONTACT
    assert len(outbox.all(Message.SMS)) == pqrs.FILINGS_PER_CONTACT
    # Another contact still files.
    assert filed(app.test_client(), email="otra@example.com", celular="3109876543")


def test_filing_posts_are_limited_per_client(limited_app):
    client = limited_app.test_client()
    answers = [send(client, nombre="").status_code for _ in range(5)]
    assert answers == [422] * 5
    assert send(client).status_code == 429
    with models.db.connection_context():
        assert Pqrs.select().count() == 0


def test_consulta_posts_are_limited_per_client(limited_app):
    client = limited_app.test_client()
    answers = [consultar(client, "PQR-2026-ZZZZZZ").status_code for _ in range(10)]
    assert answers == [200] * 10
    assert consultar(client, "PQR-2026-ZZZZZZ").status_code == 429
    assert client.get("/pqrs/consulta").status_code == 200  # reading the page costs nothing


@pytest.mark.parametrize("path", ["/pqrs", "/pqrs/consulta"])
def test_posts_without_the_csrf_token_are_refused(db, app, client, path):
    app.config["WTF_CSRF_ENABLED"] = True
    answer = client.post(path, data=form(radicado="PQR-2026-ZZZZZZ"))
    assert answer.status_code == 400 and Pqrs.select().count() == 0
