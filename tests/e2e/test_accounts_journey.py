"""The Hanna account journeys of the manual (000_…), walked in Chromium by visible labels.

Each journey runs twice: with JavaScript (htmx enhances the forms) and without it
(plain forms and full pages). Mail goes over real SMTP through the delivery worker.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    audit_with_and_without_htmx,
    axe_problems,
    axe_violations,
    markup_audit,
    navigations,
    shot,
)

pytestmark = pytest.mark.e2e

DOC = "Cédula / Nit (Con dígito de verificación)"
ESTADO = "Estado (Informativo solo aplica para afiliados)"
FECHA = "Fecha Nacimiento / Fecha Especial"
PASSWORD = "Mariposa#Azul73"
MOBILE_ERROR = "Ingrese un número celular colombiano de 10 dígitos que empiece por 3."
MISMATCH = "Las contraseñas no coinciden."

_people = itertools.count(1)


@dataclass
class Person:
    documento: str
    email: str
    primer_nombre: str = "Ana"
    segundo_nombre: str = "Lucía"
    primer_apellido: str = "Pérez"
    segundo_apellido: str = "Gómez"
    celular: str = "3104567890"
    fecha: str = "24/03/1985"
    password: str = PASSWORD


def person(portal, documento: str | None = None, **over) -> Person:
    """A new person with a unique document and e-mail (defaults: a valid registration)."""
    n = next(_people)
    return Person(
        documento=documento or portal.new_document(),
        email=f"persona{n}.{portal.new_document()}@correo-hanna.co",
        **over,
    )


def full_afiliado(portal):
    """An affiliate with enough data for a fair quiz: values many people of the Caja share."""
    return portal.seed_afiliado(
        fecha_nacimiento=date(1984, 7, 12),
        celular="3001234567",
        telefono="6015550123",
        empresa_nombre="Comercializadora Andina S.A.S.",  # one of the demo's employers
        empresa_estado="ACTIVO",
        empresa_nit="9005142371",
        fecha_ingreso_empresa=date(2013, 12, 27),
        profesion="Comerciante",
        conyuge_celular="3157654321",
        conyuge_profesion="Auxiliar administrativo",
        conyuge_cargo="Operador de planta",
    )


def thin_afiliado(portal):
    """An affiliate whose data is too thin for a quiz, but with a mobile on file."""
    return portal.seed_afiliado(
        celular="3209876543",
        primer_nombre="JOSE",
        segundo_nombre="",
        primer_apellido="MEZA",
        segundo_apellido="",
    )


# --- steps --------------------------------------------------------------------


def open_registration(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Iniciar Sesión")).to_be_visible()
    page.get_by_role("link", name="Crear Cuenta Nueva").click()
    expect(page.get_by_role("heading", name="Crear Cuenta Nueva")).to_be_visible()


def fill_document(page: Page, documento: str) -> None:
    page.get_by_label("Tipo Documento", exact=True).select_option(label="Cédula de ciudadanía")
    page.get_by_label(DOC, exact=True).fill(documento)


def fill_names(page: Page, p: Person) -> None:
    page.get_by_label("Primer Apellido", exact=True).fill(p.primer_apellido)
    page.get_by_label("Segundo Apellido", exact=True).fill(p.segundo_apellido)
    page.get_by_label("Primer Nombre", exact=True).fill(p.primer_nombre)
    page.get_by_label("Segundo Nombre", exact=True).fill(p.segundo_nombre)


def fill_recovery_and_password(page: Page, p: Person, confirm: str | None = None) -> None:
    page.get_by_label("Email", exact=True).fill(p.email)
    page.get_by_label("Celular", exact=True).fill(p.celular)
    page.get_by_label(FECHA, exact=True).fill(p.fecha)
    page.get_by_label("Contraseña", exact=True).fill(p.password)
    page.get_by_label("Confirmar Contraseña", exact=True).fill(
        p.password if confirm is None else confirm
    )


def confirm_and_create(page: Page, p: Person, js: bool, shots=None) -> None:
    """Press "Crear Nuevo Usuario", check "Confirmar Solicitud", press "Crear Usuario"."""
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    if js:
        scope = page.get_by_role("dialog", name="Confirmar Solicitud")
    else:
        scope = page.get_by_role("region", name="Confirmar Solicitud")
    expect(scope).to_be_visible()
    expect(scope).to_contain_text("Está seguro que desea crear su cuenta")
    expect(scope).to_contain_text(p.email)
    expect(scope.get_by_role("button", name="Cancelar")).to_be_visible()
    if shots:  # the dialog is fixed to the screen: show the screen a phone shows
        shot(page, shots, "3-confirmar-solicitud", js, full_page=not js)
    scope.get_by_role("button", name="Crear Usuario").click()
    expect(page.get_by_role("heading", name="Guardado Exitosamente")).to_be_visible()
    expect(page.get_by_text("El usuario ha sido creado exitosamente.")).to_be_visible()
    local, _, domain = p.email.partition("@")
    masked = page.get_by_text(re.compile(re.escape(local[:2]) + r"\*{3,}@" + re.escape(domain)))
    expect(masked).to_be_visible()
    expect(page.get_by_text(p.email)).to_have_count(0)
    if shots:
        shot(page, shots, "4-guardado-exitosamente", js)


def lookup_non_affiliate(page: Page, documento: str) -> None:
    """Type the document and press Enter: not an affiliate, so the names stay open."""
    fill_document(page, documento)
    page.get_by_label(DOC, exact=True).press("Enter")
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("No afiliado")
    expect(page.get_by_text("No encontramos este documento entre los afiliados")).to_be_visible()
    expect(page.get_by_label("Primer Nombre", exact=True)).to_be_editable()


def register_non_affiliate(page: Page, p: Person, js: bool, shots=None) -> None:
    open_registration(page)
    lookup_non_affiliate(page, p.documento)
    fill_names(page, p)
    fill_recovery_and_password(page, p)
    confirm_and_create(page, p, js, shots)


def lookup_affiliate(page: Page, afiliado, js: bool) -> None:
    """Type the document and press Enter: the names and Estado fill in."""
    loads = navigations(page)
    fill_document(page, afiliado.numero_documento)
    page.get_by_label(DOC, exact=True).press("Enter")
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("ACTIVO")
    expect(page.get_by_label("Primer Apellido", exact=True)).to_have_value(afiliado.primer_apellido)
    expect(page.get_by_label("Segundo Apellido", exact=True)).to_have_value(
        afiliado.segundo_apellido
    )
    expect(page.get_by_label("Primer Nombre", exact=True)).to_have_value(afiliado.primer_nombre)
    expect(page.get_by_label("Segundo Nombre", exact=True)).to_have_value(afiliado.segundo_nombre)
    expect(page.get_by_label("Primer Nombre", exact=True)).not_to_be_editable()
    expect(page.get_by_label(DOC, exact=True)).to_have_value(afiliado.numero_documento)
    if js:
        assert loads == [], f"the look-up loaded a page instead of an htmx swap: {loads}"
    else:
        assert loads, "without JavaScript the look-up should re-render the page"


def register_affiliate(page: Page, portal, afiliado, js: bool, shots=None, **over) -> Person:
    p = person(portal, documento=afiliado.numero_documento, **over)
    open_registration(page)
    lookup_affiliate(page, afiliado, js)
    if shots:
        shot(page, shots, "2-registro-afiliado", js)
    fill_recovery_and_password(page, p)
    p.primer_nombre, p.primer_apellido = afiliado.primer_nombre, afiliado.primer_apellido
    confirm_and_create(page, p, js)
    return p


def expect_home(page: Page, p: Person) -> None:
    expect(page).to_have_url(re.compile(r"/inicio$"))
    name = f"{p.primer_nombre} {p.primer_apellido}".title()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()


def begin_quiz(page: Page) -> None:
    """Press the button that starts the quiz's clock (opening the link starts nothing)."""
    expect(page.get_by_role("heading", name="Preguntas para activación de cuenta")).to_be_visible()
    page.get_by_role("button", name="Comenzar las preguntas").click()
    expect(page.get_by_role("button", name="Validar Mis Datos")).to_be_visible()


