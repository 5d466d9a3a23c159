"""PQRSF (G6, G7) in a real browser: a citizen files one, staff answer it, the citizen follows it by code.

The citizen is not signed in; staff (role pqrs) answer in a second browser;
the citizen then follows the radicado from a browser that never saw it, by
Tipo + número + código, and a wrong code reads as nothing found. Once with
JavaScript on, once off, walked by the labels a person reads.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import shot
from tests.e2e.test_gestion_journey import staff_sign_in

pytestmark = pytest.mark.e2e

RADICADO = re.compile(r"PQR-\d{4}-[2-9A-HJKMNP-Z]{6}")
ANSWER = (
    "Revisamos su caso: la cita con medicina interna quedó asignada para el 15 de diciembre "
    "en la IPS de su municipio."
)


def file_pqrsf(page: Page, documento: str, celular: str, js: bool, shots) -> str:
    """File a petición from /pqrs as someone not signed in; return the radicado shown."""
    page.goto("/pqrs")
    expect(page.get_by_role("heading", name="Radicar una PQRSF")).to_be_visible()
    page.get_by_label("Tipo de PQRSF", exact=True).select_option("peticion")
    page.get_by_label("Tipo de documento", exact=True).select_option("CC")
    page.get_by_label("Número de documento", exact=True).fill(documento)
    page.get_by_label("Nombres y apellidos", exact=True).fill("Martha Lucía Castro Romero")
    page.get_by_label("Celular", exact=True).fill(celular)
    page.get_by_label("Descripción", exact=True).fill(
        "Solicito que me asignen la cita con medicina interna que ordenó el médico general."
    )
    shot(page, shots, "g7-radicar", js)
    page.get_by_role("button", name="Radicar PQRSF").click()
    expect(page.get_by_role("heading", name="PQRSF radicada")).to_be_visible()
    shot(page, shots, "g7-radicada", js)
    found = RADICADO.search(page.locator("#codigo").inner_text())
    assert found, page.locator("#codigo").inner_text()
    return found.group(0)


def follow(page: Page, documento: str, radicado: str) -> None:
    page.goto("/pqrs/consulta")
    expect(page.get_by_role("heading", name="Consulta PQRDS")).to_be_visible()
    page.get_by_label("Tipo de documento", exact=True).select_option("CC")
    page.get_by_label("Número de documento", exact=True).fill(documento)
    page.get_by_label("Código de la PQRDS", exact=True).fill(radicado)
    page.get_by_role("button", name="Consultar").click()


def test_a_citizen_files_a_pqrsf_staff_answer_and_she_follows_it_by_code(
    page, js, portal, visit, shots
):
    documento = portal.new_document()
    celular = "32" + portal.new_document()[:8]
    radicado = file_pqrsf(page, documento, celular, js, shots)
    portal.run_worker()
    assert any(radicado in sms["body"] for sms in portal.sms_to(celular))

    secret = pyotp.random_base32()
    staff_email, staff_password = portal.seed_staff(roles=("pqrs",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, staff_email, staff_password, secret)
    staff.get_by_role("link", name="PQRSF", exact=True).first.click()
    staff.get_by_role("row").filter(has_text=radicado).get_by_role("link", name="Atender").click()
    expect(staff.get_by_role("heading", name=f"PQRSF {radicado}")).to_be_visible()
    staff.get_by_label("Respuesta", exact=True).fill(ANSWER)
    staff.get_by_role("button", name="Responder").click()
    shot(staff, shots, "g7-respondida", js)

    citizen = visit(js=js).page  # a browser that never saw the radicado
    follow(citizen, documento, radicado.lower().replace("-", ""))  # typed loosely
    result = citizen.locator("#resultado")
    expect(result).to_contain_text(f"PQRDS {radicado}")
    expect(result).to_contain_text(ANSWER)
    shot(citizen, shots, "g6-consulta", js)

    wrong = portal.new_document()
    follow(citizen, wrong, radicado)
    nothing = citizen.locator("#resultado").inner_text()
    assert ANSWER not in nothing and radicado not in nothing
    follow(citizen, documento, "PQR-2026-ZZZZZZ")
    assert citizen.locator("#resultado").inner_text() == nothing  # the same answer for either
