"""Steps every browser journey shares: screenshots, page loads, axe-core audits."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

HTMX = re.compile(r"/static/vendor/htmx")
MOBILE = {"width": 360, "height": 740}  # a cheap Android phone

# Markup, layout and what a first visit downloads do not depend on the database:
# they are audited once, in the SQLite pass (make test); CI's PostgreSQL pass walks
# the journeys themselves, where the database does the work.
markup_audit = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="markup, layout and assets do not depend on the database: audited on SQLite",
)


def shot(
    page: Page, shots, name: str, js: bool | None = None, full_page: bool = True, caret="hide"
) -> None:
    """Save a screenshot under /tmp/e2e-shots (never into the repository).

    caret="initial" before an htmx swap: hiding the caret leaves style="" on the
    inputs, which htmx's settle then copies onto the new ones, and the CSP blocks.
    """
    suffix = "" if js is None else ("-js" if js else "-sin-js")
    page.screenshot(path=str(shots / f"{name}{suffix}.png"), full_page=full_page, caret=caret)


def navigations(page: Page) -> list[str]:
    """Record document loads (not history updates), to tell an htmx swap from a page load."""
    seen: list[str] = []
    page.on("domcontentloaded", lambda p: seen.append(p.url))
    return seen


def axe_violations(page: Page, source: str) -> list[dict]:
    """Run axe-core on the page (its context must bypass the CSP to inject it)."""
    page.evaluate(source)
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' '))}));
    }""")


def audit_with_and_without_htmx(browser, portal, visit_class, walk: Callable) -> dict:
    """Run walk(open_visit) twice: with htmx, and with htmx blocked (the no-JS pages).

    open_visit(**options) opens a context that may inject axe-core; walk returns
    {page name: violations}. The result is {"htmx": …, "sin-htmx": …}.
    """
    results = {}
    for mode in ("htmx", "sin-htmx"):
        opened: list = []
        try:
            results[mode] = walk(_opener(browser, portal, visit_class, opened, mode == "htmx"))
        finally:
            for v in opened:
                v.close()
    return results


def _opener(browser, portal, visit_class, opened: list, htmx: bool) -> Callable:
    def open_visit(**options):
        v = visit_class(browser, portal, js=True, bypass_csp=True, **options)
        opened.append(v)
        if not htmx:
            v.context.route(HTMX, lambda route: route.abort())
        return v

    return open_visit


def axe_problems(found: dict[str, list[dict]]) -> list[str]:
    """Flatten {page name: violations} into one readable line per violation."""
    return [
        f"[{name}] {v['id']} ({v['impact']}): {v['help']} -> {v['targets']}"
        for name, violations in found.items()
        for v in violations
    ]


# --- CONVENIOS: a partner's request and the staff's approval (H4, H6) -------------

# The smallest PDF the upload check accepts as one: the request's supporting document.
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


def sign_in(page: Page, email: str, password: str) -> None:
    """Sign a Hanna user in from the portal's first page, and wait for the home page."""
    page.goto("/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Iniciar Sesión").click()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()


def request_convenios(
    page: Page,
    *,
    nit: str,
    nombre: str,
    sedes: str,
    soporte,
    shots=None,
    js=None,
    name: str = "h4-solicitud",
) -> None:
    """From the signed-in home page, request CONVENIOS for an entity ("Solicitar").

    nit is the stored NIT (digits and check digit); it is typed as people write
    it, with the dash. With shots, the filled form is photographed as name.
    """
    tiles = page.locator("#mosaicos")
    expect(tiles.get_by_role("heading", name="CONVENIOS")).to_be_visible()
    tiles.get_by_role("link", name="Solicitar").click()
    expect(page.get_by_role("heading", name="Solicitud de Aplicaciones")).to_be_visible()
    page.get_by_label("NIT de la entidad", exact=True).fill(f"{nit[:-1]}-{nit[-1]}")
    page.get_by_label("Nombre de la entidad", exact=True).fill(nombre)
    page.get_by_label("Sede(s)", exact=True).fill(sedes)
    page.get_by_label("Teléfono de contacto", exact=True).fill("3001234567")
    page.get_by_label("Documento soporte (PDF)", exact=True).set_input_files(str(soporte))
    if shots:
        shot(page, shots, name, js)
    page.get_by_role("button", name="Enviar Solicitud").click()
    expect(page.get_by_text("Recibimos su solicitud.")).to_be_visible()


def approve_request(
    staff: Page, *, entidad: str, sedes, shots=None, js=None, name: str = "h4-aprobar"
) -> None:
    """As signed-in staff (role convenios), approve the pending request of entidad for sedes.

    The entity comes chosen (its NIT matches the request's); each sede is ticked
    by its name. With shots, the ticked form is photographed as name.
    """
    staff.get_by_role("link", name="Solicitudes de aplicaciones").first.click()
    staff.get_by_role("row").filter(has_text=entidad).get_by_role("link", name="Revisar").click()
    expect(staff.get_by_role("heading", name="Aprobar")).to_be_visible()
    for sede in sedes:
        staff.get_by_label(sede, exact=True).check()
    if shots:
        shot(staff, shots, name, js)
    staff.get_by_role("button", name="Aprobar", exact=True).click()
    expect(staff.get_by_text("aprobada. Se avisó al usuario por correo.")).to_be_visible()