def activate_by_link(page: Page) -> None:
    """Open the non-affiliate's link page and press its button (a mail scanner would not)."""
    expect(page.get_by_role("heading", name="Activar su cuenta")).to_be_visible()
    page.get_by_role("button", name="Activar mi cuenta").click()


def answer_quiz(page: Page, questions: list[dict], right: bool) -> None:
    expect(page.get_by_role("heading", name="Preguntas para activación de cuenta")).to_be_visible()
    for q in questions:
        group = page.get_by_role("group", name=q["text"])
        pick = q["answer"] if right else (q["answer"] + 1) % len(q["options"])
        group.get_by_role("radio", name=q["options"][pick], exact=True).check()
    page.get_by_role("button", name="Validar Mis Datos").click()


def login(page: Page, p: Person) -> None:
    page.get_by_label("Email", exact=True).fill(p.email)
    page.get_by_label("Contraseña", exact=True).fill(p.password)
    page.get_by_role("button", name="Iniciar Sesión").click()


# --- 1. non-affiliate ------------------------------------------------------------


def test_non_affiliate_creates_activates_and_logs_in(page, js, portal, shots):
    p = person(portal)
    page.goto("/")
    shot(page, shots, "0-login", js)
    register_non_affiliate(page, p, js, shots)
    assert portal.user(p.email).status == "pendiente"

    link = portal.activation_link(p.email)
    page.goto(link)
    shot(page, shots, "8-activar", js)
    assert portal.user(p.email).status == "pendiente"  # opening the link changes nothing
    activate_by_link(page)
    expect_home(page, p)
    expect(page.get_by_text("Su cuenta fue activada.")).to_be_visible()
    shot(page, shots, "9-inicio", js)
    assert portal.user(p.email).status == "activo"

    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", name="Iniciar Sesión")).to_be_visible()
    expect(page.get_by_text("Cerró su sesión.")).to_be_visible()
    page.goto("/inicio")
    expect(page.get_by_role("heading", name="Iniciar Sesión")).to_be_visible()

    login(page, p)
    expect_home(page, p)

    # The link worked once.
    page.goto(link)
    expect(page.get_by_text("ya fue usado o no es válido")).to_be_visible()


