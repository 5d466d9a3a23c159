"""Getting back in and staying safe, walked in Chromium by visible labels.

Password reset by e-mail (manual 001_…, SPEC H3), signing a shared PC in with
the phone ("Código QR", H5), "Mis sesiones" and changing the password in "Mi
cuenta" (X, Sessions). Each journey runs with JavaScript on and off; the QR and
session journeys use two browser contexts, a phone and a PC.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

import models
from core import passwords
from core.clock import utcnow
from tests.e2e.helpers import (
    MOBILE,
    audit_with_and_without_htmx,
    axe_problems,
    axe_violations,
    markup_audit,
    navigations,
    shot,
)

pytestmark = pytest.mark.e2e

OLD = "Girasol#Claro58"
NEW = "Palmera#Norte64"
RESET_SUBJECT = "Restablecimiento de Contraseña"
CHANGED_SUBJECT = "Su contraseña fue actualizada"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; SM-A145M) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
PHONE = dict(viewport=MOBILE, user_agent=ANDROID, is_mobile=True, has_touch=True)
PC = dict(viewport={"width": 1280, "height": 800}, user_agent=WINDOWS)
MAILBOX = "http://buzon.correo-hanna.invalid/"

_accounts = itertools.count(1)


@dataclass
class Account:
    email: str
    documento: str
    password: str = OLD
    name: str = "Ana Pérez"  # primer nombre and primer apellido of Portal.seed_user


def account(portal) -> Account:
    """An active account made straight in the database, with a unique e-mail."""
    a = Account(
        email=f"clave{next(_accounts)}.{portal.new_document()}@correo-hanna.co",
        documento=portal.new_document(),
    )
    portal.seed_user(email=a.email, numero_documento=a.documento, password=a.password)
    return a


def password_is(portal, a: Account, password: str) -> bool:
    return passwords.verify_password(portal.user(a.email).password_hash, password)


# --- steps --------------------------------------------------------------------


def sign_in(page: Page, a: Account, password: str | None = None) -> None:
    page.goto("/")
    page.get_by_label("Email", exact=True).fill(a.email)
    page.get_by_label("Contraseña", exact=True).fill(password or a.password)
    page.get_by_role("button", name="Iniciar Sesión").click()


def expect_home(page: Page, a: Account) -> None:
    expect(page).to_have_url(re.compile(r"/inicio$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(a.name)
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()


def expect_signed_out(page: Page) -> None:
    expect(page.get_by_role("heading", name="Iniciar Sesión")).to_be_visible()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_have_count(0)


def ask_for_reset(page: Page, address: str, shots=None, js: bool | None = None) -> None:
    """Login page → "Restablecer Contraseña" → Email → "Enviar Solicitud"."""
    page.goto("/")
    page.get_by_role("link", name="Restablecer Contraseña").click()
    expect(
        page.get_by_role("heading", name="Olvide mi Contraseña (Verificar Datos)")
    ).to_be_visible()
    expect(page.get_by_text("Información!")).to_be_visible()
    expect(page.get_by_text("Si después de 12 horas")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(address)
    if shots:
        shot(page, shots, "r1-olvide", js)
    page.get_by_role("button", name="Enviar Solicitud").click()
    expect(page.get_by_role("heading", name="Revise su correo")).to_be_visible()


def reset_link(portal, a: Account) -> tuple[str, str]:
    """Deliver the reset mail over SMTP; return its link and its HTML part."""
    mail = portal.delivered(a.email, RESET_SUBJECT)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"Restablecer Contraseña: (\S+/restablecer/\S+)", text)
    assert found, f"no reset link in:\n{text}"
    html = mail.get_body(preferencelist=("html",)).get_content()
    return found.group(1), html


def open_mail(page: Page, html: str) -> None:
    """Show an HTML mail in the browser, as a webmail would."""
    page.route(
        MAILBOX + "**",
        lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"),
    )
    page.goto(MAILBOX + "correo")


def fill_new_password(page: Page, password: str, confirm: str | None = None) -> None:
    page.get_by_label("Nueva Contraseña", exact=True).fill(password)
    page.get_by_label("Confirmar Contraseña", exact=True).fill(confirm or password)
    page.get_by_role("button", name="Actualizar Contraseña").click()


def password_form(page: Page):
    """The "Cambiar contraseña" form of "Mi cuenta"."""
    return page.locator("form").filter(
        has=page.get_by_role("heading", name="Cambiar contraseña", exact=True)
    )


def start_qr(pc: Page) -> tuple[str, str]:
    """On the PC: login page → "Código QR"; return the number shown and the phone's URL."""
    pc.goto("/")
    pc.get_by_role("link", name="Código QR").click()
    expect(pc.get_by_role("heading", name="Código QR")).to_be_visible()
    expect(pc.locator(".qr-code svg")).to_be_visible()
    expect(pc.get_by_role("img", name="Código QR")).to_be_visible()
    number = pc.get_by_role("listitem").filter(has_text="elija el número").locator("strong")
    expect(number).to_have_text(re.compile(r"^\d{2}$"))
    fallback = pc.get_by_text("¿No puede escanear?").inner_text()
    url = re.search(r"https?://\S+/qr/\S+", fallback)
    assert url, fallback
    return number.inner_text(), url.group(0)


