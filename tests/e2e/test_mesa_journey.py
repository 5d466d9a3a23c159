"""The IPS help desk (SPEC I1–I3, S1) in a real browser, with JavaScript on and off.

An IPS operator signs in by NIT (typed with dots and the check digit's "-"),
opens a case with an attachment ("Generar Servicio"), and waits on its page. A
soporte staff member answers in a second browser context; the answer appears in
the IPS's thread without a reload when JavaScript is on (the poll) and after a
refresh when it is off. The IPS answers back, and staff close the case.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import shot
from tests.e2e.test_gestion_journey import staff_sign_in
from tests.sample_files import pdf_bytes

pytestmark = pytest.mark.e2e

PASSWORD = "Mesa-Caribe-2031"
ANSWER = "Revisamos el cargue: el archivo tenía la fecha en otro formato. Ya quedó corregido."


def dotted(nit: str) -> str:
    """The NIT as people type it: 800.100.001-7."""
    base, digit = nit[:-1], nit[-1]
    groups = []
    while base:
        groups.insert(0, base[-3:])
        base = base[:-3]
    return ".".join(groups) + "-" + digit


def test_an_ips_opens_a_case_staff_answer_it_shows_and_staff_close_it(
    visit, js, portal, shots, tmp_path
):
    nit, email = portal.seed_ips_operador(PASSWORD)
    ips = visit(js=js).page
    ips.goto("/genesis")
    ips.get_by_role("link", name="IPS", exact=True).click()
    expect(ips.get_by_role("heading", name="Ingreso IPS")).to_be_visible()
    ips.get_by_label("NIT", exact=True).fill(dotted(nit))
    ips.get_by_label("Correo electrónico", exact=True).fill(email)
    ips.get_by_label("Contraseña", exact=True).fill(PASSWORD)
    ips.get_by_role("button", name="Ingresar").click()

    # I2: Motivo → Asunto (htmx with JS; "Ver asuntos" reloads the form without it).
    expect(ips.get_by_role("heading", name=re.compile("Mesa de Ayuda"))).to_be_visible()
    ips.get_by_label("Motivo", exact=True).select_option(label="CAPACITACION")
    if not js:
        ips.get_by_role("button", name="Ver asuntos").click()
    expect(
        ips.get_by_label("Asunto", exact=True).locator("option", has_text="CARGUE RESOLUCION 2463")
    ).to_have_count(1)
    ips.get_by_label("Asunto", exact=True).select_option(label="CARGUE RESOLUCION 2463")
    ips.get_by_label("Descripción", exact=True).fill(
        "No carga el archivo de la Resolución 2463 de enero: el portal dice formato no válido."
    )
    if js:
        expect(ips.get_by_text(re.compile(r"Quedan \d+ caracteres"))).to_be_visible()
    orden = tmp_path / "soporte cargue.pdf"
    orden.write_bytes(pdf_bytes())
    ips.get_by_label(re.compile("^Adjunto")).set_input_files(str(orden))
    shot(ips, shots, "i2-nuevo-caso", js)
    ips.get_by_role("button", name="Generar Servicio").click()

    # The notification with the number; the case page with its thread.
    expect(ips.get_by_text(re.compile(r"Se generó el servicio N° \d+"))).to_be_visible()
    expect(ips.get_by_text("CARGUE RESOLUCION 2463").first).to_be_visible()
    expect(ips.get_by_role("link", name=re.compile("soporte cargue")).first).to_be_visible()
    numero = re.search(r"/ips/solicitudes/(\d+)", ips.url).group(1)
    assert int(numero) >= 40912  # the numbers go on from the manual's case
    case_url = ips.url

    # Staff, in a second browser context, find it in the queue and answer.
    secret = pyotp.random_base32()
    staff_email, staff_password = portal.seed_staff(roles=("soporte",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, staff_email, staff_password, secret)
    staff.get_by_role("link", name="Mesa de Ayuda IPS").first.click()
    staff.get_by_role("row").filter(has_text=numero).get_by_role("link").first.click()
    expect(staff.get_by_role("link", name=re.compile("soporte cargue"))).to_be_visible()
    staff.locator("#respuesta").fill(ANSWER)
    staff.get_by_role("button", name="Responder").click()
    expect(staff.get_by_text(ANSWER).first).to_be_visible()
    shot(staff, shots, "i3-respuesta-mesa", js)

    # The IPS sees it: by the poll (JS on, no reload) or after a refresh (JS off).
    if js:
        expect(ips.get_by_text(ANSWER)).to_be_visible(timeout=30_000)
        assert ips.url == case_url
    else:
        expect(ips.get_by_text(ANSWER)).to_have_count(0)
        ips.reload()
        expect(ips.get_by_text(ANSWER)).to_be_visible()
    assert portal.delivered(email, f"Mesa de Ayuda: respuesta en el caso {numero}")

    # The IPS answers back; staff read it and close the case.
    ips.get_by_placeholder("Mensaje..").fill("Gracias, ya cargó. Pueden cerrar el caso.")
    ips.get_by_role("button", name="ENVIAR").click()
    expect(ips.get_by_text("Gracias, ya cargó.")).to_be_visible()
    shot(ips, shots, "i3-hilo-ips", js)

    staff.reload()
    expect(staff.get_by_text("Gracias, ya cargó.")).to_be_visible()
    staff.locator("#respuesta").fill("Con gusto. Cerramos el caso.")
    staff.get_by_label("Cerrar el caso").check()
    staff.get_by_role("button", name="Responder").click()
    expect(staff.get_by_role("heading", name=re.compile("Estado: Cerrado"))).to_be_visible()

    ips.reload()
    expect(ips.get_by_text("Cerrado").first).to_be_visible()
