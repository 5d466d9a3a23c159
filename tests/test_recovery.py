"""Password reset (H3), account changes, sessions and lockout, over HTTP."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from blueprints.accounts import service
from core import auth as core_auth
from core import passwords
from core.clock import utcnow
from models import Acceso, Account, Message, UserSession
from tests.factories import PASSWORD, make_user

NEW = "Nueva-Ruta-2026x"


def login(client, user, password=PASSWORD):
    return client.post("/", data={"email": user.email, "password": password})


def reset_link(outbox) -> str:
    return outbox.last_link("/restablecer/")


def normalized(html: str) -> str:
    """The page without the values that differ on every render (CSRF, captcha)."""
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    return re.sub(r"/captcha/[\w-]+|captcha_key\" value=\"[^\"]+", "", html)


def test_forgot_page_has_the_manual_words(app, client):
    app.config["CAPTCHA"] = "image"
    page = client.get("/restablecer").text
    for words in (
        "Olvide mi Contraseña (Verificar Datos)",
        "Información!",
        "12 horas",
        "Email",
        "Refrescar",
        "Enviar Solicitud",
    ):
        assert words in page


def test_login_page_links_to_the_reset(client):
    assert 'href="/restablecer">Restablecer Contraseña</a>' in client.get("/").text


def test_reset_request_answers_the_same_for_known_and_unknown_addresses(db, client):
    user = make_user()
    answers = []
    for email in (user.email, "nadie@example.com"):
        before_hash, before_mail = passwords.HASH_CALLS, Message.select().count()
        response = client.post("/restablecer", data={"email": email})
        page = client.get(response.headers["Location"])
        answers.append(
            (
                response.status_code,
                response.headers["Location"],
                normalized(page.text),
                passwords.HASH_CALLS - before_hash,
                Message.select().count() - before_mail,
            )
        )
    assert answers[0] == answers[1]
    known, unknown = Message.select().order_by(Message.id)
    assert "/restablecer/" in known.body_text and "/restablecer/" not in unknown.body_text


def test_reset_mail_has_the_button_and_a_one_hour_link(db, client, outbox):
    user = make_user()
    client.post("/restablecer", data={"email": user.email})
    mail = outbox.all("email")[-1]
    assert mail.subject == "Restablecimiento de Contraseña"
    assert "Restablecer Contraseña</a>" in mail.body_html and "1 hora" in mail.body_text


def test_one_mail_per_address_every_two_minutes(db, client):
    user = make_user()
    for _ in range(3):
        client.post("/restablecer", data={"email": user.email})
    assert Message.select().where(Message.recipient == user.email).count() == 1


def test_reset_changes_the_password_ends_sessions_and_mails_a_confirmation(db, app, client, outbox):
    user = make_user()
    other = app.test_client()
    login(other, user)
    client.post("/restablecer", data={"email": user.email})
    link = reset_link(outbox)
    page = client.get(link).text
    for words in (
        "Restablecer Contraseña",
        "Nueva Contraseña",
        "Confirmar Contraseña",
        "Actualizar Contraseña",
        "Mínimo 8 caracteres.",
    ):
        assert words in page
    done = client.post(link, data={"password": NEW, "confirm": NEW})
    assert done.status_code == 303
    assert other.get("/inicio").status_code == 302  # the other browser is out
    assert outbox.all("email")[-1].subject == "Su contraseña fue actualizada"
    assert login(client, user, NEW).status_code == 303
    again = client.get(link)
    assert again.status_code == 410 and "ya fue usado" in again.text


@pytest.mark.parametrize(
    "password, confirm, message",
    [
        ("corta1A", "corta1A", "mínimo 8"),
        (NEW, NEW + "x", "no coinciden"),
        ("Password123", "Password123", "muy común"),
    ],
)
def test_reset_form_applies_the_password_rules(db, client, outbox, password, confirm, message):
    user = make_user()
    client.post("/restablecer", data={"email": user.email})
    page = client.post(reset_link(outbox), data={"password": password, "confirm": confirm})
    assert page.status_code == 422 and message in page.text.lower()
    assert Account.get_by_id(user.id).password_hash == user.password_hash


def test_reset_refuses_the_users_own_document_in_the_password(db, client, outbox):
    user = make_user(numero_documento="79123456")
    client.post("/restablecer", data={"email": user.email})
    page = client.post(reset_link(outbox), data={"password": "Xx79123456", "confirm": "Xx79123456"})
    assert "número de documento" in page.text


def test_reset_link_expires_after_an_hour(db, client, outbox, monkeypatch):
    user = make_user()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3601)
    client.post("/restablecer", data={"email": user.email})
    monkeypatch.setattr(time, "time", real)
    page = client.get(reset_link(outbox))
    assert page.status_code == 410 and "venció" in page.text


def test_reset_link_dies_when_the_password_changes_another_way(db, client, outbox):
    user = make_user()
    client.post("/restablecer", data={"email": user.email})
    link = reset_link(outbox)
    core_auth.set_password(user, NEW)
    assert client.get(link).status_code == 410


def backing_off(user):
    """Put the untrusted budget at its longest wait, as a stranger's guessing does."""
    Account.update(failed_logins=100, login_blocked_until=utcnow() + core_auth.BACKOFF_CAP).where(
        Account.id == user.id
    ).execute()