def expire_qr(portal, url: str) -> None:
    """Move the request's expiry into the past, as if two minutes went by."""
    key = url.rsplit("/", 1)[1]
    with portal.db().connection_context():
        changed = (
            models.QrLogin.update(expires_at=utcnow() - timedelta(seconds=5))
            .where(models.QrLogin.key == key)
            .execute()
        )
    assert changed == 1


def pick_number(phone: Page, number: str) -> None:
    group = phone.get_by_role("group", name="¿Qué número ve en la pantalla del equipo?")
    group.get_by_role("radio", name=number, exact=True).check()
    phone.get_by_role("button", name="Sí, iniciar sesión").click()


def qr_outcome(pc: Page, js: bool, text: str) -> None:
    """Wait for the PC's answer: htmx polls by itself; without JS the person asks."""
    if not js:
        pc.get_by_role("link", name="Ya confirmé en mi celular").click()
    expect(pc.get_by_role("alert")).to_contain_text(text)
    expect(pc.get_by_role("link", name="Generar un código nuevo")).to_be_visible()
    # The dead code, its number and the steps to use it are gone, not left beside the answer.
    expect(pc.locator(".qr-code svg")).to_have_count(0)
    expect(pc.get_by_text("elija el número")).to_have_count(0)
    expect(pc.get_by_text("Escanee este código")).to_have_count(0)


# --- 1. password reset (H3) --------------------------------------------------------


def test_reset_by_mail_sets_a_new_password_once(visit, page, js, portal, shots):
    a = account(portal)
    elsewhere = visit(js=js, **PC).page
    sign_in(elsewhere, a)
    expect_home(elsewhere, a)
    ask_for_reset(page, a.email, shots, js)
    shot(page, shots, "r2-revise-su-correo", js)

    link, html = reset_link(portal, a)
    assert link.startswith(portal.base_url + "/restablecer/")
    open_mail(page, html)
    expect(page.get_by_role("heading", name=RESET_SUBJECT)).to_be_visible()
    button = page.get_by_role("link", name="Restablecer Contraseña")
    expect(button).to_have_attribute("href", link)
    button.click()

    expect(page.get_by_role("heading", name="Restablecer Contraseña", level=1)).to_be_visible()
    for rule in passwords.RULES:
        expect(page.get_by_role("listitem").filter(has_text=rule)).to_be_visible()
    # A password with the person's own document number breaks a rule: nothing changes.
    fill_new_password(page, f"Clave{a.documento}")
    nueva = page.get_by_label("Nueva Contraseña", exact=True)
    expect(nueva).to_have_attribute("aria-invalid", "true")
    expect(nueva).to_have_accessible_description(
        re.compile("No puede contener su número de documento.")
    )
    shot(page, shots, "r3-restablecer-error", js)
    assert password_is(portal, a, OLD)

    fill_new_password(page, NEW)
    expect_signed_out(page)
    expect(
        page.get_by_text("Su contraseña fue actualizada. Ya puede iniciar sesión.")
    ).to_be_visible()
    assert password_is(portal, a, NEW)
    elsewhere.reload()  # every other session ended with the change
    expect_signed_out(elsewhere)
    mail = portal.delivered(a.email, CHANGED_SUBJECT)
    assert "Si usted no hizo este cambio" in mail.get_body(preferencelist=("plain",)).get_content()

    sign_in(page, a, OLD)
    expect(page.get_by_text("El email o la contraseña no son correctos.")).to_be_visible()
    sign_in(page, a, NEW)
    expect_home(page, a)

    page.goto(link)  # the link worked once
    expect(page.get_by_role("heading", name="No pudimos usar este enlace")).to_be_visible()
    expect(page.get_by_text("Este enlace ya fue usado")).to_be_visible()
    expect(page.get_by_role("link", name="Solicitar un enlace nuevo")).to_be_visible()
    assert password_is(portal, a, NEW)


