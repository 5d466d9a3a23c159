"""S1 sign-in over HTTP: password, then a TOTP or recovery code; enrolment, roles, logout, idle."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

import pyotp
import pytest
from factories import PASSWORD, make_staff, make_user

from blueprints.gestion import SECTIONS
from blueprints.gestion import service as gestion
from core import clock as clockmod
from core import second_factor, tokens
from core.permissions import Role, allowed
from models import Account, AuditEvent, RecoveryCode, UserSession

LOGIN_FAILED = "El correo o la contraseña no son correctos."
WRONG_CODE = "El código no es correcto o ya fue usado."
# The default role of the tests: its one section is registered (admin's are not all yet).
CLERK = (Role.AFILIACIONES,)


@pytest.fixture
def now(clock):
    """Stop the clock 5 s into a TOTP step, so a code made now stays valid for the whole test."""
    step = int(time.time()) // second_factor.STEP_SECONDS
    clock.set(datetime.fromtimestamp(step * second_factor.STEP_SECONDS + 5, UTC))
    return clock


def code(secret: str, steps: int = 0) -> str:
    """Return the TOTP code of secret at now, or `steps` 30-s steps away from it."""
    when = clockmod.utcnow().replace(tzinfo=UTC) + timedelta(
        seconds=steps * second_factor.STEP_SECONDS
    )
    return pyotp.TOTP(secret).at(when)


def password_step(client, account_or_email, password: str = PASSWORD, next_: str | None = None):
    email = getattr(account_or_email, "email", account_or_email)
    url = "/gestion/ingresar" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"email": email, "password": password})


def code_step(client, value: str):
    return client.post("/gestion/segundo-factor", data={"code": value})


def sign_in(client, account, value: str | None = None):
    """Both steps; return the answer to the code."""
    assert password_step(client, account).status_code == 303
    return code_step(client, value or code(account.totp_secret))


def path(response) -> str:
    return urlsplit(response.headers["Location"]).path


def shown_recovery_codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", html)


def registered(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()}


# --- the password step ---------------------------------------------------------------


def test_login_page_is_the_back_office_one(client):
    page = client.get("/gestion/ingresar")
    assert page.status_code == 200
    assert "Ingreso de funcionarios" in page.text
    assert 'type="password"' in page.text


@pytest.mark.parametrize("who", ["wrong password", "unknown e-mail", "hanna user"])
def test_wrong_credentials_say_the_same_thing(db, client, who):
    staff = make_staff(roles=CLERK)
    email, password = staff.email, "Otra-Clave-Mala-77"
    if who == "unknown e-mail":
        email, password = "nadie@cajacopi.example", PASSWORD
    elif who == "hanna user":
        email, password = make_user().email, PASSWORD
    page = client.post("/gestion/ingresar", data={"email": email, "password": password})
    assert page.status_code == 422
    assert LOGIN_FAILED in unescape(page.text)
    assert f'value="{email}"' in page.text  # the input is kept
    assert client.get("/gestion/").status_code == 302  # still anonymous
    assert UserSession.select().count() == 0


@pytest.mark.parametrize("status", [Account.DISABLED, Account.BLOCKED, Account.PENDING])
def test_a_staff_account_not_active_cannot_sign_in(db, client, status):
    staff = make_staff(roles=CLERK)
    Account.update(status=status).where(Account.id == staff.id).execute()
    page = password_step(client, staff)
    assert page.status_code == 422 and LOGIN_FAILED in unescape(page.text)
    assert UserSession.select().count() == 0


def test_a_staff_account_disabled_mid_session_is_signed_out(db, client, now):
    staff = make_staff(roles=CLERK)
    sign_in(client, staff)
    Account.update(status=Account.DISABLED).where(Account.id == staff.id).execute()
    answer = client.get("/gestion/")
    assert answer.status_code == 302
    assert urlsplit(answer.headers["Location"]).path == "/gestion/ingresar"


def test_the_e_mail_is_read_without_case(db, client):
    staff = make_staff(roles=CLERK)
    answer = password_step(client, staff.email.upper())
    assert answer.status_code == 303


def test_the_password_leads_to_the_code_and_nothing_else_opens_before_it(db, client, htmx):
    staff = make_staff(roles=CLERK)
    answer = password_step(client, staff)
    assert answer.status_code == 303 and path(answer) == "/gestion/segundo-factor"
    assert "Código de verificación" in client.get("/gestion/segundo-factor").text
    for page in ("/gestion/", "/gestion/desbloqueos", "/gestion/seguridad", "/inicio", "/cuenta"):
        blocked = client.get(page)
        assert blocked.status_code == 303, page
        assert path(blocked) == "/gestion/segundo-factor"
        partial = client.get(page, headers=htmx)
        assert partial.status_code == 401, page
        assert partial.headers["HX-Redirect"] == "/gestion/segundo-factor"
    assert client.post("/gestion/seguridad/codigos").status_code == 303
    assert RecoveryCode.select().count() == 0


def test_the_right_code_opens_the_back_office(db, client, now):
    staff = make_staff(roles=CLERK)
    answer = sign_in(client, staff)
    assert answer.status_code == 303 and path(answer) == "/gestion/"
    home = client.get("/gestion/")
    assert home.status_code == 200 and "Usuarios bloqueados" in home.text
    assert client.get("/gestion/desbloqueos").status_code == 200


@pytest.mark.parametrize(
    "given, lands",
    [
        ("/gestion/desbloqueos", "/gestion/desbloqueos"),
        ("/gestion/desbloqueos?documento=123", "/gestion/desbloqueos?documento=123"),
        ("https://evil.example/gestion/", "/gestion/"),
        ("//evil.example/gestion/", "/gestion/"),
        ("/\\evil.example", "/gestion/"),
    ],
)
def test_the_code_lands_on_next_only_when_it_is_a_local_path(db, client, now, given, lands):
    staff = make_staff(roles=CLERK)
    assert (
        client.post(
            "/gestion/ingresar",
            query_string={"next": given},
            data={"email": staff.email, "password": PASSWORD},
        ).status_code
        == 303
    )
    answer = code_step(client, code(staff.totp_secret))
    assert answer.status_code == 303
    location = urlsplit(answer.headers["Location"])
    assert not location.netloc or location.netloc == "localhost"
    assert location.path + (f"?{location.query}" if location.query else "") == lands


def test_anonymous_next_survives_the_two_steps(db, client, now):
    staff = make_staff(roles=CLERK)
    anonymous = client.get("/gestion/desbloqueos?correo=x%40example.com")
    assert anonymous.status_code == 302
    login = anonymous.headers["Location"]
    assert urlsplit(login).path == "/gestion/ingresar"
    assert client.post(login, data={"email": staff.email, "password": PASSWORD}).status_code == 303
    answer = code_step(client, code(staff.totp_secret))
    assert answer.headers["Location"].endswith("/gestion/desbloqueos?correo=x%40example.com")


def test_a_code_used_once_is_refused_in_a_fresh_sign_in(app, db, now):
    staff = make_staff(roles=CLERK)
    seen = code(staff.totp_secret)
    assert sign_in(app.test_client(), staff, seen).status_code == 303
    other = app.test_client()  # someone who read it over the shoulder, within its 30 s
    page = sign_in(other, staff, seen)
    assert page.status_code == 422 and WRONG_CODE in unescape(page.text)
    assert other.get("/gestion/").status_code == 303


def test_a_code_one_step_old_passes_but_two_steps_old_does_not(app, db, now):
    staff = make_staff(roles=CLERK)
    stale = app.test_client()
    page = sign_in(stale, staff, code(staff.totp_secret, -2))
    assert page.status_code == 422 and WRONG_CODE in unescape(page.text)
    assert sign_in(app.test_client(), staff, code(staff.totp_secret, -1)).status_code == 303


def test_a_code_typed_late_after_the_clock_moves_is_refused(db, client, now):
    staff = make_staff(roles=CLERK)
    typed = code(staff.totp_secret)
    password_step(client, staff)
    now.advance(seconds=2 * second_factor.STEP_SECONDS)
    assert code_step(client, typed).status_code == 422


def test_five_wrong_codes_sign_out_and_ask_for_the_password_again(db, client, now):
    staff = make_staff(roles=CLERK)
    right = code(staff.totp_secret)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    password_step(client, staff)
    answers = [code_step(client, wrong) for _ in range(5)]
    assert [a.status_code for a in answers[:4]] == [422] * 4
    out = answers[4]
    assert out.status_code == 303 and path(out) == "/gestion/ingresar"
    login = client.get("/gestion/ingresar")
    assert "Demasiados códigos incorrectos" in login.text
    # The session is over: the right code now does not open anything.
    assert path(code_step(client, right)) == "/gestion/ingresar"
    assert client.get("/gestion/").status_code == 302
    assert UserSession.select().where(UserSession.ended_at.is_null()).count() == 0
    # With the password again, the right code passes.
    assert sign_in(client, staff, right).status_code == 303


def test_a_recovery_code_works_once_and_says_how_many_are_left(app, db, now):
    staff = make_staff(roles=CLERK)
    codes = second_factor.new_recovery_codes(staff)
    client = app.test_client()
    answer = sign_in(client, staff, codes[0].lower())  # typed as it comes, case aside
    assert answer.status_code == 303 and path(answer) == "/gestion/"
    home = client.get("/gestion/")
    assert home.status_code == 200 and "Le quedan 9" in home.text
    again = sign_in(app.test_client(), staff, codes[0])
    assert again.status_code == 422 and WRONG_CODE in unescape(again.text)
    assert "<strong>9</strong> de 10" in client.get("/gestion/seguridad").text


def test_a_recovery_code_of_another_staff_member_is_refused(app, db, now):
    staff, other = make_staff(roles=CLERK), make_staff(roles=CLERK)
    theirs = second_factor.new_recovery_codes(other)
    second_factor.new_recovery_codes(staff)
    client = app.test_client()
    page = sign_in(client, staff, theirs[0])
    assert page.status_code == 422
    assert client.get("/gestion/").status_code == 303
    assert second_factor.remaining_recovery_codes(other) == 10


def test_a_hanna_session_cannot_pass_the_staff_second_factor(db, client, auth, now):
    user = make_user()
    auth.login(client, user)
    answer = code_step(client, "123456")
    assert answer.status_code in (302, 303)
    assert client.get("/gestion/").status_code == 404


# --- enrolment ------------------------------------------------------------------------


def unenrolled(roles=("afiliaciones",)) -> Account:
    return gestion.create_staff(f"nuevo{time.time_ns()}@cajacopi.example", roles, PASSWORD)


def enrol(client, staff: Account) -> tuple[str, list[str], str]:
    """Sign in and enrol; return the secret, the recovery codes and the code typed."""
    password_step(client, staff)
    page = client.get("/gestion/segundo-factor/inscribir")
    secret = Account.get_by_id(staff.id).totp_secret
    typed = code(secret)
    done = client.post("/gestion/segundo-factor/inscribir", data={"code": typed})
    assert done.status_code == 200, page.text
    return secret, shown_recovery_codes(done.text), typed


def test_a_staff_member_without_an_app_is_sent_to_enrol(db, client, now):
    staff = unenrolled()
    assert staff.totp_secret == "" and staff.totp_enrolled_at is None
    password_step(client, staff)
    step = client.get("/gestion/segundo-factor")
    assert step.status_code in (302, 303) and path(step) == "/gestion/segundo-factor/inscribir"
    page = client.get("/gestion/segundo-factor/inscribir")
    assert page.status_code == 200
    assert "<svg" in page.text and "Active su segundo factor" in page.text
    secret = Account.get_by_id(staff.id).totp_secret
    key = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    assert key in page.text
    assert key in client.get("/gestion/segundo-factor/inscribir").text  # a reload: the same QR
    assert Account.get_by_id(staff.id).totp_enrolled_at is None  # not until a code proves it
    assert client.get("/gestion/").status_code == 303  # and nothing else opens meanwhile


def test_a_wrong_enrolment_code_enrols_nothing(db, client, now):
    staff = unenrolled()
    password_step(client, staff)
    client.get("/gestion/segundo-factor/inscribir")
    secret = Account.get_by_id(staff.id).totp_secret
    wrong = f"{(int(code(secret)) + 1) % 10**6:06d}"
    page = client.post("/gestion/segundo-factor/inscribir", data={"code": wrong})
    assert page.status_code == 422 and WRONG_CODE in unescape(page.text)
    assert "<svg" in page.text
    row = Account.get_by_id(staff.id)
    assert row.totp_enrolled_at is None and row.totp_last_step is None
    assert RecoveryCode.select().count() == 0
    assert client.get("/gestion/").status_code == 303


def test_enrolment_shows_ten_recovery_codes_and_opens_the_back_office(db, client, now):
    staff = unenrolled()
    secret, codes, typed = enrol(client, staff)
    assert len(codes) == 10 and len(set(codes)) == 10
    row = Account.get_by_id(staff.id)
    assert row.totp_enrolled_at is not None and row.totp_secret == secret
    event = AuditEvent.get(AuditEvent.action == "staff.segundo_factor.inscribir")
    assert event.actor_id == staff.id and event.target_id == staff.id
    assert secret not in (event.before or "") + (event.after or "")
    assert client.get("/gestion/").status_code == 200
    assert "<strong>10</strong> de 10" in client.get("/gestion/seguridad").text
    assert client.get("/gestion/segundo-factor/inscribir").status_code in (302, 303)


def test_the_enrolment_code_cannot_pass_the_second_factor(app, db, now):
    staff = unenrolled()
    secret, _, typed = enrol(app.test_client(), staff)
    again = app.test_client()
    page = sign_in(again, staff, typed)
    assert page.status_code == 422
    now.advance(seconds=second_factor.STEP_SECONDS)
    assert code_step(again, code(secret)).status_code == 303


def test_an_enrolled_account_cannot_enrol_a_new_secret(app, db, now):
    staff = make_staff(roles=CLERK)
    client = app.test_client()
    password_step(client, staff)
    assert path(client.get("/gestion/segundo-factor/inscribir")) == "/gestion/segundo-factor"
    mine = pyotp.random_base32()
    posted = client.post("/gestion/segundo-factor/inscribir", data={"code": code(mine)})
    assert posted.status_code in (302, 303)
    assert Account.get_by_id(staff.id).totp_secret == staff.totp_secret


def test_new_recovery_codes_replace_the_old_ones(app, db, now):
    staff = unenrolled()
    client = app.test_client()
    _, old, _ = enrol(client, staff)
    renewed = client.post("/gestion/seguridad/codigos")
    assert renewed.status_code == 200
    new = shown_recovery_codes(renewed.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert AuditEvent.select().where(AuditEvent.action == "staff.codigos.renovar").count() == 1
    assert sign_in(app.test_client(), staff, old[0]).status_code == 422
    assert sign_in(app.test_client(), staff, new[0]).status_code == 303


# --- logout ------------------------------------------------------------------------


def test_logout_ends_the_session_and_its_cookie(app, db, client, now):
    staff = make_staff(roles=CLERK)
    sign_in(client, staff)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name).value
    out = client.post("/gestion/salir")
    assert out.status_code == 303 and path(out) == "/gestion/ingresar"
    assert "Cerró su sesión" in client.get("/gestion/ingresar").text
    assert client.get("/gestion/").status_code == 302
    copy = app.test_client()  # the cookie as it was before the logout
    copy.set_cookie(name, cookie)
    assert copy.get("/gestion/").status_code == 302
    assert UserSession.get().ended_at is not None


def test_logout_before_the_code_ends_the_half_session(db, client, now):
    staff = make_staff(roles=CLERK)
    password_step(client, staff)
    out = client.post("/gestion/salir")
    assert out.status_code == 303 and path(out) == "/gestion/ingresar"
    assert path(code_step(client, code(staff.totp_secret))) == "/gestion/ingresar"


# --- roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_only_its_own_sections(app, db, auth, role):
    staff = make_staff(roles=(role,))
    client = auth.login(app.test_client(), staff)
    sections = [(a, e, label) for a, e, label in SECTIONS if e in registered(app)]
    assert sections, "no section registered"
    home = client.get("/gestion/")
    assert home.status_code == 200
    with app.test_request_context():
        urls = {e: app.url_for(e) for _, e, _ in sections}
    for action, endpoint, label in sections:
        answer = client.get(urls[endpoint])
        if allowed(staff, action):
            assert answer.status_code == 200, (role, endpoint)
            assert f'href="{urls[endpoint]}"' in home.text
        else:
            assert answer.status_code == 404, (role, endpoint)
            assert f'href="{urls[endpoint]}"' not in home.text and label not in home.text


def test_a_staff_member_without_roles_sees_an_empty_back_office(app, db, auth):
    client = auth.login(app.test_client(), make_staff(roles=()))
    home = client.get("/gestion/")
    assert home.status_code == 200 and "aún no tiene roles" in home.text
    assert client.get("/gestion/desbloqueos").status_code == 404


def test_a_hanna_user_finds_no_back_office(db, client, auth):
    auth.login(client, make_user())
    for page in ("/gestion/", "/gestion/desbloqueos", "/gestion/seguridad"):
        assert client.get(page).status_code == 404, page
    assert client.post("/gestion/seguridad/codigos").status_code == 404


@pytest.mark.parametrize("page", ["/gestion/", "/gestion/desbloqueos", "/gestion/seguridad"])
def test_anonymous_visitors_go_to_the_staff_login(client, htmx, page):
    answer = client.get(page)
    assert answer.status_code in (302, 303)
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/gestion/ingresar" and "next=" in location.query
    partial = client.get(page, headers=htmx)
    assert partial.status_code == 401
    assert urlsplit(partial.headers["HX-Redirect"]).path == "/gestion/ingresar"


@pytest.mark.parametrize("page", ["/inicio", "/cuenta", "/cuenta/sesiones"])
def test_staff_find_no_hanna_pages(app, db, auth, page):
    client = auth.login(app.test_client(), make_staff(roles=CLERK))
    if page not in {r.rule for r in app.url_map.iter_rules()}:
        pytest.skip(f"{page} is not a page of this app")
    assert client.get(page).status_code == 404


def test_a_signed_in_staff_member_opening_the_login_goes_home(app, db, auth):
    client = auth.login(app.test_client(), make_staff(roles=CLERK))
    answer = client.get("/gestion/ingresar")
    assert answer.status_code in (302, 303) and path(answer) == "/gestion/"


# --- idle timeout ---------------------------------------------------------------------


def test_a_staff_session_gets_the_shorter_idle_time(app, db, client, now):
    staff = make_staff(roles=CLERK)
    sign_in(client, staff)
    shared = app.config["IDLE_MINUTES_SHARED"]
    assert shared < app.config["IDLE_MINUTES"]
    row = UserSession.get(UserSession.account == staff.id)
    assert row.idle_seconds == shared * 60
    UserSession.update(last_seen=clockmod.utcnow() - timedelta(minutes=shared - 1)).execute()
    assert client.get("/gestion/").status_code == 200
    UserSession.update(last_seen=clockmod.utcnow() - timedelta(minutes=shared, seconds=5)).execute()
    answer = client.get("/gestion/")
    assert (
        answer.status_code == 302
        and urlsplit(answer.headers["Location"]).path == "/gestion/ingresar"
    )
    assert "inactividad" in client.get("/gestion/ingresar").text
    assert UserSession.get_by_id(row.id).end_reason == UserSession.IDLE


def test_a_half_signed_in_session_idles_out_too(app, db, client, now):
    staff = make_staff(roles=CLERK)
    password_step(client, staff)
    shared = app.config["IDLE_MINUTES_SHARED"]
    UserSession.update(last_seen=clockmod.utcnow() - timedelta(minutes=shared, seconds=5)).execute()
    answer = code_step(client, code(staff.totp_secret))
    assert path(answer) == "/gestion/ingresar"
    assert client.get("/gestion/").status_code == 302


def test_session_rows_keep_no_plain_token(db, client, now):
    staff = make_staff(roles=CLERK)
    sign_in(client, staff)
    with client.session_transaction() as session:
        sid = session["sid"]
    assert UserSession.get().token_hash == tokens.digest(sid) != sid


@pytest.mark.parametrize("path", ["/gestion/ingresar", "/gestion/segundo-factor"])
def test_a_file_where_text_belongs_is_a_form_error_not_a_500(client, path):
    """CI's fuzzer found it: a FlaskForm poured the file into the e-mail field (len() of a file)."""
    import io

    page = client.post(
        path,
        data={"email": (io.BytesIO(b"o"), "a.txt"), "code": (io.BytesIO(b"1"), "b.txt")},
        content_type="multipart/form-data",
    )
    assert page.status_code in (302, 303, 422)
