"""A Hanna user blocked by the quiz files a PQRSF from the blocked page; staff unblock and answer it.

The blocked page links straight to a "desbloqueo de cuenta" PQRSF with the
person's identity filled in; staff of role pqrs see the blocked account on
the case, give three new tries and answer; the person passes the quiz with
the new link and is signed in. Once with JavaScript on, once off.
"""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import shot
from tests.e2e.test_accounts_journey import (
    answer_quiz,
    begin_quiz,
    expect_home,
    full_afiliado,
    register_affiliate,
)
from tests.e2e.test_gestion_journey import staff_sign_in
from tests.e2e.test_pqrs_journey import RADICADO

pytestmark = pytest.mark.e2e


def test_a_blocked_user_files_a_pqrsf_staff_unblock_from_it_and_she_passes_the_quiz(
    visit, js, portal, shots
):
    person = visit(js=js).page
    afiliado = full_afiliado(portal)
    p = register_affiliate(person, portal, afiliado, js)
    person.goto(portal.activation_link(p.email))
    for _ in range(3):
        begin_quiz(person)
        answer_quiz(person, portal.open_quiz(p.email), right=False)
    expect(person.get_by_role("heading", name="Su usuario está bloqueado")).to_be_visible()

    person.get_by_role("link", name="radique un PQRSF de desbloqueo de cuenta").click()
    expect(person.get_by_role("heading", name="Radicar una PQRSF")).to_be_visible()
    expect(person.get_by_label("Número de documento", exact=True)).to_have_value(
        afiliado.numero_documento
    )
    expect(person.get_by_label("Correo electrónico", exact=True)).to_have_value(p.email)
    person.get_by_label("Descripción", exact=True).fill(
        "Fallé las preguntas de activación porque no recordaba la fecha de ingreso a la empresa."
    )
    shot(person, shots, "g7-desbloqueo", js)
    person.get_by_role("button", name="Radicar PQRSF").click()
    expect(person.get_by_role("heading", name="PQRSF radicada")).to_be_visible()
    radicado = RADICADO.search(person.locator("#codigo").inner_text()).group(0)

    secret = pyotp.random_base32()
    email, password = portal.seed_staff(roles=("pqrs",), totp_secret=secret)
    staff = visit(js=js).page
    staff_sign_in(staff, email, password, secret)
    staff.get_by_role("link", name="PQRSF", exact=True).first.click()
    staff.get_by_role("row").filter(has_text=radicado).get_by_role("link", name="Atender").click()
    expect(staff.get_by_text(p.email).first).to_be_visible()  # the blocked account it names
    staff.get_by_label("Permitir 3 intentos nuevos de las preguntas", exact=False).check()
    staff.get_by_label("Motivo", exact=True).fill("Identidad confirmada con los datos del PQRSF.")
    staff.get_by_role("button", name="Desbloquear").click()
    assert portal.user(p.email).status == "pendiente"
    staff.get_by_label("Respuesta", exact=True).fill(
        "Desbloqueamos su usuario: le enviamos un enlace nuevo con 3 intentos de las preguntas."
    )
    staff.get_by_role("button", name="Responder").click()
    shot(staff, shots, "g7-desbloqueada", js)

    person.goto(portal.activation_link(p.email))
    expect(person.get_by_text("quedan 3 intentos")).to_be_visible()
    begin_quiz(person)
    answer_quiz(person, portal.open_quiz(p.email), right=True)
    expect_home(person, p)
    assert portal.user(p.email).status == "activo"
