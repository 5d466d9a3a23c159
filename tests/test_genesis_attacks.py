"""Génesis from an attacker's side (issue 9): tokens replayed or swapped, codes guessed in
parallel, gates tried with other methods, the family rule as the data moves, text where it
does not belong, staff deciding from the side door, logs and client addresses.

Each test is an attack that must fail; the five holes this review found are fixed.
"""

from __future__ import annotations

import http.cookiejar
import io
import itertools
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
import werkzeug.serving
from werkzeug.serving import WSGIRequestHandler, _ansi_style, make_server

import models
from blueprints.genesis import service
from blueprints.gestion import autorizaciones_service as decide
from core import eps_data, genesis, passwords, tokens
from core.clock import utcnow
from models import (
    Account,
    Attachment,
    AuditEvent,
    Autorizacion,
    CambioDatosEps,
    EpsAfiliado,
    EpsUser,
    Message,
    OneTimeCode,
    SolicitudAutorizacion,
    StaffRole,
    UserSession,
)
from tests.apps import make_app
from tests.factories import PASSWORD, make_eps_afiliado, make_eps_user, make_ips, make_staff
from tests.test_genesis_oficina import files_on_disk, pdf_bytes, send
from tests.test_import_eps import eps_row, write_csv

LOGIN_FAILED = "El tipo o el número de documento o la contraseña no son correctos."
WRONG_CODE = "El código no es correcto, venció o ya se usó."
WRONG_PROOF = "El número celular o la fecha de expedición no coinciden"
STALE = "El formulario venció"
NEW_PASSWORD = "Brisa-Marina-2031"
QUEUE = "/gestion/autorizaciones"

_keys = itertools.count()


def new_key() -> str:
    """A form_key of the shape the portal makes (43 URL-safe characters)."""
    return f"atk{next(_keys):040d}"


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", html)


def ingresar(client, numero: str, password: str = PASSWORD, tipo: str = "CC", **kwargs):
    return client.post(
        "/genesis/afiliados",
        data={"tipo_documento": tipo, "numero_documento": numero, "password": password},
        **kwargs,
    )


def validar(client, numero: str, tipo: str = "CC", **kwargs):
    return client.post(
        "/genesis/registro", data={"tipo_documento": tipo, "numero_documento": numero}, **kwargs
    )


def ficha_for(client, afiliado, **kwargs) -> str:
    page = validar(client, afiliado.numero_documento, afiliado.tipo_documento, **kwargs)
    assert page.status_code == 200, page.text
    return re.search(r'name="ficha" type="hidden" value="([^"]+)"', page.text).group(1)


def finalizar(client, ficha: str, celular="3004567101", fecha="02/05/2003", **extra):
    data = {"ficha": ficha, "celular": celular, "fecha_expedicion": fecha, "acepto": "y"}
    data.update(extra.pop("data", {}))
    return client.post("/genesis/registro/datos", data=data, **extra)


def olvide(client, numero: str, tipo: str = "CC", **kwargs):
    return client.post(
        "/genesis/olvide", data={"tipo_documento": tipo, "numero_documento": numero}, **kwargs
    )


def restablecer(client, code: str, password: str = NEW_PASSWORD):
    return client.post(
        "/genesis/olvide/codigo", data={"codigo": code, "password": password, "confirm": password}
    )


def last_sms(outbox) -> str:
    return outbox.all("sms")[-1].body_text


def code_in(text: str) -> str:
    return re.search(r"es (\d{6})\.", text).group(1)


def temp_password_in(text: str) -> str:
    return re.search(r"temporal: (\S+) \(", text).group(1)


def numero_of(account: Account) -> str:
    return account.eps.afiliado.numero_documento


def fresh(account: Account) -> Account:
    with models.db.connection_context():
        return Account.get_by_id(account.id)


def first_login_account(**over) -> Account:
    """An account as registration leaves it: the SMS password, the carta not accepted."""
    fields = dict(
        carta=False, must_change_password=True, temp_password_expires_at=utcnow() + timedelta(1)
    )
    fields.update(over)
    return make_eps_user(make_eps_afiliado(), **fields)


def nucleo() -> SimpleNamespace:
    """Family A: Rosa (cotizante), Pedro (adult spouse), Lucía (minor). Family B: Marta."""
    rosa = make_eps_afiliado(primer_nombre="ROSA", celular="3004567101")
    pedro = make_eps_afiliado(
        cabeza=rosa,
        parentesco="CONYUGE",
        primer_nombre="PEDRO",
        fecha_nacimiento=date(1983, 8, 2),
        celular="3015550101",
        email="pedro@example.com",
    )
    lucia = make_eps_afiliado(
        cabeza=rosa, parentesco="HIJO", primer_nombre="LUCIA", fecha_nacimiento=date(2015, 6, 1)
    )
    marta = make_eps_afiliado(primer_nombre="MARTA", celular="3021112233")
    for member in (rosa, pedro, lucia, marta):
        genesis.confirm_contact(member)
    return SimpleNamespace(rosa=rosa, pedro=pedro, lucia=lucia, marta=marta)


def file_request(account, member, upload_dir, observacion="Control de rutina"):
    """File a request the way the office does (service level), with a one-page PDF."""
    return genesis.submit_request(
        account,
        member,
        "08001",
        observacion,
        new_key(),
        [genesis.Upload(io.BytesIO(pdf_bytes()), "orden.pdf")],
        str(upload_dir),
    )


def counts() -> tuple[int, int, int, int]:
    with models.db.connection_context():
        return (
            SolicitudAutorizacion.select().count(),
            Attachment.select().count(),
            CambioDatosEps.select().count(),
            Message.select().count(),
        )


@pytest.fixture(autouse=True)
def upload_dir(request, tmp_path):
    path = tmp_path / "uploads"
    for name in ("app", "limited_app", "proxied_app"):
        if name in request.fixturenames:
            request.getfixturevalue(name).config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def proxied_app(tmp_path):
    """The portal behind one proxy (PROXY_HOPS=1), rate limits on."""
    yield from make_app(
        tmp_path, PROXY_HOPS=1, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"
    )


# === G1: the step-2 token ===================================================================


