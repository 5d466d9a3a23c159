"""The live password check: rules tick off as they are met, on every page that sets one."""

from __future__ import annotations

import re

import pytest

from core import passwords
from tests.factories import PASSWORD, make_user, registration_form


def rules_block(html: str) -> str:
    found = re.search(r'<div id="clave-ayuda".*?</div>', html, re.S)
    assert found, html
    return found.group(0)


def marks(html: str) -> list[str]:
    """The met/unmet word of each numbered rule, in order."""
    items = re.findall(r"<li>(.*?)</li>", rules_block(html), re.S)
    assert len(items) == len(passwords.RULES)
    return ["cumple" if "Cumple" in i else "falta" if "Falta" in i else "" for i in items]


def reset_link(client, outbox, user) -> str:
    client.post("/restablecer", data={"email": user.email})
    return outbox.last_link("/restablecer/")


@pytest.mark.parametrize(
    "password, expected",
    [
        ("abc", ["falta", "falta", "cumple", "falta"]),
        ("abcdefgh", ["cumple", "falta", "cumple", "falta"]),
        ("Abcdefgh", ["cumple", "cumple", "cumple", "falta"]),
        ("Tr4vesia-Luna", ["cumple", "cumple", "cumple", "cumple"]),
    ],
)
def test_registration_check_ticks_off_each_rule(db, client, htmx, password, expected):
    form = registration_form(password=password, confirm=password)
    page = client.post("/registro/clave", data=form, headers=htmx)
    assert page.status_code == 200 and marks(page.text) == expected
    assert 'aria-live="polite"' in rules_block(page.text)


def test_rules_carry_no_mark_before_anything_is_typed(db, client):
    assert marks(client.get("/registro").text) == [""] * 4


def test_reset_page_checks_the_password_live_with_the_users_data(db, client, outbox, htmx):
    user = make_user(numero_documento="79123456")
    link = reset_link(client, outbox, user)
    page = client.get(link).text
    check = f"{link}/clave"
    assert f'hx-post="{check}"' in page and 'hx-target="#clave-ayuda"' in page
    typed = client.post(check, data={"password": "Xx79123456", "confirm": ""}, headers=htmx)
    assert typed.status_code == 200
    assert marks(typed.text) == ["cumple"] * 4
    assert "No puede contener su número de documento." in rules_block(typed.text)
    good = client.post(check, data={"password": "Tr4vesia-Luna"}, headers=htmx)
    assert "La contraseña cumple las reglas." in good.text
    named = client.post(check, data={"password": "Lucia04052000"}, headers=htmx)
    assert "muy común" not in named.text and "La contraseña cumple las reglas." in named.text


def test_reset_check_with_a_dead_link_says_so_and_checks_nothing(db, client, htmx):
    page = client.post("/restablecer/no-es-un-enlace/clave", data={"password": "x"}, headers=htmx)
    assert page.status_code == 410 and "enlace" in page.text
    assert "Cumple" not in page.text and "Falta" not in page.text


def test_reset_check_is_rate_limited(limited_app):
    client = limited_app.test_client()
    codes = [
        client.post("/restablecer/x/clave", data={"password": "x"}).status_code for _ in range(61)
    ]
    assert codes[-1] == 429 and 429 not in codes[:60]


def test_account_page_checks_the_new_password_live(db, client, htmx):
    user = make_user(celular="3157654321")
    client.post("/", data={"email": user.email, "password": PASSWORD})
    page = client.get("/cuenta").text
    assert 'hx-post="/cuenta/clave/revisar"' in page
    typed = client.post(
        "/cuenta/clave/revisar", data={"clave-password": "Ab3157654321"}, headers=htmx
    )
    assert typed.status_code == 200 and marks(typed.text) == ["cumple"] * 4
    assert "No puede contener sus números de teléfono." in rules_block(typed.text)


def test_account_check_needs_a_session(client, htmx):
    assert client.post("/cuenta/clave/revisar", headers=htmx).status_code == 401


def test_a_check_crossing_the_change_leaves_the_session_cookie_alone(db, app, client, htmx):
    # With JS the check may leave before the change's own POST and come back
    # after it: its answer must not overwrite the new cookie with a cleared one.
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    before = client.get_cookie("hanna_sesion").value
    new = "Nueva-Ruta-2026x"
    changed = client.post(
        "/cuenta/clave",
        data={"clave-current": PASSWORD, "clave-password": new, "clave-confirm": new},
    )
    assert changed.status_code == 303
    late = app.test_client()
    late.set_cookie("hanna_sesion", before)
    check = late.post("/cuenta/clave/revisar", data={"clave-password": "abc"}, headers=htmx)
    assert check.status_code == 200 and "Set-Cookie" not in check.headers
    assert client.get("/cuenta").status_code == 200
