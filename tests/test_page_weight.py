"""The page budget, measured on what a real gunicorn sends to a browser that accepts br/gzip."""

from __future__ import annotations

import gzip
import http.client
import re
import secrets
from datetime import date, timedelta
from urllib.parse import urlencode

import brotli
import pytest

import models
from core import db as dbmod
from core import genesis as core_genesis
from tests.factories import (
    PASSWORD,
    grant_convenios,
    make_afiliado,
    make_entidad,
    make_eps_afiliado,
    make_eps_user,
    make_ips,
    make_user,
)
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


# --- Portal Génesis (G1–G5): the public pages, the office signed in, and their partials ---

GENESIS_PUBLIC_PAGES = [
    "/genesis",
    "/genesis/afiliados",
    "/genesis/registro",
    "/genesis/olvide",
    "/genesis/politica-de-privacidad",
    "/certificados/verificar",  # the public certificate check (G5), outside /genesis
    "/pqrs",  # filing a PQRSF (G7), with its captcha when it is on
    "/pqrs/consulta",  # Consulta PQRDS (G6)
]
GENESIS_SERVICES = ("Consulta pediatría", "Ecografía abdominal", "Terapia física", "Hemograma")


@pytest.fixture(scope="module")
def genesis(server):
    """A cotizante with a Génesis account, her son with a full history, and a member to register.

    The son's Autorizaciones tab is at its longest (core.genesis.LIST_LIMIT rows)
    and he has a dozen requests, ten of them pending: the heaviest office pages.
    """
    with models.db.connection_context(), models.db.atomic():
        ips = make_ips(nombre="IPS Clínica del Norte de Barranquilla S.A.S.")
        head = make_eps_afiliado(ips=ips)
        child = make_eps_afiliado(
            cabeza=head,
            tipo_documento="TI",
            primer_nombre="SAMUEL",
            fecha_nacimiento=date(2014, 6, 1),
        )
        account = make_eps_user(head)
        to_register = make_eps_afiliado()
        for i in range(core_genesis.LIST_LIMIT):
            service = GENESIS_SERVICES[i % len(GENESIS_SERVICES)]
            models.Autorizacion.create(
                numero=f"AU{20240000 + i}",
                afiliado=child,
                codigo_servicio=f"8{90201 + i * 37}",
                nombre_servicio=f"{service} de control número {i + 1}",
                fecha=date(2025, 1, 1) + timedelta(days=7 * i),
                estado=("APROBADA", "PENDIENTE", "NEGADA", "VENCIDA")[i % 4],
                ips=ips,
            )
        numeros = []
        for i in range(12):
            solicitud = models.SolicitudAutorizacion.create(
                numero=core_genesis.new_numero(),
                afiliado=child,
                account=account,
                municipio="08001",
                observacion=(
                    f"{GENESIS_SERVICES[i % len(GENESIS_SERVICES)]} ordenada por el médico "
                    f"general el {i + 1} de marzo; adjunto la orden médica en fotos."
                ),
                estado="PENDIENTE" if i < 10 else "RECHAZADA",
                motivo_rechazo="" if i < 10 else "La orden médica no se lee: envíela de nuevo.",
                form_key=secrets.token_urlsafe(32),
                due_on=date(2026, 3, 10),
            )
            numeros.append(solicitud.numero)
    return head, child, to_register, numeros[0]


def _genesis_sign_in(wire: Wire, afiliado) -> None:
    """Sign the wire's cookies in as afiliado's Génesis account ("Afiliados" form)."""
    login = wire.request("GET", "/genesis/afiliados")
    body = urlencode(
        {
            "tipo_documento": afiliado.tipo_documento,
            "numero_documento": afiliado.numero_documento,
            "password": PASSWORD,
            "csrf_token": _token(login),
        }
    )
    assert wire.request("POST", "/genesis/afiliados", body).status == 303


def _sizes_within(sizes: dict[str, int], budget: int) -> None:
    """Fail naming every response over budget (bytes on the wire), with all sizes."""
    over = {k: v for k, v in sizes.items() if v > budget}
    assert not over, f"over {budget} B: {over}; all: {sizes}"


@pytest.mark.parametrize("path", GENESIS_PUBLIC_PAGES)
def test_every_public_genesis_page_is_sent_compressed_within_14_kb(server, path):
    port, _ = server
    response = Wire(port).request("GET", path)
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "br"
    assert len(response.body) <= PAGE_BUDGET, f"{path}: {len(response.body)} B"