def test_a_step_two_token_registers_only_its_own_document_whatever_the_body_says(db, app, outbox):
    a = make_eps_afiliado(celular="3001110001", fecha_expedicion=date(2001, 1, 1))
    b = make_eps_afiliado(celular="3002220002", fecha_expedicion=date(2002, 2, 2))
    ficha_a = ficha_for(app.test_client(), a)
    thief = app.test_client()  # another browser, another session
    # B's own (right) proof, with A's token and B's document slipped into the body.
    swapped = finalizar(
        thief,
        ficha_a,
        celular="3002220002",
        fecha="02/02/2002",
        data={"tipo_documento": "CC", "numero_documento": b.numero_documento},
    )
    assert swapped.status_code == 422 and WRONG_PROOF in swapped.text
    assert Account.select().count() == 0 and outbox.all("sms") == []
    # The token is not bound to a session (it only says "A was validated"): A's right proof
    # from the other browser registers A, and the SMS goes to A's mobile on file only.
    done = finalizar(thief, ficha_a, celular="3001110001", fecha="01/01/2001")
    assert done.status_code == 303
    assert [acc.login for acc in Account.select()] == [f"CC:{a.numero_documento}"]
    assert [m.recipient for m in outbox.all("sms")] == ["3001110001"]
    # …and the same token again, from a third browser, makes nothing more.
    again = finalizar(app.test_client(), ficha_a, celular="3001110001", fecha="01/01/2001")
    assert again.status_code == 200 and "ya se encuentra registrado" in again.text
    assert Account.select().count() == 1 and len(outbox.all("sms")) == 1


@pytest.mark.parametrize("where", ["registration ticket", "other secret", "garbage"])
def test_the_reset_page_refuses_a_ticket_it_did_not_issue(db, client, where):
    victim = make_eps_user()
    numero = numero_of(victim)
    forged = {
        "registration ticket": service.registration_ticket("CC", numero, secret="test-secret"),
        "other secret": service.reset_ticket("CC", numero, secret="x" * 40),
        "garbage": "eyJ0IjoiQ0MifQ.abc.def",
    }[where]
    with client.session_transaction() as session:
        session["genesis_olvide"] = forged
    page = client.get("/genesis/olvide/codigo")
    assert page.status_code == 302 and page.headers["Location"] == "/genesis/olvide"
    assert restablecer(client, "123456").status_code == 302
    assert fresh(victim).password_hash == victim.password_hash


# === G2: wording and work of the failures ======================================================

LOGIN_CASES = [
    "unknown document",
    "active affiliate without account",
    "wrong password",
    "wrong password, affiliate retired",
    "wrong password, account disabled",
    "wrong password, temporary password expired",
    "wrong password, backing off",
    "right password, backing off",
]


@pytest.mark.parametrize("case", LOGIN_CASES)
def test_every_login_failure_reads_the_same_and_costs_one_hash(db, client, case):
    numero = "81000001"
    afiliado = None
    if case != "unknown document":
        afiliado = make_eps_afiliado(
            numero_documento=numero, estado="RETIRADO" if "retired" in case else "ACTIVO"
        )
    password = PASSWORD if case.startswith("right") else "Mala-Clave-0000"
    if afiliado is not None and case != "active affiliate without account":
        over = {}
        if "disabled" in case:
            over["status"] = Account.DISABLED
        if "expired" in case:
            over.update(must_change_password=True, temp_password_expires_at=utcnow() - timedelta(1))
        account = make_eps_user(afiliado, **over)
        if "backing off" in case:
            Account.update(
                failed_logins=6, login_blocked_until=utcnow() + timedelta(minutes=10)
            ).where(Account.id == account.id).execute()
    spent = passwords.HASH_CALLS
    response = ingresar(client, numero, password)
    spent = passwords.HASH_CALLS - spent
    reference = ingresar(client, "81000999", "Mala-Clave-0000")  # nobody has this document
    assert response.status_code == reference.status_code == 422
    body = without_csrf(response.text).replace(numero, "N")
    assert body == without_csrf(reference.text).replace("81000999", "N")
    assert LOGIN_FAILED in body
    assert spent == 1  # one argon2 verify, as for the unknown document
    assert UserSession.select().count() == 0


@pytest.mark.parametrize("case", ["unknown", "retired", "registered", "active"])
def test_validar_does_the_same_work_whatever_it_finds(db, client, case):
    numero = "81000010"
    if case != "unknown":
        afiliado = make_eps_afiliado(
            numero_documento=numero, estado="RETIRADO" if case == "retired" else "ACTIVO"
        )
        if case == "registered":
            make_eps_user(afiliado)
    spent = passwords.HASH_CALLS
    page = validar(client, numero)
    assert passwords.HASH_CALLS == spent  # no slow branch tells one case from another
    expected = {"unknown": 422, "retired": 422, "registered": 200, "active": 200}[case]
    assert page.status_code == expected
    if case in ("unknown", "retired"):
        reference = validar(client, "81000997")
        assert without_csrf(page.text).replace(numero, "N") == without_csrf(reference.text).replace(
            "81000997", "N"
        )


OLVIDE_CASES = [
    "registered",
    "unknown document",
    "active affiliate without account",
    "account disabled",
    "affiliate retired",
    "registered, no mobile on file",
]


@pytest.mark.parametrize("case", OLVIDE_CASES)
def test_forgot_password_reads_the_same_whoever_the_document_is(db, app, case):
    numero = "81000002"
    if case != "unknown document":
        afiliado = make_eps_afiliado(
            numero_documento=numero,
            estado="RETIRADO" if "retired" in case else "ACTIVO",
            celular="" if "no mobile" in case else "3004567101",
        )
        if case != "active affiliate without account":
            over = {"status": Account.DISABLED} if "disabled" in case else {}
            if "no mobile" in case:
                over["celular"] = ""
            make_eps_user(afiliado, **over)

    def journey(numero: str) -> list[str]:
        client = app.test_client()
        asked = olvide(client, numero)
        page = client.get(asked.headers["Location"])
        wrong = restablecer(client, "000000")
        return [
            f"{asked.status_code} {asked.headers['Location']}",
            f"{page.status_code} {without_csrf(page.text)}",
            f"{wrong.status_code} {without_csrf(wrong.text)}",
        ]

    assert journey(numero) == journey("81000998")


# === G2: the reset code ======================================================================


def test_a_code_sent_for_one_account_opens_no_other(db, app, outbox):
    a = make_eps_user(make_eps_afiliado(celular="3001110001"))
    b = make_eps_user(make_eps_afiliado(celular="3002220002"))
    browser_a, browser_b = app.test_client(), app.test_client()
    olvide(browser_a, numero_of(a))
    code_a = code_in(last_sms(outbox))
    olvide(browser_b, numero_of(b))
    code_b = code_in(last_sms(outbox))
    if code_a == code_b:
        pytest.skip("one chance in a million: both codes are the same")
    refused = restablecer(browser_b, code_a)  # A's code, typed in B's flow
    assert refused.status_code == 422 and WRONG_CODE in refused.text
    assert fresh(a).password_hash == a.password_hash
    assert fresh(b).password_hash == b.password_hash
    assert OneTimeCode.get(OneTimeCode.account == a.id).attempts == 0  # A's tries untouched
    assert restablecer(browser_a, code_a).status_code == 303
    assert fresh(b).password_hash == b.password_hash


