"""Convenios (H6) in a real browser: a partner's front desk, from the request to its report.

A Hanna user requests CONVENIOS, staff approve it for two sedes, and the desk
picks a sede, looks a worker up, reports the use and downloads the report;
a worker without the benefit shows the alert and no button. Each journey runs
with JavaScript on (htmx swaps the result in) and off (plain forms, full pages),
walked by the labels a person reads.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path

import openpyxl
import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    PDF,
    approve_request,
    audit_with_and_without_htmx,
    axe_problems,
    axe_violations,
    markup_audit,
    navigations,
    request_convenios,
    shot,
    sign_in,
)
from tests.e2e.test_gestion_journey import staff_sign_in

pytestmark = pytest.mark.e2e

PASSWORD = "Recepcion#Gimnasio42"
SEDES = ("Sede Norte", "Sede Sur")
NO_SERVICE = "No se prestará el servicio bajo tarifas preferenciales."
RECEIPT = re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$")
BOM = b"\xef\xbb\xbf"

_entities = itertools.count(1)


# --- people and places ------------------------------------------------------------


def entity_name(portal) -> str:
    """A name no other test's entity has: staff find the request by it in the queue."""
    return f"Gimnasio Brío {next(_entities)}-{portal.new_document()} S.A.S."


def worker(portal, **over):
    """An affiliate with known names: ACTIVO, categoría B, an employer that is up to date."""
    data = dict(
        primer_nombre="CARLOS",
        segundo_nombre="ANDRÉS",
        primer_apellido="MEJÍA",
        segundo_apellido="SALCEDO",
        estado="ACTIVO",
        categoria="B",
        empresa_nit="9005142371",
        empresa_nombre="Distribuidora Costa Azul S.A.S.",
        empresa_estado="ACTIVA",
    )
    data.update(over)
    return portal.seed_afiliado(**data)


def hanna_user(portal) -> str:
    """A signed-up Hanna user (the partner's receptionist); return the e-mail."""
    email = f"recepcion{portal.new_document()}@correo-hanna.co"
    portal.seed_user(
        password=PASSWORD, email=email, login=email, numero_documento=portal.new_document()
    )
    return email


@pytest.fixture(scope="module")
def desk_entity(portal):
    """One entity with two sedes for the tests that grant CONVENIOS through the back door."""
    return portal.seed_entidad(entity_name(portal), SEDES)


def desk_user(portal, sedes) -> str:
    """A Hanna user already granted CONVENIOS for these sedes; return the e-mail.

    Each test gets its own, so the per-operator look-up quota is never shared.
    """
    email = hanna_user(portal)
    portal.grant_convenios(portal.user(email), sedes)
    return email


# --- what the desk reads ------------------------------------------------------------


def dato(page: Page, label: str):
    """The value shown next to a label of the result or the receipt (a dt and its dd)."""
    return page.locator(f"xpath=//dt[normalize-space()='{label}']/following-sibling::dd[1]")


def expect_sede(page: Page, entidad: str, sede: str) -> None:
    expect(page.get_by_text("Sede en convenio:")).to_contain_text(f"{entidad} · {sede}")


def pick_sede(page: Page, entidad: str, sede: str) -> None:
    picker = page.get_by_role("group", name="Elija el nombre de su sede en convenio")
    expect(picker).to_be_visible()
    for name in SEDES:  # both granted sedes are offered, and only those
        expect(picker.get_by_label(f"{entidad} · {name}", exact=True)).to_be_visible()
    expect(picker.get_by_role("radio")).to_have_count(len(SEDES))
    picker.get_by_label(f"{entidad} · {sede}", exact=True).check()
    page.get_by_role("button", name="Continuar").click()


def look_up(page: Page, cedula: str, js: bool) -> None:
    """Type the cédula; Enter with JavaScript (as the manual says), the button without."""
    expect(page.get_by_role("heading", name="EMPRESAS EN CONVENIOS")).to_be_visible()
    field = page.get_by_label("Cédula", exact=True)
    field.fill(cedula)
    if js:
        field.press("Enter")
    else:
        page.get_by_role("button", name="Consultar Trabajador").click()
    expect(page.get_by_role("heading", name="INFORMACIÓN TRABAJADOR")).to_be_visible()
    expect(dato(page, "Cédula")).to_have_text(cedula)


