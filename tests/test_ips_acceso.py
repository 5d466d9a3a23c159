"""I1 — "Ingreso IPS" by NIT + correo + Contraseña, the e-mailed links, the reset, the IPS
admin's operators, and the staff page that gives an IPS its access (issue 11, point 1)."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from blueprints.ips import acceso
from core import ips_accounts, passwords, tokens
from core.auth import password_fingerprint
from models import Account, AuditEvent, Ips, IpsOperador, UserSession
from tests.factories import (
    PASSWORD,
    make_ips,
    make_ips_operador,
    make_staff,
    valid_nit,
)

LOGIN_FAILED = "El NIT, el correo electrónico o la contraseña no son correctos."
CHECK_DIGIT = "El dígito de verificación del NIT no es válido."
INACTIVE = "Su usuario no está activo."
NEW_PASSWORD = "Cerro-Azul-7351"
SENT = "/ips/olvide/enviado"


def ingresar(client, nit: str, correo: str, password: str = PASSWORD, **kwargs):
    return client.post("/ips", data={"nit": nit, "correo": correo, "password": password}, **kwargs)


def fresh(account: Account) -> Account:
    return Account.get_by_id(account.id)


def live_sessions(account: Account) -> int:
    return (
        UserSession.select()
        .where((UserSession.account == account.id) & UserSession.ended_at.is_null())
        .count()
    )


def dashed(nit: str) -> str:
    return f"{nit[:-1]}-{nit[-1]}"


def wrong_digit(nit: str) -> str:
    return f"{nit[:-1]}-{(int(nit[-1]) + 1) % 10}"


def signed_ago(app, purpose: str, account: Account, hours: float) -> str:
    """A link token for account as if it had been mailed hours ago (itsdangerous reads time.time)."""
    real = time.time
    try:
        time.time = lambda: real() - hours * 3600
        return tokens.make_token(
            app.config["SECRET_KEY"], purpose, {"u": account.id, "p": password_fingerprint(account)}
        )
    finally:
        time.time = real


@pytest.fixture
def operador(db):
    """The admin operator of an IPS with NIT 900111222 + its check digit."""
    ips = make_ips(nit=valid_nit(900111222), nombre="IPS Salud Caribe Norte")
    return make_ips_operador(ips=ips, email="laura@saludcaribe.example", nombre="Laura Gómez")


@pytest.fixture
def soporte(db, client, auth):
    staff = make_staff(roles=("soporte",), email="soporte@cajacopi.example", nombre="Ana Soporte")
    auth.login(client, staff)
    return staff


# --- Ingreso IPS ------------------------------------------------------------------------


def test_the_login_page_has_the_manuals_fields_and_explains_the_email(db, client):
    page = client.get("/ips")
    assert page.status_code == 200
    for text in ("Ingreso IPS", "NIT", "Correo electrónico", "Contraseña", "Ingresar"):
        assert text in page.text
    assert "así cada mensaje de la Mesa de Ayuda dice quién lo escribió" in page.text
    assert 'href="/ips/olvide"' in page.text


@pytest.mark.parametrize(
    "shape",
    [
        lambda n: dashed(n),  # 900111222-3
        lambda n: n,  # 9001112223
        lambda n: f"{n[:3]}.{n[3:6]}.{n[6:9]}-{n[9]}",  # 900.111.222-3
        lambda n: f" {n[:3]} {n[3:6]} {n[6:9]} - {n[9]} ",
        lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}",  # dots, the check digit stuck on
    ],
    ids=["dash", "plain", "dots", "spaces", "dots-no-dash"],
)
def test_every_way_of_writing_the_nit_signs_in(operador, client, shape):
    nit = operador.ips.ips.nit
    response = ingresar(client, shape(nit), "  Laura@SaludCaribe.example ")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ips/mesa"
    assert live_sessions(operador) == 1


def test_signed_in_the_login_page_goes_home_and_next_is_kept_on_this_site(operador, client):
    nit = operador.ips.ips.nit
    response = client.post(
        "/ips?next=https://evil.example/x",
        data={"nit": nit, "correo": operador.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/ips/mesa"
    assert client.get("/ips").headers["Location"] == "/ips/mesa"


def test_a_wrong_check_digit_is_said_next_to_the_nit(operador, client):
    typed = wrong_digit(operador.ips.ips.nit)
    response = ingresar(client, typed, operador.email)
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="nit-error">([^<]*)</p>', response.text)
    assert error and CHECK_DIGIT in error.group(1)
    assert f'value="{typed}"' in response.text  # the input is kept
    assert LOGIN_FAILED not in response.text
    assert live_sessions(operador) == 0


def _failures(operador) -> dict:
    nit = operador.ips.ips.nit
    other = make_ips_operador(email="otro@otraips.example")  # another IPS's operator
    unknown_ips = valid_nit(800999111)
    return {
        "wrong password": (nit, operador.email, "Otra-Clave-123"),
        "unknown e-mail": (nit, "nadie@saludcaribe.example", PASSWORD),
        "unknown NIT": (unknown_ips, operador.email, PASSWORD),
        "operator of another IPS with this NIT": (nit, other.email, PASSWORD),
        "this operator with another IPS's NIT": (other.ips.ips.nit, operador.email, PASSWORD),
    }


def test_unknown_nit_email_or_wrong_password_get_one_message(operador, client):
    pages = {}
    for case, (nit, correo, password) in _failures(operador).items():
        response = ingresar(client, nit, correo, password)
        assert response.status_code == 422, case
        assert LOGIN_FAILED in response.text, case
        assert INACTIVE not in response.text, case
        body = response.text
        for typed in (nit, correo):  # strip what differs by the input itself
            body = body.replace(typed, "")
        pages[case] = re.sub(r'name="csrf_token" value="[^"]*"', "", body)
    assert len(set(pages.values())) == 1
    assert UserSession.select().count() == 0


def test_an_ips_missing_from_the_eps_data_cannot_sign_in(operador, client):
    nit = operador.ips.ips.nit
    IpsOperador.delete().where(IpsOperador.account == operador.id).execute()
    response = ingresar(client, nit, operador.email)
    assert response.status_code == 422 and LOGIN_FAILED in response.text
    assert live_sessions(operador) == 0


def test_a_disabled_operator_is_refused_even_with_the_right_password(operador, client):
    Account.update(status=Account.DISABLED).where(Account.id == operador.id).execute()
    right = ingresar(client, operador.ips.ips.nit, operador.email)
    assert right.status_code == 422 and INACTIVE in right.text
    wrong = ingresar(client, operador.ips.ips.nit, operador.email, "Mala-Clave-99")
    assert LOGIN_FAILED in wrong.text and INACTIVE not in wrong.text
    assert live_sessions(operador) == 0


def test_a_pending_operator_cannot_sign_in(db, client, soporte, app, outbox):
    ips = make_ips(nit=valid_nit())
    client.post(
        f"/gestion/ips/{ips.id}",
        data={"accion": "dar_acceso", "nombre": "Pedro Paz", "correo": "pedro@ips.example"},
    )
    pending = Account.get(Account.email == "pedro@ips.example")
    assert pending.status == Account.PENDING
    for password in ("", PASSWORD, "x"):
        response = ingresar(app.test_client(), ips.nit, pending.email, password)
        assert response.status_code == 422
    assert live_sessions(pending) == 0


def test_the_back_off_refuses_even_the_right_password_for_a_while(operador, client, clock):
    nit = operador.ips.ips.nit
    for _ in range(5):
        assert ingresar(client, nit, operador.email, "Mala-Clave-99").status_code == 422
    waiting = ingresar(client, nit, operador.email)  # right, but inside the back-off
    assert waiting.status_code == 422 and LOGIN_FAILED in waiting.text
    assert live_sessions(operador) == 0
    clock.advance(seconds=5)
    assert ingresar(client, nit, operador.email).status_code == 303


def test_the_login_post_is_rate_limited(limited_app):
    from models import db

    with limited_app.app_context():
        db.connect(reuse_if_open=True)
        nit = make_ips(nit=valid_nit()).nit
        db.close()
    client = limited_app.test_client()
    codes = [ingresar(client, nit, "x@ips.example", "Mala-Clave-1").status_code for _ in range(11)]
    assert codes[:10] == [422] * 10 and codes[10] == 429
    assert client.get("/ips").status_code == 200  # the GET is not limited


def test_htmx_login_swaps_the_form_or_navigates(operador, client, htmx):
    bad = ingresar(client, operador.ips.ips.nit, operador.email, "Mala-Clave-1", headers=htmx)
    assert bad.status_code == 422
    assert bad.text.lstrip().startswith('<div id="ingreso"') and "<html" not in bad.text
    assert "HX-Request" in bad.headers["Vary"]
    good = ingresar(client, operador.ips.ips.nit, operador.email, headers=htmx)
    assert good.status_code == 204 and good.headers["HX-Redirect"] == "/ips/mesa"


def test_salir_ends_the_session(operador, client, auth):
    auth.login(client, operador)
    assert client.get("/ips/operadores").status_code == 200
    out = client.post("/ips/salir")
    assert out.status_code == 303 and out.headers["Location"] == "/ips"
    assert live_sessions(operador) == 0
    assert client.get("/ips/operadores").headers["Location"].startswith("/ips?next=")


def test_an_idle_ips_session_ends_after_the_shared_pc_time(operador, client, clock, app):
    assert ingresar(client, operador.ips.ips.nit, operador.email).status_code == 303
    limit = app.config["IDLE_MINUTES_SHARED"]
    clock.advance(minutes=limit - 1)
    assert client.get("/ips/operadores").status_code == 200  # still in time: and touched
    clock.advance(minutes=limit - 1)
    assert client.get("/ips/operadores").status_code == 200
    clock.advance(minutes=limit + 1)
    gone = client.get("/ips/operadores")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/ips?next=")
    login = client.get(gone.headers["Location"])
    assert "Su sesión se cerró por inactividad." in login.text
    row = UserSession.get(UserSession.account == operador.id)
    assert row.end_reason == UserSession.IDLE


# --- the layout and its menu --------------------------------------------------------------


def test_the_layout_names_the_ips_and_the_operator(operador, client, auth):
    auth.login(client, operador)
    page = client.get("/ips/operadores")
    assert "IPS Salud Caribe Norte" in page.text and "Laura Gómez" in page.text
    assert f"NIT {dashed(operador.ips.ips.nit)}" in page.text
    assert 'href="/ips/mesa"' in page.text and "Mesa de Ayuda – Mesa de Ayuda" in page.text
    assert 'action="/ips/salir"' in page.text and "Cerrar sesión" in page.text
    assert 'aria-current="page">Operadores' in page.text


def test_the_menu_leaves_out_what_is_not_there_or_not_allowed(operador, client, auth, monkeypatch):
    monkeypatch.setattr(
        acceso,
        "MENU",
        [*acceso.MENU, ("ips.no_existe", "Sección futura", acceso.Action.USE_HELP_DESK)],
    )
    auth.login(client, operador)
    page = client.get("/ips/operadores")
    assert page.status_code == 200 and "Sección futura" not in page.text
    with client.application.test_request_context():
        from flask_login import login_user

        login_user(make_ips_operador(ips=operador.ips.ips, es_admin=False))
        menu = acceso.ips_layout()["ips_menu"]()
    assert "ips.operadores" not in [endpoint for endpoint, _ in menu]


# --- the staff page -----------------------------------------------------------------------


@pytest.mark.parametrize("roles", [("pqrs",), ("convenios",), ("afiliaciones",)])
def test_staff_without_soporte_or_admin_cannot_reach_the_ips_pages(db, client, auth, roles):
    ips = make_ips(nit=valid_nit())
    auth.login(client, make_staff(roles=roles))
    assert client.get("/gestion/ips").status_code == 404
    assert client.get(f"/gestion/ips/{ips.id}").status_code == 404
    post = client.post(
        f"/gestion/ips/{ips.id}",
        data={"accion": "dar_acceso", "nombre": "X Y", "correo": "x@ips.example"},
    )
    assert post.status_code == 404
    assert Account.select().where(Account.kind == Account.IPS).count() == 0
    assert "Accesos de IPS" not in client.get("/gestion/").text


def test_the_anonymous_and_an_ips_operator_do_not_reach_the_staff_page(operador, client, auth):
    assert client.get("/gestion/ips").headers["Location"].startswith("/gestion/ingresar")
    auth.login(client, operador)
    assert client.get("/gestion/ips").status_code in (302, 404)


@pytest.mark.parametrize("roles", [("soporte",), ("admin",)])
def test_soporte_and_admin_see_the_list(db, client, auth, roles):
    make_ips(nit=valid_nit(), nombre="Clínica Los Almendros")
    auth.login(client, make_staff(roles=roles))
    page = client.get("/gestion/ips")
    assert page.status_code == 200 and "Clínica Los Almendros" in page.text
    assert 'href="/gestion/ips"' in client.get("/gestion/").text


def test_the_list_searches_by_nit_or_name_and_counts_operators(operador, client, soporte):
    admin_ips = operador.ips.ips
    make_ips_operador(ips=admin_ips, es_admin=False)
    disabled = make_ips_operador(ips=admin_ips, es_admin=False)
    Account.update(status=Account.DISABLED).where(Account.id == disabled.id).execute()
    other = make_ips(nit=valid_nit(), nombre="Clínica Los Almendros")
    nit = admin_ips.nit

    for search in (nit[:-1], dashed(nit), f"{nit[:3]}.{nit[3:6]}.{nit[6:9]}", "caribe norte"):
        page = client.get("/gestion/ips", query_string={"buscar": search})
        assert "IPS Salud Caribe Norte" in page.text, search
        assert other.nombre not in page.text, search
    row = re.search(r"<tr>\s*<td>" + re.escape(dashed(nit)) + r"</td>.*?</tr>", page.text, re.S)
    assert "<td>2</td>" in row.group(0) and "<td>Sí</td>" in row.group(0)
    clinic = client.get("/gestion/ips", query_string={"buscar": "almendros"}).text
    assert "<td>0</td>" in clinic and "Sin acceso" in clinic


def test_the_list_is_paginated_with_an_htmx_partial(db, client, soporte, htmx):
    for n in range(55):
        make_ips(nit=valid_nit(), nombre=f"IPS {n:03d}")
    first = client.get("/gestion/ips")
    assert "IPS 049" in first.text and "IPS 050" not in first.text
    more = re.search(r'href="(/gestion/ips\?despues=[^"]+)"', first.text).group(1)
    second = client.get(more.replace("&amp;", "&"), headers=htmx)
    assert second.status_code == 200 and "<html" not in second.text
    assert "IPS 050" in second.text and "IPS 054" in second.text and "IPS 049" not in second.text
    assert "HX-Request" in second.headers["Vary"]
    assert client.get("/gestion/ips?despues=basura").status_code == 303


def test_dar_acceso_creates_a_pending_admin_mails_the_link_and_is_audited(
    db, client, soporte, outbox
):
    ips = make_ips(
        nit=valid_nit(), nombre="Clínica Los Almendros", email="gerencia@almendros.example"
    )
    form = client.get(f"/gestion/ips/{ips.id}")
    assert form.status_code == 200 and 'value="gerencia@almendros.example"' in form.text

    response = client.post(
        f"/gestion/ips/{ips.id}",
        data={
            "accion": "dar_acceso",
            "nombre": " Marta  Rojas ",
            "correo": "Gerencia@Almendros.example",
        },
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/gestion/ips/{ips.id}"
    account = Account.get(Account.email == "gerencia@almendros.example")
    assert (account.kind, account.status, account.password_hash) == ("ips", "pendiente", "")
    assert account.login == f"{ips.nit}:gerencia@almendros.example"
    profile = account.ips
    assert (profile.ips_id, profile.nombre, profile.es_admin, profile.invited_by) == (
        ips.id,
        "Marta Rojas",
        True,
        soporte.id,
    )
    (row,) = AuditEvent.select().where(AuditEvent.action == "ips.invitar")
    assert (row.actor_id, row.target_type, row.target_id) == (soporte.id, "ips", ips.id)
    after = json.loads(row.after)
    assert after["operador"] == account.id and after["email"] == account.email
    assert after["administrador"] is True
    (mail,) = outbox.all("email")
    assert mail.recipient == account.email
    assert "Clínica Los Almendros" in mail.body_text and dashed(ips.nit) in mail.body_text
    assert "vence en 72 horas" in mail.body_text
    assert outbox.last_link("/ips/clave/")
    page = client.get(f"/gestion/ips/{ips.id}")
    assert (
        "Marta Rojas" in page.text and "Pendiente" in page.text and "Reenviar enlace" in page.text
    )


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"nombre": ""}, "nombre", "Este campo es obligatorio."),
        ({"nombre": "   "}, "nombre", "Este campo es obligatorio."),
        ({"correo": "no-es-correo"}, "correo", "Escriba un correo electrónico válido"),
        ({"nombre": "x" * 121}, "nombre", "120"),
    ],
)
def test_bad_dar_acceso_input_answers_422_next_to_the_field(
    db, client, soporte, outbox, over, field, message
):
    ips = make_ips(nit=valid_nit())
    data = {"accion": "dar_acceso", "nombre": "Marta Rojas", "correo": "m@ips.example", **over}
    response = client.post(f"/gestion/ips/{ips.id}", data=data)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', response.text)
    assert error and message in error.group(1)
    assert Account.select().where(Account.kind == Account.IPS).count() == 0
    assert outbox.all() == []


def test_a_duplicate_email_under_the_same_nit_is_told_clearly(operador, client, soporte, outbox):
    ips = operador.ips.ips
    response = client.post(
        f"/gestion/ips/{ips.id}",
        data={"accion": "dar_acceso", "nombre": "Otra Persona", "correo": operador.email.upper()},
    )
    assert response.status_code == 422
    assert "Esta IPS ya tiene un operador con ese correo electrónico." in response.text
    assert 'value="Otra Persona"' in response.text
    assert outbox.all() == []
    # The same person may work for another IPS: another NIT, another login.
    other = make_ips(nit=valid_nit())
    again = client.post(
        f"/gestion/ips/{other.id}",
        data={"accion": "dar_acceso", "nombre": "Laura Gómez", "correo": operador.email},
    )
    assert again.status_code == 303


def test_resend_mails_a_new_link_only_for_a_pending_operator_of_that_ips(
    operador, client, soporte, outbox
):
    ips = make_ips(nit=valid_nit())
    client.post(
        f"/gestion/ips/{ips.id}",
        data={"accion": "dar_acceso", "nombre": "Pedro Paz", "correo": "pedro@ips.example"},
    )
    pending = Account.get(Account.email == "pedro@ips.example")
    resent = client.post(
        f"/gestion/ips/{ips.id}", data={"accion": "reenviar", "operador": pending.id}
    )
    assert resent.status_code == 303 and len(outbox.all("email")) == 2
    # An active operator needs no link; one of another IPS is not found here.
    active = client.post(
        f"/gestion/ips/{operador.ips.ips_id}", data={"accion": "reenviar", "operador": operador.id}
    )
    assert active.status_code == 303
    assert "ya creó su contraseña" in client.get(active.headers["Location"]).text
    assert (
        client.post(
            f"/gestion/ips/{ips.id}", data={"accion": "reenviar", "operador": operador.id}
        ).status_code
        == 404
    )
    for junk in ("", "abc", "²", "9" * 30):
        answer = client.post(
            f"/gestion/ips/{ips.id}", data={"accion": "reenviar", "operador": junk}
        )
        assert answer.status_code == 404, junk
    assert client.post(f"/gestion/ips/{ips.id}", data={"accion": "otra"}).status_code == 400
    assert client.get("/gestion/ips/999999").status_code == 404
    assert len(outbox.all("email")) == 2


def test_the_staff_form_needs_its_csrf_token(db, client, soporte, app, outbox):
    ips = make_ips(nit=valid_nit())
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(
            f"/gestion/ips/{ips.id}",
            data={"accion": "dar_acceso", "nombre": "Pedro Paz", "correo": "pedro@ips.example"},
        )
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    assert Account.select().where(Account.kind == Account.IPS).count() == 0


# --- the invitation link ------------------------------------------------------------------------


def invited(client, outbox, email="pedro@ips.example", ips=None) -> tuple[Account, str]:
    ips = ips or make_ips(nit=valid_nit(), telefono="6053714545")
    response = client.post(
        f"/gestion/ips/{ips.id}",
        data={"accion": "dar_acceso", "nombre": "Pedro Paz", "correo": email},
    )
    assert response.status_code == 303
    return Account.get(Account.email == email), outbox.last_link("/ips/clave/")


def test_the_invitation_link_sets_the_password_once_and_signs_in(db, client, soporte, app, outbox):
    account, link = invited(client, outbox)
    visitor = app.test_client()
    page = visitor.get(link)
    assert page.status_code == 200 and "Pedro Paz" in page.text
    for rule in passwords.RULES:
        assert rule in page.text
    assert fresh(account).status == "pendiente"  # a GET reads only

    done = visitor.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/ips/mesa"
    assert fresh(account).status == "activo" and fresh(account).password_hash
    assert live_sessions(account) == 1
    assert visitor.get("/ips").headers["Location"] == "/ips/mesa"  # signed in

    for again in (
        app.test_client().get(link),
        app.test_client().post(
            link, data={"password": "Otra-Clave-993", "confirm": "Otra-Clave-993"}
        ),
    ):
        assert again.status_code == 410
        assert "ya fue usado" in again.text
    nit = account.ips.ips.nit
    assert ingresar(app.test_client(), nit, account.email, NEW_PASSWORD).status_code == 303


def test_an_expired_invitation_link_says_so(db, client, soporte, app, outbox):
    account, _ = invited(client, outbox)
    ok = signed_ago(app, ips_accounts.INVITE_PURPOSE, account, 71)
    assert app.test_client().get(f"/ips/clave/{ok}").status_code == 200
    late = signed_ago(app, ips_accounts.INVITE_PURPOSE, account, 73)
    for response in (
        app.test_client().get(f"/ips/clave/{late}"),
        app.test_client().post(
            f"/ips/clave/{late}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        ),
    ):
        assert response.status_code == 410
        assert "venció (es válido por 72 horas)" in response.text
    assert fresh(account).password_hash == ""


@pytest.mark.parametrize(
    "forge",
    [
        lambda link, app, acc: link[:-3] + ("abc" if not link.endswith("abc") else "xyz"),
        lambda link, app, acc: (
            "/ips/clave/"
            + tokens.make_token(
                app.config["SECRET_KEY"],
                tokens.STAFF_INVITE,
                {"u": acc.id, "p": password_fingerprint(acc)},
            )
        ),
        lambda link, app, acc: (
            "/ips/clave/"
            + tokens.make_token(
                app.config["SECRET_KEY"],
                ips_accounts.RESET_PURPOSE,
                {"u": acc.id, "p": password_fingerprint(acc)},
            )
        ),
        lambda link, app, acc: (
            "/ips/clave/"
            + tokens.make_token(
                "otra-clave",
                ips_accounts.INVITE_PURPOSE,
                {"u": acc.id, "p": password_fingerprint(acc)},
            )
        ),
        lambda link, app, acc: (
            "/ips/clave/"
            + tokens.make_token(
                app.config["SECRET_KEY"], ips_accounts.INVITE_PURPOSE, {"u": "1", "p": "x"}
            )
        ),
        lambda link, app, acc: (
            "/ips/clave/"
            + tokens.make_token(
                app.config["SECRET_KEY"], ips_accounts.INVITE_PURPOSE, ["no", "dict"]
            )
        ),
        lambda link, app, acc: "/ips/clave/%C3%B1%00%FF",
        lambda link, app, acc: "/ips/clave/" + "a" * 3000,
    ],
    ids=[
        "tampered",
        "staff-purpose",
        "reset-purpose",
        "other-key",
        "string-id",
        "list",
        "junk",
        "long",
    ],
)
def test_a_forged_invitation_link_is_refused_in_spanish(db, client, soporte, app, outbox, forge):
    account, link = invited(client, outbox)
    bad = forge(link, app, account)
    for response in (
        app.test_client().get(bad),
        app.test_client().post(bad, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
        app.test_client().post(bad + "/revisar", data={"password": NEW_PASSWORD}),
    ):
        assert response.status_code in (400, 404, 410), response.status_code
        if response.status_code == 410:
            assert "no es válido" in response.text
    assert fresh(account).password_hash == ""


def test_a_link_for_another_kind_of_account_is_refused(db, client, soporte, app, outbox):
    invited(client, outbox)
    staff = make_staff(roles=("pqrs",), status=Account.PENDING)
    Account.update(password_hash="").where(Account.id == staff.id).execute()
    staff = fresh(staff)
    token = tokens.make_token(
        app.config["SECRET_KEY"],
        ips_accounts.INVITE_PURPOSE,
        {"u": staff.id, "p": password_fingerprint(staff)},
    )
    response = app.test_client().post(
        f"/ips/clave/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 410 and fresh(staff).password_hash == ""


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("corta1A", passwords.TOO_SHORT),
        ("sinmayusculas123", passwords.NO_UPPER),
        ("SINMINUSCULAS123", passwords.NO_LOWER),
        ("SinNumerosAqui", passwords.NO_DIGIT),
        ("Password123", passwords.TOO_COMMON),
        ("Clave{nit}x", passwords.HAS_DOCUMENT),
        ("Tel6053714545a", passwords.HAS_PHONE),
        ("Pedro@ips1X", passwords.HAS_EMAIL),
    ],
)
def test_the_password_rules_apply_to_the_first_password(
    db, client, soporte, app, outbox, password, message
):
    account, link = invited(client, outbox)
    password = password.format(nit=account.ips.ips.nit)
    response = app.test_client().post(link, data={"password": password, "confirm": password})
    assert response.status_code == 422
    assert message in response.text
    assert fresh(account).password_hash == ""
    live = app.test_client().post(f"{link}/revisar", data={"password": password})
    assert live.status_code == 200
    assert message in live.text or "Falta" in live.text
    assert "La contraseña cumple las reglas." not in live.text


def test_mismatched_confirmation_is_refused(db, client, soporte, app, outbox):
    account, link = invited(client, outbox)
    response = app.test_client().post(
        link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}
    )
    assert response.status_code == 422 and "Las contraseñas no coinciden." in response.text
    assert fresh(account).password_hash == ""


def test_two_submits_of_the_same_invitation_set_one_password(db, client, soporte, app, outbox):
    account, _ = invited(client, outbox)
    first, second = fresh(account), fresh(account)
    ips_accounts.accept_invitation(first, NEW_PASSWORD)
    with pytest.raises(ips_accounts.IpsProblem):
        ips_accounts.accept_invitation(second, "Otra-Clave-2026")
    assert (
        ingresar(app.test_client(), account.ips.ips.nit, account.email, NEW_PASSWORD).status_code
        == 303
    )


def test_an_operator_disabled_before_using_the_link_is_refused(operador, client, app, outbox, auth):
    auth.login(client, operador)
    client.post("/ips/operadores", data={"nombre": "Pedro Paz", "correo": "pedro@ips.example"})
    link = outbox.last_link("/ips/clave/")
    pedro = Account.get(Account.email == "pedro@ips.example")
    client.post(f"/ips/operadores/{pedro.id}", data={"accion": "deshabilitar"})
    response = app.test_client().get(link)
    assert response.status_code == 410 and "ya no está vigente" in response.text


# --- ¿Olvidó su contraseña? -------------------------------------------------------------------


def olvide(client, nit: str, correo: str):
    return client.post("/ips/olvide", data={"nit": nit, "correo": correo})


def test_the_reset_answers_the_same_for_unknown_and_known(operador, client, outbox):
    nit = operador.ips.ips.nit
    known = olvide(client, dashed(nit), operador.email)
    unknown_email = olvide(client, nit, "nadie@saludcaribe.example")
    unknown_nit = olvide(client, valid_nit(800999111), "laura2@saludcaribe.example")
    for response in (known, unknown_email, unknown_nit):
        assert response.status_code == 303 and response.headers["Location"] == SENT
    assert client.get(SENT).status_code == 200
    mails = outbox.all("email")
    assert [m.recipient for m in mails] == [
        operador.email,
        "nadie@saludcaribe.example",
        "laura2@saludcaribe.example",
    ]
    assert "/ips/restablecer/" in mails[0].body_text
    assert all("/ips/" not in m.body_text.replace("/ips/olvide", "") for m in mails[1:])
    assert "no hay un usuario activo" in mails[1].body_text


def test_the_reset_checks_the_nit_like_the_login(db, client, outbox):
    response = olvide(client, wrong_digit(valid_nit()), "x@ips.example")
    assert response.status_code == 422 and CHECK_DIGIT in response.text
    assert outbox.all() == []


def test_the_reset_asks_the_captcha_when_it_is_on(operador, app, client, outbox):
    from blueprints.public import service as captchas

    app.config["CAPTCHA"] = "image"
    key_of = re.compile(r'name="captcha_key" value="([^"]+)"')
    form = {"nit": operador.ips.ips.nit, "correo": operador.email}
    key = key_of.search(client.get("/ips/olvide").text).group(1)
    wrong = client.post("/ips/olvide", data=form | {"captcha": "zzzzzz", "captcha_key": key})
    assert wrong.status_code == 422 and "El texto no coincide" in wrong.text
    assert f'value="{operador.email}"' in wrong.text and outbox.all() == []
    key = key_of.search(wrong.text).group(1)
    with app.app_context():
        text = captchas.challenge(key).text
    right = client.post("/ips/olvide", data=form | {"captcha": text, "captcha_key": key})
    assert right.status_code == 303 and len(outbox.all("email")) == 1


def test_a_pending_operator_who_asks_for_a_reset_gets_a_new_invitation(
    db, client, soporte, app, outbox
):
    account, _ = invited(client, outbox)
    olvide(app.test_client(), account.ips.ips.nit, account.email)
    link = outbox.last_link("/ips/clave/")
    assert len(outbox.all("email")) == 2
    assert app.test_client().get(link).status_code == 200


def test_the_reset_link_changes_the_password_once_and_ends_other_sessions(
    operador, client, app, outbox, auth
):
    other_pc = auth.login(app.test_client(), operador)
    assert other_pc.get("/ips/operadores").status_code == 200
    olvide(client, operador.ips.ips.nit, operador.email)
    link = outbox.last_link("/ips/restablecer/")
    page = client.get(link)
    assert page.status_code == 200 and "Actualizar Contraseña" in page.text
    weak = client.post(link, data={"password": "Password123", "confirm": "Password123"})
    assert weak.status_code == 422 and passwords.TOO_COMMON in weak.text

    done = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert done.status_code == 303 and done.headers["Location"] == "/ips"
    assert live_sessions(operador) == 0
    ended = other_pc.get("/ips/operadores")
    assert ended.status_code == 302
    assert "se restableció la contraseña" in other_pc.get(ended.headers["Location"]).text
    assert client.get(link).status_code == 410
    nit = operador.ips.ips.nit
    assert ingresar(client, nit, operador.email).status_code == 422
    assert ingresar(client, nit, operador.email, NEW_PASSWORD).status_code == 303


def test_reset_links_expire_after_an_hour_and_do_not_open_other_pages(operador, client, app):
    late = signed_ago(app, ips_accounts.RESET_PURPOSE, operador, 1.1)
    response = client.get(f"/ips/restablecer/{late}")
    assert response.status_code == 410 and "venció (es válido por 1 hora)" in response.text
    fresh_token = signed_ago(app, ips_accounts.RESET_PURPOSE, operador, 0)
    assert client.get(f"/ips/restablecer/{fresh_token}").status_code == 200
    assert client.get(f"/restablecer/{fresh_token}").status_code == 410  # not a Hanna reset
    assert client.get(f"/ips/clave/{fresh_token}").status_code == 410  # nor an invitation


def test_resets_are_limited_per_address_and_per_account(operador, client, outbox, clock):
    nit = operador.ips.ips.nit
    olvide(client, nit, operador.email)
    olvide(client, nit, operador.email)  # within two minutes: no second mail
    assert len(outbox.all("email")) == 1
    for _ in range(8):
        clock.advance(minutes=3)
        assert olvide(client, nit, operador.email).headers["Location"] == SENT
    assert len(outbox.all("email")) == ips_accounts.RESET_DAILY
    clock.advance(hours=24)
    olvide(client, nit, operador.email)
    assert len(outbox.all("email")) == ips_accounts.RESET_DAILY + 1


def test_the_reset_post_is_rate_limited_per_client(limited_app):
    client = limited_app.test_client()
    nit = valid_nit()
    codes = [olvide(client, nit, f"p{n}@ips.example").status_code for n in range(6)]
    assert codes[:5] == [303] * 5 and codes[5] == 429


# --- Operadores (the IPS admin) ------------------------------------------------------------------


def test_the_admin_adds_an_operator_who_gets_the_same_link(operador, client, app, outbox, auth):
    auth.login(client, operador)
    page = client.get("/ips/operadores")
    assert page.status_code == 200 and "Laura Gómez" in page.text and "Su usuario" in page.text

    response = client.post(
        "/ips/operadores", data={"nombre": "Carlos Pérez", "correo": "Carlos@SaludCaribe.example"}
    )

    assert response.status_code == 303 and response.headers["Location"] == "/ips/operadores"
    carlos = Account.get(Account.email == "carlos@saludcaribe.example")
    assert carlos.login == f"{operador.ips.ips.nit}:carlos@saludcaribe.example"
    assert (carlos.status, carlos.ips.es_admin, carlos.ips.invited_by) == (
        "pendiente",
        False,
        operador.id,
    )
    assert carlos.ips.ips_id == operador.ips.ips_id
    (row,) = AuditEvent.select().where(AuditEvent.action == "ips.invitar")
    assert row.actor_id == operador.id and row.target_id == operador.ips.ips_id
    (mail,) = outbox.all("email")
    assert "Laura Gómez, administrador(a) de su IPS, le dio acceso" in mail.body_text
    link = outbox.last_link("/ips/clave/")
    visitor = app.test_client()
    assert (
        visitor.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
        == 303
    )
    assert "Pendiente" not in client.get("/ips/operadores").text

    duplicate = client.post("/ips/operadores", data={"nombre": "Otro", "correo": carlos.email})
    assert duplicate.status_code == 422
    assert "Esta IPS ya tiene un operador con ese correo electrónico." in duplicate.text
    bad = client.post("/ips/operadores", data={"nombre": "", "correo": "x"})
    assert bad.status_code == 422 and "Este campo es obligatorio." in bad.text


def test_a_non_admin_operator_cannot_manage_operators(operador, client, auth):
    worker = make_ips_operador(ips=operador.ips.ips, es_admin=False)
    auth.login(client, worker)
    assert client.get("/ips/operadores").status_code == 404
    assert (
        client.post("/ips/operadores", data={"nombre": "X", "correo": "x@ips.example"}).status_code
        == 404
    )
    assert (
        client.post(f"/ips/operadores/{operador.id}", data={"accion": "deshabilitar"}).status_code
        == 404
    )
    assert fresh(operador).status == "activo"
    assert Account.select().where(Account.kind == Account.IPS).count() == 2


def test_the_admin_disables_an_operator_whose_sessions_end(operador, client, app, auth):
    worker = make_ips_operador(ips=operador.ips.ips, es_admin=False)
    worker_pc = auth.login(app.test_client(), worker)
    auth.login(client, operador)

    response = client.post(f"/ips/operadores/{worker.id}", data={"accion": "deshabilitar"})

    assert response.status_code == 303
    assert fresh(worker).status == "deshabilitado" and live_sessions(worker) == 0
    assert worker_pc.get("/ips/mesa").status_code == 302
    refused = ingresar(app.test_client(), operador.ips.ips.nit, worker.email)
    assert refused.status_code == 422 and INACTIVE in refused.text
    again = client.post(f"/ips/operadores/{worker.id}", data={"accion": "deshabilitar"})
    assert "ya estaba deshabilitado" in client.get(again.headers["Location"]).text
    client.post(f"/ips/operadores/{worker.id}", data={"accion": "habilitar"})
    assert fresh(worker).status == "activo"
    # Both changes are audited: who (the IPS admin), which operator, before → after.
    rows = list(
        AuditEvent.select()
        .where(AuditEvent.action == "ips.operador.estado")
        .order_by(AuditEvent.id)
    )
    assert [
        (r.actor_id, json.loads(r.before)["estado"], json.loads(r.after)["estado"]) for r in rows
    ] == [
        (operador.id, "activo", "deshabilitado"),
        (operador.id, "deshabilitado", "activo"),
    ]
    assert all(json.loads(r.after)["operador"] == worker.id for r in rows)


def test_the_admin_cannot_disable_themselves(operador, client, auth):
    auth.login(client, operador)
    response = client.post(f"/ips/operadores/{operador.id}", data={"accion": "deshabilitar"})
    assert (
        response.status_code == 422 and "No puede deshabilitar su propio usuario." in response.text
    )
    assert fresh(operador).status == "activo"


def test_another_ips_operator_is_not_found(operador, client, auth, outbox):
    stranger = make_ips_operador(email="marta@almendros.example")
    auth.login(client, operador)
    for action in ("deshabilitar", "habilitar", "reenviar"):
        response = client.post(f"/ips/operadores/{stranger.id}", data={"accion": action})
        assert response.status_code == 404, action
    assert fresh(stranger).status == "activo" and outbox.all() == []
    assert "marta@almendros.example" not in client.get("/ips/operadores").text
    assert client.post("/ips/operadores/999999", data={"accion": "deshabilitar"}).status_code == 404


# --- logs ----------------------------------------------------------------------------------


def test_no_token_or_email_reaches_the_log(db, client, soporte, app, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    email = "reservado.secreto@ips.example"
    account, link = invited(client, outbox, email=email)
    visitor = app.test_client()
    visitor.get(link)
    visitor.post(link, data={"password": "corta", "confirm": "corta"})
    visitor.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    visitor.post("/ips/salir")
    nit = account.ips.ips.nit
    ingresar(visitor, nit, email, "Mala-Clave-77")
    olvide(visitor, nit, email)
    reset = outbox.last_link("/ips/restablecer/")
    visitor.post(reset, data={"password": "Otra-Clave-5501", "confirm": "Otra-Clave-5501"})
    visitor.get(link)  # used: a 410
    # A request line as the development server and gunicorn write it goes through the filter.
    logging.getLogger("werkzeug").info('127.0.0.1 - - "GET %s HTTP/1.1" 200 -', link)
    records = [r for r in caplog.records if not r.name.startswith("peewee")]
    lines = "\n".join(r.getMessage() + (r.exc_text or "") for r in records)
    secrets_ = {
        "invitation token": link.rsplit("/", 1)[1],
        "reset token": reset.rsplit("/", 1)[1],
        "e-mail": email,
        "password": NEW_PASSWORD,
    }
    assert {name for name, value in secrets_.items() if value in lines} == set()
    assert any("/ips/clave/" in r.getMessage() for r in records if r.name == "werkzeug")


def test_the_ips_table_is_only_read_by_the_staff_page(operador, client, soporte):
    before = list(Ips.select().dicts())
    client.get("/gestion/ips")
    client.get(f"/gestion/ips/{operador.ips.ips_id}")
    assert list(Ips.select().dicts()) == before


# --- attacks: concurrent clicks, files where text belongs ------------------------------------


def test_concurrent_dar_acceso_clicks_make_one_operator(db, app, auth):
    import threading

    ips = make_ips(nit=valid_nit())
    staff = make_staff(roles=("soporte",))
    clients = [auth.login(app.test_client(), staff) for _ in range(6)]
    codes: list[int] = []
    start = threading.Barrier(len(clients))

    def click(client):
        start.wait()
        response = client.post(
            f"/gestion/ips/{ips.id}",
            data={"accion": "dar_acceso", "nombre": "Pedro Paz", "correo": "pedro@ips.example"},
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [303] + [422] * (len(clients) - 1)
    assert Account.select().where(Account.email == "pedro@ips.example").count() == 1
    assert AuditEvent.select().where(AuditEvent.action == "ips.invitar").count() == 1
    from models import Message

    assert Message.select().where(Message.recipient == "pedro@ips.example").count() == 1


def test_a_file_where_text_belongs_is_a_422(operador, client, auth, app):
    from io import BytesIO

    nit = operador.ips.ips.nit
    login = app.test_client().post(
        "/ips",
        data={
            "nit": (BytesIO(nit.encode()), "nit.txt"),
            "correo": operador.email,
            "password": PASSWORD,
        },
        content_type="multipart/form-data",
    )
    assert login.status_code == 422 and live_sessions(operador) == 0
    auth.login(client, operador)
    added = client.post(
        "/ips/operadores",
        data={"nombre": (BytesIO(b"%PDF-1.4"), "a.pdf"), "correo": "x@ips.example"},
        content_type="multipart/form-data",
    )
    assert added.status_code == 422
    assert (
        client.post("/ips/operadores", json={"nombre": "X", "correo": "x@ips.example"}).status_code
        == 422
    )
    assert Account.select().where(Account.kind == Account.IPS).count() == 1
