"""Signing a shared PC in with a phone ("Código QR", SPEC H5)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.clock import utcnow
from models import QrLogin, UserSession
from tests.factories import PASSWORD, make_user

PC_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


@pytest.fixture
def phone(app, db):
    """A phone where the user is already signed in."""
    user = make_user()
    client = app.test_client()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    client.user = user
    return client


def open_qr(client) -> QrLogin:
    page = client.get("/qr", headers={"User-Agent": PC_AGENT})
    assert page.status_code == 200
    return QrLogin.select().order_by(QrLogin.id.desc()).first()


def test_login_page_offers_the_qr_code(client):
    assert 'href="/qr">Código QR</a>' in client.get("/").text


def test_qr_page_shows_an_svg_code_and_the_number_to_match(db, client):
    page = client.get("/qr").text
    qr = QrLogin.get()
    assert "<svg" in page and "<script" not in page.split("</head>")[1]
    assert f">{qr.match_code}</strong>" in page
    assert f"/qr/{qr.key}" in page
    assert qr.expires_at - qr.created_at == timedelta(minutes=2)
    assert "Ya confirmé en mi celular" in page


def test_waiting_poll_is_204_for_htmx_and_a_page_without_js(db, client, htmx):
    open_qr(client)
    assert client.get("/qr/estado", headers=htmx).status_code == 204
    qr = QrLogin.get()
    page = client.get("/qr/estado")
    assert page.status_code == 200 and "Todavía no recibimos la confirmación" in page.text
    assert f">{qr.match_code}</strong>" in page.text and "<svg" in page.text  # still usable


def test_phone_sees_which_browser_asks_and_three_numbers(db, client, phone):
    qr = open_qr(client)
    page = phone.get(f"/qr/{qr.key}").text
    assert "Chrome en Windows" in page and phone.user.email in page
    numbers = re.findall(r'name="numero" value="(\d\d)"', page)
    assert len(numbers) == 3 and qr.match_code in numbers


def test_approved_request_signs_the_pc_in_once(db, client, phone, htmx):
    qr = open_qr(client)
    done = phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": qr.match_code})
    assert "el equipo iniciará sesión" in done.text
    poll = client.get("/qr/estado", headers=htmx)
    assert poll.headers["HX-Redirect"] == "/inicio"
    assert f"Bienvenido(a), {phone.user.nombre.title()}" in client.get("/inicio").text
    assert UserSession.select().where(UserSession.account == phone.user).count() == 2
    assert QrLogin.get_by_id(qr.id).status == QrLogin.USED


def test_approved_request_without_js_redirects_to_home(db, client, phone):
    qr = open_qr(client)
    phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": qr.match_code})
    done = client.get("/qr/estado")
    assert done.status_code == 303 and done.headers["Location"] == "/inicio"


def test_wrong_number_refuses_the_request(db, client, phone, htmx):
    qr = open_qr(client)
    wrong = next(n for n in ("10", "11") if n != qr.match_code)
    page = phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": wrong})
    assert "No iniciamos la sesión" in page.text
    poll = client.get("/qr/estado", headers=htmx)
    assert "rechazada" in poll.text and "hx-trigger" not in poll.text  # polling stops
    assert client.get("/inicio").status_code == 302


def test_refused_on_the_phone(db, client, phone):
    qr = open_qr(client)
    phone.post(f"/qr/{qr.key}", data={"accion": "rechazar"})
    assert QrLogin.get_by_id(qr.id).status == QrLogin.REFUSED


def test_expired_request_fails_closed(db, client, phone, htmx):
    qr = open_qr(client)
    QrLogin.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    assert phone.get(f"/qr/{qr.key}").status_code == 410
    phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": qr.match_code})
    assert QrLogin.get_by_id(qr.id).status == QrLogin.PENDING
    assert "venció" in client.get("/qr/estado", headers=htmx).text


def test_reused_code_cannot_sign_in_twice(db, app, client, phone, htmx):
    qr = open_qr(client)
    phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": qr.match_code})
    with client.session_transaction() as s:
        pending = dict(s["qr"])
    client.get("/qr/estado", headers=htmx)
    copy = app.test_client()  # a browser replaying the PC's request and secret
    with copy.session_transaction() as s:
        s["qr"] = pending
    assert "venció" in copy.get("/qr/estado", headers=htmx).text
    assert copy.get("/inicio").status_code == 302


def test_foreign_browser_cannot_claim_someone_elses_request(db, app, client, phone, htmx):
    qr = open_qr(client)
    phone.post(f"/qr/{qr.key}", data={"accion": "aprobar", "numero": qr.match_code})
    stranger = app.test_client()
    with stranger.session_transaction() as s:
        s["qr"] = {"key": qr.key, "secret": "adivinado"}
    assert "venció" in stranger.get("/qr/estado", headers=htmx).text
    assert client.get("/qr/estado", headers=htmx).headers["HX-Redirect"] == "/inicio"


def test_phone_must_be_signed_in(db, client, app):
    qr = open_qr(client)
    anonymous = app.test_client()
    response = anonymous.get(f"/qr/{qr.key}")
    assert response.status_code == 302 and f"next=/qr/{qr.key}" in response.headers["Location"]


@pytest.mark.parametrize("outcome", ["rechazado", "vencido"])
def test_final_answer_replaces_the_code_number_and_instructions(db, client, phone, htmx, outcome):
    qr = open_qr(client)
    if outcome == "rechazado":
        phone.post(f"/qr/{qr.key}", data={"accion": "rechazar"})
    else:
        QrLogin.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    poll = client.get("/qr/estado", headers=htmx)
    assert poll.status_code == 200
    # The poller swaps the whole block: its target is the block, not just the status line.
    first = client.get("/qr").text
    assert 'hx-target="#qr-bloque"' in first and 'id="qr-bloque"' in first
    assert poll.text.lstrip().startswith('<section id="qr-bloque"')
    assert "Generar un código nuevo" in poll.text and "<svg" not in poll.text
    assert "elija el número" not in poll.text and "Escanee" not in poll.text
    assert f">{qr.match_code}<" not in poll.text and "hx-trigger" not in poll.text
