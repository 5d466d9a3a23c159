"""Crear Cuenta Nueva, hardened: the registration held on the server, no e-mail oracle,
pending accounts taken over, and single-use e-mail-change links (issue 6, items 3 and 9)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

import models
from blueprints.public import service as captchas
from core.clock import utcnow
from models import Account, HannaUser, Message, PendingRegistration
from tests.factories import PASSWORD, make_afiliado, make_user, registration_form

WRONG_CAPTCHA = "El texto no coincide"
TAKEN = "Este documento ya tiene una cuenta."
USED = "Esta solicitud ya fue usada o venció"


def ticket_of(html: str) -> str:
    return re.search(r'name="confirmacion" value="([^"]+)"', html).group(1)


def captcha_key(html: str) -> str:
    return re.search(r'name="captcha_key" value="([^"]+)"', html).group(1)


def solved(app, client, **over) -> dict:
    """A valid form whose captcha is answered right."""
    key = captcha_key(client.get("/registro").text)
    with app.app_context():
        text = captchas.challenge(key).text
    return registration_form(captcha=text, captcha_key=key, **over)


def hold(client, **over) -> tuple[dict, str]:
    """Send the form: the server holds it and the page asks to confirm."""
    form = registration_form(**over)
    page = client.post("/registro", data=form)
    assert page.status_code == 200, page.text
    assert "Confirmar Solicitud" in page.text
    return form, ticket_of(page.text)


def confirm(client, ticket: str, **kwargs):
    return client.post("/registro", data={"confirmacion": ticket}, **kwargs)


def register(client, **over) -> tuple[dict, object]:
    form, ticket = hold(client, **over)
    return form, confirm(client, ticket)


def activation_mails(outbox, to: str | None = None) -> list:
    return [
        m
        for m in outbox.all("email")
        if "/activar/" in m.body_text and (to is None or m.recipient == to)
    ]


# --- the registration held on the server ----------------------------------------------


def test_confirmation_page_carries_only_the_ticket_not_the_password(db, client):
    page = client.post("/registro", data=registration_form()).text
    ticket = ticket_of(page)
    assert PASSWORD not in page
    confirmation = page[page.index("Confirmar Solicitud") :]
    hidden = re.findall(r'type="hidden" name="([^"]+)"', confirmation)
    assert sorted(hidden) == ["confirmacion", "csrf_token"]
    row = PendingRegistration.get()
    assert PASSWORD not in row.data and '"password_hash": "$argon2' in row.data
    assert row.ticket_hash != ticket and ticket not in row.data
    assert row.expires_at - row.created_at == timedelta(minutes=20)


def test_the_ticket_alone_creates_the_account_once(db, client, outbox, app):
    form, ticket = hold(client)
    done = confirm(client, ticket)
    assert done.status_code == 303 and done.headers["Location"].endswith("/registro/guardado")
    assert Account.by_email(form["email"]).status == Account.PENDING
    replay = confirm(app.test_client(), ticket)  # a fresh session, no captcha
    assert replay.status_code == 422 and USED in replay.text
    assert Account.select().count() == 1 and len(activation_mails(outbox)) == 1
    assert PendingRegistration.select().count() == 0


def test_two_concurrent_confirms_create_one_account_and_one_mail(db, app, outbox):
    _, ticket = hold(app.test_client())
    barrier, answers = threading.Barrier(4), []

    def press():
        client = app.test_client()
        barrier.wait()
        answers.append(confirm(client, ticket).status_code)

    threads = [threading.Thread(target=press) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    models.db.connect(reuse_if_open=True)
    assert sorted(answers) == [303, 422, 422, 422]
    assert Account.select().count() == 1 and len(activation_mails(outbox)) == 1


def test_cancel_forgets_the_held_data_and_gives_the_form_back(db, client):
    form, ticket = hold(client)
    page = client.post("/registro", data={"confirmacion": ticket, "accion": "cancelar"})
    assert page.status_code == 200
    assert f'value="{form["email"]}"' in page.text and PASSWORD not in page.text
    assert PendingRegistration.get().data == ""
    assert confirm(client, ticket).status_code == 422 and Account.select().count() == 0


def test_expired_held_registration_is_refused_and_purged(db, client, app):
    _, ticket = hold(client)
    PendingRegistration.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    page = confirm(client, ticket)
    assert page.status_code == 422 and USED in page.text and Account.select().count() == 0
    hold(app.test_client())  # the next registration sweeps the dead rows
    assert PendingRegistration.select().count() == 1


def test_held_data_wins_over_fields_posted_with_the_ticket(db, client):
    form, ticket = hold(client)
    client.post("/registro", data={**form, "email": "otra@example.com", "confirmacion": ticket})
    assert (
        Account.by_email(form["email"]) is not None and Account.by_email("otra@example.com") is None
    )


# --- captcha first, and kept once solved ----------------------------------------------------


def test_captcha_is_checked_before_the_document_is_said_taken(db, app, client):
    app.config["CAPTCHA"] = "image"
    make_user(numero_documento="80123457")
    form = solved(app, client, numero_documento="80123457")
    page = client.post("/registro", data={**form, "captcha": "zzzzzz"})
    assert page.status_code == 422 and WRONG_CAPTCHA in page.text and TAKEN not in page.text
    page = client.post("/registro", data=solved(app, client, numero_documento="80123457"))
    assert page.status_code == 422 and TAKEN in page.text


def test_a_solved_captcha_stays_solved_after_a_field_error(db, app, client):
    app.config["CAPTCHA"] = "image"
    form = solved(app, client, celular="12345")
    page = client.post("/registro", data=form)
    assert page.status_code == 422 and "celular colombiano" in page.text
    assert 'name="captcha_key"' not in page.text and "Ya resolvió el captcha" in page.text
    solicitud = re.search(r'name="solicitud" value="([^"]+)"', page.text).group(1)
    fixed = {**form, "celular": "3101234567", "captcha": "", "solicitud": solicitud}
    assert "Confirmar Solicitud" in client.post("/registro", data=fixed).text


def test_a_taken_document_answer_spends_the_solved_captcha(db, app, client):
    app.config["CAPTCHA"] = "image"
    make_user(numero_documento="80123458")
    first = client.post("/registro", data=solved(app, client, celular="12345"))
    solicitud = re.search(r'name="solicitud" value="([^"]+)"', first.text).group(1)
    form = registration_form(numero_documento="80123458", solicitud=solicitud)
    assert TAKEN in client.post("/registro", data=form).text
    again = client.post("/registro", data=form)
    assert again.status_code == 422 and WRONG_CAPTCHA in again.text and TAKEN not in again.text


def test_password_fields_say_they_must_be_typed_again(db, client):
    page = client.post("/registro", data=registration_form(celular="12345")).text
    assert "escríbalas de nuevo" in page
    assert "escríbalas de nuevo" not in client.get("/registro").text


# --- no oracle for registered e-mails --------------------------------------------------------


def test_registration_does_not_tell_whether_an_email_has_an_account(db, client, outbox):
    """The attack of issue 6: register a new document with X, then again with another address."""
    make_user(email="conocida@example.com")
    seen = {}
    for n, target in enumerate(("conocida@example.com", "nueva@example.com")):
        documento = f"7012345{n}"
        _, first = register(client, numero_documento=documento, email=target)
        first_page = client.get("/registro/guardado").text
        mine = f"atacante{n}@example.com"
        form, ticket = hold(client, numero_documento=documento, email=mine)
        second = confirm(client, ticket)
        second_page = client.get("/registro/guardado").text
        seen[target] = (
            first.status_code,
            first.headers.get("Location"),
            re.sub(r"<strong>[^<]*</strong>", "", first_page),
            second.status_code,
            second.headers.get("Location"),
            re.sub(r"<strong>[^<]*</strong>", "", second_page),
            len(activation_mails(outbox, mine)),
        )
    assert seen["conocida@example.com"] == seen["nueva@example.com"]
    assert seen["nueva@example.com"][3:5] == (303, "/registro/guardado")


def test_a_taken_document_is_refused_the_same_whatever_the_email(db, client):
    make_user(email="conocida2@example.com")
    active = make_user()
    answers = set()
    for email in ("conocida2@example.com", "libre@example.com"):
        page = client.post(
            "/registro",
            data=registration_form(numero_documento=active.hanna.numero_documento, email=email),
        )
        answers.add((page.status_code, TAKEN in page.text))
    assert answers == {(422, True)}


# --- pending accounts do not hold a document -------------------------------------------------


def test_a_newer_registration_takes_over_a_pending_account(db, client, outbox, app):
    _, _ = register(client, numero_documento="70999001", email="primero@example.com")
    old_link = outbox.last_link()
    _, done = register(app.test_client(), numero_documento="70999001", email="segundo@example.com")
    assert done.status_code == 303
    user = HannaUser.get(HannaUser.numero_documento == "70999001").account
    assert user.email == "segundo@example.com" and Account.select().count() == 1
    assert client.get(old_link).status_code == 410  # the old activation link died
    assert "/activar/" in activation_mails(outbox, "segundo@example.com")[-1].body_text


def test_a_takeover_keeps_the_failed_quiz_attempts(db, client):
    afiliado = make_afiliado()
    register(client, numero_documento=afiliado.numero_documento, email="uno@example.com")
    HannaUser.update(quiz_failures=2).execute()
    register(client, numero_documento=afiliado.numero_documento, email="dos@example.com")
    user = HannaUser.get(HannaUser.numero_documento == afiliado.numero_documento).account
    assert (user.email, user.hanna.quiz_failures, user.status) == (
        "dos@example.com",
        2,
        Account.PENDING,
    )


def test_a_pending_account_whose_link_expired_is_released(db, client, outbox):
    register(client, numero_documento="70999002", email="viejo@example.com")
    Account.update(created_at=utcnow() - timedelta(hours=49)).execute()
    _, done = register(client, numero_documento="70999002", email="nuevo2@example.com")
    assert done.status_code == 303
    assert (
        HannaUser.get(HannaUser.numero_documento == "70999002").account.email
        == "nuevo2@example.com"
    )


@pytest.mark.parametrize("status", [Account.ACTIVE, Account.BLOCKED])
def test_active_or_blocked_accounts_keep_their_document(db, client, status):
    user = make_user(status=status)
    page = client.post(
        "/registro", data=registration_form(numero_documento=user.hanna.numero_documento)
    )
    assert page.status_code == 422 and TAKEN in page.text


# --- the form itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        ("01/01/2099", "no puede ser posterior a hoy"),
        ("31/12/1899", "anterior a 1900"),
    ],
)
def test_implausible_birth_dates_are_refused(db, client, value, message):
    page = client.post("/registro", data=registration_form(fecha_nacimiento=value))
    assert page.status_code == 422 and message in page.text
    assert f'value="{value}"' in page.text


def test_reserved_test_addresses_only_in_development(db, app, client):
    assert (
        "Confirmar Solicitud"
        in client.post("/registro", data=registration_form(email="demo@hanna.test")).text
    )
    app.testing = False
    page = client.post("/registro", data=registration_form(email="demo2@hanna.test"))
    assert page.status_code == 422 and "correo electrónico válido" in page.text


def test_error_summary_links_to_each_field_and_takes_the_focus(db, client, htmx):
    form = registration_form(celular="12345", confirm="Otra-Clave-99")
    for headers in ({}, htmx):
        page = client.post("/registro", data=form, headers=headers).text
        summary = re.search(r'<div class="error-summary"[^>]*>.*?</div>', page, re.S).group(0)
        assert 'role="alert"' in summary and 'tabindex="-1"' in summary and "autofocus" in summary
        assert '<a href="#celular">' in summary and '<a href="#confirm">' in summary
        assert "<h2" in summary


def test_lookup_error_is_tied_to_the_document_field(db, client, htmx):
    page = client.post(
        "/registro/consulta",
        headers=htmx,
        data={"tipo_documento": "NI", "numero_documento": "890102044-2"},
    ).text
    field = re.search(r'<input[^>]*id="numero_documento"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field
    assert "numero_documento-error" in re.search(r'aria-describedby="([^"]+)"', field).group(1)
    assert page.count('id="numero_documento-error"') == 1
    assert 'hx-swap-oob="outerMorph"' in page


def test_confirmation_dialog_is_modal_and_shows_the_data_first(db, client, htmx):
    response = client.post("/registro", data=registration_form(), headers=htmx)
    assert "<dialog" in response.text and "data-modal" in response.text
    assert response.text.index('<dl class="summary">') < response.text.index("Está seguro")


# --- e-mail change links ---------------------------------------------------------------------


def login(client, user) -> None:
    done = client.post("/", data={"email": user.email, "password": PASSWORD})
    assert done.status_code == 303


def ask_change(client, outbox, email: str) -> str:
    client.post("/cuenta/correo", data={"correo-email": email, "correo-current": PASSWORD})
    return outbox.last_link("/cuenta/correo/")


def test_opening_the_email_change_link_asks_before_changing(db, client, outbox):
    user = make_user()
    login(client, user)
    link = ask_change(client, outbox, "escaner@example.com")
    page = client.get(link)  # what a mail scanner does
    assert page.status_code == 200 and "Confirmar nuevo correo" in page.text
    assert 'method="post"' in page.text and 'name="csrf_token"' in page.text
    assert Account.get_by_id(user.id).email == user.email
    assert client.post(link).status_code == 303
    assert Account.get_by_id(user.id).email == "escaner@example.com"


def test_a_used_email_change_link_cannot_be_replayed(db, client, outbox):
    user = make_user()
    old = user.email
    login(client, user)
    link = ask_change(client, outbox, "nueva1@example.com")
    client.post(link)
    Account.update(email=old, login=old).where(
        Account.id == user.id
    ).execute()  # say the owner moved back
    replay = client.post(link)
    assert replay.status_code == 410 and Account.get_by_id(user.id).email == old


def test_a_newer_email_change_request_voids_older_links(db, client, outbox):
    user = make_user()
    login(client, user)
    older = ask_change(client, outbox, "vieja@example.com")
    newer = ask_change(client, outbox, "reciente@example.com")
    assert client.get(older).status_code == 410
    assert client.post(older).status_code == 410
    assert Account.get_by_id(user.id).email == user.email
    assert client.post(newer).status_code == 303
    assert Account.get_by_id(user.id).email == "reciente@example.com"
    assert Message.select().count() >= 4