# --- 2. affiliate with the quiz -------------------------------------------------


def test_affiliate_lookup_quiz_and_activation(page, js, portal, shots):
    afiliado = full_afiliado(portal)
    p = register_affiliate(page, portal, afiliado, js, shots)
    user = portal.user(p.email)
    assert user.status == "pendiente" and user.hanna.afiliado_id == afiliado.id

    page.goto(portal.activation_link(p.email))
    shot(page, shots, "5-preguntas-inicio", js)
    begin_quiz(page)
    questions = portal.open_quiz(p.email)
    assert 5 <= len(questions) <= 6
    for q in questions:
        group = page.get_by_role("group", name=q["text"])
        expect(group.get_by_role("radio")).to_have_count(4)
    shot(page, shots, "5-preguntas", js)
    answer_quiz(page, questions, right=True)
    expect_home(page, p)
    expect(page.get_by_text("Sus datos fueron validados y su cuenta está activa.")).to_be_visible()
    assert portal.user(p.email).status == "activo"


# --- 3. three failed quizzes block the account --------------------------------


def test_quiz_blocks_after_three_failures(page, js, portal, shots):
    afiliado = full_afiliado(portal)
    p = register_affiliate(page, portal, afiliado, js)
    page.goto(portal.activation_link(p.email))

    for attempt in (1, 2):
        begin_quiz(page)
        answer_quiz(page, portal.open_quiz(p.email), right=False)
        expect(
            page.get_by_text("Alguna de sus respuestas no coincide con nuestros datos.")
        ).to_be_visible()
        left = 3 - attempt
        expect(page.get_by_role("alert")).to_contain_text(
            f"Le {'queda' if left == 1 else 'quedan'} {left}"
        )
    shot(page, shots, "6-preguntas-error", js)
    begin_quiz(page)
    answer_quiz(page, portal.open_quiz(p.email), right=False)

    expect(page.get_by_role("heading", name="Su usuario está bloqueado")).to_be_visible()
    expect(page.get_by_text("PQRSF")).to_be_visible()
    expect(
        page.get_by_role("link", name="radique un PQRSF de desbloqueo de cuenta")
    ).to_be_visible()
    shot(page, shots, "7-bloqueado", js)
    assert portal.user(p.email).status == "bloqueado"

    page.goto("/")
    login(page, p)
    expect(
        page.get_by_text("Su usuario está bloqueado. Para desbloquearlo radique un PQRSF.")
    ).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/inicio$"))