def test_unknown_address_gets_the_same_answer(page, js, portal, shots):
    a = account(portal)
    ask_for_reset(page, a.email)
    known = (page.url, page.locator("main").inner_text())

    stranger = f"nadie.{portal.new_document()}@correo-hanna.co"
    ask_for_reset(page, stranger)
    assert (page.url, page.locator("main").inner_text()) == known
    # The stranger's mailbox hears about it, without any link that changes a password.
    mail = portal.delivered(stranger, RESET_SUBJECT)
    assert "/restablecer/" not in mail.get_body(preferencelist=("plain",)).get_content()


# --- 2. QR sign-in (H5) --------------------------------------------------------------


def phone_signed_in_and_a_pc(visit, js, portal):
    """A phone where the account is signed in, and a PC that is not."""
    a = account(portal)
    phone = visit(js=js, **PHONE).page
    pc = visit(js=js, **PC).page
    sign_in(phone, a)
    expect_home(phone, a)
    return a, phone, pc


def test_phone_signs_the_pc_in_with_the_qr_code(visit, js, portal, shots):
    a, phone, pc = phone_signed_in_and_a_pc(visit, js, portal)

    number, url = start_qr(pc)
    polls = []
    pc.on("request", lambda r: polls.append(r) if "/qr/estado" in r.url else None)
    loads = navigations(pc)
    shot(pc, shots, "q1-qr-pc", js)

    phone.goto(url)
    expect(phone.get_by_role("heading", name="Iniciar sesión en otro equipo")).to_be_visible()
    expect(phone.get_by_text("Chrome en Windows")).to_be_visible()
    expect(phone.get_by_text(a.email)).to_be_visible()
    expect(phone.get_by_role("radio")).to_have_count(3)
    shot(phone, shots, "q2-qr-confirmar", js)
    pick_number(phone, number)
    expect(phone.get_by_text("Listo: el equipo iniciará sesión")).to_be_visible()

    if not js:
        expect(pc.get_by_role("link", name="Ya confirmé en mi celular")).to_be_visible()
        pc.get_by_role("link", name="Ya confirmé en mi celular").click()
    expect_home(pc, a)  # with JS nobody clicks: the polling gets there
    expect(pc.get_by_text("Sesión iniciada con el Código QR.")).to_be_visible()
    if js:
        assert polls and all(r.headers.get("hx-request") == "true" for r in polls)
        assert [u for u in loads if "/inicio" not in u] == [], loads
    phone.goto("/inicio")
    expect_home(phone, a)  # the phone stays signed in too

    phone.goto(url)  # used once: the code cannot sign anybody else in
    expect(phone.get_by_role("alert")).to_contain_text("Este código QR venció o ya fue usado.")
    expect(phone.get_by_role("radio")).to_have_count(0)


def test_wrong_number_refuses_the_qr_request(visit, js, portal):
    a, phone, pc = phone_signed_in_and_a_pc(visit, js, portal)
    number, url = start_qr(pc)

    phone.goto(url)
    options = [radio.get_attribute("value") for radio in phone.get_by_role("radio").all()]
    assert number in options and len(options) == 3
    pick_number(phone, next(o for o in options if o != number))
    expect(phone.get_by_role("alert")).to_contain_text("No iniciamos la sesión en ese equipo.")

    qr_outcome(pc, js, "La solicitud fue rechazada")
    pc.goto("/inicio")
    expect_signed_out(pc)