def test_a_reset_ends_the_untrusted_back_off(db, client, outbox):
    user = make_user()
    backing_off(user)
    page = login(client, user)
    assert page.status_code == 422 and "El email o la contraseña no son correctos." in page.text
    client.post("/restablecer", data={"email": user.email})
    client.post(reset_link(outbox), data={"password": NEW, "confirm": NEW})
    assert Account.get_by_id(user.id).failed_logins == 0
    assert login(client, user, NEW).status_code == 303


def test_backing_off_unknown_and_wrong_answers_look_the_same(db, client):
    locked, wrong = make_user(), make_user()
    backing_off(locked)
    pages = [
        login(client, locked),
        client.post("/", data={"email": "nadie@example.com", "password": PASSWORD}),
        login(client, wrong, "Mala-Clave-1"),
    ]
    bodies = {
        normalized(p.text)
        .replace(locked.email, "X")
        .replace(wrong.email, "X")
        .replace("nadie@example.com", "X")
        for p in pages
    }
    assert {p.status_code for p in pages} == {422} and len(bodies) == 1


def test_each_login_attempt_costs_one_hash_whatever_the_account(db, client):
    locked, wrong = make_user(), make_user()
    backing_off(locked)
    costs = []
    for email, password in (
        (locked.email, PASSWORD),
        ("nadie@example.com", PASSWORD),
        (wrong.email, "Mala-Clave-1"),
    ):
        before = passwords.HASH_CALLS
        client.post("/", data={"email": email, "password": password})
        costs.append(passwords.HASH_CALLS - before)
    assert costs == [1, 1, 1]


# --- account page --------------------------------------------------------------------------


def test_change_password_asks_the_current_one_and_ends_other_sessions(db, app, client):
    user = make_user()
    other = app.test_client()
    login(other, user)
    login(client, user)
    wrong = client.post(
        "/cuenta/clave",
        data={"clave-current": "Mala-1x", "clave-password": NEW, "clave-confirm": NEW},
    )
    assert wrong.status_code == 422 and "La contraseña actual no es correcta." in wrong.text
    done = client.post(
        "/cuenta/clave",
        data={"clave-current": PASSWORD, "clave-password": NEW, "clave-confirm": NEW},
    )
    assert done.status_code == 303
    assert client.get("/cuenta").status_code == 200  # this browser stays in
    assert other.get("/inicio").status_code == 302
    assert passwords.verify_password(Account.get_by_id(user.id).password_hash, NEW)


def test_change_email_needs_the_new_address_to_confirm(db, client, outbox):
    user = make_user()
    login(client, user)
    done = client.post(
        "/cuenta/correo", data={"correo-email": "Nuevo@Example.com", "correo-current": PASSWORD}
    )
    assert done.status_code == 303
    mails = {m.recipient: m for m in outbox.all("email")}
    assert "nu*****@example.com" in mails[user.email].body_text  # notice to the old address
    assert Account.get_by_id(user.id).email == user.email  # nothing changed yet
    link = outbox.last_link("/cuenta/correo/")
    client.get(link)
    assert Account.get_by_id(user.id).email == user.email  # opening the link asks first
    client.post(link)
    assert Account.get_by_id(user.id).email == "nuevo@example.com"


def test_change_email_to_a_taken_address_tells_its_owner_only(db, client, outbox):
    user, owner = make_user(), make_user()
    login(client, user)
    client.post("/cuenta/correo", data={"correo-email": owner.email, "correo-current": PASSWORD})
    mail = outbox.all("email")[-1]
    assert mail.recipient == owner.email and "/cuenta/correo/" not in mail.body_text
    assert Account.get_by_id(user.id).email == user.email


def test_account_pages_need_a_session(client):
    for path in ("/cuenta", "/cuenta/sesiones"):
        assert client.get(path).status_code == 302
    assert client.post("/cuenta/clave").status_code == 302


# --- sessions --------------------------------------------------------------------------------


