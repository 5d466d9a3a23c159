"""What a first-time user reads: the Caja's name, tap-to-call numbers, an honest home."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import PASSWORD, make_user

CALL_CENTER = '<a class="tel" href="tel:+576053714545">(605)&nbsp;371&nbsp;4545</a>'
FREE_LINE = '<a class="tel" href="tel:018000915734">01&nbsp;8000&nbsp;915734</a>'
TEMPLATES = Path(__file__).parent.parent / "templates"
CSS = (Path(__file__).parent.parent / "static" / "app.css").read_text()


def test_header_names_the_caja_and_the_platform(client):
    header = re.search(r'<header class="top">.*?</header>', client.get("/").text, re.S).group(0)
    assert "<strong>Cajacopi</strong>" in header and "Plataforma&nbsp;Hanna" in header
    # Nothing hides the names on a small screen any more.
    assert ".brand span{display:none}" not in CSS


def test_footer_numbers_are_tap_to_call(client):
    footer = re.search(r"<footer.*?</footer>", client.get("/").text, re.S).group(0)
    assert CALL_CENTER in footer and FREE_LINE in footer


@pytest.mark.parametrize("path", ["/restablecer", "/restablecer/enviado", "/activar/roto"])
def test_pages_that_name_the_call_center_link_it_with_the_area_code(client, path):
    main = re.search(r"<main.*?</main>", client.get(path).text, re.S).group(0)
    assert CALL_CENTER in main and "(3714545)" not in main


def test_no_template_of_these_journeys_writes_the_number_by_hand():
    pages = "login _login_form olvide olvide_enviado restablecer enlace_invalido cuenta qr"
    pages += " _qr_estado qr_estado inicio"
    mine = ["base.html", "errors/500.html", *(f"accounts/{n}.html" for n in pages.split())]
    for name in mine:
        text = (TEMPLATES / name).read_text()
        assert "3714545" not in text and "371 4545" not in text, name
    for mail in (TEMPLATES / "email").iterdir():
        assert "(3714545)" not in mail.read_text(), mail.name


def test_login_buttons_sit_apart(client):
    page = client.get("/").text
    assert re.search(
        r'<div class="buttons">\s*<button[^>]*>Iniciar Sesión</button>\s*'
        r'<a class="button secondary"[^>]*>Código QR</a>',
        page,
    )
    gap = re.search(r"\.buttons\{[^}]*gap:([\d.]+)rem", CSS)
    assert gap and float(gap.group(1)) * 16 >= 8


def test_headings_are_not_forced_into_capitals():
    h1 = re.search(r"(?m)^h1\{[^}]*\}", CSS).group(0)
    assert "uppercase" not in h1


def test_home_says_what_can_be_done_now_and_promises_nothing_it_denies(db, client):
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    page = client.get("/inicio").text
    assert 'href="/cuenta">Ver mis datos y cambiar mi contraseña o mi correo</a>' in page
    assert 'href="/cuenta/sesiones">Mis sesiones</a>' in page
    # The tile offers what exists: "Solicitar" opens the real request form.
    offer = re.search(r'href="([^"]+)">Solicitar</a>', page)
    assert offer and client.get(offer.group(1)).status_code == 200
    assert "Pronto podrá" not in page and "no está disponible" not in page
    assert CALL_CENTER in page