def test_expired_qr_request_fails_closed_on_both_sides(visit, js, portal, shots):
    a, phone, pc = phone_signed_in_and_a_pc(visit, js, portal)
    number, url = start_qr(pc)

    phone.goto(url)  # the phone had the question open when the two minutes ran out
    expect(phone.get_by_role("radio")).to_have_count(3)
    expire_qr(portal, url)
    pick_number(phone, number)
    expect(phone.get_by_role("alert")).to_contain_text("Este código QR venció o ya fue usado.")
    phone.goto(url)
    expect(phone.get_by_role("alert")).to_contain_text("Este código QR venció o ya fue usado.")

    qr_outcome(pc, js, "El código QR venció o ya fue usado.")
    shot(pc, shots, "q3-qr-vencido", js)
    pc.goto("/inicio")
    expect_signed_out(pc)


def signed_in_twice(visit, js, portal):
    """One account signed in on a phone and on a PC."""
    a, phone, pc = phone_signed_in_and_a_pc(visit, js, portal)
    sign_in(pc, a)
    expect_home(pc, a)
    return a, phone, pc


# --- 3. "Cerrar sesión en todos los equipos" -----------------------------------------


def test_logout_everywhere_ends_both_sessions(visit, js, portal, shots):
    a, phone, pc = signed_in_twice(visit, js, portal)

    phone.get_by_role("link", name="Mi cuenta").click()
    expect(phone.get_by_role("heading", name="Mi cuenta", level=1)).to_be_visible()
    phone.get_by_role("link", name="Mis sesiones").click()
    expect(phone.get_by_role("heading", name="Mis sesiones")).to_be_visible()
    devices = phone.get_by_role("listitem")
    expect(devices).to_have_count(2)
    this_one = devices.filter(has=phone.get_by_text("Esta sesión", exact=True))
    expect(this_one).to_have_count(1)
    expect(this_one).to_contain_text("Chrome en Android")
    expect(devices.filter(has_text="Chrome en Windows")).to_have_count(1)
    shot(phone, shots, "s1-mis-sesiones", js)

    phone.get_by_role("button", name="Cerrar sesión en todos los equipos").click()
    expect_signed_out(phone)
    expect(phone.get_by_text("Cerramos su sesión en todos los equipos.")).to_be_visible()
    phone.goto("/inicio")
    expect_signed_out(phone)

    pc.get_by_role("link", name="Mi cuenta").click()  # the PC's next step
    expect_signed_out(pc)


# --- 4. "Mi cuenta": change the password ---------------------------------------------


def test_changing_the_password_keeps_this_browser_and_ends_the_other(visit, js, portal, shots):
    a, phone, pc = signed_in_twice(visit, js, portal)

    phone.get_by_role("link", name="Mi cuenta").click()
    form = password_form(phone)
    form.get_by_label("Contraseña actual", exact=True).fill("Equivocada#99")
    form.get_by_label("Nueva Contraseña", exact=True).fill(NEW)
    form.get_by_label("Confirmar Contraseña", exact=True).fill(NEW)
    form.get_by_role("button", name="Actualizar Contraseña").click()
    current = password_form(phone).get_by_label("Contraseña actual", exact=True)
    expect(current).to_have_accessible_description(
        re.compile("La contraseña actual no es correcta.")
    )
    shot(phone, shots, "c1-cuenta-error", js)
    assert password_is(portal, a, OLD)

    form = password_form(phone)
    form.get_by_label("Contraseña actual", exact=True).fill(OLD)
    form.get_by_label("Nueva Contraseña", exact=True).fill(NEW)
    form.get_by_label("Confirmar Contraseña", exact=True).fill(NEW)
    form.get_by_role("button", name="Actualizar Contraseña").click()
    expect(
        phone.get_by_text("Su contraseña fue actualizada. Cerramos sus otras sesiones.")
    ).to_be_visible()
    expect(phone.get_by_role("heading", name="Mi cuenta", level=1)).to_be_visible()
    assert password_is(portal, a, NEW)
    phone.goto("/inicio")
    expect_home(phone, a)

    pc.get_by_role("link", name="Mi cuenta").click()
    expect_signed_out(pc)


