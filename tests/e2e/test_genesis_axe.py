"""Portal Génesis and its staff queue under axe-core, with htmx and with htmx blocked.

One walk per mode, in one browser context: the public pages and the registration
(with the wrong-proof message), the first login's gates (a failed try first), the
office, the contact form (with its 422), the request form (with its 422: no
observación), the sent request, Consulta Autorizaciones with both tabs, Actualización
Datos Básicos (the member's data, "mis datos están actualizados", the form with its 422,
the update, the IPS de atención), Generar Certificados (the PDF, the list with its code)
and the public check of that code (vigente, and an unknown one); then the
same context signs out and a staff member of autorizaciones opens the queue and
the request. With htmx the swaps (login, registration steps, municipio list,
consulta tab) are audited as the page shows them after the swap.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect

from core.clock import utcnow
from tests.e2e.helpers import (
    PDF,
    audit_with_and_without_htmx,
    axe_problems,
    axe_violations,
    markup_audit,
)
from tests.e2e.test_gestion_journey import staff_sign_in

pytestmark = [pytest.mark.e2e, markup_audit]

TEMPORARY = "Temporal#SMS2026x"
NEW_PASSWORD = "Consultorio#Azul58"
PAGES = 42  # audited per mode: the test fails if a step silently stops auditing
SOPORTE = {"name": "orden-medica.pdf", "mimeType": "application/pdf", "buffer": PDF}


def _dd(page: Page, label: str):
    """The value shown next to a label of a summary (a dt and its dd)."""
    return page.locator(f"xpath=//dt[normalize-space()='{label}']/following-sibling::dd[1]")


def _choose_departamento(page: Page, htmx: bool, codigo: str, town: str) -> None:
    """Pick a department; htmx swaps the town list in, without it "Cargar municipios" reloads."""
    page.get_by_label("Departamento", exact=True).select_option(codigo)
    if not htmx:
        page.get_by_role("button", name="Cargar municipios").click()
    expect(
        page.get_by_label("Municipio", exact=True).locator(f"option[value='{town}']")
    ).to_have_count(1)


def _walk(page: Page, portal, source: str) -> dict[str, list[dict]]:
    """Walk every Génesis page and the staff queue once, running axe-core on each."""
    found: dict[str, list[dict]] = {}

    def audit(name: str) -> None:
        assert name not in found, name
        found[name] = axe_violations(page, source)

    head, child, ips = portal.seed_eps_family("31" + portal.new_document()[:8])
    portal.seed_eps_user(
        head,
        TEMPORARY,
        carta=False,
        must_change_password=True,
        temp_password_expires_at=utcnow() + timedelta(hours=24),
    )
    nuevo, _, _ = portal.seed_eps_family("32" + portal.new_document()[:8])

    # --- public: the entry, the sign-in, "¿Olvidó su contraseña?", the registration
    page.goto("/genesis")
    htmx = page.evaluate("() => typeof window.htmx !== 'undefined'")
    expect(page.get_by_role("heading", name="Portal Génesis")).to_be_visible()
    audit("inicio")
    page.get_by_role("link", name="Afiliados").click()
    expect(page.get_by_role("heading", name="Ingreso de Afiliados")).to_be_visible()
    audit("ingreso")
    page.get_by_role("link", name="¿Olvidó su contraseña?").click()
    expect(page.get_by_role("heading", name="¿Olvidó su contraseña?")).to_be_visible()
    audit("olvidé")
    page.get_by_label("Número de documento", exact=True).fill(portal.new_document())
    page.get_by_role("button", name="Enviar código").click()
    expect(page.get_by_role("heading", name="Restablecer contraseña")).to_be_visible()
    audit("olvidé código")

    page.goto("/genesis/registro")
    expect(page.get_by_role("button", name="Validar")).to_be_visible()
    audit("registro")
    page.get_by_label("Número de documento", exact=True).fill(portal.new_document())
    page.get_by_role("button", name="Validar").click()
    expect(page.get_by_text("No encontramos un afiliado activo")).to_be_visible()
    audit("registro no activo")
    page.get_by_label("Número de documento", exact=True).fill(nuevo.numero_documento)
    page.get_by_role("button", name="Validar").click()
    expect(page.get_by_role("heading", name="Datos de validación")).to_be_visible()
    audit("registro datos")
    wrong = "3009999999" if nuevo.celular != "3009999999" else "3008888888"
    page.get_by_label("Número Celular", exact=True).fill(wrong)
    page.get_by_label("Fecha de expedición del documento", exact=True).fill("19/08/2004")
    page.get_by_label("Acepto", exact=True).check()
    page.get_by_role("button", name="FINALIZAR").click()
    expect(
        page.get_by_text("El número celular o la fecha de expedición no coinciden")
    ).to_be_visible()
    audit("registro prueba incorrecta")
    page.get_by_label("Número Celular", exact=True).fill(nuevo.celular)
    if not page.get_by_label("Acepto", exact=True).is_checked():
        page.get_by_label("Acepto", exact=True).check()
    page.get_by_role("button", name="FINALIZAR").click()
    expect(page.get_by_role("heading", name="Registro exitoso")).to_be_visible()
    audit("registro exitoso")
    page.goto("/genesis/politica-de-privacidad")
    expect(page.get_by_role("heading", name="Política de Privacidad de Datos")).to_be_visible()
    audit("política")

    # --- the first login: a failed try, the new password, the carta
    page.goto("/genesis/afiliados")
    page.get_by_label("Número de documento", exact=True).fill(head.numero_documento)
    page.get_by_label("Contraseña", exact=True).fill("no-es-la-clave")
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_text("El tipo o el número de documento o la contraseña no")).to_be_visible()
    audit("ingreso fallido")
    page.get_by_label("Número de documento", exact=True).fill(head.numero_documento)
    page.get_by_label("Contraseña", exact=True).fill(TEMPORARY)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Cambie su contraseña temporal")).to_be_visible()
    audit("cambiar clave")
    page.get_by_label("Nueva contraseña", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmar contraseña", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Cambiar contraseña").click()
    carta = page.get_by_label("He leído y acepto la carta de derechos y deberes", exact=True)
    expect(carta).to_be_visible()
    audit("carta")
    carta.check()
    page.get_by_role("button", name="Aceptar e ingresar").click()
    expect(page.get_by_role("heading", name="Bienvenido(a), Martha Castro")).to_be_visible()
    audit("oficina")
    page.goto("/genesis/carta-de-derechos")
    expect(page.get_by_text("Usted aceptó esta carta el")).to_be_visible()
    audit("carta aceptada")

    # --- G3: the contact data, then the request
    page.goto("/genesis/oficina")
    page.get_by_role("link", name="Solicitud de Autorizaciones").click()
    expect(page.get_by_role("heading", name="Núcleo familiar")).to_be_visible()
    audit("núcleo solicitud")
    page.get_by_role("link", name="Samuel Castro Romero").click()
    expect(page.get_by_role("button", name="Mis datos son correctos")).to_be_visible()
    audit("contacto")
    page.get_by_role("link", name="Actualizar", exact=True).click()
    expect(page.get_by_label("Dirección", exact=True)).to_be_visible()
    audit("contacto formulario")
    _choose_departamento(page, htmx, "05", "05001")
    audit("contacto municipios")
    page.get_by_label("Celular", exact=True).fill("12")
    page.get_by_role("button", name="Actualizar", exact=True).click()
    expect(page.get_by_text("Revise los campos marcados.")).to_be_visible()
    audit("contacto 422")
    page.goto(f"/genesis/solicitud/{child.id}/contacto")
    page.get_by_role("button", name="Mis datos son correctos").click()
    expect(page.get_by_role("heading", name="Nueva solicitud")).to_be_visible()
    audit("solicitud")
    _choose_departamento(page, htmx, "05", "05001")
    audit("solicitud municipios")
    page.get_by_label("Municipio", exact=True).select_option("05001")
    page.get_by_label("Soporte", exact=True).set_input_files(SOPORTE)
    page.get_by_role("button", name="Enviar Solicitud").click()
    expect(page.get_by_text("Escriba la observación")).to_be_visible()
    audit("solicitud 422")
    page.get_by_label("Observación", exact=True).fill("Consulta con pediatría; adjunto la orden.")
    page.get_by_label("Soporte", exact=True).set_input_files(SOPORTE)
    page.get_by_role("button", name="Enviar Solicitud").click()
    expect(page.get_by_text("Su solicitud fue creada.")).to_be_visible()
    audit("solicitud enviada")
    numero = _dd(page, "Número").inner_text().strip()

    # --- G4: Consulta Autorizaciones, both tabs
    page.goto("/genesis/consulta")
    expect(page.get_by_role("heading", name="Núcleo familiar")).to_be_visible()
    audit("núcleo consulta")
    page.get_by_role("link", name="Samuel Castro Romero").click()
    expect(page.get_by_role("heading", name="Historial de autorizaciones")).to_be_visible()
    audit("consulta autorizaciones")
    page.get_by_role("link", name="Solicitudes", exact=True).click()
    expect(page.locator("#consulta-panel").get_by_text(numero)).to_be_visible()
    audit("consulta solicitudes")

    # --- G5: Actualización Datos Básicos, its form (with its 422), the IPS de atención
    page.goto("/genesis/oficina")
    page.get_by_role("link", name="Actualización Datos Básicos").click()
    expect(page.get_by_role("heading", name="Núcleo familiar")).to_be_visible()
    audit("núcleo datos")
    page.get_by_role("link", name="Samuel Castro Romero").click()
    expect(page.get_by_role("button", name="mis datos están actualizados")).to_be_visible()
    audit("datos")
    page.get_by_role("button", name="mis datos están actualizados").click()
    expect(
        page.get_by_text("Gracias por confirmar que sus datos están actualizados.")
    ).to_be_visible()
    audit("datos confirmados")
    page.get_by_role("link", name="Actualizar Información").click()
    expect(page.get_by_label("Teléfono fijo", exact=True)).to_be_visible()
    audit("datos formulario")
    _choose_departamento(page, htmx, "05", "05001")
    audit("datos municipios")
    page.get_by_label("Municipio", exact=True).select_option("05001")
    page.get_by_label("Correo electrónico", exact=True).fill("samuel@")
    page.get_by_role("button", name="Actualizar", exact=True).click()
    expect(page.get_by_text("No se pudieron actualizar sus datos")).to_be_visible()
    audit("datos 422")
    page.get_by_label("Celular", exact=True).fill("3001234567")
    page.get_by_label("Correo electrónico", exact=True).fill("samuel.castro@example.com")
    page.get_by_role("button", name="Actualizar", exact=True).click()
    expect(page.get_by_text("Sus datos han sido actualizados de forma correcta.")).to_be_visible()
    audit("datos actualizados")
    page.get_by_role("link", name="IPS de atención").click()
    expect(page.get_by_text(ips)).to_be_visible()
    audit("ips de atención")

    # --- "Generar Certificados": the PDF downloads; its code checks on the public page
    page.goto(f"/genesis/datos/{child.id}")
    page.get_by_role("link", name="Generar Certificados").click()
    generar = page.get_by_role("button", name="Generar certificado de afiliación")
    expect(generar).to_be_visible()
    audit("certificados")
    with page.expect_download() as download:
        generar.click()
    assert download.value.suggested_filename.startswith("certificado-afiliacion-")
    page.reload()
    codigo = page.locator("#expedidos + ul strong").first.inner_text().strip()
    audit("certificados expedidos")
    page.goto("/certificados/verificar")
    audit("verificar certificado")
    page.get_by_label("Código de verificación", exact=True).fill(codigo.lower())
    page.get_by_role("button", name="Verificar", exact=True).click()
    expect(page.get_by_role("heading", name=f"Certificado {codigo}: vigente")).to_be_visible()
    audit("verificar vigente")
    page.get_by_label("Código de verificación", exact=True).fill("ZZZZZ-ZZZZZ")
    page.get_by_role("button", name="Verificar", exact=True).click()
    expect(page.get_by_text("No encontramos un certificado con ese código.")).to_be_visible()
    audit("verificar desconocido")

    # --- staff of autorizaciones, in the same browser after signing out
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_text("Cerró su sesión.")).to_be_visible()
    secret = pyotp.random_base32()
    email, password = portal.seed_staff(roles=("autorizaciones",), totp_secret=secret)
    staff_sign_in(page, email, password, secret)
    page.goto("/gestion/autorizaciones")
    row = page.get_by_role("row").filter(has_text=numero)
    expect(row).to_be_visible()
    audit("gestión autorizaciones")
    row.get_by_role("link", name="Revisar").click()
    expect(page.get_by_role("heading", name=f"Solicitud {numero}")).to_be_visible()
    audit("gestión autorización")
    return found


@pytest.fixture(scope="module")
def axe_results(browser, portal, axe_source, visit_class):
    """Audit once per mode: with htmx, and with htmx blocked (the no-JS pages)."""
    return audit_with_and_without_htmx(
        browser,
        portal,
        visit_class,
        lambda open_visit: _walk(open_visit().page, portal, axe_source),
    )


@pytest.mark.parametrize("mode", ["htmx", "sin-htmx"])
def test_genesis_pages_have_no_axe_violations(axe_results, mode):
    found = axe_results[mode]
    assert len(found) == PAGES, sorted(found)
    problems = axe_problems(found)
    assert not problems, "axe-core violations:\n" + "\n".join(problems)