def test_sessions_page_lists_devices_and_marks_this_one(db, app, client):
    user = make_user()
    phone = app.test_client()
    phone.post(
        "/",
        data={"email": user.email, "password": PASSWORD},
        headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile Safari/537.36"},
    )
    login(client, user)
    page = client.get("/cuenta/sesiones").text
    assert "Chrome en Android" in page and "Esta sesión" in page
    assert "Cerrar sesión en todos los equipos" in page


def test_closing_someone_elses_session_is_a_404(db, app, client):
    mine, theirs = make_user(), make_user()
    login(app.test_client(), theirs)
    login(client, mine)
    their_session = UserSession.get(UserSession.account == theirs)
    assert client.post(f"/cuenta/sesiones/{their_session.id}/cerrar").status_code == 404
    assert UserSession.get_by_id(their_session.id).ended_at is None


def test_close_one_session(db, app, client):
    user = make_user()
    other = app.test_client()
    login(other, user)
    login(client, user)
    other_row = (
        UserSession.select().where(UserSession.account == user).order_by(UserSession.id).first()
    )
    client.post(f"/cuenta/sesiones/{other_row.id}/cerrar")
    assert other.get("/inicio").status_code == 302 and client.get("/inicio").status_code == 200


def test_logout_everywhere_ends_every_session_and_old_cookies(db, app, client):
    user = make_user()
    other = app.test_client()
    login(other, user)
    login(client, user)
    cookie = client.get_cookie("hanna_sesion").value
    out = client.post("/cuenta/sesiones/cerrar-todas")
    assert out.status_code == 303 and "Clear-Site-Data" in out.headers
    thief = app.test_client()
    thief.set_cookie("hanna_sesion", cookie)
    assert thief.get("/inicio").status_code == 302 and other.get("/inicio").status_code == 302


@pytest.mark.parametrize(
    "front_desk, idle_minutes, stays",
    [(False, 12, True), (True, 12, False), (True, 8, True)],
)
def test_idle_timeout_is_shorter_for_a_convenio_front_desk(
    db, client, front_desk, idle_minutes, stays
):
    """A user granted CONVENIOS works at a shared PC: the shorter idle time applies."""
    user = make_user()
    if front_desk:
        Acceso.create(account=user, aplicacion="convenios")
    login(client, user)
    UserSession.update(last_seen=utcnow() - timedelta(minutes=idle_minutes)).execute()
    assert (client.get("/inicio").status_code == 200) is stays


def test_absolute_timeout_ends_even_a_busy_session(db, client):
    user = make_user()
    login(client, user)
    UserSession.update(created_at=utcnow() - timedelta(hours=13)).execute()
    assert client.get("/inicio").status_code == 302


# --- a new activation mail -----------------------------------------------------------------------


def test_pending_login_mails_a_new_activation_link_with_a_cool_down(db, client, outbox):
    user = make_user(status=Account.PENDING)
    login(client, user)
    assert outbox.all("email")[-1].recipient == user.email
    assert "/activar/" in outbox.all("email")[-1].body_text
    login(client, user)  # again at once: no second mail
    assert len(outbox.all("email")) == 1


def test_expired_activation_link_offers_a_new_one(db, client, outbox, monkeypatch):
    user = make_user(status=Account.PENDING)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 49 * 3600)
    link = service.activation_link(user, secret="test-secret", base_url="")
    monkeypatch.setattr(time, "time", real)
    page = client.get(link).text
    assert "Enviarme un enlace nuevo" in page
    token = link.rsplit("/", 1)[1]
    assert "Le enviamos un enlace nuevo" in client.post(f"/activacion/reenviar/{token}").text


def test_forged_resend_ticket_is_refused(db, client):
    assert client.post("/activacion/reenviar/abc.def.ghi").status_code == 410


def test_login_rehashes_when_the_parameters_rise(db, client):
    user = make_user()  # hashed with the cheap test parameters
    assert "t=1" in user.password_hash
    passwords.configure(time_cost=2, memory_cost=16, parallelism=1)
    try:
        assert login(client, user).status_code == 303
    finally:
        passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    stored = Account.get_by_id(user.id).password_hash
    assert "t=2" in stored and passwords.verify_password(stored, PASSWORD)


def test_production_hashing_meets_owasp_minimums(tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.setenv("SECRET_KEY", "0123456789abcdef" * 4)  # strong enough to start
    monkeypatch.setenv("SMS_BACKEND", "http")  # console and file are for development
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    create_app()  # the default configuration configures the hasher
    try:
        assert "$argon2id$v=19$m=19456,t=2,p=1$" in passwords.hash_password("Una-Clave-Larga-9")
    finally:
        passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