def test_parallel_guesses_get_no_more_than_five_comparisons(db, app, outbox, monkeypatch):
    account = make_eps_user()
    olvide(app.test_client(), numero_of(account))
    code = code_in(last_sms(outbox))
    row = OneTimeCode.get()
    compared = []
    real_same = tokens.same

    def slow_same(a, b):
        if a == row.code_hash:
            compared.append(b)
            time.sleep(0.05)  # widen the window between the try and the compare
        return real_same(a, b)

    monkeypatch.setattr(tokens, "same", slow_same)
    guesses = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 8)]
    barrier, errors = threading.Barrier(len(guesses), timeout=30), []
    models.db.close()

    def guess(value: str) -> None:
        try:
            models.db.connect(reuse_if_open=True)
            barrier.wait()
            service.reset_password("CC", numero_of(account), value, NEW_PASSWORD)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            models.db.close()

    threads = [threading.Thread(target=guess, args=(g,)) for g in guesses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    models.db.connect(reuse_if_open=True)
    assert errors == []
    assert len(compared) == service.CODE_TRIES
    assert OneTimeCode.get().attempts == service.CODE_TRIES
    late = service.reset_password("CC", numero_of(account), code, NEW_PASSWORD)
    assert late.outcome is service.Restablecer.CODIGO  # the right code, too late
    assert fresh(account).password_hash == account.password_hash


def test_a_document_gives_at_most_25_guesses_a_day(db, client, outbox, clock, monkeypatch):
    account = make_eps_user()
    compared = []
    real_same = tokens.same

    def counting(a, b):
        if OneTimeCode.select().where(OneTimeCode.code_hash == a).exists():
            compared.append(b)
        return real_same(a, b)

    monkeypatch.setattr(tokens, "same", counting)
    statuses = []
    for _ in range(service.CODE_DAILY_CAP + 2):
        statuses.append(olvide(client, numero_of(account)).status_code)
        code = code_in(last_sms(outbox))
        for i in range(service.CODE_TRIES + 1):  # the 6th try of each code too
            restablecer(client, f"{(int(code) + 1 + i) % 10**6:06d}")
        clock.advance(seconds=service.CODE_RESEND_AFTER + 1)
    assert statuses == [303] * service.CODE_DAILY_CAP + [429, 429]
    assert len(compared) == service.CODE_DAILY_CAP * service.CODE_TRIES
    assert fresh(account).password_hash == account.password_hash


# === G2: the temporary password and the sessions around it =======================================


def test_the_sms_password_stops_working_once_replaced(db, app, outbox):
    afiliado = make_eps_afiliado()
    browser = app.test_client()
    assert finalizar(browser, ficha_for(browser, afiliado)).status_code == 303
    temporary = temp_password_in(last_sms(outbox))
    numero = afiliado.numero_documento
    eavesdropper = app.test_client()  # someone else who read the SMS, signed in first
    assert ingresar(eavesdropper, numero, temporary).status_code == 303
    assert ingresar(browser, numero, temporary).status_code == 303
    changed = browser.post(
        "/genesis/cambiar-clave", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    # The eavesdropper's session ended; it cannot set a password of its own now.
    taken = eavesdropper.post(
        "/genesis/cambiar-clave", data={"password": "Otra-Brisa-7788", "confirm": "Otra-Brisa-7788"}
    )
    assert taken.status_code == 302 and taken.headers["Location"].startswith("/genesis/afiliados")
    assert ingresar(app.test_client(), numero, temporary).status_code == 422
    assert ingresar(app.test_client(), numero, "Otra-Brisa-7788").status_code == 422
    assert ingresar(app.test_client(), numero, NEW_PASSWORD).status_code == 303


def test_the_sms_password_stops_working_after_a_reset_too(db, app, client, outbox):
    afiliado = make_eps_afiliado()
    assert finalizar(client, ficha_for(client, afiliado)).status_code == 303
    temporary = temp_password_in(last_sms(outbox))
    olvide(client, afiliado.numero_documento)
    assert restablecer(client, code_in(last_sms(outbox))).status_code == 303
    assert ingresar(app.test_client(), afiliado.numero_documento, temporary).status_code == 422
    signed = app.test_client()
    assert ingresar(signed, afiliado.numero_documento, NEW_PASSWORD).status_code == 303
    # No forced change left: the reset password was chosen by the member.
    assert signed.get("/genesis/oficina").headers["Location"] == "/genesis/carta-de-derechos"


def test_a_session_opened_before_a_reset_is_over_for_every_page_and_method(db, app, outbox):
    account = make_eps_user()
    old = app.test_client()
    assert ingresar(old, numero_of(account)).status_code == 303
    olvide(app.test_client(), numero_of(account))
    other = app.test_client()
    olvide(other, numero_of(account))  # within the minute: the first code stays the one
    resetter = app.test_client()
    with resetter.session_transaction() as session:
        session["genesis_olvide"] = service.reset_ticket(
            "CC", numero_of(account), secret="test-secret"
        )
    assert restablecer(resetter, code_in(last_sms(outbox))).status_code == 303
    for method, path in [
        ("get", "/genesis/oficina"),
        ("head", "/genesis/consulta"),
        ("post", f"/genesis/solicitud/{account.eps.afiliado_id}/contacto"),
    ]:
        response = getattr(old, method)(path)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/genesis/afiliados")


def test_two_password_changes_at_once_are_not_a_500(db, app, client, auth, monkeypatch):
    account = first_login_account()
    auth.login(client, account)
    twin = app.test_client()  # the same browser, a second request (the same cookie)
    for cookie in client._cookies.values():
        twin._cookies[(cookie.domain, cookie.path, cookie.key)] = cookie
    real_hash = passwords.hash_password
    monkeypatch.setattr(
        passwords, "hash_password", lambda pw: (time.sleep(0.3), real_hash(pw))[1]
    )  # argon2 at production cost takes about this long
    barrier, answers = threading.Barrier(2, timeout=30), []
    models.db.close()

    def press(browser, password):
        try:
            barrier.wait()
            answers.append(
                browser.post(
                    "/genesis/cambiar-clave", data={"password": password, "confirm": password}
                ).status_code
            )
        except Exception as exc:  # the test client re-raises the view's exception
            answers.append(type(exc).__name__)
        finally:
            models.db.close()

    threads = [
        threading.Thread(target=press, args=(client, NEW_PASSWORD)),
        threading.Thread(target=press, args=(twin, "Otra-Brisa-7788")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    models.db.connect(reuse_if_open=True)
    assert all(a in (302, 303, 422) for a in answers), answers


# === the first-login gates, by the side doors ===================================================


def _gated(stage: str, upload_dir):
    over = {} if stage == "temporary password" else {"must_change_password": False}
    account = first_login_account(**over)
    member = account.eps.afiliado
    genesis.confirm_contact(member)
    made = file_request(account, member, upload_dir)
    gate = (
        "/genesis/cambiar-clave" if stage == "temporary password" else "/genesis/carta-de-derechos"
    )
    return account, member, made, gate


SIDE_DOORS = [
    ("head", "/genesis/oficina", None),
    ("options", "/genesis/oficina", None),
    ("options", "/genesis/solicitud/{member}", None),
    ("get", "/genesis/solicitudes/{numero}/soporte", None),
    ("get", "/genesis/solicitudes/{numero}", None),
    ("post", "/genesis/solicitud/{member}/contacto", {}),
    (
        "post",
        "/genesis/solicitud/{member}/contacto/editar",
        dict(
            celular="3119998877",
            email="otro@example.com",
            direccion="Calle 9 # 9-99",
            departamento="08",
            municipio="08001",
            accion="confirmar",
        ),
    ),
    ("post", "/genesis/solicitud/{member}", "request"),
]


@pytest.mark.parametrize("htmx_header", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("stage", ["temporary password", "carta"])
@pytest.mark.parametrize(("method", "path", "body"), SIDE_DOORS, ids=lambda v: str(v)[:40])
def test_the_gates_hold_for_every_method_and_for_htmx(
    db, client, auth, upload_dir, stage, method, path, body, htmx_header
):
    account, member, made, gate = _gated(stage, upload_dir)
    auth.login(client, account)
    url = path.format(member=member.id, numero=made.numero)
    headers = {"HX-Request": "true"} if htmx_header else {}
    before = counts()
    confirmed_at = EpsAfiliado.get_by_id(member.id).contacto_confirmado_at
    if body == "request":
        page = client.get(f"/genesis/solicitud/{member.id}")  # gated too: no key from it
        assert page.status_code in (303, 401)
        response = client.post(
            url,
            data=dict(
                form_key=new_key(),
                departamento="08",
                municipio="08001",
                observacion="Resonancia",
                soporte=(io.BytesIO(pdf_bytes()), "orden.pdf"),
            ),
            content_type="multipart/form-data",
            headers=headers,
        )
    else:
        response = getattr(client, method)(url, data=body, headers=headers)
    if htmx_header:
        assert response.status_code == 401 and response.headers["HX-Redirect"] == gate
        assert response.data == b""
    else:
        assert response.status_code == 303 and response.headers["Location"] == gate
        assert b"%PDF" not in response.data
    assert counts() == before
    now = EpsAfiliado.get_by_id(member.id)
    assert now.contacto_confirmado_at == confirmed_at and now.celular == member.celular


def test_the_carta_cannot_be_accepted_before_the_password_change(db, client, auth):
    account = first_login_account()
    auth.login(client, account)
    response = client.post("/genesis/carta-de-derechos", data={"acepto": "y"})
    assert response.status_code == 303 and response.headers["Location"] == "/genesis/cambiar-clave"
    assert EpsUser.get(EpsUser.account == account.id).carta_accepted_at is None


# === the family rule as the data moves ===========================================================


def test_a_member_moved_to_another_family_by_a_reimport_is_gone_at_once(
    db, client, auth, app, upload_dir, tmp_path
):
    rows = [
        eps_row("52100001", primer_nombre="ROSA"),
        eps_row("79100002", "CONYUGE", "52100001", primer_nombre="PEDRO"),
        eps_row("52100003", primer_nombre="MARTA", celular="3021112233"),
    ]
    assert eps_data.import_eps(write_csv(tmp_path, eps_data.EPS_COLUMNS, rows, name="a.csv")).ok
    rosa, pedro, marta = (
        EpsAfiliado.get(EpsAfiliado.numero_documento == n)
        for n in ("52100001", "79100002", "52100003")
    )
    for member in (rosa, pedro, marta):
        genesis.confirm_contact(member)
    rosa_account, marta_account = make_eps_user(rosa), make_eps_user(marta)
    filed = file_request(rosa_account, pedro, upload_dir, "Terapia física")
    auth.login(client, rosa_account)
    pedro_pages = [
        f"/genesis/solicitud/{pedro.id}/contacto",
        f"/genesis/solicitud/{pedro.id}",
        f"/genesis/consulta/{pedro.id}?pestana=solicitudes",
        f"/genesis/solicitudes/{filed.numero}",
        f"/genesis/solicitudes/{filed.numero}/soporte",
    ]
    assert [client.get(p).status_code for p in pedro_pages] == [200] * 5
    # The EPS moves Pedro to Marta's núcleo; Rosa's session stays open.
    rows[1] = eps_row("79100002", "CONYUGE", "52100003", primer_nombre="PEDRO")
    assert eps_data.import_eps(write_csv(tmp_path, eps_data.EPS_COLUMNS, rows, name="b.csv")).ok
    assert [client.get(p).status_code for p in pedro_pages] == [404] * 5
    assert "PEDRO" not in client.get("/genesis/consulta").text.upper()
    before = counts()
    assert send(client, pedro, new_key()).status_code == 404
    assert client.post(f"/genesis/solicitud/{pedro.id}/contacto").status_code == 404
    assert counts() == before
    auth.login(client, marta_account)
    assert client.get(f"/genesis/consulta/{pedro.id}").status_code == 200


@pytest.mark.parametrize(
    ("now", "visible"),
    [(datetime(2026, 5, 31, 23, 59), True), (datetime(2026, 6, 1, 0, 1), False)],
    ids=["the night before", "the 18th birthday"],
)
def test_a_minor_turning_18_leaves_the_beneficiary_adults_reach(
    db, app, auth, clock, upload_dir, now, visible
):
    clock.set(now)
    f = nucleo()
    hija = make_eps_afiliado(
        cabeza=f.rosa, parentesco="HIJO", primer_nombre="SOFIA", fecha_nacimiento=date(2008, 6, 1)
    )
    genesis.confirm_contact(hija)
    rosa_account, pedro_account = make_eps_user(f.rosa), make_eps_user(f.pedro)
    filed = file_request(rosa_account, hija, upload_dir)
    pedro = auth.login(app.test_client(), pedro_account)
    expected = 200 if visible else 404
    for path in (
        f"/genesis/consulta/{hija.id}",
        f"/genesis/solicitud/{hija.id}/contacto",
        f"/genesis/solicitudes/{filed.numero}",
        f"/genesis/solicitudes/{filed.numero}/soporte",
    ):
        assert pedro.get(path).status_code == expected, path
    assert ("SOFIA" in pedro.get("/genesis/consulta").text.upper()) is visible
    rosa = auth.login(app.test_client(), rosa_account)  # the cotizante keeps her either way
    assert rosa.get(f"/genesis/consulta/{hija.id}").status_code == 200


def test_a_disabled_account_loses_its_open_session(db, client, auth):
    f = nucleo()
    account = make_eps_user(f.rosa)
    auth.login(client, account)
    assert client.get("/genesis/oficina").status_code == 200
    Account.update(status=Account.DISABLED).where(Account.id == account.id).execute()
    assert client.get(f"/genesis/consulta/{f.lucia.id}").status_code == 302


def test_an_affiliate_retired_mid_session_loses_the_office(db, client, auth, upload_dir):
    f = nucleo()
    account = make_eps_user(f.rosa)
    auth.login(client, account)
    assert client.get("/genesis/oficina").status_code == 200
    EpsAfiliado.update(estado="RETIRADO").where(EpsAfiliado.id == f.rosa.id).execute()
    before = counts()
    consulta = client.get(f"/genesis/consulta/{f.lucia.id}")
    assert consulta.status_code == 303 and consulta.location.endswith("/genesis/inactivo")
    ended = client.get("/genesis/inactivo")
    assert ended.status_code == 303 and "/genesis/afiliados" in ended.location
    assert "no está activa" in client.get(ended.location).text
    sent = send(client, f.lucia, new_key())  # the session is over: to the login, nothing filed
    assert sent.status_code == 302 and "/genesis/afiliados" in sent.location
    assert counts()[0] == before[0]


def test_a_link_to_the_retired_page_signs_no_active_member_out(db, client, auth):
    account = make_eps_user(nucleo().rosa)
    auth.login(client, account)
    assert client.get("/genesis/inactivo").status_code == 404
    assert client.get("/genesis/oficina").status_code == 200


# === G3: what the body may not choose ==============================================================


def test_the_body_cannot_pick_another_member_account_or_state(db, client, auth, upload_dir):
    f = nucleo()
    rosa_account, marta_account = make_eps_user(f.rosa), make_eps_user(f.marta)
    auth.login(client, rosa_account)
    sent = send(
        client,
        f.rosa,
        new_key(),
        afiliado=str(f.marta.id),
        afiliado_id=str(f.marta.id),
        member_id=str(f.marta.id),
        account=str(marta_account.id),
        account_id=str(marta_account.id),
        estado="APROBADA",
        numero="2222-2222",
        due_on="2020-01-01",
        autorizacion="1",
    )
    assert sent.status_code == 303
    made = SolicitudAutorizacion.get()
    assert (made.afiliado_id, made.account_id) == (f.rosa.id, rosa_account.id)
    assert made.estado == SolicitudAutorizacion.PENDIENTE and made.numero != "2222-2222"
    assert made.due_on > date(2020, 1, 1) and made.autorizacion_id is None
    edited = client.post(
        f"/genesis/solicitud/{f.rosa.id}/contacto/editar",
        data=dict(
            celular="3119998877",
            email="rosa.nueva@example.com",
            direccion="Calle 9 # 9-99",
            departamento="08",
            municipio="08001",
            accion="confirmar",
            afiliado=str(f.marta.id),
            member_id=str(f.marta.id),
        ),
    )
    assert edited.status_code == 303
    assert EpsAfiliado.get_by_id(f.marta.id).celular == "3021112233"
    assert EpsAfiliado.get_by_id(f.rosa.id).celular == "3119998877"


def test_a_form_key_replayed_by_another_account_of_the_family_shows_nothing(
    db, app, auth, upload_dir
):
    f = nucleo()
    rosa = auth.login(app.test_client(), make_eps_user(f.rosa))
    pedro = auth.login(app.test_client(), make_eps_user(f.pedro))
    key = new_key()
    first = send(rosa, f.lucia, key)
    assert first.status_code == 303
    numero = SolicitudAutorizacion.get().numero
    for member in (f.lucia, f.pedro):  # Pedro may see Lucía's requests, still not via the key
        replay = send(pedro, member, key)
        assert replay.status_code == 422 and STALE in replay.text
        assert numero not in replay.text and "Location" not in replay.headers
    assert SolicitudAutorizacion.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_a_request_needs_the_contact_data_confirmed_first(db, client, auth, upload_dir, clock):
    f = nucleo()
    account = make_eps_user(f.rosa)
    clock.advance(hours=13)  # the confirmation of nucleo() is stale now
    auth.login(client, account)  # a fresh session: only the contact data is old
    contacto = f"/genesis/solicitud/{f.lucia.id}/contacto"
    opened = client.get(f"/genesis/solicitud/{f.lucia.id}")
    sent = send(client, f.lucia, new_key())
    skipped = client.get(f"/genesis/solicitud/{f.lucia.id}?departamento=08")
    for answer in (opened, sent, skipped):
        assert answer.status_code == 303 and answer.location.endswith(contacto)
    assert SolicitudAutorizacion.select().count() == 0


# === text where it does not belong ==================================================================


def test_observacion_sent_as_a_file_is_refused_in_words(db, client, auth, upload_dir):
    f = nucleo()
    auth.login(client, make_eps_user(f.rosa))
    response = client.post(
        f"/genesis/solicitud/{f.rosa.id}",
        data=dict(
            form_key=new_key(),
            departamento="08",
            municipio="08001",
            observacion=(io.BytesIO(b"Resonancia de rodilla"), "observacion.txt"),
            soporte=(io.BytesIO(pdf_bytes()), "orden.pdf"),
        ),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "Escriba la observación" in response.text
    assert SolicitudAutorizacion.select().count() == 0 and files_on_disk(upload_dir) == []


HUGE = "3" * 10_000


@pytest.mark.parametrize(
    ("what", "method", "path", "data"),
    [
        (
            "login numero",
            "post",
            "/genesis/afiliados",
            dict(tipo_documento="CC", numero_documento=HUGE, password="x"),
        ),
        (
            "login password",
            "post",
            "/genesis/afiliados",
            dict(tipo_documento="CC", numero_documento="81000003", password=HUGE),
        ),
        (
            "validar numero",
            "post",
            "/genesis/registro",
            dict(tipo_documento="CC", numero_documento=HUGE),
        ),
        ("finalizar celular", "post", "/genesis/registro/datos", "ficha"),
        (
            "olvide numero",
            "post",
            "/genesis/olvide",
            dict(tipo_documento="CC", numero_documento=HUGE),
        ),
        ("contact celular", "post", "/genesis/solicitud/{id}/contacto/editar", "contact"),
        ("consulta q", "get", "/genesis/consulta/{id}?q=" + "á%25_" * 2500, None),
        ("observacion", "post", "/genesis/solicitud/{id}", "request"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "",
)
def test_ten_thousand_characters_are_refused_quickly_in_words(
    db, client, auth, what, method, path, data
):
    afiliado = make_eps_afiliado()
    genesis.confirm_contact(afiliado)
    signed = "contact" in str(data) or "request" in str(data) or "consulta" in what
    if signed:
        auth.login(client, make_eps_user(afiliado))
    if data == "ficha":
        data = dict(
            ficha=service.registration_ticket(
                "CC", afiliado.numero_documento, secret="test-secret"
            ),
            celular=HUGE,
            fecha_expedicion="02/05/2003",
            acepto="y",
        )
    elif data == "contact":
        data = dict(
            celular=HUGE,
            email="a@example.com",
            direccion="Calle 1 # 2-3",
            departamento="08",
            municipio="08001",
            accion="confirmar",
        )
    elif data == "request":
        data = dict(
            form_key=new_key(),
            departamento="08",
            municipio="08001",
            observacion="x" * 10_000,
            soporte=(io.BytesIO(pdf_bytes()), "orden.pdf"),
        )
    url = path.format(id=afiliado.id)
    started = time.perf_counter()
    if method == "get":
        response = client.get(url)
    else:
        kind = "multipart/form-data" if "soporte" in data else None
        response = client.post(url, data=data, content_type=kind)
    assert time.perf_counter() - started < 3
    assert response.status_code == (200 if method == "get" else 422), what
    assert 'class="error' in response.text or method == "get"
    assert SolicitudAutorizacion.select().count() == 0
    assert Account.select().where(Account.kind == Account.EPS).count() == int(signed)


@pytest.mark.parametrize(
    ("what", "path", "data"),
    [
        (
            "login password",
            "/genesis/afiliados",
            dict(tipo_documento="CC", numero_documento="81000004", password="a\x00b"),
        ),
        (
            "validar numero",
            "/genesis/registro",
            dict(tipo_documento="CC", numero_documento="8100\x000005"),
        ),
        (
            "olvide codigo",
            "/genesis/olvide/codigo",
            dict(codigo="12\x003456", password="x", confirm="x"),
        ),
        ("observacion", "/genesis/solicitud/{id}", "request"),
        ("contact direccion", "/genesis/solicitud/{id}/contacto/editar", "contact"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "",
)
def test_a_nul_byte_in_any_field_is_a_400(db, client, auth, what, path, data):
    afiliado = make_eps_afiliado()
    genesis.confirm_contact(afiliado)
    auth.login(client, make_eps_user(afiliado))
    if data == "request":
        data = dict(
            form_key=new_key(),
            departamento="08",
            municipio="08001",
            observacion="Rodilla\x00",
            soporte=(io.BytesIO(pdf_bytes()), "orden.pdf"),
        )
    elif data == "contact":
        data = dict(
            celular="3001234567",
            email="",
            direccion="Calle\x00 1 # 2-3",
            departamento="08",
            municipio="08001",
            accion="confirmar",
        )
    kind = "multipart/form-data" if "soporte" in data else None
    response = client.post(path.format(id=afiliado.id), data=data, content_type=kind)
    assert response.status_code == 400, what
    assert counts()[:3] == (0, 0, 0)


def test_a_nul_byte_in_the_support_file_name_is_refused_in_words(db, client, auth, upload_dir):
    f = nucleo()
    auth.login(client, make_eps_user(f.rosa))
    response = send(client, f.rosa, new_key(), soporte=[(pdf_bytes(), "orden\x00.pdf")])
    assert response.status_code == 422
    assert SolicitudAutorizacion.select().count() == 0 and files_on_disk(upload_dir) == []


ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def test_a_nul_byte_in_the_user_agent_does_not_break_the_login(db, client):
    account = make_eps_user()
    response = ingresar(client, numero_of(account), headers={"User-Agent": "Mozilla\x00/5.0"})
    assert response.status_code == 303
    assert client.get("/genesis/oficina").status_code == 200


SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_markup_and_invisible_characters_in_observacion_reach_staff_inert(
    db, app, auth, upload_dir
):
    f = nucleo()
    rosa = auth.login(app.test_client(), make_eps_user(f.rosa))
    text = f"Rodilla {SCRIPT} \u202eetnegru\u202c cero\u200bancho"
    name = "<img src=x onerror=alert(1)>\u202efdp.exe.pdf"
    sent = send(rosa, f.rosa, new_key(), observacion=text, soporte=[(pdf_bytes(), name)])
    assert sent.status_code == 303
    made = SolicitudAutorizacion.get()
    staff = auth.login(app.test_client(), make_staff(roles=("autorizaciones",)))
    for page in (
        staff.get(f"{QUEUE}/{made.id}").text,
        rosa.get(f"/genesis/consulta/{f.rosa.id}?pestana=solicitudes").text,
    ):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
    assert "\u202e" not in staff.get(f"{QUEUE}/{made.id}").text.split("Soporte")[-1]
    disposition = staff.get(f"{QUEUE}/{made.id}/soporte").headers["Content-Disposition"]
    fallback = re.search(r'filename="([^"]*)"', disposition).group(1)
    assert re.fullmatch(r"[A-Za-z0-9._ -]+\.pdf", fallback), disposition
    assert "<" not in disposition and "%E2%80%AE" not in disposition.upper()  # no U+202E


# === staff: the side doors of a decision ==============================================================


@pytest.fixture
def pending(db, upload_dir):
    f = nucleo()
    made = file_request(make_eps_user(f.rosa), f.lucia, upload_dir)
    return made, make_ips(nombre="Clínica Los Almendros")


def approve_data(ips_row, **over) -> dict:
    data = {
        "codigo_servicio": "890250",
        "nombre_servicio": "Consulta pediatría",
        "ips": str(ips_row.id),
    }
    return data | over


def _still_pending(made) -> None:
    with models.db.connection_context():
        assert SolicitudAutorizacion.get_by_id(made.id).estado == SolicitudAutorizacion.PENDIENTE
        assert Autorizacion.select().count() == 0
        assert AuditEvent.select().count() == 0


def test_a_role_taken_away_mid_session_decides_nothing(db, client, auth, pending):
    made, ips = pending
    staff = make_staff(roles=("autorizaciones",))
    auth.login(client, staff)
    messages = len(Message.select())
    assert client.get(f"{QUEUE}/{made.id}").status_code == 200

    StaffRole.delete().where(StaffRole.account == staff.id).execute()
    StaffRole.create(account=staff.id, role="convenios")
    assert client.post(f"{QUEUE}/{made.id}/aprobar", data=approve_data(ips)).status_code == 404
    assert (
        client.post(
            f"{QUEUE}/{made.id}/rechazar", data={"motivo": "No corresponde a la orden."}
        ).status_code
        == 404
    )
    _still_pending(made)
    assert len(Message.select()) == messages


def test_staff_without_the_second_factor_decides_nothing(db, client, auth, pending):
    made, ips = pending
    auth.login(client, make_staff(roles=("autorizaciones",)), second_factor=False)
    response = client.post(f"{QUEUE}/{made.id}/aprobar", data=approve_data(ips))
    assert response.status_code in (302, 303)
    _still_pending(made)


@pytest.mark.parametrize("ips_value", ["987654", "0", "-1", "1e3", "999999999999999999999", ""])
def test_approving_with_an_ips_that_does_not_exist_is_422_and_changes_nothing(
    db, client, auth, pending, ips_value
):
    made, ips = pending
    auth.login(client, make_staff(roles=("autorizaciones",)))
    messages = Message.select().count()
    response = client.post(f"{QUEUE}/{made.id}/aprobar", data=approve_data(ips, ips=ips_value))
    assert response.status_code == 422 and "Elija la IPS de la lista." in response.text
    _still_pending(made)
    assert Message.select().count() == messages


def test_the_service_refuses_an_ips_that_does_not_exist(db, pending):

    made, _ips = pending
    staff = make_staff(roles=("autorizaciones",))
    with pytest.raises(decide.InvalidChoice) as wrong:
        decide.approve(made.id, staff, decide.Approval("890250", "Consulta", 987654), "x")
    assert wrong.value.field == "ips"
    _still_pending(made)


def test_two_approvals_posted_at_once_issue_one_authorization(db, app, auth, pending):
    made, ips = pending
    clients = [
        auth.login(app.test_client(), make_staff(roles=("autorizaciones",))) for _ in range(2)
    ]
    messages = Message.select().count()
    barrier, answers = threading.Barrier(2, timeout=30), []
    models.db.close()

    def press(browser, codigo):
        try:
            barrier.wait()
            answer = browser.post(
                f"{QUEUE}/{made.id}/aprobar", data=approve_data(ips, codigo_servicio=codigo)
            )
            answers.append((answer.status_code, answer.headers.get("Location")))
        except Exception as exc:  # reported below
            answers.append((type(exc).__name__, None))
        finally:
            models.db.close()

    threads = [
        threading.Thread(target=press, args=(c, code))
        for c, code in zip(clients, ("890250", "890251"), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    models.db.connect(reuse_if_open=True)
    assert sorted(answers) == sorted([(303, QUEUE), (303, f"{QUEUE}/{made.id}")]), answers
    assert Autorizacion.select().count() == 1
    assert AuditEvent.select().count() == 1
    assert Message.select().count() == messages + 2  # one SMS and one e-mail, of the winner
    assert SolicitudAutorizacion.get_by_id(made.id).autorizacion_id == Autorizacion.get().id


def test_the_download_audit_keeps_the_real_address_not_a_forwarded_one(db, client, auth, pending):
    made, _ips = pending
    auth.login(client, make_staff(roles=("autorizaciones",)))
    response = client.get(
        f"{QUEUE}/{made.id}/soporte",
        headers={"X-Forwarded-For": "198.51.100.66"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    [event] = AuditEvent.select()
    assert event.ip == "203.0.113.9" and event.target_id == made.id


# === no personal data, codes or passwords in the logs ====================================================


class _Browser:
    """A cookie-keeping urllib client against a real werkzeug server (its request log is real)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def open(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, body, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def test_a_whole_registration_and_reset_log_no_personal_data_or_secret(
    db, app, outbox, caplog, monkeypatch
):
    # Plain request lines, as gunicorn's access log writes them (make run, Procfile); the
    # development server's coloured ones are the next test's.
    monkeypatch.setattr(werkzeug.serving, "_log_add_style", False)
    numero, celular = "1093457781", "3157788990"
    afiliado = make_eps_afiliado(numero_documento=numero, celular=celular)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    caplog.set_level(logging.DEBUG)
    thread.start()
    try:
        web = _Browser(f"http://localhost:{server.server_port}")
        doc = {"tipo_documento": "CC", "numero_documento": numero}
        status, page = web.open("/genesis/registro", doc)
        ficha = re.search(r'name="ficha" type="hidden" value="([^"]+)"', page).group(1)
        wrong = {
            "ficha": ficha,
            "celular": "3000000000",
            "fecha_expedicion": "02/05/2003",
            "acepto": "y",
        }
        assert web.open("/genesis/registro/datos", wrong)[0] == 422
        right = wrong | {"celular": celular}
        assert web.open("/genesis/registro/datos", right)[0] == 200
        temporary = temp_password_in(last_sms(outbox))
        assert web.open("/genesis/afiliados", doc | {"password": "Mala-Clave-0000"})[0] == 422
        assert web.open("/genesis/afiliados", doc | {"password": temporary})[0] == 200
        web.open("/genesis/cambiar-clave", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        web.open("/genesis/carta-de-derechos", {"acepto": "y"})
        web.open(f"/genesis/consulta/{afiliado.id}?pestana=solicitudes&q={celular}+{numero}")
        web.open(f"/genesis/afiliados?next=/genesis/consulta/{afiliado.id}%3Fq%3D{numero}")
        web.open("/genesis/salir", {})
        web.open("/genesis/olvide", doc)
        code = code_in(last_sms(outbox))
        assert (
            web.open(
                "/genesis/olvide/codigo",
                {"codigo": "000000", "password": "Otra-Clave-55", "confirm": "Otra-Clave-55"},
            )[0]
            == 422
        )
        final = "Viento-Sereno-8812"
        assert (
            web.open(
                "/genesis/olvide/codigo", {"codigo": code, "password": final, "confirm": final}
            )[0]
            == 200
        )
        assert web.open("/genesis/afiliados", doc | {"password": final})[0] == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
    records = [r for r in caplog.records if not r.name.startswith("peewee")]
    lines = [r.getMessage() + (r.exc_text or "") for r in records]
    assert any(r.name == "werkzeug" and "/genesis/olvide/codigo" in r.getMessage() for r in records)
    secrets_ = {
        "document": numero,
        "mobile": celular,
        "mobile grouped": f"{celular[:3]} {celular[3:6]} {celular[6:]}",
        "temporary password": temporary,
        "code": code,
        "new password": NEW_PASSWORD,
        "final password": final,
        "step-2 token": ficha,
    }
    leaks = {name: line for line in lines for name, value in secrets_.items() if value in line}
    assert leaks == {}


@pytest.mark.parametrize("code", [302, 404, 422])
def test_coloured_request_lines_of_the_development_server_are_redacted(app, code, caplog):

    secret = "/genesis/consulta/12?q=resonancia+1093457781"
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.path, handler.command, handler.request_version = secret, "GET", "HTTP/1.1"
    handler.client_address = ("127.0.0.1", 5000)
    handler.address_string = lambda: "127.0.0.1"
    caplog.set_level(logging.INFO, logger="werkzeug")
    assert _ansi_style("x", "green") != "x"  # colours on, as on any Linux terminal
    handler.log_request(code, 10)
    [line] = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert "1093457781" not in line and "resonancia" not in line, line


# === many client addresses ==================================================================================


def test_forwarded_for_is_not_trusted_without_a_proxy(limited_app):
    assert limited_app.config["PROXY_HOPS"] == 0
    client = limited_app.test_client()
    with limited_app.app_context():
        models.db.connect(reuse_if_open=True)
        make_eps_afiliado(numero_documento="81000006")
        models.db.close()
    answers = [
        validar(client, "81000006", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(11)
    ]
    assert answers == [200] * 10 + [429]
    other = limited_app.test_client()
    fresh_ip = validar(other, "81000006", environ_base={"REMOTE_ADDR": "203.0.113.50"})
    assert fresh_ip.status_code == 200  # the limit was the address's, not everyone's


def test_behind_one_proxy_only_the_hop_it_saw_counts(proxied_app):
    client = proxied_app.test_client()
    with proxied_app.app_context():
        models.db.connect(reuse_if_open=True)
        make_eps_afiliado(numero_documento="81000007")
        models.db.close()
    # The client writes its own X-Forwarded-For; the proxy appends the address it saw.
    answers = [
        validar(
            client, "81000007", headers={"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.7"}
        ).status_code
        for i in range(11)
    ]
    assert answers == [200] * 10 + [429]
    other = validar(client, "81000007", headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code == 200


def test_per_document_limits_hold_whatever_the_address(limited_app, clock):
    app = limited_app
    with app.app_context():
        models.db.connect(reuse_if_open=True)
        afiliado = make_eps_afiliado(numero_documento="81000008")
        account_afiliado = make_eps_afiliado(numero_documento="81000009")
        account = make_eps_user(account_afiliado)
        models.db.close()
    addresses = (f"203.0.113.{i}" for i in itertools.count(10))

    def browser():
        return app.test_client(), {"REMOTE_ADDR": next(addresses)}

    # FINALIZAR: five wrong proofs from five addresses, then the right one from a sixth.
    for i in range(service.PROOF_TRIES):
        client, env = browser()
        ficha = ficha_for(client, afiliado, environ_base=env)
        assert (
            finalizar(client, ficha, celular=f"311000000{i}", environ_base=env).status_code == 422
        )
    client, env = browser()
    assert (
        finalizar(
            client, ficha_for(client, afiliado, environ_base=env), environ_base=env
        ).status_code
        == 429
    )
    # Login: the account's back-off counts every address.
    for _ in range(6):
        client, env = browser()
        assert ingresar(client, "81000009", "Mala-Clave-0000", environ_base=env).status_code == 422
    client, env = browser()
    assert ingresar(client, "81000009", environ_base=env).status_code == 422  # right, backing off
    # ¿Olvidó su contraseña?: the document's daily cap counts every address.
    with app.app_context():
        models.db.connect(reuse_if_open=True)
        Account.update(failed_logins=0, login_blocked_until=None).where(
            Account.id == account.id
        ).execute()
        models.db.close()
    answers = []
    for _ in range(service.CODE_DAILY_CAP + 1):
        client, env = browser()
        answers.append(olvide(client, "81000009", environ_base=env).status_code)
        clock.advance(seconds=service.CODE_RESEND_AFTER + 1)
    assert answers == [303] * service.CODE_DAILY_CAP + [429]
    with app.app_context():
        models.db.connect(reuse_if_open=True)
        assert OneTimeCode.select().count() == service.CODE_DAILY_CAP
        assert Account.select().where(Account.kind == Account.EPS).count() == 1
        models.db.close()


# === CSRF on every Génesis and decision POST =========================================================


def test_a_signed_in_member_opens_no_page_of_another_area(db, app, client, auth):
    member = make_eps_afiliado()
    auth.login(client, make_eps_user(member))
    anonymous = app.test_client()
    opened = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("genesis."):
            continue
        path = re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "1", rule.rule))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            status = getattr(client, method.lower())(path).status_code
            assert status < 500, (method, path)
            public = getattr(anonymous, method.lower())(path).status_code == 200
            if status == 200 and not public:
                opened.append(rule.endpoint)
    # The live "Cambiar contraseña" check only rates a candidate against the caller's own data.
    assert opened == ["accounts.account_password_check"]


def test_every_genesis_and_decision_post_needs_the_csrf_token(db, app, client, auth, pending):
    made, ips = pending
    app.config["WTF_CSRF_ENABLED"] = True
    account = SolicitudAutorizacion.get_by_id(made.id).account
    auth.login(client, account)
    rules = [
        r
        for r in app.url_map.iter_rules()
        if "POST" in r.methods
        and (r.endpoint.startswith("genesis.") or "autorizacion" in r.endpoint)
    ]
    assert len(rules) >= 12
    before = counts()
    for rule in rules:
        url = re.sub(
            r"<int:\w+>", str(made.afiliado_id if "member" in rule.rule else made.id), rule.rule
        )
        url = re.sub(r"<\w+>", made.numero, url)
        response = client.post(url, data=approve_data(ips) | {"acepto": "y", "motivo": "x" * 20})
        assert response.status_code == 400, rule.rule
    assert counts() == before
    assert client.get("/genesis/oficina").status_code == 200  # salir did not sign out


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "https:evil.example",
        "/%2F%2Fevil.example",
    ],
)
def test_the_login_never_sends_away(db, client, target):
    account = make_eps_user()
    response = ingresar(client, numero_of(account), query_string={"next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    assert "\t" not in location
