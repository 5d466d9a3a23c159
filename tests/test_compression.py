"""Compression on the wire: pages on the fly, static files precompressed, BREACH-safe tokens."""

from __future__ import annotations

import gzip
import re
import secrets

import brotli
import pytest
from flask import Response

from blueprints.compression import add_vary
from blueprints.csrf_mask import mask, unmask
from tests.apps import make_app

ACCEPT = {"Accept-Encoding": "br, gzip"}


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', page)


# --- pages and partials, compressed on the fly --------------------------------


def test_add_vary_names_each_header_once_whatever_its_case():
    response = Response("")
    add_vary(response, "HX-Request")
    add_vary(response, "Accept-Encoding")
    add_vary(response, "hx-request")
    add_vary(response, "accept-encoding")
    assert response.headers.getlist("Vary") == ["HX-Request, Accept-Encoding"]
    response.headers["Vary"] = "Cookie,Accept-Encoding"
    add_vary(response, "Accept-Encoding")
    assert response.headers["Vary"] == "Cookie,Accept-Encoding"
    add_vary(response, "HX-Request")
    assert response.headers["Vary"] == "Cookie,Accept-Encoding, HX-Request"


def test_pages_are_sent_with_brotli_or_gzip_as_the_client_accepts(client):
    plain = client.get("/registro")
    assert "Content-Encoding" not in plain.headers
    br = client.get("/registro", headers=ACCEPT)
    assert br.headers["Content-Encoding"] == "br"
    assert brotli.decompress(br.data).startswith(b"<!doctype html>")
    assert len(br.data) < len(plain.data) / 2
    assert int(br.headers["Content-Length"]) == len(br.data)
    gz = client.get("/registro", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.data).startswith(b"<!doctype html>")
    refused = client.get("/registro", headers={"Accept-Encoding": "br;q=0, gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    for response in (plain, br, gz, refused):
        assert "Accept-Encoding" in response.headers["Vary"]


def test_error_pages_are_compressed_too(client):
    response = client.get("/no-existe", headers=ACCEPT)
    assert response.status_code == 404 and response.headers["Content-Encoding"] == "br"


def test_tiny_answers_are_left_alone(client):
    response = client.get("/salud", headers=ACCEPT)  # about 20 bytes of JSON
    assert "Content-Encoding" not in response.headers
    assert response.json == {"estado": "ok"}


def test_a_partial_is_compressed_for_htmx(db, client, htmx):
    from tests.factories import make_afiliado

    afiliado = make_afiliado()
    response = client.post(
        "/registro/consulta",
        data={"tipo_documento": "CC", "numero_documento": afiliado.numero_documento},
        headers={**htmx, **ACCEPT},
    )
    assert response.status_code == 200
    body = brotli.decompress(response.data) if "Content-Encoding" in response.headers else b""
    assert b"datos-afiliado" in body and b"<html" not in body


# --- static files: hashed names, precompressed, immutable, cookie-free ---------


def test_assets_have_content_hashed_names_served_immutable_and_precompressed(client):
    page = client.get("/registro").text
    urls = asset_urls(page)
    assert any(re.fullmatch(r"/static/app\.[0-9a-f]{12}\.css", u) for u in urls)
    assert any(re.fullmatch(r"/static/vendor/htmx-4\.0\.1\.min\.[0-9a-f]{12}\.js", u) for u in urls)
    for url in urls:
        response = client.get(url, headers=ACCEPT)
        assert response.status_code == 200, url
        h = response.headers
        assert h["Cache-Control"] == "max-age=315360000, public, immutable", url
        assert "Cookie" not in h.get("Vary", ""), url
        assert "Set-Cookie" not in h, url
        assert h["X-Content-Type-Options"] == "nosniff", url
        assert h["Content-Encoding"] == "br", url
    htmx = next(u for u in urls if "htmx" in u)
    gz = client.get(htmx, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and len(gz.data) < 15_000
    assert gzip.decompress(gz.data) == client.get(htmx).data


def test_static_files_carry_no_cookie_even_for_a_signed_in_session(db, client):
    from tests.factories import PASSWORD, make_user

    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    page = client.get("/inicio").text
    css = next(u for u in asset_urls(page) if u.endswith(".css"))
    response = client.get(css)
    assert "Vary" not in response.headers or "Cookie" not in response.headers["Vary"]
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.css",  # the unversioned name: served, but revalidated
        "/static/app.000000000000.css",  # a hash that is not the file's
        "/static/no-existe.js",
        "/static/vendor/",
    ],
)
def test_only_real_hashed_files_are_cached_as_immutable(client, path):
    response = client.get(path)
    cache = response.headers["Cache-Control"]
    assert "immutable" not in cache and "max-age=3" not in cache
    if response.status_code == 200:
        assert cache == "no-cache"
    else:
        assert response.status_code == 404 and cache == "no-store"


def test_the_favicon_and_the_header_logo_are_one_url(client):
    page = client.get("/").text
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page).group(1)
    logos = re.findall(r'<img src="(/static/img/[^"]+)"', page)
    assert logos == [icon]


