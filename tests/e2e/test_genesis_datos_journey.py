"""G5 in a real browser: a member updates her basic data, gets the certificate, and it verifies.

A registered cotizante opens "Actualización Datos Básicos", changes her mobile
and address ("Actualizar Información"), downloads the certificate of
affiliation ("Generar Certificados"), and anyone can check its code at
/certificados/verificar without signing in. Once with JavaScript on, once off.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import shot

pytestmark = pytest.mark.e2e

PASSWORD = "Consultorio#Azul58"
CODE = re.compile(r"\b[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}\b")


def sign_in(page: Page, numero: str) -> None:
    page.goto("/genesis/afiliados")
    page.get_by_label("Tipo de documento", exact=True).select_option("CC")
    page.get_by_label("Número de documento", exact=True).fill(numero)
    page.get_by_label("Contraseña", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("link", name="Actualización Datos Básicos")).to_be_visible()


def test_a_member_updates_her_data_and_her_certificate_verifies(
    page, js, portal, visit, shots, tmp_path
):
    head, _child, _ips = portal.seed_eps_family("31" + portal.new_document()[:8])
    portal.seed_eps_user(head, PASSWORD)
    sign_in(page, head.numero_documento)

    page.get_by_role("link", name="Actualización Datos Básicos").click()
    page.get_by_role("link", name="Martha Lucía Castro Romero").click()
    page.get_by_role("link", name="Actualizar Información").click()
    expect(
        page.get_by_text("Los campos marcados con (*) son de carácter obligatorio")
    ).to_be_visible()
    page.get_by_label("Celular", exact=True).fill("300 12")  # too short: refused next to it
    page.get_by_role("button", name="Actualizar").click()
    expect(page.locator("#celular-error")).to_be_visible()
    page.get_by_label("Celular", exact=True).fill("3001234567")
    page.get_by_label("Dirección", exact=True).fill("Carrera 43 # 70-15, apartamento 402")
    page.get_by_role("button", name="Actualizar").click()
    expect(page.get_by_text("Sus datos han sido actualizados de forma correcta.")).to_be_visible()
    expect(page.get_by_text("Carrera 43 # 70-15, apartamento 402")).to_be_visible()
    shot(page, shots, "g5-datos", js)

    page.get_by_role("link", name="Generar Certificados").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Generar certificado de afiliación").click()
    pdf = tmp_path / "certificado.pdf"
    download.value.save_as(pdf)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "CERTIFICADO DE AFILIACIÓN" in text and "CASTRO ROMERO" in text.upper()
    code = CODE.search(text).group(0)

    anyone = visit(js=js).page  # not signed in
    anyone.goto("/certificados/verificar")
    anyone.get_by_label("Código de verificación", exact=True).fill(code.lower())
    anyone.get_by_role("button", name="Verificar").click()
    expect(anyone.get_by_role("heading", name=f"Certificado {code}: vigente")).to_be_visible()
    shot(anyone, shots, "g5-verificado", js)
    assert "3001234567" not in anyone.content()  # only what the certificate states