def expect_active_worker(page: Page, afiliado) -> None:
    expect(dato(page, "Nombre")).to_have_text(afiliado.nombre_completo)
    expect(dato(page, "Primer Apellido")).to_have_text(afiliado.primer_apellido)
    expect(dato(page, "Segundo Apellido")).to_have_text(afiliado.segundo_apellido)
    expect(dato(page, "Primer Nombre")).to_have_text(afiliado.primer_nombre)
    expect(dato(page, "Segundo Nombre")).to_have_text(afiliado.segundo_nombre)
    expect(dato(page, "Estado Afiliado")).to_have_text("ACTIVO")
    expect(dato(page, "Tarifa")).to_have_text("B")
    expect(page.get_by_role("heading", name="INFORMACIÓN EMPRESA")).to_be_visible()
    expect(dato(page, "Nombre Empresa")).to_have_text(afiliado.empresa_nombre)
    expect(dato(page, "Estado Empresa")).to_have_text("ACTIVA")
    expect(page.get_by_text(NO_SERVICE)).to_have_count(0)


def report_use(page: Page) -> str:
    """Double-click "Reportar Uso" (as a hurried desk does); return the receipt's number."""
    page.get_by_role("button", name="Reportar Uso").dblclick()
    expect(page.get_by_role("heading", name="Uso de convenio registrado")).to_be_visible()
    numero = dato(page, "Recibo N.º").inner_text().strip()
    assert RECEIPT.match(numero), f"not a receipt number: {numero!r}"
    return numero


def use_form(page: Page) -> dict[str, str]:
    """The "Reportar Uso" form's fields as the browser would send them (CSRF token, key)."""
    form = page.locator("form").filter(has=page.get_by_role("button", name="Reportar Uso"))
    hidden = form.locator("input[type=hidden]")
    return {
        hidden.nth(i).get_attribute("name"): hidden.nth(i).get_attribute("value")
        for i in range(hidden.count())
    }


def resend(page: Page, portal, fields: dict[str, str], js: bool):
    """Send the same "Reportar Uso" again from this browser, as a retry or a resubmit does.

    The browser itself sends one request for a double click (htmx drops the
    second while the first is out; Chromium replaces a navigation in flight),
    so only a replay shows what the server does with the second copy.
    """
    return page.context.request.post(
        f"{portal.base_url}/convenios/reportar",
        form=fields,
        headers={"HX-Request": "true"} if js else {},
    )


def download(page: Page, link: str):
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    return info.value


def xlsx_rows(path) -> list[dict]:
    """The report workbook's rows as {header: value}, from the row of headers down."""
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    start = next(i for i, r in enumerate(rows) if "Cédula" in r)
    header = rows[start]
    return [dict(zip(header, r, strict=False)) for r in rows[start + 1 :]]


def csv_rows(raw: bytes) -> list[dict]:
    text = raw.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


# --- 1. the whole journey -----------------------------------------------------------