# --- 4. "No recuerdo mis datos" and the thin-data affiliate ---------------------


def _activate_with_code(page: Page, portal, afiliado, p: Person) -> None:
    expect(page.get_by_role("heading", name="Activación con código por SMS")).to_be_visible()
    masked = afiliado.celular[:3] + "****" + afiliado.celular[-3:]
    expect(page.get_by_text(f"Enviamos un código al celular {masked}")).to_be_visible()
    code = portal.sms_code(afiliado.celular)
    assert portal.sms_to(p.celular) == [], (
        "the code must go to the mobile on file, not the typed one"
    )
    page.get_by_label("Código recibido por SMS", exact=True).fill(code)
    page.get_by_role("button", name="Validar código").click()
    expect_home(page, p)
    assert portal.user(p.email).status == "activo"


def test_affiliate_who_does_not_remember_activates_with_sms_code(page, js, portal, shots):
    afiliado = full_afiliado(portal)
    p = register_affiliate(page, portal, afiliado, js, celular="3114445566")
    page.goto(portal.activation_link(p.email))
    expect(page.get_by_role("heading", name="Preguntas para activación de cuenta")).to_be_visible()
    page.get_by_role("button", name="No recuerdo mis datos").click()
    shot(page, shots, "8-codigo", js)
    _activate_with_code(page, portal, afiliado, p)


def test_thin_data_affiliate_goes_straight_to_the_code(page, js, portal, shots):
    afiliado = thin_afiliado(portal)
    p = register_affiliate(page, portal, afiliado, js, celular="3125556677")
    page.goto(portal.activation_link(p.email))
    expect(page.get_by_role("heading", name="Activación con código por SMS")).to_be_visible()
    expect(page.get_by_text("no tiene suficientes datos suyos")).to_be_visible()
    expect(page.get_by_role("heading", name="Preguntas para activación de cuenta")).to_have_count(0)
    shot(page, shots, "8-codigo-datos-escasos", js)
    page.get_by_role("button", name="Enviar código").click()
    _activate_with_code(page, portal, afiliado, p)


# --- 5. bad input ---------------------------------------------------------------


