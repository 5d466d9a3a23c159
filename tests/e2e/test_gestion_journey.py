"""The back office in a real browser: staff sign in with a second factor, and unblock a user.

Each journey runs with JavaScript on and off, by the labels a person reads.
"""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect

from tests.e2e.helpers import PDF, approve_request, request_convenios, shot, sign_in
from tests.e2e.test_accounts_journey import (
    answer_quiz,
    begin_quiz,
    expect_home,
    full_afiliado,
    register_affiliate,
)


def code_at(secret: str, offset: int = 0) -> str:
    """The authenticator's code, offset seconds from now (a later step is one not yet used)."""
    return pyotp.TOTP(secret).at(time.time() + offset)


def staff_password_step(page: Page, email: str, password: str) -> None:
    page.goto("/gestion/ingresar")
    expect(page.get_by_role("heading", name="Gestión — Ingreso de funcionarios")).to_be_visible()
    page.get_by_label("Correo electrónico", exact=True).fill(email)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Continuar").click()


def enter_code(page: Page, code: str) -> None:
    expect(page.get_by_role("heading", name="Código de verificación")).to_be_visible()
    page.get_by_label("Código de verificación", exact=True).fill(code)
    page.get_by_role("button", name="Verificar").click()


def staff_sign_in(page: Page, email: str, password: str, secret: str, offset: int = 0) -> None:
    staff_password_step(page, email, password)
    enter_code(page, code_at(secret, offset))
    expect(page.get_by_role("heading", name="Gestión", exact=True)).to_be_visible()


