"""Every page fits a 360 px phone: nothing scrolls sideways, signed in or not."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import markup_audit
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, markup_audit]

PUBLIC = ["/", "/registro", "/restablecer", "/descubre", "/qr"]
SIGNED_IN = ["/inicio", "/cuenta", "/cuenta/sesiones"]


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_no_page_scrolls_sideways_at_360_px(page, portal):
    for path in PUBLIC:
        page.goto(path)
        assert overflow(page) <= 0, path
    user = portal.seed_user(
        password=PASSWORD,
        email=f"ancho.{portal.new_document()}@correo-hanna.co",
        numero_documento=portal.new_document(),
    )
    page.goto("/")
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Contraseña", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Iniciar Sesión").click()
    expect(page.get_by_role("button", name="Cerrar sesión", exact=True)).to_be_in_viewport()
    for path in SIGNED_IN:
        page.goto(path)
        assert overflow(page) <= 0, path
        expect(page.get_by_role("button", name="Cerrar sesión", exact=True)).to_be_in_viewport()
