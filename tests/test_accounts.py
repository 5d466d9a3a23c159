"""Hanna accounts over HTTP: registration, look-up, activation, quiz, login, sessions."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from blueprints.accounts import service
from blueprints.public import service as captchas
from core import auth as core_auth
from core import tokens
from core.clock import utcnow
from models import Account, Message, UserSession
from tests.factories import PASSWORD, make_afiliado, make_user, registration_form


def challenge_of(app, key: str):
    with app.app_context():
        return captchas.challenge(key)


def ticket_of(html: str) -> str:
    return re.search(r'name="confirmacion" value="([^"]+)"', html).group(1)


def register(client, **over) -> tuple[dict, object]:
    """Walk both steps of "Crear Cuenta Nueva" without JavaScript."""
    form = registration_form(**over)
    confirm = client.post("/registro", data=form)
    assert confirm.status_code == 200, confirm.text
    assert "Confirmar Solicitud" in confirm.text
    done = client.post("/registro", data={**form, "confirmacion": ticket_of(confirm.text)})
    return form, done


# --- pages ---------------------------------------------------------------------


def test_login_page_shows_the_manual_words(client):
    page = client.get("/")
    assert page.status_code == 200
    for words in (
        "Iniciar Sesión",
        "Email",
        "Contraseña",
        "Crear Cuenta Nueva",
        "Descubrelo Ahora",
    ):
        assert words in page.text


def test_login_partial_for_htmx_varies_on_hx_request(client, htmx):
    response = client.post("/", data={"email": "", "password": ""}, headers=htmx)
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<div id="ingreso"')
    assert "HX-Request" in response.headers["Vary"]
    assert "Este campo es obligatorio." in response.text


def test_registration_form_has_the_three_blocks_and_captcha(app, client):
    app.config["CAPTCHA"] = "image"
    page = client.get("/registro").text
    for words in (
        "Datos afiliados",
        "Datos de recuperación de cuenta",
        "Contraseña",
        "Cédula / Nit (Con dígito de verificación)",
        "Fecha Nacimiento / Fecha Especial",
        "Mínimo 8 caracteres.",
        "Crear Nuevo Usuario",
        "Refrescar",
        "audio",
    ):
        assert words in page
    assert re.search(r'src="/captcha/[\w-]+\.png"', page)


# --- look-up ---------------------------------------------------------------------


def test_lookup_partial_fills_names_and_estado(db, client, htmx):
    afiliado = make_afiliado()
    response = client.post(
        "/registro/consulta",
        headers=htmx,
        data={"tipo_documento": "CC", "numero_documento": afiliado.numero_documento},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="datos-afiliado"')
    assert 'value="ANA"' in response.text and 'value="ACTIVO"' in response.text
    assert "readonly" in response.text
    assert "HX-Request" in response.headers["Vary"]
    # Only what the manual shows: no e-mail, mobile or birth date of the person.
    for private in ("ana@example.com", "3007386448", "1980"):
        assert private not in response.text


def test_lookup_without_js_rerenders_the_whole_form(db, client):
    afiliado = make_afiliado()
    page = client.post(
        "/registro/consulta",
        data={"tipo_documento": "CC", "numero_documento": afiliado.numero_documento},
    )
    assert page.status_code == 200
    assert "<html" in page.text and "Crear Nuevo Usuario" in page.text
    assert 'value="PÉREZ"' in page.text and f'value="{afiliado.numero_documento}"' in page.text


def test_lookup_of_unknown_document_says_not_affiliated(db, client, htmx):
    response = client.post(
        "/registro/consulta",
        headers=htmx,
        data={"tipo_documento": "CC", "numero_documento": "99887766"},
    )
    assert 'value="No afiliado"' in response.text


@pytest.mark.parametrize(
    "tipo, numero, message",
    [
        ("NI", "890102044-2", "dígito de verificación"),
        ("CC", "12ab", ""),
        ("CC", "", "Este campo es obligatorio."),
    ],
)
def test_lookup_rejects_bad_documents_next_to_the_field(db, client, tipo, numero, message):
    page = client.post(
        "/registro/consulta", data={"tipo_documento": tipo, "numero_documento": numero}
    )
    assert page.status_code == 422
    assert 'class="error"' in page.text
    assert message in page.text


def test_lookup_is_rate_limited(limited_app, htmx):
    client = limited_app.test_client()
    pages = [
        client.post(
            "/registro/consulta",
            headers=htmx,
            data={"tipo_documento": "CC", "numero_documento": str(123456 + i)},
        )
        for i in range(11)
    ]
    assert [p.status_code for p in pages] == [200] * 10 + [429]
    assert "Consultó demasiados documentos seguidos" in pages[-1].text


# --- registration validation ------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("celular", "2001234567", "celular colombiano"),
        ("celular", "", "Este campo es obligatorio."),
        ("email", "no-es-correo", "correo electrónico válido"),
        ("fecha_nacimiento", "1990-13-45", "fecha"),
        ("fecha_nacimiento", "31/02/1990", "no existe"),
        ("confirm", "Otra-Clave-99", "no coinciden"),
        ("password", "corta1A", "mínimo 8"),
        ("password", "todominuscula1", "mayúscula"),
        ("password", "Password123", "muy común"),
        ("numero_documento", "", "Este campo es obligatorio."),
        ("primer_nombre", "", "Este campo es obligatorio."),
    ],
)
def test_registration_shows_spanish_errors_and_keeps_input(db, client, field, value, message):
    form = registration_form(**{field: value})
    if field == "password":
        form["confirm"] = value
    page = client.post("/registro", data=form)
    assert page.status_code == 422
    assert message.lower() in page.text.lower()
    assert f'value="{form["email"]}"' in page.text or field == "email"
    assert Account.select().count() == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("tipo_documento", "ZZ"),
        ("primer_nombre", "x" * 61),
        ("email", "a" * 250 + "@x.co"),
        ("fecha_nacimiento", "31/02/1990"),
        ("celular", "３００１２３４５６７" * 5),
    ],
)
def test_odd_input_gets_a_spanish_message_not_a_500(db, client, field, value):
    page = client.post("/registro", data=registration_form(**{field: value}))
    assert page.status_code == 422
    error = re.search(r'class="error"[^>]*>([^<]+)<', page.text).group(1)
    assert not re.search(r"\b(the|field|must|valid choice|characters)\b", error, re.I), error


def test_a_nul_byte_nobody_types_gets_the_spanish_bad_request_page(db, client):
    page = client.post("/registro", data=registration_form(fecha_nacimiento="\x00"))
    assert page.status_code == 400 and "solicitud" in page.text.lower()
    assert Account.select().count() == 0


def test_password_may_not_contain_the_document_number(db, client):
    form = registration_form(numero_documento="77123456")
    form["password"] = form["confirm"] = "Clave77123456x"
    page = client.post("/registro", data=form)
    assert page.status_code == 422
    assert "No puede contener su número de documento." in page.text


def test_wrong_captcha_gives_a_new_one_and_creates_nothing(db, app, client):
    app.config["CAPTCHA"] = "image"
    key = re.search(r'name="captcha_key" value="([^"]+)"', client.get("/registro").text).group(1)
    page = client.post("/registro", data=registration_form(captcha="zzzzzz", captcha_key=key))
    assert page.status_code == 422
    assert "El texto no coincide" in page.text
    assert f'value="{key}"' not in page.text  # spent: a new challenge is shown
    with app.app_context():
        assert captchas.challenge(key) is None  # spent


def test_right_captcha_leads_to_confirmation_and_cannot_be_replayed(db, app, client):
    app.config["CAPTCHA"] = "image"
    key = re.search(r'name="captcha_key" value="([^"]+)"', client.get("/registro").text).group(1)
    text = challenge_of(app, key).text
    form = registration_form(captcha=text, captcha_key=key)
    assert "Confirmar Solicitud" in client.post("/registro", data=form).text
    assert client.post("/registro", data=form).status_code == 422


def test_audio_code_also_solves_the_captcha(db, app, client):
    app.config["CAPTCHA"] = "image"
    key = re.search(r'name="captcha_key" value="([^"]+)"', client.get("/registro").text).group(1)
    audio = client.get(f"/captcha/{key}.mp3")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert audio.data[:2] == b"\xff\xf3"  # an MPEG-2 layer III frame
    code = challenge_of(app, key).audio_code
    form = registration_form(captcha=code, captcha_key=key)
    assert "Confirmar Solicitud" in client.post("/registro", data=form).text


def test_dialog_keeps_the_captcha_solved_in_case_the_user_closes_it(db, app, client, htmx):
    app.config["CAPTCHA"] = "image"
    key = re.search(r'name="captcha_key" value="([^"]+)"', client.get("/registro").text).group(1)
    form = registration_form(captcha=challenge_of(app, key).text, captcha_key=key)
    response = client.post("/registro", data=form, headers=htmx)
    assert "<dialog open" in response.text
    kept = re.search(
        r'id="captcha" class="captcha" hx-swap-oob="true">\s*<input type="hidden" name="solicitud" value="([^"]+)"',
        response.text,
    )
    assert kept and kept.group(1) == ticket_of(response.text)  # closed with Esc: still solved


def test_confirmation_is_a_dialog_for_htmx(db, client, htmx):
    response = client.post("/registro", data=registration_form(), headers=htmx)
    assert response.headers["HX-Retarget"] == "#confirmacion"
    assert "<dialog open" in response.text and "Crear Usuario" in response.text
    assert 'hx-target="#confirmacion"' in response.text and PASSWORD not in response.text


# --- creating the account ---------------------------------------------------------------


def test_create_user_saves_inactive_account_and_queues_activation_mail(db, client, outbox):
    form, done = register(client)
    assert done.status_code == 303 and done.headers["Location"].endswith("/registro/guardado")
    user = Account.by_email(form["email"])
    assert user.status == Account.PENDING and user.hanna.afiliado is None
    assert user.hanna.primer_nombre == "Juan"
    mail = outbox.all("email")[-1]
    assert mail.recipient == form["email"] and "/activar/" in mail.body_text
    saved = client.get("/registro/guardado").text
    assert "Guardado Exitosamente" in saved and "El usuario ha sido creado exitosamente." in saved
    assert "ju***" in saved and form["email"] not in saved


def test_create_user_over_htmx_redirects_with_hx_redirect(db, client, htmx):
    form = registration_form()
    confirm = client.post("/registro", data=form, headers=htmx)
    done = client.post(
        "/registro", data={**form, "confirmacion": ticket_of(confirm.text)}, headers=htmx
    )
    assert done.status_code == 204 and done.headers["HX-Redirect"].endswith("/registro/guardado")


def test_affiliate_names_come_from_the_caja_data(db, client):
    afiliado = make_afiliado()
    form, _ = register(
        client,
        numero_documento=afiliado.numero_documento,
        primer_nombre="Falso",
        primer_apellido="Nombre",
    )
    user = Account.by_email(form["email"])
    assert (user.hanna.primer_nombre, user.hanna.afiliado_id) == ("ANA", afiliado.id)


def test_tampered_confirmation_creates_nothing(db, client):
    form = registration_form()
    client.post("/registro", data=form)
    page = client.post("/registro", data={**form, "confirmacion": "x.y.z"})
    assert page.status_code == 422 and Account.select().count() == 0
    assert "Esta solicitud ya fue usada o venció" in page.text


def test_confirmation_creates_the_data_confirmed_not_the_data_posted(db, client):
    form = registration_form()
    ticket = ticket_of(client.post("/registro", data=form).text)
    client.post("/registro", data={**form, "email": "otra@example.com", "confirmacion": ticket})
    assert Account.by_email("otra@example.com") is None and Account.by_email(form["email"])


def test_duplicate_email_creates_nothing_and_tells_the_owner_not_the_stranger(db, client, outbox):
    owner = make_user(email="duena@example.com")
    _, done = register(client, email="Duena@example.com")
    assert done.status_code == 303
    assert Account.select().count() == 1
    mail = outbox.all("email")[-1]
    assert mail.recipient == "duena@example.com" and "/activar/" not in mail.body_text
    assert owner.hanna.primer_nombre.title() in mail.body_text
    assert "Guardado Exitosamente" in client.get("/registro/guardado").text


def test_duplicate_document_gets_a_clear_message(db, client):
    make_user(numero_documento="80123456")
    page = client.post("/registro", data=registration_form(numero_documento="80123456"))
    assert page.status_code == 422
    assert "Este documento ya tiene una cuenta." in page.text
    assert Account.select().count() == 1


# --- activation -------------------------------------------------------------------------


def test_expired_activation_link_says_so(db, client, outbox, monkeypatch):
    user = make_user(status=Account.PENDING)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 49 * 3600)
    link = service.activation_link(user, secret="test-secret", base_url="")
    monkeypatch.setattr(time, "time", real)
    page = client.get(link)
    assert page.status_code == 410 and "venció" in page.text


def test_forged_activation_link_is_refused(db, client):
    user = make_user(status=Account.PENDING)
    forged = tokens.make_token(
        "otro-secreto", tokens.ACTIVATION, {"u": user.id, "n": user.hanna.activation_nonce}
    )
    assert client.get(f"/activar/{forged}").status_code == 410


# --- login, logout, sessions ------------------------------------------------------------------


def test_login_and_logout(db, client):
    user = make_user()
    done = client.post("/", data={"email": user.email.upper(), "password": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/inicio"
    assert "Bienvenido(a), Juan Torres" in client.get("/inicio").text
    out = client.post("/salir")
    assert out.status_code == 303 and "Clear-Site-Data" in out.headers
    assert client.get("/inicio").status_code == 302


@pytest.mark.parametrize(
    "email, password",
    [
        ("persona@example.com", "Mala-Clave-1"),  # unknown account
        (None, "Mala-Clave-1"),  # wrong password
    ],
)
def test_every_login_failure_looks_the_same(db, client, email, password):
    user = make_user()
    page = client.post("/", data={"email": email or user.email, "password": password})
    assert page.status_code == 422
    assert "El email o la contraseña no son correctos." in page.text


def test_back_off_starts_at_the_fifth_failure(db, client):
    user = make_user()
    for _ in range(5):
        client.post("/", data={"email": user.email, "password": "Mala-Clave-1"})
    user = Account.get_by_id(user.id)
    assert user.failed_logins == 5 and user.login_blocked_until > utcnow()
    # Even the right password is refused, with the same words, while backing off.
    page = client.post("/", data={"email": user.email, "password": PASSWORD})
    assert "El email o la contraseña no son correctos." in page.text


def test_backoff_grows_and_is_capped():
    assert core_auth.backoff(4) == timedelta(0)
    assert [core_auth.backoff(n).seconds for n in (5, 6, 7)] == [1, 2, 4]
    assert core_auth.backoff(40) == timedelta(minutes=15)


def test_pending_account_gets_the_failure_words_and_a_new_link_by_mail(db, client, outbox):
    """The page must not tell whoever just registered an address whether it had an account."""
    user = make_user(status=Account.PENDING)
    page = client.post("/", data={"email": user.email, "password": PASSWORD})
    wrong = client.post("/", data={"email": user.email, "password": "Otra-Clave-99"})
    assert page.status_code == wrong.status_code == 422
    assert "no son correctos" in page.text and "aún no está activa" not in page.text
    masked = r'name="csrf_token" value="[^"]+"'  # a fresh mask on every page
    assert re.sub(masked, "", page.text) == re.sub(masked, "", wrong.text)
    mails = outbox.all("email")
    assert [m.recipient for m in mails] == [user.email]
    assert "/activar/" in mails[0].body_text


def test_session_id_rotates_at_login_and_copied_cookie_dies_at_logout(db, app, client):
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    cookie = client.get_cookie("hanna_sesion").value
    thief = app.test_client()
    thief.set_cookie("hanna_sesion", cookie)
    assert thief.get("/inicio").status_code == 200
    client.post("/salir")
    assert thief.get("/inicio").status_code == 302
    assert UserSession.select().where(UserSession.ended_at.is_null()).count() == 0


def test_the_session_cookie_carries_no_digest_of_address_and_browser(db, app, client):
    # Flask-Login would keep a SHA-512 of address and browser in the cookie (128
    # characters up the phone's line on every request) that only its own session
    # protection reads; the session row does that job here.
    user = make_user()
    client.post(
        "/", data={"email": user.email, "password": PASSWORD}, headers={"User-Agent": "Phone/1"}
    )
    value = client.get_cookie("hanna_sesion").value
    data = app.session_interface.get_signing_serializer(app).loads(value)
    assert data.get("_id", "") == "" and set(data) <= {"_fresh", "_id", "_user_id", "sid"}
    assert len(value) < 240
    assert client.get("/inicio", headers={"User-Agent": "Other/2"}).status_code == 200


def test_idle_session_ends(db, client):
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    UserSession.update(last_seen=utcnow() - timedelta(minutes=16)).execute()
    response = client.get("/inicio")
    assert response.status_code == 302
    assert "inactividad" in client.get(response.headers["Location"]).text


def test_htmx_request_without_session_gets_401_with_redirect(client, htmx):
    response = client.get("/inicio", headers=htmx)
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/?next=")


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/inicio", "/inicio"),
        ("https://evil.example/", "/inicio"),
        ("//evil.example", "/inicio"),
        ("/\\evil.example", "/inicio"),
    ],
)
def test_next_only_goes_to_this_site(db, client, target, expected):
    user = make_user()
    done = client.post(f"/?next={target}", data={"email": user.email, "password": PASSWORD})
    assert done.headers["Location"] == expected


def test_activation_mail_is_queued_in_the_same_transaction(db, client, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("outbox down")

    monkeypatch.setattr("core.notify.queue_template_email", boom)
    with pytest.raises(RuntimeError):
        register(client)
    assert Account.select().count() == 0 and Message.select().count() == 0


def test_lookup_partial_shows_the_document_error_once(db, client, htmx):
    page = client.post(
        "/registro/consulta",
        headers=htmx,
        data={"tipo_documento": "NI", "numero_documento": "890102044-2"},
    )
    assert page.status_code == 422
    assert page.text.count("El dígito de verificación del NIT no es válido.") == 1
    full = client.post(
        "/registro/consulta", data={"tipo_documento": "NI", "numero_documento": "890102044-2"}
    )
    assert full.text.count('id="numero_documento-error"') == 1  # and a link in the summary
    assert '<a href="#numero_documento">' in full.text