def test_bad_input_keeps_the_input_and_explains_next_to_fields(page, js, portal, shots):
    p = person(portal, celular="12345")
    open_registration(page)
    lookup_non_affiliate(page, p.documento)
    loads = navigations(page)
    fill_names(page, p)
    fill_recovery_and_password(page, p, confirm="OtraClave#99")
    page.get_by_role("button", name="Crear Nuevo Usuario").click()

    summary = page.get_by_role("alert").filter(has_text="Revise los campos marcados")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()  # after the htmx swap and on the no-JS page load alike
    celular = page.get_by_label("Celular", exact=True)
    confirm = page.get_by_label("Confirmar Contraseña", exact=True)
    expect(page.get_by_text("escríbalas de nuevo")).to_be_visible()
    summary.get_by_role("link", name=re.compile("^Celular:")).click()
    expect(celular).to_be_focused()
    expect(celular).to_have_attribute("aria-invalid", "true")
    expect(celular).to_have_accessible_description(re.compile(re.escape(MOBILE_ERROR)))
    expect(confirm).to_have_attribute("aria-invalid", "true")
    expect(confirm).to_have_accessible_description(re.compile(re.escape(MISMATCH)))
    # What the person typed is still there (passwords excepted).
    expect(celular).to_have_value("12345")
    expect(page.get_by_label("Email", exact=True)).to_have_value(p.email)
    expect(page.get_by_label(DOC, exact=True)).to_have_value(p.documento)
    expect(page.get_by_label("Primer Apellido", exact=True)).to_have_value(p.primer_apellido)
    expect(page.get_by_label("Segundo Nombre", exact=True)).to_have_value(p.segundo_nombre)
    expect(page.get_by_label(FECHA, exact=True)).to_have_value(p.fecha)
    shot(page, shots, "1-registro-errores", js)
    if js:
        assert loads == [], f"htmx should swap the form in place, not load a page: {loads}"

    # Fix the two fields and go on: the confirmation appears; nothing was saved yet.
    celular.fill("3104567890")
    page.get_by_label("Contraseña", exact=True).fill(p.password)
    confirm.fill(p.password)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    expect(page.get_by_role("heading", name="Confirmar Solicitud")).to_be_visible()
    assert not portal.user_exists(p.email)


def test_weak_password_and_bad_date_are_explained(page, js, portal):
    p = person(portal, fecha="31/02/1990", password="corta")
    open_registration(page)
    lookup_non_affiliate(page, p.documento)
    fill_names(page, p)
    fill_recovery_and_password(page, p)
    if js:  # checked live while typing (htmx), before sending the form: the rule is ticked off
        rule = page.locator("#clave-ayuda li", has_text="Mínimo 8 caracteres.")
        expect(rule).to_contain_text("Falta")
        expect(
            page.locator("#clave-ayuda li", has_text="Caracteres en minúscula.")
        ).to_contain_text("Cumple")
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    fecha = page.get_by_label(FECHA, exact=True)
    expect(fecha).to_have_accessible_description(re.compile("La fecha 31/02/1990 no existe."))
    expect(fecha).to_have_value("31/02/1990")
    password = page.get_by_label("Contraseña", exact=True)
    expect(password).to_have_accessible_description(re.compile("Debe tener mínimo 8 caracteres."))
    expect(page.get_by_label("Celular", exact=True)).to_have_value(p.celular)
    assert not portal.user_exists(p.email)


def test_existing_document_is_refused(page, js, portal):
    first = person(portal)
    portal.seed_user(email=first.email, numero_documento=first.documento)
    other = Person(documento=first.documento, email=f"otra.{first.email}")
    open_registration(page)
    lookup_non_affiliate(page, other.documento)
    fill_names(page, other)
    fill_recovery_and_password(page, other)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    expect(page.get_by_label(DOC, exact=True)).to_have_accessible_description(
        re.compile("Este documento ya tiene una cuenta.")
    )
    expect(page.get_by_label("Email", exact=True)).to_have_value(other.email)
    assert not portal.user_exists(other.email)


def test_names_typed_during_a_slow_lookup_are_kept(visit, portal):
    """On slow data a person types the names before the look-up answers; keep them."""
    page = visit(js=True).page
    p = person(portal)
    open_registration(page)
    held = []
    page.route(
        "**/registro/consulta", lambda route: held.append(route)
    )  # the network is slow: hold the answer
    fill_document(page, p.documento)
    page.get_by_label(DOC, exact=True).press("Tab")
    for _ in range(100):  # until the look-up has left the browser
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "leaving the document field should look it up"
    fill_names(page, p)
    for route in held:
        route.continue_()
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("No afiliado")
    expect(page.get_by_label("Primer Apellido", exact=True)).to_have_value(p.primer_apellido)
    expect(page.get_by_label("Primer Nombre", exact=True)).to_have_value(p.primer_nombre)


