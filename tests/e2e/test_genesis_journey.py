"""Portal Génesis (G1–G4) in a real browser: from the EPS registration to an approved authorization.

A cotizante registers with her document, mobile and expedition date, signs in
with the temporary password the SMS brought, changes it, accepts the carta de
derechos y deberes, and asks for an authorization for her son with two phone
photos of the medical order; a staff member of autorizaciones approves it, and
she finds it in Consulta Autorizaciones. Once with JavaScript on, once off,
walked by the labels a person reads.
"""

from __future__ import annotations

import io
import re

import pyotp
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.helpers import shot
from tests.e2e.test_gestion_journey import staff_sign_in

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "Consultorio#Azul58"
TEMPORARY = re.compile(r"Contraseña temporal: (\S+)")


def photo(path, seed: int, size=(1200, 1600)) -> str:
    """Write a phone-photo-like JPEG (a gradient with a stamp) and return its path."""
    image = Image.new("RGB", size, (240, 236, 228))
    for y in range(0, size[1], 40):
        for x in range(0, size[0], 40):
            image.putpixel((x, y), ((x * seed) % 255, (y + seed) % 255, 90))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    path.write_bytes(out.getvalue())
    return str(path)


def register(page: Page, portal, head, js: bool, shots) -> str:
    """Register head through "hacer Clic aquí" and return the temporary password of the SMS."""
    page.goto("/genesis")
    page.get_by_role("link", name="Afiliados").click()
    expect(page.get_by_role("heading", name="Ingreso de Afiliados")).to_be_visible()
    page.get_by_role("link", name="hacer Clic aquí").click()
    expect(page.get_by_role("heading", name="Registro al Sistema Génesis")).to_be_visible()
    page.get_by_label("Tipo de documento", exact=True).select_option("CC")
    page.get_by_label("Número de documento", exact=True).fill(head.numero_documento)
    page.get_by_role("button", name="Validar").click()
    page.get_by_label("Número Celular", exact=True).fill(head.celular)
    page.get_by_label("Fecha de expedición del documento", exact=True).fill("19/08/2004")
    page.get_by_text("Política de Privacidad de Datos").first.click()  # the <details> opens
    page.get_by_label("Acepto", exact=True).check()
    shot(page, shots, "g1-registro", js)
    page.get_by_role("button", name="FINALIZAR").click()
    expect(page.get_by_role("heading", name="Registro exitoso")).to_be_visible()
    shot(page, shots, "g1-exito", js)
    portal.run_worker()
    messages = portal.sms_to(head.celular)
    assert messages, "no SMS reached the mobile on file"
    found = TEMPORARY.search(messages[-1]["body"])
    assert found, messages[-1]["body"]
    return found.group(1).rstrip(".,;)")


def first_login(page: Page, head, temporary: str, js: bool, shots) -> None:
    """Sign in with the SMS password: the new password first, then the carta, then the office."""
    page.get_by_role("link", name="Ingresar").first.click()
    page.get_by_label("Tipo de documento", exact=True).select_option("CC")
    page.get_by_label("Número de documento", exact=True).fill(head.numero_documento)
    page.get_by_label("Contraseña", exact=True).fill(temporary)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Cambie su contraseña temporal")).to_be_visible()
    page.goto("/genesis/oficina")  # nothing opens before the new password
    expect(page.get_by_role("heading", name="Cambie su contraseña temporal")).to_be_visible()
    page.get_by_label("Nueva contraseña", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmar contraseña", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(
        page.get_by_role("heading", name="Carta de derechos y deberes de los afiliados")
    ).to_be_visible()
    shot(page, shots, "g2-carta", js)
    page.get_by_label("He leído y acepto la carta de derechos y deberes", exact=True).check()
    page.get_by_role("button", name="Aceptar e ingresar").click()


