"""PQRSF pages under axe-core, with htmx and with htmx blocked.

One walk per mode: the filing form (empty, then with its 422), the radicado
page, Consulta PQRDS (nothing found, then the case), and the staff queue and
case page of role pqrs.
"""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    audit_with_and_without_htmx,
    axe_problems,
    axe_violations,
    markup_audit,
)
from tests.e2e.test_gestion_journey import staff_sign_in
from tests.e2e.test_pqrs_journey import RADICADO, file_pqrsf, follow

pytestmark = [pytest.mark.e2e, markup_audit]

PAGES = 7


def _walk(page: Page, portal, source: str, staff: tuple[str, str, str], shots) -> dict:
    found: dict[str, list[dict]] = {}

    def audit(name: str) -> None:
        assert name not in found, name
        found[name] = axe_violations(page, source)

    page.goto("/pqrs")
    audit("radicar")
    page.get_by_role("button", name="Radicar PQRSF").click()  # nothing filled: 422
    expect(page.locator(".error").first).to_be_visible()
    audit("radicar-422")
    documento = portal.new_document()
    radicado = file_pqrsf(page, documento, "33" + portal.new_document()[:8], None, shots)
    assert RADICADO.fullmatch(radicado)
    audit("radicada")
    follow(page, portal.new_document(), radicado)
    expect(page.locator("#resultado")).to_be_visible()
    audit("consulta-nada")
    follow(page, documento, radicado)
    expect(page.locator("#resultado")).to_contain_text(radicado)
    audit("consulta-caso")

    page.context.clear_cookies()
    staff_sign_in(page, *staff)
    page.get_by_role("link", name="PQRSF", exact=True).first.click()
    audit("gestion-cola")
    page.get_by_role("row").filter(has_text=radicado).get_by_role("link", name="Atender").click()
    expect(page.get_by_role("heading", name=f"PQRSF {radicado}")).to_be_visible()
    audit("gestion-caso")
    return found


@pytest.fixture(scope="module")
def axe_results(browser, portal, axe_source, visit_class, shots):
    """Audit once per mode, each with its own staff member (a TOTP code is taken once)."""

    def walk(open_visit):
        secret = pyotp.random_base32()
        email, password = portal.seed_staff(roles=("pqrs",), totp_secret=secret)
        return _walk(open_visit().page, portal, axe_source, (email, password, secret), shots)

    return audit_with_and_without_htmx(browser, portal, visit_class, walk)


@pytest.mark.parametrize("mode", ["htmx", "sin-htmx"])
def test_pqrs_pages_have_no_axe_violations(axe_results, mode):
    found = axe_results[mode]
    assert len(found) == PAGES, sorted(found)
    problems = axe_problems(found)
    assert not problems, "axe-core violations:\n" + "\n".join(problems)