def test_each_current_password_label_on_mi_cuenta_names_its_own_field(visit, portal):
    a = account(portal)
    page = visit(js=False).page
    sign_in(page, a)
    expect_home(page, a)
    page.goto("/cuenta")
    email_form = page.locator("form").filter(
        has=page.get_by_role("heading", name="Cambiar correo", exact=True)
    )
    email_form.get_by_text("Contraseña actual", exact=True).click()  # a tap on the label
    expect(email_form.locator("input[type=password]")).to_be_focused(timeout=1_000)


# --- accessibility (axe-core, in contexts that may inject it) -----------------------


def _walk_and_audit(open_visit, portal, source: str) -> dict[str, list[dict]]:
    """Walk the recovery pages on a phone and a PC; run axe-core on each."""
    found: dict[str, list[dict]] = {}
    phone = open_visit(**PHONE).page
    pc = open_visit(**PC).page

    def audit(page: Page, name: str) -> None:
        found[name] = axe_violations(page, source)

    a = account(portal)
    phone.goto("/restablecer")
    audit(phone, "olvide")
    phone.get_by_role("button", name="Enviar Solicitud").click()
    expect(phone.get_by_text("Este campo es obligatorio.")).to_be_visible()
    audit(phone, "olvide con error")
    phone.get_by_label("Email", exact=True).fill(a.email)
    phone.get_by_role("button", name="Enviar Solicitud").click()
    expect(phone.get_by_role("heading", name="Revise su correo")).to_be_visible()
    audit(phone, "olvide enviado")

    link, _ = reset_link(portal, a)
    phone.goto(link)
    audit(phone, "restablecer")
    fill_new_password(phone, "corta", "otra")
    expect(phone.get_by_text("Las contraseñas no coinciden.")).to_be_visible()
    audit(phone, "restablecer con errores")
    fill_new_password(phone, NEW)
    expect(phone.get_by_text("Su contraseña fue actualizada.")).to_be_visible()
    phone.goto(link)
    audit(phone, "enlace no válido")

    a.password = NEW
    sign_in(phone, a)
    expect_home(phone, a)
    phone.get_by_role("link", name="Mi cuenta").click()
    audit(phone, "cuenta")
    password_form(phone).get_by_role("button", name="Actualizar Contraseña").click()
    expect(phone.get_by_text("Este campo es obligatorio.").first).to_be_visible()
    audit(phone, "cuenta con errores")
    phone.get_by_role("link", name="Mis sesiones").click()
    audit(phone, "sesiones")

    _, url = start_qr(pc)
    audit(pc, "qr")
    phone.goto(url)
    audit(phone, "qr confirmar")
    phone.get_by_role("button", name="No, rechazar").click()
    expect(phone.get_by_text("No iniciamos la sesión en ese equipo.")).to_be_visible()
    audit(phone, "qr rechazado")
    pc.goto("/qr/estado")  # with htmx the polling may have got there first: then "venció"
    expect(pc.get_by_role("alert")).to_contain_text("Generar un código nuevo")
    audit(pc, "qr estado")
    return found


@pytest.fixture(scope="module")
def axe_results(browser, portal, axe_source, visit_class):
    """Audit once per mode: with htmx, and with htmx blocked (the no-JS pages)."""
    return audit_with_and_without_htmx(
        browser,
        portal,
        visit_class,
        lambda open_visit: _walk_and_audit(open_visit, portal, axe_source),
    )


@markup_audit
@pytest.mark.parametrize("mode", ["htmx", "sin-htmx"])
def test_recovery_pages_have_no_axe_violations(axe_results, mode):
    found = axe_results[mode]
    assert len(found) == 13, sorted(found)
    problems = axe_problems(found)
    assert not problems, "axe-core violations:\n" + "\n".join(problems)
