"""The page budget, measured on what a real gunicorn sends to a browser that accepts br/gzip."""

from __future__ import annotations

import gzip
import http.client
import re
import secrets
from urllib.parse import urlencode

import brotli
import pytest

import models
from core import db as dbmod
from tests.factories import PASSWORD, grant_convenios, make_afiliado, make_entidad, make_user
from tests.servers import flask, free_port, gunicorn, stop

PAGE_BUDGET = 14 * 1024  # the first round trip of a slow mobile link (README)
FIRST_VISIT_BUDGET = 40 * 1024  # /registro with every file it makes the browser fetch
PARTIAL_BUDGET = 3 * 1024
PUBLIC_PAGES = ["/", "/registro", "/restablecer", "/descubre", "/qr"]
ACCEPT = {"Accept-Encoding": "br, gzip"}


class Wire:
    """HTTP over a socket, without decoding: len(body) is what travelled."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, **headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        sent = {**ACCEPT, **headers}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        response.body = response.read()
        conn.close()
        for line in response.msg.get_all("Set-Cookie") or ():
            name, _, value = line.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        return response


def html(response) -> str:
    """Decode a compressed or plain HTML body, to find the links in it."""
    data = response.body
    encoding = response.getheader("Content-Encoding")
    if encoding == "br":
        data = brotli.decompress(data)
    elif encoding == "gzip":
        data = gzip.decompress(data)
    return data.decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weight")
    port = free_port()
    env = {
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{tmp / 'weight.sqlite3'}",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "CAPTCHA": "image",
        "DEV_MAILBOX": "true",
        "SMS_BACKEND": "file",
        "SMS_FILE": str(tmp / "sms.jsonl"),
        "UPLOAD_DIR": str(tmp / "uploads"),
        "REDIS_URL": "",
    }
    flask(env, "init-db")
    database = dbmod.open_database(env["DATABASE_URL"])
    models.db.initialize(database)
    with database.connection_context():
        afiliado = make_afiliado()
        desk = make_user(email="mostrador@example.com", password=PASSWORD)
        _, sedes = make_entidad(sedes=2)
        grant_convenios(desk, sedes)
    process = gunicorn(env, port)
    yield port, afiliado
    stop(process)
    database.close()


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_public_page_is_sent_compressed_within_14_kb(server, path):
    port, _ = server
    response = Wire(port).request("GET", path)
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "br"
    assert "Accept-Encoding" in response.getheader("Vary", "")
    assert len(response.body) <= PAGE_BUDGET, f"{path}: {len(response.body)} B"


def test_a_cold_first_visit_to_registro_fits_in_40_kb(server):
    port, _ = server
    wire = Wire(port)
    page = wire.request("GET", "/registro")
    urls = dict.fromkeys(re.findall(r'(?:href|src)="(/(?:static|captcha)/[^"]+)"', html(page)))
    assert any(u.startswith("/captcha/") and u.endswith(".png") for u in urls)
    total = len(page.body)
    sizes = {"/registro": len(page.body)}
    for url in urls:
        if url.endswith(".mp3"):
            continue  # the audio is a link: fetched only when the person asks for it
        response = wire.request("GET", url)
        assert response.status == 200, url
        sizes[url] = len(response.body)
        total += len(response.body)
    assert total <= FIRST_VISIT_BUDGET, sizes


def test_the_look_up_partial_fits_in_3_kb(server):
    port, afiliado = server
    wire = Wire(port)
    page = wire.request("GET", "/registro")
    token = re.search(r'name="csrf_token" value="([^"]+)"', html(page)).group(1)
    body = urlencode(
        {
            "tipo_documento": afiliado.tipo_documento,
            "numero_documento": afiliado.numero_documento,
            "csrf_token": token,
        }
    )
    response = wire.request("POST", "/registro/consulta", body, **{"HX-Request": "true"})
    assert response.status == 200
    assert len(response.body) <= PARTIAL_BUDGET, len(response.body)


def _token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html(response)).group(1)


def test_the_convenios_desk_pages_and_look_up_partial_fit_their_budgets(server):
    port, afiliado = server
    wire = Wire(port)
    login = wire.request("GET", "/")
    body = urlencode(
        {"email": "mostrador@example.com", "password": PASSWORD, "csrf_token": _token(login)}
    )
    assert wire.request("POST", "/", body).status == 303
    picker = wire.request("GET", "/convenios/sede")
    assert picker.status == 200 and len(picker.body) <= PAGE_BUDGET
    sede = re.search(r'name="sede"[^>]*value="(\d+)"', html(picker)).group(1)
    body = urlencode({"sede": sede, "csrf_token": _token(picker)})
    assert wire.request("POST", "/convenios/sede", body).status == 303
    sizes = {}
    for path in ("/convenios/", "/convenios/reporte"):
        response = wire.request("GET", path)
        assert response.status == 200 and response.getheader("Content-Encoding") == "br", path
        sizes[path] = len(response.body)
    body = urlencode({"documento": afiliado.numero_documento, "csrf_token": _token(response)})
    result = wire.request("POST", "/convenios/consultar", body, **{"HX-Request": "true"})
    assert result.status == 200 and "INFORMACI" in html(result)
    sizes["look-up partial"] = len(result.body)
    assert sizes["/convenios/"] <= PAGE_BUDGET, sizes
    assert sizes["/convenios/reporte"] <= PAGE_BUDGET, sizes
    assert sizes["look-up partial"] <= PARTIAL_BUDGET, sizes
