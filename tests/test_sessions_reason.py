"""A session that ends tells the person why, over HTTP (issue 6, item 9)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import utcnow
from models import Account, UserSession
from tests.factories import PASSWORD, make_user

NEW = "Nueva-Ruta-2026x"
COOKIE = "hanna_sesion"


def login(client, user, password=PASSWORD):
    response = client.post("/", data={"email": user.email, "password": password})
    assert response.status_code == 303
    return response


def told(client, path="/inicio", headers=None) -> str:
    """Follow the anonymous answer to the login page and return what it says."""
    response = client.get(path, headers=headers or {})
    if response.status_code == 401:
        location = response.headers["HX-Redirect"]
    else:
        assert response.status_code == 302, response.status_code
        location = response.headers["Location"]
    return client.get(location).text


def two_browsers(app, user):
    """The same account signed in on a PC and on a phone; return both clients."""
    pc, phone = app.test_client(), app.test_client()
    login(pc, user)
    login(phone, user)
    return pc, phone


def row_of(user, n=0) -> UserSession:
    return UserSession.select().where(UserSession.account == user).order_by(UserSession.id)[n]


def test_idle_session_says_inactividad(db, client):
    user = make_user()
    login(client, user)
    UserSession.update(last_seen=utcnow() - timedelta(minutes=16)).execute()
    page = told(client)
    assert "Su sesión se cerró por inactividad." in page
    assert UserSession.get().end_reason == UserSession.IDLE


def test_session_past_its_maximum_age_says_so(db, client):
    user = make_user()
    login(client, user)
    UserSession.update(created_at=utcnow() - timedelta(hours=13)).execute()
    page = told(client)
    assert "tiempo máximo" in page and "inactividad" not in page
    assert UserSession.get().end_reason == UserSession.EXPIRED


def test_password_change_elsewhere_says_the_password_changed(db, app):
    user = make_user()
    pc, phone = two_browsers(app, user)
    done = phone.post(
        "/cuenta/clave",
        data={"clave-current": PASSWORD, "clave-password": NEW, "clave-confirm": NEW},
    )
    assert done.status_code == 303
    page = told(pc)
    assert "la contraseña de su cuenta se cambió" in page and "inactividad" not in page
    assert row_of(user, 0).end_reason == UserSession.PASSWORD
    assert row_of(user, 1).ended_at is None  # the phone that changed it stays in


def test_reset_says_the_password_was_reset(db, app, client, outbox):
    user = make_user()
    pc = app.test_client()
    login(pc, user)
    client.post("/restablecer", data={"email": user.email})
    link = outbox.last_link("/restablecer/")
    assert client.post(link, data={"password": NEW, "confirm": NEW}).status_code == 303
    page = told(pc)
    assert "se restableció la contraseña" in page and "inactividad" not in page
    assert row_of(user).end_reason == UserSession.RESET


def test_closed_from_the_sessions_list_says_another_device_closed_it(db, app):
    user = make_user()
    pc, phone = two_browsers(app, user)
    pc_row = row_of(user, 0)
    assert phone.post(f"/cuenta/sesiones/{pc_row.id}/cerrar").status_code == 303
    page = told(pc)
    assert "se cerró desde otro equipo" in page and "inactividad" not in page
    assert UserSession.get_by_id(pc_row.id).end_reason == UserSession.ELSEWHERE


def test_closing_this_session_from_the_list_is_a_logout(db, app):
    user = make_user()
    pc, phone = two_browsers(app, user)
    phone_row = row_of(user, 1)
    out = phone.post(f"/cuenta/sesiones/{phone_row.id}/cerrar")
    assert out.status_code == 303
    assert "Cerró esta sesión." in phone.get(out.headers["Location"]).text
    assert UserSession.get_by_id(phone_row.id).end_reason == UserSession.LOGOUT


def test_logout_everywhere_says_so_on_the_other_devices(db, app):
    user = make_user()
    pc, phone = two_browsers(app, user)
    assert phone.post("/cuenta/sesiones/cerrar-todas").status_code == 303
    page = told(pc)
    assert "todos los equipos" in page and "inactividad" not in page
    assert {r.end_reason for r in UserSession.select()} == {UserSession.ALL}


def test_copied_cookie_after_logout_says_the_session_was_closed(db, app, client):
    user = make_user()
    login(client, user)
    copy = app.test_client()
    copy.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    client.post("/salir")
    page = told(copy)
    assert "Esta sesión fue cerrada" in page and "inactividad" not in page
    assert UserSession.get().end_reason == UserSession.LOGOUT


def test_blocked_account_says_the_account_is_not_active(db, client):
    user = make_user()
    login(client, user)
    Account.update(status=Account.BLOCKED).where(Account.id == user.id).execute()
    page = told(client)
    assert "su cuenta ya no está activa" in page and "inactividad" not in page
    assert UserSession.get().end_reason == UserSession.ACCOUNT


@pytest.mark.parametrize("hx", [False, True])
def test_the_reason_reaches_htmx_requests_too(db, client, htmx, hx):
    user = make_user()
    login(client, user)
    UserSession.update(last_seen=utcnow() - timedelta(minutes=16)).execute()
    assert "inactividad" in told(client, "/cuenta", headers=htmx if hx else None)


def test_a_visitor_who_never_signed_in_is_told_nothing_about_sessions(client):
    page = told(client)
    assert "Su sesión" not in page and "Esta sesión" not in page