# --- BREACH: the CSRF token is masked afresh every time -----------------------


@pytest.fixture
def csrf_app(tmp_path):
    yield from make_app(tmp_path, WTF_CSRF_ENABLED=True)


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_two_renders_show_different_tokens_and_both_are_accepted(csrf_app):
    client = csrf_app.test_client()
    first, second = token(client.get("/").text), token(client.get("/").text)
    assert first != second
    assert unmask(first) == unmask(second)
    for sent in (first, second):
        response = client.post(
            "/", data={"email": "x@example.com", "password": "Mal", "csrf_token": sent}
        )
        assert response.status_code != 400, response.text
        assert "El formulario venció" not in response.text


def test_a_tampered_or_foreign_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    sent = token(client.get("/").text)
    flipped = sent[:-2] + ("A" if sent[-2] != "A" else "B") + sent[-1]
    other = csrf_app.test_client()
    foreign = token(other.get("/").text)  # valid, but for another session
    for bad in (flipped, foreign, "", "no-es-un-token", sent + "x"):
        response = client.post(
            "/", data={"email": "x@example.com", "password": "Mal", "csrf_token": bad}
        )
        assert response.status_code == 400 and "El formulario venció" in response.text, bad


def test_htmx_requests_send_the_masked_token_and_pass(db, csrf_app):
    client = csrf_app.test_client()
    sent = token(client.get("/registro").text)
    response = client.post(
        "/registro/consulta",
        data={"tipo_documento": "CC", "numero_documento": "123", "csrf_token": sent},
        headers={"HX-Request": "true"},
    )
    assert response.status_code != 400 and "El formulario venció" not in response.text


def test_mask_round_trips_and_never_repeats():
    secret = "0123456789abcdef0123456789abcdef01234567"
    masked = {mask(secret) for _ in range(50)}
    assert len(masked) == 50
    assert {unmask(m) for m in masked} == {secret}
    assert all(secret not in m for m in masked)


# --- the audio captcha ----------------------------------------------------------


def test_the_audio_captcha_is_a_small_mp3(db, app, client):
    app.config["CAPTCHA"] = "image"
    page = client.get("/registro").text
    url = re.search(r'href="(/captcha/[^"]+\.mp3)" type="audio/mpeg"', page).group(1)
    response = client.get(url, headers=ACCEPT)
    assert response.status_code == 200 and response.mimetype == "audio/mpeg"
    assert "Content-Encoding" not in response.headers  # MP3 does not shrink further
    assert len(response.data) < 30_000


def test_a_token_with_no_secret_in_the_session_is_refused(csrf_app):
    """A token copied into a browser whose session never had a secret (a replayed form)."""
    sent = token(csrf_app.test_client().get("/").text)
    fresh = csrf_app.test_client()
    response = fresh.post(
        "/", data={"email": "x@example.com", "password": "Mal", "csrf_token": sent}
    )
    assert response.status_code == 400 and "El formulario venció" in response.text


def test_the_session_cookie_follows_a_rotated_secret_key(csrf_app):
    """A cookie signed with the old key opens under SECRET_KEY_FALLBACKS, not without it."""
    client = csrf_app.test_client()
    sent = token(client.get("/").text)
    old = csrf_app.secret_key
    csrf_app.secret_key = csrf_app.config["SECRET_KEY"] = "k" * 16 + secrets.token_hex(16)
    data = {"email": "x@example.com", "password": "Mal", "csrf_token": sent}
    assert client.post("/", data=data).status_code == 400  # the old cookie no longer opens
    csrf_app.config["SECRET_KEY_FALLBACKS"] = [old]
    response = client.post("/", data=data)
    assert response.status_code != 400 and "El formulario venció" not in response.text