def request_for_child(page: Page, child, photos: list[str], js: bool, shots) -> str:
    """From the office, ask an authorization for the child with two photos; return its number."""
    page.get_by_role("link", name="Solicitud de Autorizaciones").click()
    expect(page.get_by_role("heading", name="Núcleo familiar")).to_be_visible()
    page.get_by_role("link", name="Samuel Castro Romero").click()
    # The member's contact data comes first: confirmed as they are.
    page.get_by_role("button", name="Mis datos son correctos").click()
    expect(page.get_by_role("heading", name="Nueva solicitud")).to_be_visible()
    page.get_by_label("Departamento", exact=True).select_option("05")  # ANTIOQUIA
    if not js:  # without htmx the list of towns comes with a reload that keeps the form
        page.get_by_role("button", name="Cargar municipios").click()
    municipio = page.get_by_label("Municipio", exact=True)
    expect(municipio.locator("option[value='05001']")).to_have_count(1)
    municipio.select_option("05001")  # MEDELLÍN
    page.get_by_label("Observación", exact=True).fill(
        "Consulta con pediatría ordenada por el médico general; adjunto la orden en dos fotos."
    )
    page.get_by_label("Soporte", exact=True).set_input_files(photos)
    shot(page, shots, "g3-solicitud", js)
    page.get_by_role("button", name="Enviar Solicitud").click()
    expect(page.get_by_text("Su solicitud fue creada.")).to_be_visible()
    expect(page.get_by_text("entre 2 y 5 días hábiles")).to_be_visible()
    shot(page, shots, "g3-enviada", js)
    numero = page.locator("xpath=//dt[normalize-space()='Número']/following-sibling::dd[1]")
    return numero.inner_text().strip()


def approve(staff: Page, numero: str, ips_nombre: str, js: bool, shots) -> None:
    """As staff of autorizaciones, open the request from the queue and approve it."""
    staff.get_by_role("link", name="Solicitudes de autorización").first.click()
    staff.get_by_role("row").filter(has_text=numero).get_by_role("link", name="Revisar").click()
    expect(staff.get_by_role("heading", name=f"Solicitud {numero}")).to_be_visible()
    with staff.expect_download() as download:
        staff.get_by_role("link", name=re.compile(r"\.pdf$")).click()
    assert download.value.suggested_filename.endswith(".pdf")
    staff.get_by_label("Código del servicio", exact=True).fill("890263")
    staff.get_by_label("Nombre del servicio", exact=True).fill(
        "Consulta de primera vez por especialista en pediatría"
    )
    ips = staff.get_by_label("IPS", exact=True)
    ips.select_option(ips.locator("option", has_text=ips_nombre).get_attribute("value"))
    shot(staff, shots, "g3-aprobar", js)
    staff.get_by_role("button", name="Aprobar").click()
    expect(staff.get_by_role("heading", name="Solicitudes de autorización")).to_be_visible()


def test_a_cotizante_registers_asks_for_her_son_and_finds_the_approved_authorization(
    page, js, portal, visit, shots, tmp_path
):
    celular = "31" + portal.new_document()[:8]
    head, child, ips_nombre = portal.seed_eps_family(celular)
    temporary = register(page, portal, head, js, shots)
    first_login(page, head, temporary, js, shots)
    expect(page.get_by_role("heading", name="Bienvenido(a), Martha Castro")).to_be_visible()
    shot(page, shots, "g2-oficina", js)

    photos = [photo(tmp_path / "orden-1.jpg", 3), photo(tmp_path / "orden-2.jpg", 7)]
    numero = request_for_child(page, child, photos, js, shots)

    secret = pyotp.random_base32()
    staff_email, staff_password = portal.seed_staff(roles=("autorizaciones",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, staff_email, staff_password, secret)
    approve(staff, numero, ips_nombre, js, shots)

    # The child has no mobile of his own: the mother who asked hears of the decision.
    portal.run_worker()
    assert any(numero in sms["body"] for sms in portal.sms_to(celular))

    page.goto("/genesis/oficina")
    page.get_by_role("link", name="Consulta Autorizaciones").click()
    page.get_by_role("link", name="Samuel Castro Romero").click()
    page.get_by_role("link", name="Autorizaciones", exact=True).click()
    panel = page.locator("#consulta-panel")
    expect(panel.get_by_text("890263 · Consulta de primera vez por especialista")).to_be_visible()
    page.get_by_label("Buscar por código o nombre del servicio").fill("pediatria")
    page.get_by_role("button", name="Buscar").click()
    expect(panel.get_by_text("890263 · Consulta de primera vez por especialista")).to_be_visible()
    page.get_by_role("link", name="Solicitudes", exact=True).click()
    expect(panel.get_by_text("Aprobada")).to_be_visible()
    shot(page, shots, "g4-consulta", js)
    [autorizacion] = portal.autorizaciones_of(child.id)
    assert autorizacion.codigo_servicio == "890263" and autorizacion.estado == "APROBADA"