def test_the_genesis_office_pages_fit_in_14_kb_signed_in(server, genesis):
    port, _ = server
    head, child, _, numero = genesis
    wire = Wire(port)
    _genesis_sign_in(wire, head)
    contacto = wire.request("GET", f"/genesis/solicitud/{child.id}/contacto")
    body = urlencode({"csrf_token": _token(contacto)})
    assert wire.request("POST", f"/genesis/solicitud/{child.id}/contacto", body).status == 303
    sizes = {f"/genesis/solicitud/{child.id}/contacto": len(contacto.body)}
    for path in (
        "/genesis/oficina",
        "/genesis/solicitud",
        "/genesis/consulta",
        "/genesis/carta-de-derechos",
        f"/genesis/solicitud/{child.id}/contacto/editar",
        f"/genesis/solicitud/{child.id}",
        f"/genesis/solicitudes/{numero}",
        f"/genesis/consulta/{child.id}?pestana=autorizaciones",
        f"/genesis/consulta/{child.id}?pestana=solicitudes",
        "/genesis/datos",
        f"/genesis/datos/{child.id}",
        f"/genesis/datos/{child.id}/editar",
        f"/genesis/datos/{child.id}/ips",  # the child has no IPS on file: the message
        f"/genesis/datos/{head.id}/ips",
        f"/genesis/datos/{child.id}/certificados",
    ):
        response = wire.request("GET", path)
        assert response.status == 200, path
        assert response.getheader("Content-Encoding") == "br", path
        sizes[path] = len(response.body)
    assert "Nueva solicitud" in html(wire.request("GET", f"/genesis/solicitud/{child.id}"))
    _sizes_within(sizes, PAGE_BUDGET)


def test_the_genesis_partials_fit_in_3_kb(server, genesis):
    port, _ = server
    head, child, to_register, _ = genesis
    hx = {"HX-Request": "true"}
    sizes = {}

    # Signed out: the failed sign-in and both registration steps, as htmx swaps them.
    public = Wire(port)
    login = public.request("GET", "/genesis/afiliados")
    body = urlencode(
        {"numero_documento": "1000000001", "password": "no-es", "csrf_token": _token(login)}
    )
    failed = public.request("POST", "/genesis/afiliados", body, **hx)
    assert failed.status == 422 and 'id="ingreso"' in html(failed)
    sizes["ingreso fallido"] = len(failed.body)
    registro = public.request("GET", "/genesis/registro")
    body = urlencode(
        {
            "tipo_documento": to_register.tipo_documento,
            "numero_documento": to_register.numero_documento,
            "csrf_token": _token(registro),
        }
    )
    datos = public.request("POST", "/genesis/registro", body, **hx)
    assert datos.status == 200 and "Datos de validación" in html(datos)
    sizes["registro datos"] = len(datos.body)
    ficha = re.search(r'name="ficha"[^>]*value="([^"]+)"', html(datos)).group(1)
    body = urlencode(
        {
            "ficha": ficha,
            "celular": "3009999999",
            "fecha_expedicion": "02/05/2003",
            "acepto": "y",
            "csrf_token": _token(datos),
        }
    )
    wrong = public.request("POST", "/genesis/registro/datos", body, **hx)
    assert wrong.status == 422 and "no coinciden" in html(wrong)
    sizes["registro prueba incorrecta"] = len(wrong.body)

    # Signed in: the municipio list (Antioquia, the longest) and both consulta tabs.
    wire = Wire(port)
    _genesis_sign_in(wire, head)
    for name, path in (
        ("municipios", f"/genesis/solicitud/{child.id}/contacto/editar?departamento=05"),
        ("municipios datos", f"/genesis/datos/{child.id}/editar?departamento=05"),
        ("pestaña autorizaciones", f"/genesis/consulta/{child.id}?pestana=autorizaciones"),
        ("pestaña solicitudes", f"/genesis/consulta/{child.id}?pestana=solicitudes"),
    ):
        response = wire.request("GET", path, **hx)
        assert response.status == 200, path
        text = html(response)
        assert "<html" not in text, f"{path}: a whole page, not the partial"
        assert not name.startswith("municipios") or 'value="05001"' in text, text  # MEDELLÍN
        sizes[name] = len(response.body)
    _sizes_within(sizes, PARTIAL_BUDGET)