def test_a_partner_requests_convenios_reports_a_use_and_downloads_the_report(
    visit, js, portal, shots, tmp_path
):
    entidad, _ = portal.seed_entidad(entity_name(portal), SEDES)
    afiliado = worker(portal)
    cedula = afiliado.numero_documento
    email = hanna_user(portal)
    soporte = tmp_path / "camara-de-comercio.pdf"
    soporte.write_bytes(PDF)

    # The partner asks for CONVENIOS; staff (role convenios) grant both sedes.
    page = visit(js=js).page
    sign_in(page, email, PASSWORD)
    request_convenios(
        page,
        nit=entidad.nit,
        nombre=entidad.nombre,
        sedes="\n".join(SEDES),
        soporte=soporte,
    )
    secret = pyotp.random_base32()
    staff_email, staff_password = portal.seed_staff(roles=("convenios",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, staff_email, staff_password, secret)
    approve_request(staff, entidad=entidad.nombre, sedes=SEDES)

    # "Acceder" opens the sede picker: two sedes granted, so the desk chooses one.
    page.goto("/inicio")
    page.locator("#mosaicos").get_by_role("link", name="Acceder").click()
    pick_sede(page, entidad.nombre, "Sede Sur")
    expect(page.get_by_role("heading", name="Convenios Cajacopi")).to_be_visible()
    expect(page.get_by_role("heading", name="Uso de Convenio!")).to_be_visible()
    expect(page.get_by_role("link", name="Generar Reporte de Convenio")).to_be_visible()
    expect_sede(page, entidad.nombre, "Sede Sur")

    loads = navigations(page)
    look_up(page, cedula, js)
    expect_active_worker(page, afiliado)
    expect_sede(page, entidad.nombre, "Sede Sur")
    if js:
        assert loads == [], f"the look-up loaded a page instead of an htmx swap: {loads}"
    else:
        assert loads, "without JavaScript the look-up should be a plain POST and a new page"
    shot(page, shots, "h6-resultado", js, caret="initial")

    fields = use_form(page)
    numero = report_use(page)
    # A double click under load may send two POSTs: the page shows the second answer, the
    # database (checked below) still holds one use.
    expect(
        page.get_by_text(
            re.compile(r"Se registró el uso del convenio\.|Este uso ya estaba registrado")
        )
    ).to_be_visible()
    expect(dato(page, "Cédula")).to_have_text(cedula)
    expect(dato(page, "Sede")).to_have_text("Sede Sur")
    shot(page, shots, "h6-recibo", js)
    again = resend(page, portal, fields, js)
    assert again.ok, again.status
    assert "Este uso ya estaba registrado: no se registró otra vez." in again.text()
    assert numero in again.text(), "the retry must show the first use's receipt"
    usos = portal.usos_of(cedula)
    assert [u.numero for u in usos] == [numero], "a double click and a retry record ONE use"

    # To the report: htmx left the page's report link around the receipt; without
    # JavaScript the desk goes back through Hanna, and the sede is still the one chosen.
    if not js:
        page.get_by_role("link", name="Volver al inicio de Hanna").click()
        page.locator("#mosaicos").get_by_role("link", name="Acceder").click()
        expect(page.get_by_role("heading", name="Uso de Convenio!")).to_be_visible()
        expect_sede(page, entidad.nombre, "Sede Sur")
    page.get_by_role("link", name="Generar Reporte de Convenio").click()
    expect(page.get_by_role("heading", name="Generar Reporte de Convenio")).to_be_visible()
    expect(page.get_by_label("Sede", exact=True)).to_have_value(str(usos[0].sede_id))
    expect(page.get_by_role("heading", name=re.compile(r"^Sede Sur: del "))).to_be_visible()
    expect(dato(page, "Usos reportados")).to_have_text("1")
    expect(dato(page, "Consultas")).to_have_text("1")
    shot(page, shots, "h6-reporte", js)

    xlsx = download(page, "Descargar Excel (.xlsx)")
    assert xlsx.suggested_filename.endswith(".xlsx")
    path = tmp_path / xlsx.suggested_filename
    xlsx.save_as(path)
    rows = [r for r in xlsx_rows(path) if str(r["Cédula"]) == cedula]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["Recibo"] == numero
    assert row["Sede"] == "Sede Sur"
    assert row["Nombre"] == afiliado.nombre_completo
    assert (row["Estado afiliado"], row["Tarifa"], row["Uso reportado"]) == ("ACTIVO", "B", "Sí")

    csv_file = download(page, "Descargar CSV")
    assert csv_file.suggested_filename.endswith(".csv")
    raw = Path(csv_file.path()).read_bytes()
    assert raw.startswith(BOM), "the CSV must start with the UTF-8 BOM, for Excel in Spanish"
    found = [r for r in csv_rows(raw) if r["Cédula"] == cedula]
    assert len(found) == 1 and found[0]["Recibo"] == numero, found


# --- 2. no benefit: the alert, and no button ------------------------------------------


@pytest.mark.parametrize(
    ("over", "estado", "why"),
    [
        ({"estado": "INACTIVO"}, "INACTIVO", "se encuentra en estado INACTIVO"),
        ({"empresa_estado": "MORA"}, "ACTIVO", "inactiva o en mora"),
    ],
    ids=["afiliado-inactivo", "empresa-en-mora"],
)
def test_a_worker_without_the_benefit_shows_the_alert_and_no_button(
    visit, js, portal, desk_entity, shots, over, estado, why
):
    entidad, (norte, _sur) = desk_entity
    afiliado = worker(portal, **over)
    page = visit(js=js).page
    sign_in(page, desk_user(portal, [norte]), PASSWORD)
    page.locator("#mosaicos").get_by_role("link", name="Acceder").click()
    expect_sede(page, entidad.nombre, "Sede Norte")  # one sede: nothing to choose

    look_up(page, afiliado.numero_documento, js)
    expect(dato(page, "Estado Afiliado")).to_have_text(estado)
    expect(dato(page, "Tarifa")).to_have_text("D")
    alert = page.get_by_role("alert").filter(has_text=NO_SERVICE)
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(why)
    expect(page.get_by_role("button", name="Reportar Uso")).to_have_count(0)
    shot(page, shots, f"h6-sin-beneficio-{estado.lower()}", js)
    assert portal.usos_of(afiliado.numero_documento) == []


# --- 3. with JavaScript the result is swapped in, not a new page ---------------------


def test_with_javascript_the_look_up_and_the_use_swap_in_without_a_reload(
    visit, portal, desk_entity
):
    entidad, (norte, _sur) = desk_entity
    afiliado = worker(portal)
    page = visit(js=True).page
    sign_in(page, desk_user(portal, [norte]), PASSWORD)
    page.goto("/convenios/")
    expect(page.get_by_role("heading", name="EMPRESAS EN CONVENIOS")).to_be_visible()
    url = page.url
    page.evaluate("window.__sinRecargar = 'mismo documento'")
    loads = navigations(page)

    look_up(page, afiliado.numero_documento, js=True)
    expect(dato(page, "Estado Afiliado")).to_have_text("ACTIVO")
    assert page.url == url
    assert page.evaluate("window.__sinRecargar") == "mismo documento", "the page reloaded"
    report_use(page)
    assert page.url == url
    assert page.evaluate("window.__sinRecargar") == "mismo documento", "the page reloaded"
    assert loads == [], f"documents loaded during the look-up and the use: {loads}"
    expect(page.get_by_role("heading", name="Uso de Convenio!")).to_be_visible()


# --- 4. accessibility (axe-core, in a context that may inject it) ---------------------


def _walk_and_audit(page: Page, portal, desk_entity, source: str) -> dict[str, list[dict]]:
    """Walk the desk's pages (sede, look-ups, receipt, report) and run axe-core on each."""
    entidad, sedes = desk_entity
    found: dict[str, list[dict]] = {}

    def audit(name: str) -> None:
        found[name] = axe_violations(page, source)

    sign_in(page, desk_user(portal, sedes), PASSWORD)
    page.goto("/convenios/")
    expect(page.get_by_role("button", name="Continuar")).to_be_visible()
    audit("sede")
    page.get_by_role("button", name="Continuar").click()  # none chosen: the error
    expect(page.get_by_text("Elija la sede en la que está atendiendo.")).to_be_visible()
    audit("sede sin elegir")
    pick_sede(page, entidad.nombre, "Sede Norte")
    expect(page.get_by_role("heading", name="Uso de Convenio!")).to_be_visible()
    audit("inicio")
    page.get_by_label("Cédula", exact=True).fill("12ab")
    page.get_by_role("button", name="Consultar Trabajador").click()
    expect(page.get_by_text("La cédula debe tener solo números")).to_be_visible()
    audit("cédula con error")
    look_up(page, worker(portal, estado="RETIRADO").numero_documento, js=False)
    expect(page.get_by_text(NO_SERVICE)).to_be_visible()
    audit("sin beneficio")
    look_up(page, worker(portal).numero_documento, js=False)
    expect(page.get_by_role("button", name="Reportar Uso")).to_be_visible()
    audit("resultado")
    page.get_by_role("button", name="Reportar Uso").click()
    expect(page.get_by_role("heading", name="Uso de convenio registrado")).to_be_visible()
    audit("recibo")
    page.goto("/convenios/reporte")
    expect(page.get_by_role("link", name="Descargar CSV")).to_be_visible()
    audit("reporte")
    return found


@pytest.fixture(scope="module")
def axe_results(browser, portal, desk_entity, axe_source, visit_class):
    """Audit once per mode: with htmx, and with htmx blocked (the no-JS pages)."""
    return audit_with_and_without_htmx(
        browser,
        portal,
        visit_class,
        lambda open_visit: _walk_and_audit(open_visit().page, portal, desk_entity, axe_source),
    )


@markup_audit
@pytest.mark.parametrize("mode", ["htmx", "sin-htmx"])
def test_desk_pages_have_no_axe_violations(axe_results, mode):
    found = axe_results[mode]
    assert len(found) == 8, sorted(found)
    problems = axe_problems(found)
    assert not problems, "axe-core violations:\n" + "\n".join(problems)