def test_enter_looks_the_document_up_once(visit, portal):
    """One Enter, one look-up: the look-up is rate limited (10 a minute)."""
    page = visit(js=True).page
    afiliado = full_afiliado(portal)
    open_registration(page)
    lookups = []
    page.on("request", lambda r: lookups.append(r.url) if "/registro/consulta" in r.url else None)
    fill_document(page, afiliado.numero_documento)
    page.get_by_label(DOC, exact=True).press("Enter")
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("ACTIVO")
    page.wait_for_load_state("networkidle")
    assert len(lookups) == 1, lookups


def test_confirmation_dialog_takes_the_focus(visit, portal):
    """Keyboard and screen-reader users are taken into "Confirmar Solicitud", and kept there."""
    page = visit(js=True).page
    p = person(portal)
    open_registration(page)
    lookup_non_affiliate(page, p.documento)
    fill_names(page, p)
    fill_recovery_and_password(page, p)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    dialog = page.get_by_role("dialog", name="Confirmar Solicitud")
    expect(dialog).to_be_visible()
    expect(page.locator("dialog:focus, dialog :focus")).to_have_count(1, timeout=2_000)
    expect(page.locator("dialog:modal")).to_have_count(1)
    for _ in range(8):  # Tab never walks out into the form behind (the page is inert)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('#form-registro') === null")
    # The data come first, above the fold of a phone; the manual's warning after them.
    summary, warning = dialog.locator("dl.summary"), dialog.get_by_text("Está seguro que desea")
    expect(summary).to_be_in_viewport()
    assert summary.bounding_box()["y"] < warning.bounding_box()["y"]
    dialog.get_by_role("button", name="Cancelar").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Cancelamos la solicitud")).to_be_focused()
    # The form kept everything, passwords too; the same request is confirmed again.
    expect(page.get_by_label("Contraseña", exact=True)).to_have_value(p.password)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    page.get_by_role("dialog", name="Confirmar Solicitud").get_by_role(
        "button", name="Crear Usuario"
    ).click()
    expect(page.get_by_role("heading", name="Guardado Exitosamente")).to_be_visible()
    assert portal.user_exists(p.email)


def test_lookup_error_is_tied_to_the_document_field(page, js, portal):
    open_registration(page)
    page.get_by_label("Tipo Documento", exact=True).select_option(label="NIT")
    page.get_by_label(DOC, exact=True).fill("890102044-2")
    page.get_by_label(DOC, exact=True).press("Enter")
    documento = page.get_by_label(DOC, exact=True)
    expect(documento).to_have_attribute("aria-invalid", "true")
    expect(documento).to_have_accessible_description(
        re.compile("El dígito de verificación del NIT no es válido.")
    )
    expect(documento).to_have_value("890102044-2")
    if js:
        expect(documento).to_be_focused()  # the swap did not steal the place


# --- accessibility (axe-core, in a context that may inject it) ------------------