def test_staff_enrol_an_authenticator_and_sign_in(page, js, portal, shots):
    email, password = portal.seed_staff(roles=("afiliaciones",))
    staff_password_step(page, email, password)

    # First sign-in: no second factor yet, so the portal enrols one before anything else.
    expect(page.get_by_role("heading", name="Active su segundo factor")).to_be_visible()
    expect(page.locator(".qr-code svg")).to_be_visible()
    shot(page, shots, "g1-inscribir", js)
    secret = page.locator("code.url").inner_text().replace(" ", "")
    page.goto("/gestion/desbloqueos")  # nothing opens before the second factor
    expect(page.get_by_role("heading", name="Active su segundo factor")).to_be_visible()

    page.get_by_label("Código de verificación", exact=True).fill("000000")
    page.get_by_role("button", name="Activar").click()
    expect(page.get_by_text("El código no es correcto o ya fue usado.")).to_be_visible()
    page.get_by_label("Código de verificación", exact=True).fill(code_at(secret))
    page.get_by_role("button", name="Activar").click()

    expect(page.get_by_role("heading", name="Códigos de recuperación")).to_be_visible()
    codes = page.locator("ol.codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", c) for c in codes)
    shot(page, shots, "g2-codigos", js)
    page.get_by_role("link", name="Ya los guardé, continuar").click()
    expect(page.get_by_role("heading", name="Gestión", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Usuarios bloqueados").first).to_be_visible()
    expect(page.get_by_role("link", name="Auditoría")).to_have_count(0)  # not this role's

    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_text("Cerró su sesión.")).to_be_visible()

    # A recovery code works once; then the app's code of a step not used yet.
    staff_password_step(page, email, password)
    enter_code(page, codes[0].lower())
    expect(page.get_by_text("Ingresó con un código de recuperación. Le quedan 9")).to_be_visible()
    page.get_by_role("button", name="Cerrar sesión").click()
    staff_password_step(page, email, password)
    enter_code(page, codes[0])
    expect(page.get_by_text("El código no es correcto o ya fue usado.")).to_be_visible()
    enter_code(page, code_at(secret, 30))
    expect(page.get_by_role("heading", name="Gestión", exact=True)).to_be_visible()
    shot(page, shots, "g3-inicio", js)


def test_a_blocked_user_is_unblocked_by_staff_and_passes_the_quiz(visit, js, portal, shots):
    person_page = visit(js=js).page
    afiliado = full_afiliado(portal)
    p = register_affiliate(person_page, portal, afiliado, js)
    person_page.goto(portal.activation_link(p.email))
    for _ in range(3):
        begin_quiz(person_page)
        answer_quiz(person_page, portal.open_quiz(p.email), right=False)
    expect(person_page.get_by_role("heading", name="Su usuario está bloqueado")).to_be_visible()

    secret = pyotp.random_base32()
    email, password = portal.seed_staff(roles=("afiliaciones",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, email, password, secret)
    staff.get_by_role("link", name="Usuarios bloqueados").first.click()
    staff.get_by_label("Número de documento", exact=True).fill(afiliado.numero_documento)
    staff.get_by_role("button", name="Buscar").click()
    row = staff.get_by_role("row").filter(has_text=afiliado.numero_documento)
    expect(row).to_contain_text("3 intentos fallidos de las preguntas")
    shot(staff, shots, "g4-bloqueados", js)
    row.get_by_role("link", name="Atender").click()

    expect(staff.get_by_role("heading", name="Desbloquear usuario")).to_be_visible()
    staff.get_by_role("button", name="Desbloquear").click()  # no reason: refused, nothing done
    expect(staff.get_by_text("Este campo es obligatorio.").first).to_be_visible()
    assert portal.user(p.email).status == "bloqueado"
    staff.get_by_label("Permitir 3 intentos nuevos de las preguntas").check()
    staff.get_by_label("Motivo", exact=True).fill("Llamó al call center y confirmó sus datos.")
    staff.get_by_role("button", name="Desbloquear").click()
    expect(staff.get_by_text(f"Usuario desbloqueado: {p.email}")).to_be_visible()
    shot(staff, shots, "g5-desbloqueado", js)
    assert portal.user(p.email).status == "pendiente"

    # The person gets a new activation link, and three new tries.
    link = portal.activation_link(p.email)
    person_page.goto(link)
    expect(person_page.get_by_text("quedan 3 intentos")).to_be_visible()
    begin_quiz(person_page)
    answer_quiz(person_page, portal.open_quiz(p.email), right=True)
    expect_home(person_page, p)
    assert portal.user(p.email).status == "activo"


def test_a_user_requests_convenios_with_a_pdf_and_staff_approve_it(
    visit, js, portal, shots, tmp_path
):
    from core.convenios_data import load_demo_convenios
    from models import Entidad, Sede

    with portal.db().connection_context():
        load_demo_convenios()
        entidad = Entidad.select().where(Entidad.estado == "ACTIVA").order_by(Entidad.id).first()
        sede = (
            Sede.select().where((Sede.entidad == entidad) & Sede.activa).order_by(Sede.id).first()
        )
    password = "Recepcion#Gimnasio42"
    email = f"recepcion{portal.new_document()}@correo-hanna.co"
    portal.seed_user(
        password=password, email=email, login=email, numero_documento=portal.new_document()
    )
    soporte = tmp_path / "camara-de-comercio.pdf"
    soporte.write_bytes(PDF)

    page = visit(js=js).page
    sign_in(page, email, password)
    request_convenios(
        page,
        nit=entidad.nit,
        nombre=entidad.nombre,
        sedes=sede.nombre,
        soporte=soporte,
        shots=shots,
        js=js,
    )

    secret = pyotp.random_base32()
    staff_email, staff_password = portal.seed_staff(roles=("convenios",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, staff_email, staff_password, secret)
    approve_request(staff, entidad=entidad.nombre, sedes=[sede.nombre], shots=shots, js=js)

    page.goto("/inicio")
    tile = page.locator("#mosaicos")
    expect(tile.get_by_text("Acceda aquí a la plataforma de convenios de cajacopi")).to_be_visible()
    expect(tile.get_by_role("link", name="Acceder")).to_be_visible()
    shot(page, shots, "h4-mosaico", js)
    portal.run_worker()
    assert portal.mail_to(email), "the approval mail did not reach the user"