def _walk_and_audit(page: Page, portal, source: str) -> dict[str, list[dict]]:
    """Walk every journey's pages and run axe-core on each."""
    found: dict[str, list[dict]] = {}

    def audit(name: str) -> None:
        found[name] = axe_violations(page, source)

    page.goto("/")
    audit("login")
    login(page, Person(documento="1", email="nadie@correo-hanna.co"))
    expect(page.get_by_text("El email o la contraseña no son correctos.")).to_be_visible()
    audit("login con error")

    page.goto("/registro")
    audit("registro vacío")
    p = person(portal, celular="12345")
    lookup_non_affiliate(page, p.documento)
    fill_names(page, p)
    fill_recovery_and_password(page, p, confirm="OtraClave#99")
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    expect(page.get_by_text(MISMATCH, exact=True)).to_be_visible()
    audit("registro con errores")

    page.get_by_label("Celular", exact=True).fill("3104567890")
    page.get_by_label("Contraseña", exact=True).fill(p.password)
    page.get_by_label("Confirmar Contraseña", exact=True).fill(p.password)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    expect(page.get_by_role("heading", name="Confirmar Solicitud")).to_be_visible()
    audit("confirmar solicitud")
    page.get_by_role("button", name="Crear Usuario").click()
    expect(page.get_by_role("heading", name="Guardado Exitosamente")).to_be_visible()
    audit("guardado exitosamente")
    page.goto(portal.activation_link(p.email))
    audit("activar")
    activate_by_link(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenido")
    audit("inicio")
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", name="Iniciar Sesión")).to_be_visible()

    afiliado = full_afiliado(portal)
    page.goto("/registro")
    fill_document(page, afiliado.numero_documento)
    page.get_by_label(DOC, exact=True).press("Enter")
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("ACTIVO")
    audit("registro afiliado")
    a = person(portal, documento=afiliado.numero_documento)
    fill_recovery_and_password(page, a)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    page.get_by_role("button", name="Crear Usuario").click()
    expect(page.get_by_role("heading", name="Guardado Exitosamente")).to_be_visible()
    link = portal.activation_link(a.email)
    page.goto(link)
    audit("preguntas, inicio")
    begin_quiz(page)
    audit("preguntas")
    for _ in range(2):
        if page.get_by_role("button", name="Comenzar las preguntas").count():
            begin_quiz(page)
        answer_quiz(page, portal.open_quiz(a.email), right=False)
        expect(page.get_by_text("Alguna de sus respuestas no coincide")).to_be_visible()
    audit("preguntas con error")
    page.get_by_role("button", name="No recuerdo mis datos").click()
    expect(page.get_by_text("Enviamos un código al celular")).to_be_visible()
    audit("código enviado")
    page.get_by_label("Código recibido por SMS", exact=True).fill("12")
    page.get_by_role("button", name="Validar código").click()
    expect(page.get_by_text("El código tiene 6 dígitos.")).to_be_visible()
    audit("código con error")
    page.goto(link)
    begin_quiz(page)
    answer_quiz(page, portal.open_quiz(a.email), right=False)
    expect(page.get_by_role("heading", name="Su usuario está bloqueado")).to_be_visible()
    audit("bloqueado")

    thin = thin_afiliado(portal)
    page.goto("/registro")
    fill_document(page, thin.numero_documento)
    page.get_by_label(DOC, exact=True).press("Enter")
    expect(page.get_by_label(ESTADO, exact=True)).to_have_value("ACTIVO")
    t = person(portal, documento=thin.numero_documento)
    fill_recovery_and_password(page, t)
    page.get_by_role("button", name="Crear Nuevo Usuario").click()
    page.get_by_role("button", name="Crear Usuario").click()
    expect(page.get_by_role("heading", name="Guardado Exitosamente")).to_be_visible()
    page.goto(portal.activation_link(t.email))
    expect(page.get_by_text("no tiene suficientes datos suyos")).to_be_visible()
    audit("código (datos escasos)")
    return found


@pytest.fixture(scope="module")
def axe_results(browser, portal, axe_source, visit_class):
    """Audit once per mode: with htmx, and with htmx blocked (the no-JS pages)."""
    return audit_with_and_without_htmx(
        browser,
        portal,
        visit_class,
        lambda open_visit: _walk_and_audit(open_visit().page, portal, axe_source),
    )


@markup_audit
@pytest.mark.parametrize("mode", ["htmx", "sin-htmx"])
def test_pages_have_no_axe_violations(axe_results, mode):
    found = axe_results[mode]
    assert len(found) == 16, sorted(found)
    problems = axe_problems(found)
    assert not problems, "axe-core violations:\n" + "\n".join(problems)
