"""PQRSF, certificates and G5 data from an attacker's side: files, look-ups, tokens, replays.

The attacks, each a test that must fail against the portal:

1. A PQRSF's file: asked for by anyone but its filer (other accounts, the same family,
   staff of any role on the citizen's route, the filer's browser after signing out), by
   staff without role pqrs or without the second factor, and by guessed case ids that
   point at another owner's file.
2. Consulta PQRDS: two of the three fields right against all three wrong, byte for byte;
   the per-radicado budget spent from many addresses and many spellings of the code; the
   per-address limits with a forged X-Forwarded-For, without and behind a proxy (the
   certificate check too).
3. Signed tokens: the citizen's reply form replayed (after the reply, on a closed case,
   after a second request for information), one case's reply token on another case, the
   desbloqueo link after staff unblocked the account or the user passed the quiz, tokens
   of another purpose, secret or age, and tampered ones: words, never a 500; a reply
   posted cross-site without the CSRF token.
4. The PQRSF form replayed: a double submit with its file, the body replayed from another
   browser (CSRF on), its key and document from another browser, the same form in
   threads, and a solved captcha used twice.
5. Staff: every action by everyone but pqrs staff with its second factor; extensions past
   twice the term (also two at once), after the due day, in the wrong state; acting on a
   closed case; unblocking another account than the case names; the audit trail and its
   address; an answer and a close posted at once.
6. Text where it does not belong: files in text fields, a megabyte description, binary
   and control characters, markup shown to staff and to the citizen, and attachments that
   are something else renamed .pdf (nothing half-saved, not even a contact's budget).
7. The certificate check: unknown, malformed, oversized and repeated codes alike, nothing
   about who issued it or how to reach the member, not valid once the EPS file says the
   affiliate left, and another family's certificate neither generated nor downloaded.
8. G5 basic data: another family's member, a locked adult's channels (all or nothing), and
   fields the body may not choose; each change keeps its history row.
9. Logs: a whole filing, follow-up, reply, desbloqueo and staff round through a real server
   log no token, radicado, document, e-mail or mobile at INFO.

Each test is an attack that must fail. The review found three holes, now fixed: a reply
that was refused was still thanked for; a reply form replayed after staff asked again
answered the new request too (the token now names the request it answers); and a filed
form's key replayed from another browser with the filer's document was handed the
radicado and its file (the key is now bound to the browser the form was shown in).
"""

from __future__ import annotations

import http.cookiejar
import io
import itertools
import json
import logging
import re
import threading
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import itsdangerous.timed
import pytest
import werkzeug.serving
from werkzeug.serving import make_server

import models
from blueprints.accounts import service as accounts
from blueprints.auth import idle_limit
from blueprints.gestion import pqrs_service as service
from blueprints.gestion import service as gestion
from blueprints.pqrs.views import (
    LINK_INVALID,
    NO_MATCH,
    REPLY_EXPIRED,
    REPLY_LATE,
    REPLY_THANKS,
)
from blueprints.public import service as captchas
from core import audit, certificados, eps_data, files, genesis, tokens, uploads, workdays
from core import auth as core_auth
from core import pqrs as pqrs_core
from models import (
    Account,
    Attachment,
    AuditEvent,
    CambioDatosEps,
    Certificado,
    EpsAfiliado,
    HannaUser,
    Message,
    Pqrs,
    PqrsMensaje,
)
from tests.apps import make_app
from tests.concurrency import run_at_once
from tests.factories import make_eps_user, make_staff, make_user
from tests.sample_files import pdf_bytes
from tests.test_activation import caja, quiz_taker, right_answers, start, wrong_answers  # noqa: F401
from tests.test_certificados import make_family, verify
from tests.test_genesis_attacks import _Browser, nucleo
from tests.test_genesis_datos import datos_form, edit_url
from tests.test_gestion_pqrs import ANSWER, LINK, QUEUE, REASON, extend_form, make_pqrs
from tests.test_import_eps import eps_row, write_csv
from tests.test_pqrs import (
    RADICADO,
    blocked_user,
    captcha_key,
    consultar,
    filed,
    files_on_disk,
    form,
    pqrs_link,
    send,
    token_of,
)

SECRET = "test-secret"
NOBODY = "PQR-2026-ZZZZZZ"  # well-formed, and no case of these tests has it (1 in 31^6)
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"This program cannot be run in DOS mode"
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
INFO_ASKED = "Envíe la orden médica firmada por el especialista."
MOTIVO = "La ciudadana llamó y desistió de la solicitud."

_addresses = (f"198.51.100.{i}" for i in itertools.count(1))
_real_time = time.time


def clean(html: str) -> str:
    """The page without what differs on every render: the masked CSRF tokens."""
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', html)


def ficha_in(html: str) -> str:
    found = re.search(r'name="ficha" value="([^"]+)"', html)
    assert found, "no reply form on the page"
    return found.group(1)


def reply(client, ficha: str, texto: str = "Adjunto la orden firmada por el médico.", **data):
    return client.post(
        "/pqrs/consulta/informacion", data={"ficha": ficha, "informacion": texto, **data}
    )


def follow_case(client, case: Pqrs, **headers):
    return consultar(client, case.radicado, case.tipo_documento, case.numero_documento, **headers)


def reload(row):
    return type(row).get_by_id(row.id)


def counts() -> dict[str, int]:
    with models.db.connection_context():
        return {
            "pqrs": Pqrs.select().count(),
            "adjuntos": Attachment.select().count(),
            "mensajes": PqrsMensaje.select().count(),
            "avisos": Message.select().count(),
            "auditoria": AuditEvent.select().count(),
        }


def citizen_messages(case: Pqrs) -> list[str]:
    return [
        m.texto
        for m in PqrsMensaje.select()
        .where((PqrsMensaje.pqrs == case.id) & (PqrsMensaje.tipo == PqrsMensaje.CIUDADANO))
        .order_by(PqrsMensaje.id)
    ]


def pqrs_staff(app, auth, **over):
    staff = make_staff(roles=("pqrs",), **over)
    return staff, auth.login(app.test_client(), staff)


def waiting_case(staff, **over) -> Pqrs:
    """A radicada case whose citizen was asked for more information (the term suspended)."""
    case = make_pqrs(**over)
    service.ask_information(case.id, staff, INFO_ASKED, LINK)
    return reload(case)


@pytest.fixture
def upload_dir(app) -> Path:
    return Path(app.config["UPLOAD_DIR"])


@pytest.fixture
def proxied_app(tmp_path):
    """The portal behind one proxy (PROXY_HOPS=1), rate limits on."""
    yield from make_app(
        tmp_path, PROXY_HOPS=1, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"
    )


# === 1. the citizen's file =====================================================================

OTHERS = [
    "anonymous",
    "another hanna user",
    "the filer's family",
    "pqrs staff",
    "admin staff",
    "the filer's browser after signing out",
]


@pytest.mark.parametrize("who", OTHERS)
def test_a_pqrsf_file_reaches_nobody_but_its_filer(db, app, auth, who):
    f = nucleo()
    filer = auth.login(app.test_client(), make_eps_user(f.rosa))
    radicado = filed(filer, adjunto=(io.BytesIO(pdf_bytes()), "historia clínica.pdf"))
    url = f"/pqrs/radicado/{radicado}/adjunto"
    assert filer.get(url).data == pdf_bytes()
    if who == "the filer's browser after signing out":
        assert filer.post("/genesis/salir").status_code == 303
        browser = filer
    elif who == "anonymous":
        browser = app.test_client()
    else:
        account = {
            "another hanna user": make_user,
            "the filer's family": lambda: make_eps_user(f.pedro),
            "pqrs staff": lambda: make_staff(roles=("pqrs",)),
            "admin staff": lambda: make_staff(roles=("admin",)),
        }[who]()
        browser = auth.login(app.test_client(), account)
    browser.get("/pqrs/consulta")  # shows (and so drops) the flash of the sign-out
    # Lower case and without dashes, as a person would type it: still nothing.
    for attempt in (url, url.lower().replace("-", "")):
        answer = browser.get(attempt)
        unknown = browser.get(f"/pqrs/radicado/{NOBODY}/adjunto")
        assert answer.status_code == unknown.status_code == 404, attempt
        assert clean(answer.text) == clean(unknown.text) and b"%PDF" not in answer.data
    page = browser.get(f"/pqrs/radicado/{radicado}")
    assert page.status_code == 302 and urlsplit(page.location).path == "/pqrs/consulta"
    assert AuditEvent.select().count() == 0


STAFF_DOOR = [
    "anonymous",
    "admin",
    "autorizaciones",
    "afiliaciones",
    "soporte",
    "hanna",
    "eps",
    "pqrs without the second factor",
    "pqrs disabled mid-session",
]


@pytest.mark.parametrize("who", STAFF_DOOR)
def test_the_staff_file_view_opens_for_pqrs_staff_only(db, app, auth, upload_dir, who):
    case = make_pqrs(upload_dir=upload_dir)
    url = f"{QUEUE}/{case.id}/adjunto"
    browser = app.test_client()
    if who == "hanna":
        auth.login(browser, make_user())
    elif who == "eps":
        auth.login(browser, make_eps_user())
    elif who.startswith("pqrs"):
        staff = make_staff(roles=("pqrs",))
        auth.login(browser, staff, second_factor="second factor" not in who)
        if "disabled" in who:
            Account.update(status=Account.DISABLED).where(Account.id == staff.id).execute()
    elif who != "anonymous":
        auth.login(browser, make_staff(roles=(who,)))
    answer = browser.get(url)
    assert answer.status_code in (302, 303, 404), who
    assert b"%PDF" not in answer.data and "Content-Disposition" not in answer.headers
    assert AuditEvent.select().count() == 0
    # The same file for pqrs staff, audited once with who opened it.
    staff, client = pqrs_staff(app, auth)
    assert client.get(url).data == pdf_bytes()
    [event] = AuditEvent.select()
    assert (event.actor_id, event.action, event.target_id) == (
        staff.id,
        audit.Action.PQRS_ADJUNTO_VER,
        case.id,
    )


def test_guessed_case_ids_serve_no_file_of_another_owner(db, app, auth, client, upload_dir):
    radicado = filed(client)  # filed without a file, from this browser
    case = Pqrs.get(Pqrs.radicado == radicado)
    # Another area's file whose owner id happens to be this case's id.
    files.save(
        io.BytesIO(pdf_bytes()), "orden.pdf", uploads.AUTHORIZATION, upload_dir,
        genesis.REQUEST_OWNER, case.id,
    )  # fmt: skip
    assert client.get(f"/pqrs/radicado/{radicado}/adjunto").status_code == 404
    _staff, staff = pqrs_staff(app, auth)
    for pqrs_id in (case.id, case.id + 1, 0, "-1", "1e3", "9" * 30):
        answer = staff.get(f"{QUEUE}/{pqrs_id}/adjunto")
        assert answer.status_code == 404, pqrs_id
        assert b"%PDF" not in answer.data
    assert AuditEvent.select().count() == 0


# === 2. Consulta PQRDS: no oracle, budgets that hold ========================================


def test_two_right_fields_read_byte_for_byte_like_three_wrong(db, app, htmx):
    """The same request before its radicado exists and after: identical, but for the CSRF token."""
    asked = {
        "número wrong": ("CC", "1045123456", "PQR-2026-AAAAAA"),
        "tipo wrong": ("CC", "1045123456", "PQR-2026-BBBBBB"),
        "radicado wrong": ("CC", "1045123456", "PQR-2026-CCCCCC"),
    }

    def answers() -> dict:
        seen = {}
        for name, (tipo, numero, radicado) in asked.items():
            for partial in (False, True):
                page = consultar(
                    app.test_client(), radicado, tipo, numero, **(htmx if partial else {})
                )
                seen[name, partial] = (page.status_code, clean(page.text))
        return seen

    all_wrong = answers()
    make_pqrs(radicado="PQR-2026-AAAAAA", tipo_documento="CC", numero_documento="1098765432")
    make_pqrs(radicado="PQR-2026-BBBBBB", tipo_documento="CE", numero_documento="1045123456")
    make_pqrs(radicado="PQR-2026-DDDDDD", tipo_documento="CC", numero_documento="1045123456")
    two_right = answers()
    assert two_right == all_wrong
    for status, text in two_right.values():
        assert status == 200 and NO_MATCH.split(".")[0] in text.replace("&#34;", '"')
    # And the right three do answer (the comparison above is not of two empty pages).
    assert "Radicada, en trámite" in consultar(app.test_client(), "PQR-2026-DDDDDD").text


SPELLINGS = [
    "PQR-2026-K7M9QX",
    "pqr-2026-k7m9qx",
    " PQR 2026 K7M9QX ",
    "PQR2026K7M9QX",
    "pqr_2026.k7m9qx",
    "PQR--2026--K7M9QX",
    "Pqr-2026-K7m9Qx",
    "PQR - 2026 - K7M9QX",
    "pqr2026k7m9qx",
    "\tPQR-2026-K7M9QX\n",
]


def test_the_per_radicado_budget_holds_across_addresses_and_spellings(db, app):
    case = make_pqrs(radicado="PQR-2026-K7M9QX", numero_documento="1045123456")
    assert len(SPELLINGS) == pqrs_core.FOLLOW_TRIES
    for spelling in SPELLINGS:  # each from its own address, the document wrong
        guess = app.test_client().post(
            "/pqrs/consulta",
            data={"tipo_documento": "CC", "numero_documento": "1098765432", "radicado": spelling},
            environ_base={"REMOTE_ADDR": next(_addresses)},
        )
        assert guess.status_code == 200 and "PQRDS PQR-2026-K7M9QX" not in guess.text, spelling
    right = app.test_client().post(
        "/pqrs/consulta",
        data={
            "tipo_documento": "CC",
            "numero_documento": "1045123456",
            "radicado": "pqr2026k7m9qx",
        },
        environ_base={"REMOTE_ADDR": next(_addresses)},
    )
    assert right.status_code == 429 and "Retry-After" in right.headers
    assert "Radicada, en trámite" not in right.text and "PQRDS PQR-2026-K7M9QX" not in right.text
    # The budget is the code's, not the address's: another code still answers from there.
    other = make_pqrs(numero_documento="1045123456")
    assert "Radicada, en trámite" in follow_case(app.test_client(), other).text
    assert reload(case).estado == Pqrs.RADICADA


def _lookup(client, kind: str, i: int, **kwargs):
    """Look up the i-th unknown code: a new one each time, so only the address's limit counts."""
    if kind == "consulta":
        return client.post(
            "/pqrs/consulta",
            data={
                "tipo_documento": "CC",
                "numero_documento": "1045123456",
                "radicado": f"PQR-2026-{i:06d}".replace("0", "A").replace("1", "B"),
            },
            **kwargs,
        )
    return client.get("/certificados/verificar", query_string={"codigo": f"{i:010d}"}, **kwargs)


LOOKUPS = {"consulta": 10, "verificar": 20}  # per minute and client address


@pytest.mark.parametrize("kind", list(LOOKUPS))
def test_a_forged_forwarded_for_buys_no_look_ups_without_a_proxy(limited_app, kind):
    assert limited_app.config["PROXY_HOPS"] == 0
    client = limited_app.test_client()
    answers = [
        _lookup(client, kind, i, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(LOOKUPS[kind] + 1)
    ]
    assert answers[:-1] == [answers[0]] * LOOKUPS[kind] and answers[0] in (200, 422)
    assert answers[-1] == 429
    elsewhere = _lookup(client, kind, 99, environ_base={"REMOTE_ADDR": "192.0.2.77"})
    assert elsewhere.status_code == answers[0]  # the limit was the address's, not everyone's


@pytest.mark.parametrize("kind", list(LOOKUPS))
def test_behind_one_proxy_only_the_hop_it_saw_counts(proxied_app, kind):
    client = proxied_app.test_client()
    answers = [
        _lookup(
            client, kind, i, headers={"X-Forwarded-For": f"10.0.{i}.1, 203.0.113.7"}
        ).status_code
        for i in range(LOOKUPS[kind] + 1)
    ]
    assert answers[-1] == 429 and 429 not in answers[:-1]
    other = _lookup(client, kind, 99, headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code != 429


# === 3. signed tokens =========================================================================


def test_a_reply_replayed_on_a_closed_case_adds_nothing_and_reopens_nothing(db, app, auth):
    staff, staff_client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    browser = app.test_client()
    ficha = ficha_in(follow_case(browser, case).text)
    assert "Recibimos la información" in reply(browser, ficha).text
    assert (
        staff_client.post(f"{QUEUE}/{case.id}/responder", data={"respuesta": ANSWER}).status_code
        == 303
    )
    assert (
        staff_client.post(f"{QUEUE}/{case.id}/cerrar", data={"motivo_cierre": ""}).status_code
        == 303
    )
    before = counts()
    for _ in range(2):
        again = reply(app.test_client(), ficha, "Otra vez la misma información.")
        assert again.status_code in (409, 422)
        assert "Enviar la información solicitada" not in again.text
    now = reload(case)
    assert now.estado == Pqrs.CERRADA and now.closed_at is not None
    assert citizen_messages(case) == ["Adjunto la orden firmada por el médico."]
    assert counts() == before


def test_a_reply_that_was_not_recorded_is_not_acknowledged(db, app, auth):
    staff, staff_client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    browser = app.test_client()
    ficha = ficha_in(follow_case(browser, case).text)
    # Staff answer with what they have before the citizen sends the information.
    assert (
        staff_client.post(f"{QUEUE}/{case.id}/responder", data={"respuesta": ANSWER}).status_code
        == 303
    )
    late = reply(browser, ficha, "La orden firmada, por fin.")
    assert citizen_messages(case) == []  # nothing was recorded…
    assert REPLY_THANKS not in late.text  # …so the citizen must not read that it was
    assert late.status_code == 409 and REPLY_LATE in late.text


def test_a_reply_replayed_after_a_second_request_for_information_adds_nothing(db, app, auth):
    staff, _client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    browser = app.test_client()
    ficha = ficha_in(follow_case(browser, case).text)
    assert "Recibimos la información" in reply(browser, ficha, "Primera respuesta.").text
    service.ask_information(case.id, staff, "Falta además la fórmula médica.", LINK)
    due = reload(case).due_on
    reply(browser, ficha, "Primera respuesta.")  # the browser's "send again", or a stolen form
    assert citizen_messages(case) == ["Primera respuesta."]
    now = reload(case)
    assert now.estado == Pqrs.INFORMACION and now.due_on == due


def test_the_reply_token_of_one_case_writes_only_to_that_case(db, app, auth):
    staff, _client = pqrs_staff(app, auth)
    mine, theirs = waiting_case(staff), waiting_case(staff)
    browser = app.test_client()
    ficha = ficha_in(follow_case(browser, mine).text)
    answer = reply(
        browser,
        ficha,
        "Para el otro caso.",
        radicado=theirs.radicado,
        pqrs=str(theirs.id),
        pqrs_id=str(theirs.id),
        tipo_documento=theirs.tipo_documento,
        numero_documento=theirs.numero_documento,
    )
    assert answer.status_code == 200 and theirs.radicado not in answer.text
    assert citizen_messages(mine) == ["Para el otro caso."] and citizen_messages(theirs) == []
    assert reload(theirs).estado == Pqrs.INFORMACION
    # The payload of one case under the other's signature: refused.
    payload, stamp, signature = ficha.rsplit(".", 2)
    other = tokens.make_token(
        SECRET, pqrs_core.REPLY_PURPOSE, {"p": theirs.id, "r": theirs.radicado}
    )
    their_payload = other.rsplit(".", 2)[0]
    spliced = f"{their_payload}.{stamp}.{signature}"
    assert their_payload != payload and spliced != other
    refused = reply(app.test_client(), spliced, "Colado.")
    assert refused.status_code == 422 and REPLY_EXPIRED.split(" ")[0] in refused.text
    assert citizen_messages(theirs) == []


def _token(case_kind: str, case: Pqrs, user: Account, monkeypatch) -> str:
    """Tokens that must open nothing: another purpose, another secret, too old."""
    if case_kind == "desbloqueo token as the reply form":
        return pqrs_core.desbloqueo_token(SECRET, user)
    if case_kind == "reply token of another secret":
        return pqrs_core.reply_token(case, secret="otra-clave-" * 4)
    if case_kind == "reply token 31 minutes old":
        with monkeypatch.context() as m:
            m.setattr(itsdangerous.timed.time, "time", lambda: _real_time() - 31 * 60)
            return pqrs_core.reply_token(case, secret=SECRET)
    if case_kind == "reply token as the desbloqueo link":
        return pqrs_core.reply_token(case, secret=SECRET)
    if case_kind == "activation token as the desbloqueo link":
        return accounts.activation_link(user, secret=SECRET, base_url="").rsplit("/", 1)[-1]
    if case_kind == "reset token naming the account":
        return tokens.make_token(SECRET, tokens.RESET, {"a": user.id, "u": ""})
    if case_kind == "desbloqueo link of another secret":
        return pqrs_core.desbloqueo_token("otra-clave-" * 4, user)
    assert case_kind == "desbloqueo link 8 days old"
    with monkeypatch.context() as m:
        m.setattr(itsdangerous.timed.time, "time", lambda: _real_time() - 8 * 24 * 3600)
        return pqrs_core.desbloqueo_token(SECRET, user)


# Where each is tried: the citizen's reply form, or the desbloqueo link.
FOREIGN_TOKENS = {
    "desbloqueo token as the reply form": "reply",
    "reply token of another secret": "reply",
    "reply token 31 minutes old": "reply",
    "reply token as the desbloqueo link": "link",
    "activation token as the desbloqueo link": "link",
    "reset token naming the account": "link",
    "desbloqueo link of another secret": "link",
    "desbloqueo link 8 days old": "link",
}


@pytest.mark.parametrize("kind", FOREIGN_TOKENS)
def test_tokens_of_another_purpose_secret_or_age_open_nothing(db, app, auth, monkeypatch, kind):
    staff, _client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    user, _link = blocked_user()
    token = _token(kind, case, user, monkeypatch)
    browser = app.test_client()
    before = counts()
    if FOREIGN_TOKENS[kind] == "reply":
        answer = reply(browser, token)
        assert answer.status_code == 422 and "venció" in answer.text
        assert reload(case).estado == Pqrs.INFORMACION and citizen_messages(case) == []
    else:
        page = browser.get("/pqrs", query_string={"tipo": "desbloqueo", "cuenta": token})
        assert page.status_code == 200 and LINK_INVALID in page.text.replace("&#39;", "'")
        assert user.email not in page.text and user.hanna.numero_documento not in page.text
        posted = send(browser, tipo="desbloqueo", cuenta=token)
        assert posted.status_code == 422 and LINK_INVALID in posted.text.replace("&#39;", "'")
    assert counts() == before


GARBAGE = [
    "x",
    ".",
    "..",
    "a.b.c.d",
    "eyJhIjoxfQ",
    "eyJhIjoxfQ.AAAAAA.",
    "ñandú-" * 20,
    "%00",
    "A" * 401,
    "A" * 5000,
    "e30.ZZZZZZ.ZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "<script>alert(1)</script>",
    "null",
    '{"a": 1}',
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=lambda v: v[:12])
def test_tampered_tokens_get_words_never_a_500(db, app, auth, garbage):
    staff, _client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    user, activation = blocked_user()
    browser = app.test_client()
    real = token_of(pqrs_link(browser.get(activation).text))
    for token in (garbage, real[:-1], real + "A", real.replace(".", ".A", 1), real[::-1]):
        page = browser.get("/pqrs", query_string={"tipo": "desbloqueo", "cuenta": token})
        assert page.status_code == 200 and "El enlace de desbloqueo no es válido" in page.text
        assert user.hanna.numero_documento not in page.text
        posted = send(browser, tipo="desbloqueo", cuenta=token)
        assert posted.status_code == 422 and "El enlace de desbloqueo no es válido" in posted.text
        answer = reply(browser, token)
        assert answer.status_code == 422 and "venció" in answer.text
    assert Pqrs.select().count() == 1 and citizen_messages(case) == []


@pytest.mark.parametrize("decision", [gestion.Unblock.RETRY, gestion.Unblock.ACTIVATE])
def test_a_desbloqueo_link_is_dead_once_unblocked_or_the_quiz_passed(
    db,
    app,
    auth,
    caja,  # noqa: F811
    outbox,
    decision,
):
    user, activation = quiz_taker(caja)
    citizen = app.test_client()
    for _ in range(3):
        start(citizen, activation)
        blocked = citizen.post(activation, data=wrong_answers(user))
    assert blocked.status_code == 403
    link = pqrs_link(blocked.text)
    numero = HannaUser.get_by_id(user.id).numero_documento
    assert f'value="{numero}"' in citizen.get(link).text  # alive: prefilled
    tipo = HannaUser.get_by_id(user.id).tipo_documento
    radicado = filed(
        citizen, tipo="desbloqueo", cuenta=token_of(link), tipo_documento=tipo,
        numero_documento=numero, email=user.email, celular="",
    )  # fmt: skip
    case = Pqrs.get(Pqrs.radicado == radicado)
    assert case.cuenta_bloqueada_id == user.id
    _staff, staff = pqrs_staff(app, auth)
    data = {"decision": decision.value, "verified_by": "pqrsf", "reason": REASON}
    assert staff.post(f"{QUEUE}/{case.id}/desbloquear", data=data).status_code == 303
    if decision is gestion.Unblock.RETRY:  # a fresh quiz link by e-mail: this time right
        fresh_link = outbox.last_link("/activar/")
        start(citizen, fresh_link)
        assert citizen.post(fresh_link, data=right_answers(user)).status_code == 303
    assert Account.get_by_id(user.id).status == Account.ACTIVE
    for browser in (citizen, app.test_client()):  # (a signed-in citizen gets their own data)
        page = browser.get(link)
        assert LINK_INVALID in page.text.replace("&#39;", "'")
        assert browser is citizen or numero not in page.text
        posted = send(
            browser, tipo="desbloqueo", cuenta=token_of(link), tipo_documento=tipo,
            numero_documento=numero,
        )  # fmt: skip
        assert posted.status_code == 422 and LINK_INVALID in posted.text.replace("&#39;", "'")
    assert Pqrs.select().count() == 1
    # The case's unblock again: nothing to unblock, nothing audited twice.
    events = AuditEvent.select().count()
    again = staff.post(f"{QUEUE}/{case.id}/desbloquear", data=data)
    assert again.status_code == 303 and AuditEvent.select().count() == events
    assert Account.get_by_id(user.id).status == Account.ACTIVE


# === 4. the form replayed ======================================================================


def test_a_double_submit_with_a_file_keeps_one_case_one_file_one_notice(db, client, upload_dir):
    data = form()
    answers = []
    for _ in range(3):
        body = {**data, "adjunto": (io.BytesIO(pdf_bytes()), "orden.pdf")}
        answers.append(client.post("/pqrs", data=body, content_type="multipart/form-data"))
    assert {a.status_code for a in answers} == {303}
    assert len({a.location for a in answers}) == 1
    assert counts() == {"pqrs": 1, "adjuntos": 1, "mensajes": 0, "avisos": 2, "auditoria": 0}
    assert len(files_on_disk(upload_dir)) == 1


def test_the_form_replayed_from_another_browser_is_refused_by_csrf(db, app):
    app.config["WTF_CSRF_ENABLED"] = True
    victim = app.test_client()
    page = victim.get("/pqrs").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    key = re.search(r'name="form_key"[^>]*value="([^"]+)"', page).group(1)
    data = form(form_key=key, csrf_token=token)
    first = victim.post("/pqrs", data=data)
    assert first.status_code == 303
    radicado = RADICADO.search(first.location).group(1)
    for replayer in (app.test_client(), app.test_client()):
        again = replayer.post("/pqrs", data=data)
        assert again.status_code == 400 and radicado not in again.text
        assert "Location" not in again.headers
    assert Pqrs.select().count() == 1


def test_a_reply_posted_cross_site_without_the_csrf_token_is_refused(db, app, auth):
    staff, _client = pqrs_staff(app, auth)
    case = waiting_case(staff)
    ficha = ficha_in(follow_case(app.test_client(), case).text)
    app.config["WTF_CSRF_ENABLED"] = True
    for browser in (app.test_client(), app.test_client()):
        answer = reply(browser, ficha, "Enviado desde otra página.")
        assert answer.status_code == 400 and "Enviar la información" not in answer.text
    assert citizen_messages(case) == [] and reload(case).estado == Pqrs.INFORMACION


def test_a_solved_captcha_files_once(db, app, client):
    app.config["CAPTCHA"] = "image"
    key = captcha_key(client.get("/pqrs").text)
    with app.app_context():
        text = captchas.challenge(key).text
    assert send(client, captcha_key=key, captcha=text).status_code == 303
    for browser in (client, app.test_client()):  # the same answer with a fresh form key
        again = send(browser, captcha_key=key, captcha=text, numero_documento="1098765432")
        assert again.status_code == 422 and "El texto no coincide" in again.text
    assert Pqrs.select().count() == 1


def test_a_form_key_and_document_replayed_from_another_browser_reveal_nothing(db, app):
    victim = app.test_client()
    data = form()
    radicado = filed(
        victim, **{**data, "adjunto": (io.BytesIO(pdf_bytes()), "historia clínica.pdf")}
    )
    other = app.test_client()  # its own session (CSRF would pass with its own token)
    replay = other.post("/pqrs", data={**data, "nombre": "Otro Nombre", "email": "x@example.com"})
    assert radicado not in (replay.location or "") + replay.text
    assert other.get(f"/pqrs/radicado/{radicado}").status_code == 302  # to the consulta
    assert other.get(f"/pqrs/radicado/{radicado}/adjunto").status_code == 404
    # In that browser the key is a new form: it filed its own PQRSF, without the file.
    theirs = Pqrs.get(Pqrs.radicado != radicado)
    assert theirs.nombre == "Otro Nombre" and pqrs_core.attachment_of(theirs) is None
    assert pqrs_core.attachment_of(Pqrs.get(Pqrs.radicado == radicado)) is not None


def test_the_same_form_posted_in_threads_makes_one_case(db, app, upload_dir, monkeypatch):
    real_spend = pqrs_core._spend_contacts

    def slow_spend(filing):
        real_spend(filing)
        time.sleep(0.15)  # widen the window between the check and the insert

    monkeypatch.setattr(pqrs_core, "_spend_contacts", slow_spend)
    data = form()
    shown = app.test_client()
    assert shown.get("/pqrs").status_code == 200  # one browser shows the form…
    clients = [app.test_client() for _ in range(4)]
    name = app.config["SESSION_COOKIE_NAME"]
    for browser in clients:  # …and its clicks race each other: its session in each
        browser.set_cookie(name, shown.get_cookie(name).value)

    def post(browser):
        body = {**data, "adjunto": (io.BytesIO(pdf_bytes()), "orden.pdf")}
        answer = browser.post("/pqrs", data=body, content_type="multipart/form-data")
        return answer.status_code, answer.location

    results = run_at_once([lambda c=c: post(c) for c in clients])
    assert all(isinstance(r, tuple) for r in results), results
    assert {r[0] for r in results} == {303} and len({r[1] for r in results}) == 1
    assert Pqrs.select().count() == 1 and Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1
    assert Message.select().count() == 2  # one e-mail, one SMS


# === 5. staff =================================================================================

ACTIONS = {
    "responder": {"respuesta": ANSWER},
    "informacion": {"informacion": INFO_ASKED},
    "prorrogar": extend_form("5"),
    "cerrar": {"motivo_cierre": MOTIVO},
    "desbloquear": {"decision": "activar", "verified_by": "pqrsf", "reason": REASON},
}
NOT_PQRS = [
    "admin",
    "autorizaciones",
    "soporte",
    "hanna",
    "eps",
    "pqrs without 2FA",
    "pqrs disabled",
]


@pytest.mark.parametrize("who", NOT_PQRS)
def test_nobody_but_pqrs_staff_with_its_second_factor_acts_on_a_case(db, app, auth, outbox, who):
    user, _link = blocked_user()
    case = make_pqrs(Pqrs.DESBLOQUEO, cuenta_bloqueada=user)
    browser = app.test_client()
    if who == "hanna":
        auth.login(browser, make_user())
    elif who == "eps":
        auth.login(browser, make_eps_user())
    elif who.startswith("pqrs"):
        staff = make_staff(roles=("pqrs",))
        auth.login(browser, staff, second_factor=who != "pqrs without 2FA")
        if who == "pqrs disabled":
            Account.update(status=Account.DISABLED).where(Account.id == staff.id).execute()
    else:
        auth.login(browser, make_staff(roles=(who,)))
    for action, data in ACTIONS.items():
        answer = browser.post(f"{QUEUE}/{case.id}/{action}", data=data)
        assert answer.status_code in (302, 303, 404), (who, action)
        if answer.status_code != 404:
            assert "/ingresar" in answer.location or "segundo" in answer.location, answer.location
    now = reload(case)
    assert (now.estado, now.respuesta, now.due_on, now.extended_days) == (
        Pqrs.RADICADA, "", case.due_on, 0,
    )  # fmt: skip
    assert Account.get_by_id(user.id).status == Account.BLOCKED
    assert counts() == {"pqrs": 1, "adjuntos": 0, "mensajes": 0, "avisos": 0, "auditoria": 0}


def test_two_extensions_at_once_never_pass_twice_the_term(db, app, auth):
    case = make_pqrs()  # 15 working days
    clients = [pqrs_staff(app, auth)[1] for _ in range(2)]

    def extend(browser):
        answer = browser.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form("8"))
        return answer.status_code

    results = run_at_once([lambda c=c: extend(c) for c in clients])
    assert sorted(results) in ([303, 303], [303, 422]), results
    now = reload(case)
    assert now.extended_days == 8 and now.due_on == workdays.add_working_days(case.due_on, 8)
    assert AuditEvent.select().count() == 1
    assert PqrsMensaje.select().where(PqrsMensaje.tipo == PqrsMensaje.PRORROGA).count() == 1
    # What is left is 7; 8 more is refused in words, 7 is the last extension there is.
    _staff, staff = pqrs_staff(app, auth)
    assert staff.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form("8")).status_code == 422
    assert staff.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form("7")).status_code == 303
    assert reload(case).extended_days == 15 == case.term_days


EXTENSIONS = [
    ("past due", "5"),
    ("informacion", "5"),
    ("respondida", "5"),
    ("cerrada", "5"),
    ("radicada", "16"),
    ("radicada", "9999"),
    ("radicada", "١٥"),
    ("radicada", "1e1"),
    ("radicada", "+5"),
    ("radicada", "0x5"),
    ("radicada", "-0"),
]


@pytest.mark.parametrize(("state", "dias"), EXTENSIONS)
def test_no_extension_out_of_term_state_or_range(db, app, auth, clock, outbox, state, dias):
    clock.set(datetime(2026, 3, 20, 10, 0))
    case = make_pqrs(due_on=date(2026, 3, 19) if state == "past due" else date(2026, 4, 15))
    if state in ("informacion", "respondida", "cerrada"):
        Pqrs.update(estado=state).where(Pqrs.id == case.id).execute()
    _staff, staff = pqrs_staff(app, auth)
    answer = staff.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form(dias))
    assert answer.status_code in (303, 422)
    if answer.status_code == 303:  # the state moved on: back to the case, with the reason
        assert urlsplit(answer.location).path == f"{QUEUE}/{case.id}"
        assert "cambió mientras tanto" in staff.get(answer.location).text
    now = reload(case)
    assert (now.due_on, now.extended_days, now.extension_reason) == (case.due_on, 0, "")
    assert AuditEvent.select().count() == 0 and outbox.all() == []


def test_a_closed_case_takes_no_answer_no_request_no_extension_no_close(db, app, auth, outbox):
    staff, client = pqrs_staff(app, auth)
    case = make_pqrs()
    service.close(case.id, staff, MOTIVO, LINK)
    before = counts()
    for action, data in ACTIONS.items():
        if action == "desbloquear":
            continue
        answer = client.post(f"{QUEUE}/{case.id}/{action}", data=data)
        assert answer.status_code in (303, 422), action
        if answer.status_code == 303:
            assert urlsplit(answer.location).path == f"{QUEUE}/{case.id}", action
    now = reload(case)
    assert now.estado == Pqrs.CERRADA and now.respuesta == "" and now.extended_days == 0
    assert counts() == before


def test_unblocking_reaches_only_the_account_the_case_names(db, app, auth, outbox):
    named, _ = blocked_user()
    bystander, _ = blocked_user()
    case = make_pqrs(Pqrs.DESBLOQUEO, cuenta_bloqueada=named)
    queja = make_pqrs(Pqrs.QUEJA, cuenta_bloqueada=bystander)  # not a desbloqueo: names nobody
    _staff, staff = pqrs_staff(app, auth)
    data = {
        **ACTIONS["desbloquear"],
        "cuenta_bloqueada": str(bystander.id),
        "cuenta_bloqueada_id": str(bystander.id),
        "account": str(bystander.id),
        "account_id": str(bystander.id),
    }
    assert staff.post(f"{QUEUE}/{queja.id}/desbloquear", data=data).status_code == 404
    assert staff.post(f"{QUEUE}/{case.id}/desbloquear", data=data).status_code == 303
    assert Account.get_by_id(named.id).status == Account.ACTIVE
    assert Account.get_by_id(bystander.id).status == Account.BLOCKED
    [event] = AuditEvent.select()
    assert event.target_id == named.id and case.radicado in json.loads(event.after)["motivo"]
    assert [m.recipient for m in outbox.all("email")] == [named.email]
    # A desbloqueo case for an account staff unblocked elsewhere (H2's queue): nothing more.
    Account.update(status=Account.BLOCKED).where(Account.id == named.id).execute()
    gestion.unblock(
        make_staff(roles=("soporte",)), named.id, gestion.Unblock.ACTIVATE, REASON,
        verified_by="llamada", secret=SECRET, base_url="", ip=None,
    )  # fmt: skip
    events = AuditEvent.select().count()
    late = staff.post(f"{QUEUE}/{case.id}/desbloquear", data=data)
    assert late.status_code == 303 and AuditEvent.select().count() == events
    assert Account.get_by_id(bystander.id).status == Account.BLOCKED


def test_every_staff_action_is_audited_with_the_real_address(db, app, auth, upload_dir, clock):
    clock.set(datetime(2026, 3, 2, 10, 0))
    user, _ = blocked_user()
    case = make_pqrs(Pqrs.DESBLOQUEO, cuenta_bloqueada=user, upload_dir=upload_dir)
    staff, client = pqrs_staff(app, auth)
    env = {"REMOTE_ADDR": "203.0.113.9"}
    forged = {"X-Forwarded-For": "198.51.100.66", "X-Real-IP": "198.51.100.67"}
    url = f"{QUEUE}/{case.id}"

    def post(action, data):
        answer = client.post(f"{url}/{action}", data=data, environ_base=env, headers=forged)
        assert answer.status_code == 303, (action, answer.text[:300])

    assert client.get(f"{url}/adjunto", environ_base=env, headers=forged).status_code == 200
    post("informacion", ACTIONS["informacion"])
    pqrs_core.resume(
        case.id, "Aquí está la orden.", request_id=pqrs_core.last_request_id(case)
    )  # the citizen (not staff: not audited)
    post("prorrogar", extend_form("3"))
    post("desbloquear", ACTIONS["desbloquear"])
    post("responder", ACTIONS["responder"])
    post("cerrar", {"motivo_cierre": ""})
    rows = list(AuditEvent.select().order_by(AuditEvent.id))
    assert [r.action for r in rows] == [
        audit.Action.PQRS_ADJUNTO_VER,
        audit.Action.PQRS_PEDIR_INFORMACION,
        audit.Action.PQRS_PRORROGAR,
        audit.Action.USUARIO_ACTIVAR,
        audit.Action.PQRS_RESPONDER,
        audit.Action.PQRS_CERRAR,
    ]
    assert {r.actor_id for r in rows} == {staff.id} and {r.ip for r in rows} == {"203.0.113.9"}
    assert [r.target_id for r in rows] == [case.id, case.id, case.id, user.id, case.id, case.id]


def test_an_answer_and_a_close_posted_at_once_leave_one_consistent_story(db, app, auth):
    case = make_pqrs()
    (_a, answerer), (_b, closer) = pqrs_staff(app, auth), pqrs_staff(app, auth)

    def act(browser, action, data):
        answer = browser.post(f"{QUEUE}/{case.id}/{action}", data=data)
        return answer.status_code, urlsplit(answer.location or "").path

    results = run_at_once(
        [
            lambda: act(answerer, "responder", ACTIONS["responder"]),
            lambda: act(closer, "cerrar", ACTIONS["cerrar"]),
        ]
    )
    assert all(isinstance(r, tuple) for r in results), results
    done = [r for r in results if r == (303, QUEUE)]
    late = [r for r in results if r == (303, f"{QUEUE}/{case.id}")]
    assert len(done) + len(late) == 2 and done, results
    now = reload(case)
    events = list(AuditEvent.select().order_by(AuditEvent.id))
    steps = [m.tipo for m in PqrsMensaje.select().order_by(PqrsMensaje.id)]
    assert len(events) == len(steps) == len(done)
    answered = audit.Action.PQRS_RESPONDER in [e.action for e in events]
    assert (now.respuesta == ANSWER) is answered and (now.answered_by_id is not None) is answered
    if now.estado == Pqrs.CERRADA:
        [cierre] = [e for e in events if e.action == audit.Action.PQRS_CERRAR]
        assert json.loads(cierre.after)["desistimiento"] is (not answered)
        assert steps[-1] == PqrsMensaje.CIERRE and now.closed_at is not None
    else:
        assert now.estado == Pqrs.RESPONDIDA and steps == [PqrsMensaje.RESPUESTA]
    # Each notice the citizen got matches a step that happened: two per answer or desistimiento.
    told = 2 * answered + 2 * (now.estado == Pqrs.CERRADA and not answered)
    assert Message.select().count() == told


# === 6. text where it does not belong ==========================================================


@pytest.mark.parametrize(
    "field", ["nombre", "descripcion", "tipo_documento", "numero_documento", "tipo", "email"]
)
def test_a_file_where_a_text_belongs_is_refused_in_words(db, client, upload_dir, field):
    data = form()
    data[field] = (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\xff" * 2000), "texto.png")
    answer = client.post("/pqrs", data=data, content_type="multipart/form-data")
    if field == "email":  # optional: the part is dropped, the mobile is the contact
        assert answer.status_code == 303 and Pqrs.get().email == ""
    else:
        assert answer.status_code == 422 and 'class="error' in answer.text
        assert counts()["pqrs"] == 0
    assert Attachment.select().count() == 0 and files_on_disk(upload_dir) == []


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_a_megabyte_description_is_refused_and_nothing_is_kept(db, client, upload_dir, multipart):
    data = form(descripcion="Solicito " + "x" * 1_000_000)
    if multipart:
        data["adjunto"] = (io.BytesIO(pdf_bytes()), "orden.pdf")
    answer = client.post(
        "/pqrs", data=data, content_type="multipart/form-data" if multipart else None
    )
    if multipart:  # over Werkzeug's form memory: refused before the form, the text to blame
        assert answer.status_code == 413 and "El texto es demasiado largo" in answer.text
        assert "10 MB" not in answer.text
    else:
        assert answer.status_code == 422 and "hasta 2000 caracteres" in answer.text
    assert counts()["pqrs"] == 0 and counts()["avisos"] == 0
    assert files_on_disk(upload_dir) == []


@pytest.mark.parametrize(
    "descripcion",
    [
        b"Solicito \xff\xfe\xfd copia \xc3\x28 de mi respuesta",  # not UTF-8
        b"Solicito copia\x1b[2J\x1b[31m de mi respuesta\x07\x08\x7f",
        "Solicito\u202e atsepser im \u202c\u200bcopia \ufeff\U0001f600".encode(),
        b"Solicito copia\r\n\r\n\r\n" + b"\r\n" * 500,
    ],
    ids=["not-utf8", "escapes", "bidi", "newlines"],
)
def test_binary_and_control_characters_in_the_description_are_no_500(
    db, app, auth, client, descripcion
):
    data = form()
    data["descripcion"] = descripcion
    answer = client.post("/pqrs", data=data)
    assert answer.status_code in (303, 422)
    assert counts()["pqrs"] == (answer.status_code == 303)
    if answer.status_code == 303:
        case = Pqrs.get()
        assert isinstance(case.descripcion, str) and "\x00" not in case.descripcion
        _staff, staff = pqrs_staff(app, auth)
        assert staff.get(f"{QUEUE}/{case.id}").status_code == 200
        assert staff.get(f"{QUEUE}?buscar={case.numero_documento}").status_code == 200


def test_markup_reaches_staff_and_the_citizen_inert(db, app, auth, client):
    radicado = filed(
        client,
        nombre=f"Ana {SCRIPT}"[:160],
        descripcion=f"Solicito copia {SCRIPT}\n\u202eetnegru\u202c",
    )
    case = Pqrs.get(Pqrs.radicado == radicado)
    staff, staff_client = pqrs_staff(app, auth)
    service.ask_information(case.id, staff, f"Envíe la orden {SCRIPT}", LINK)
    ficha = ficha_in(follow_case(client, reload(case)).text)
    assert reply(client, ficha, f"Aquí va {SCRIPT}").status_code == 200
    service.answer(case.id, staff, f'Respuesta con {SCRIPT} y https://x.example/"><b>', LINK)
    pages = {
        "queue": staff_client.get(QUEUE + "?estado=respondida").text,
        "case": staff_client.get(f"{QUEUE}/{case.id}").text,
        "citizen": follow_case(app.test_client(), case).text,
        "radicado": client.get(f"/pqrs/radicado/{radicado}").text,
    }
    for name, page in pages.items():  # (the queue shows names title-cased)
        assert "<script>alert" not in page.lower() and "<img src=x" not in page.lower(), name
        assert '"><b>' not in page, name
    for name in ("queue", "case", "citizen"):
        assert "&lt;script&gt;" in pages[name].lower(), name


DISGUISES = {
    "executable": (EXE, "soporte.pdf", "Solo se aceptan archivos"),
    "html": (b"<!doctype html><html><script>alert(1)</script></html>", "soporte.pdf", "Solo se"),
    "pdf that is html": (
        b"%PDF-1.4\n<html><body><script>alert(1)</script></body></html>\n%%EOF\n",
        "soporte.pdf",
        "Solo se aceptan archivos",
    ),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "foto.png", "Solo se"),
    "pdf with javascript": (
        pdf_bytes(catalog=b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "),
        "soporte.pdf",
        "contenido activo",
    ),
    "empty": (b"", "soporte.pdf", "vacío"),
    "a path for a name": (pdf_bytes(), "../../etc/soporte.pdf", "nombre del archivo no es válido"),
}


@pytest.mark.parametrize("what", list(DISGUISES))
def test_a_disguised_attachment_is_refused_and_nothing_is_half_saved(db, app, upload_dir, what):
    content, name, words = DISGUISES[what]
    for _ in range(pqrs_core.FILINGS_PER_CONTACT + 1):  # more than a contact may file in a day
        answer = send(app.test_client(), adjunto=(io.BytesIO(content), name))
        assert answer.status_code == 422, what
        assert words in answer.text.replace("&#34;", '"'), answer.text[-2000:]
    assert counts() == {"pqrs": 0, "adjuntos": 0, "mensajes": 0, "avisos": 0, "auditoria": 0}
    assert files_on_disk(upload_dir) == []
    # No slot of the contact's daily budget went with the refused files.
    assert filed(app.test_client(), adjunto=(io.BytesIO(pdf_bytes()), "orden.pdf"))


# === 7. the certificate check =================================================================


def _without_echo(text: str) -> str:
    return clean(re.sub(r'name="codigo"[^>]*>', "", text))


@pytest.mark.parametrize(
    "query",
    [
        {"codigo": "ZZZZZ-ZZZZZ"},
        {"codigo": "NOPE"},
        {"codigo": "7K3MQ-9TXWO"},
        {"codigo": "Z" * 41},
        {"codigo": "7" * 10_000},
        {"codigo": ["ZZZZZ-ZZZZZ", "22222-22222"]},
        {"codigo": "ＺＺＺＺＺ-ＺＺＺＺＺ"},
        {"codigo": "ZZZZZ-ZZZZZ' OR '1'='1"},
        {"codigo": "%"},
    ],
    ids=lambda q: str(q["codigo"])[:14],
)
def test_the_check_reads_the_same_for_any_code_it_does_not_know(db, client, htmx, query):
    cert = certificados.issue(None, make_family()["martin"])
    for headers in ({}, htmx):
        reference = verify(client, "22222-22222", **headers)
        answer = client.get("/certificados/verificar", query_string=query, headers=headers)
        assert answer.status_code == reference.status_code == 422
        assert _without_echo(answer.text) == _without_echo(reference.text)
        assert cert.codigo not in answer.text and "MARTÍN" not in answer.text


def test_the_check_tells_nothing_of_who_issued_it_or_how_to_reach_anyone(db, client, auth):
    f = nucleo()
    pedro_account = make_eps_user(f.pedro)
    pedro = auth.login(client, pedro_account)
    assert pedro.post(f"/genesis/datos/{f.lucia.id}/certificados").status_code == 303
    cert = Certificado.get()
    assert cert.account_id == pedro_account.id
    page = verify(client.application.test_client(), cert.codigo)
    assert page.status_code == 200 and "LUCIA" in page.text
    lucia = EpsAfiliado.get_by_id(f.lucia.id)
    for private in (
        "PEDRO",
        f.pedro.numero_documento,
        f.pedro.celular,
        f.pedro.email,
        pedro_account.login,
        lucia.celular,
        lucia.email,
        lucia.direccion,
        f"{lucia.fecha_nacimiento:%d/%m/%Y}",
        f.rosa.numero_documento,
        f"/genesis/datos/{lucia.id}",
        f"/genesis/certificados/{cert.codigo}",
    ):
        assert private not in page.text, private


def test_a_certificate_is_not_valid_once_the_eps_file_says_the_affiliate_left(db, client, tmp_path):
    rows = [eps_row("52100001"), eps_row("52100002", "CONYUGE", "52100001", primer_nombre="SARA")]
    assert eps_data.import_eps(write_csv(tmp_path, eps_data.EPS_COLUMNS, rows, name="a.csv")).ok
    sara = EpsAfiliado.get(EpsAfiliado.numero_documento == "52100002")
    cert = certificados.issue(None, sara)
    assert f"Certificado {cert.codigo}: vigente" in verify(client, cert.codigo).text
    rows[1]["estado"] = "RETIRADO"
    assert eps_data.import_eps(write_csv(tmp_path, eps_data.EPS_COLUMNS, rows, name="b.csv")).ok
    page = verify(client, cert.codigo)
    assert page.status_code == 200 and f"Certificado {cert.codigo}: no vigente" in page.text
    assert "el afiliado no está activo hoy" in page.text and "<dd>Activo</dd>" in page.text
    with pytest.raises(certificados.NotActive):
        certificados.issue(None, EpsAfiliado.get_by_id(sara.id))


def test_another_familys_certificate_is_neither_made_nor_sent_and_reads_as_unknown(
    db, client, auth
):
    f = nucleo()
    theirs = certificados.issue(None, f.marta)
    auth.login(client, make_eps_user(f.rosa))
    made = client.post(f"/genesis/datos/{f.marta.id}/certificados")
    assert made.status_code == 404 and Certificado.select().count() == 1
    taken = client.get(f"/genesis/certificados/{theirs.codigo}.pdf")
    unknown = client.get("/genesis/certificados/22222-22222.pdf")
    assert taken.status_code == unknown.status_code == 404
    assert clean(taken.text) == clean(unknown.text) and b"%PDF" not in taken.data
    # A member moved to another family by the EPS: the old family's PDFs are gone at once.
    mine = certificados.issue(None, f.lucia)
    assert client.get(f"/genesis/certificados/{mine.codigo}.pdf").status_code == 200
    EpsAfiliado.update(cabeza=f.marta.id).where(EpsAfiliado.id == f.lucia.id).execute()
    assert client.get(f"/genesis/certificados/{mine.codigo}.pdf").status_code == 404
    assert client.post(f"/genesis/datos/{f.lucia.id}/certificados").status_code == 404


# === 8. G5: basic data =========================================================================


def test_another_familys_member_can_be_neither_updated_nor_confirmed(db, client, auth, outbox):
    f = nucleo()
    auth.login(client, make_eps_user(f.rosa))
    marta = EpsAfiliado.get_by_id(f.marta.id)
    for method, url, data in [
        ("get", edit_url(marta), None),
        ("post", edit_url(marta), datos_form()),
        ("post", f"/genesis/datos/{marta.id}/confirmar", {}),
        ("get", f"/genesis/datos/{marta.id}", None),
    ]:
        assert getattr(client, method)(url, data=data).status_code == 404, url
    now = EpsAfiliado.get_by_id(marta.id)
    assert (now.celular, now.direccion, now.datos_confirmados_at) == (
        marta.celular, marta.direccion, marta.datos_confirmados_at,
    )  # fmt: skip
    assert CambioDatosEps.select().count() == 0 and outbox.all() == []


def test_a_locked_adults_update_is_all_or_nothing(db, client, auth, outbox):
    f = nucleo()
    make_eps_user(f.pedro)  # Pedro signs in himself: his channels are his
    auth.login(client, make_eps_user(f.rosa))
    pedro = EpsAfiliado.get_by_id(f.pedro.id)
    answer = client.post(edit_url(pedro), data=datos_form(celular="3119998877"))
    assert answer.status_code == 422 and "solo los puede cambiar ella misma" in answer.text
    now = EpsAfiliado.get_by_id(pedro.id)
    assert (now.celular, now.email, now.direccion, now.telefono, now.municipio) == (
        pedro.celular, pedro.email, pedro.direccion, pedro.telefono, pedro.municipio,
    )  # fmt: skip
    assert CambioDatosEps.select().count() == 0 and outbox.all() == []


def test_the_body_chooses_no_other_member_or_field_and_each_change_keeps_its_row(
    db, client, auth, outbox
):
    f = nucleo()
    rosa_account = make_eps_user(f.rosa)
    auth.login(client, rosa_account)
    pedro = EpsAfiliado.get_by_id(f.pedro.id)  # no account of his own: Rosa may change it
    data = datos_form(
        celular="3119998877",
        afiliado=str(f.marta.id),
        afiliado_id=str(f.marta.id),
        member_id=str(f.marta.id),
        account=str(rosa_account.id + 1),
        numero_documento="1",
        primer_nombre="INTRUSO",
        estado="RETIRADO",
        cabeza=str(f.marta.id),
        regimen="SUBSIDIADO",
    )
    assert client.post(edit_url(pedro), data=data).status_code == 303
    now = EpsAfiliado.get_by_id(pedro.id)
    assert (now.numero_documento, now.primer_nombre, now.estado, now.cabeza_id, now.regimen) == (
        pedro.numero_documento, pedro.primer_nombre, pedro.estado, pedro.cabeza_id, pedro.regimen,
    )  # fmt: skip
    assert now.celular == "3119998877" and now.direccion == "Calle 72 # 41-20 apto 301"
    assert EpsAfiliado.get_by_id(f.marta.id).celular == f.marta.celular
    rows = list(CambioDatosEps.select().order_by(CambioDatosEps.id))
    assert {r.campo for r in rows} == {"celular", "telefono", "email", "direccion", "municipio"}
    assert {(r.afiliado_id, r.account_id) for r in rows} == {(pedro.id, rosa_account.id)}
    assert {r.campo: (r.antes, r.despues) for r in rows}["celular"] == (pedro.celular, "3119998877")
    # The old mobile and e-mail hear of it (someone of the family changed them), not the new ones.
    told = {m.recipient for m in outbox.all()}
    assert told == {pedro.celular, pedro.email}


# === 9. logs ==================================================================================


def _session_cookie(app, browser: _Browser, account: Account) -> None:
    """Put a signed-in session of account into a urllib browser's cookie jar."""
    with app.test_request_context():
        sid = core_auth.start_session(
            account, "pytest", idle=idle_limit(account), second_factor=True
        )
        value = app.session_interface.get_signing_serializer(app).dumps(
            {"sid": sid, "_user_id": account.session_token, "_fresh": True}
        )
    [jar] = [
        h.cookiejar
        for h in browser.opener.handlers
        if isinstance(h, urllib.request.HTTPCookieProcessor)
    ]
    jar.set_cookie(
        http.cookiejar.Cookie(
            0, app.config["SESSION_COOKIE_NAME"], value, None, False, "localhost.local", False,
            False, "/", True, False, None, False, None, None, {},
        )
    )  # fmt: skip


def test_a_whole_pqrsf_round_logs_no_token_radicado_document_or_email(
    db, app, outbox, caplog, monkeypatch
):
    monkeypatch.setattr(werkzeug.serving, "_log_add_style", False)  # gunicorn-like lines
    user, activation = blocked_user()
    numero, email = user.hanna.numero_documento, user.email
    cert = certificados.issue(None, make_family()["martin"])
    staff = make_staff(roles=("pqrs",))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    caplog.set_level(logging.INFO)
    thread.start()
    try:
        web = _Browser(f"http://localhost:{server.server_port}")
        status, blocked_page = web.open(activation)
        link = pqrs_link(blocked_page)
        desbloqueo = token_of(link)
        assert web.open(link)[0] == 200
        data = form(tipo="desbloqueo", cuenta=desbloqueo, numero_documento=numero, email=email)
        status, page = web.open("/pqrs", data)
        assert status == 200 and "Código:" in page
        case = Pqrs.get()
        radicado = case.radicado
        service.ask_information(case.id, staff, INFO_ASKED, LINK)
        doc = {"tipo_documento": "CC", "numero_documento": numero}
        assert web.open("/pqrs/consulta", doc | {"radicado": "PQR-2026-XXXXXX"})[0] == 200
        status, page = web.open("/pqrs/consulta", doc | {"radicado": radicado.lower()})
        ficha = ficha_in(page)
        assert (
            web.open("/pqrs/consulta/informacion", {"ficha": ficha, "informacion": "Listo."})[0]
            == 200
        )
        assert (
            web.open("/pqrs/consulta/informacion", {"ficha": ficha + "x", "informacion": "Otra"})[0]
            == 422
        )
        web.open(f"/pqrs/radicado/{radicado}")
        web.open(f"/pqrs?tipo=desbloqueo&cuenta={desbloqueo}x")
        web.open(f"/certificados/verificar?codigo={cert.codigo}")
        office = _Browser(web.base)
        _session_cookie(app, office, staff)
        assert office.open(f"{QUEUE}?buscar={numero}")[0] == 200
        assert office.open(f"{QUEUE}?buscar={radicado}")[0] == 200
        assert office.open(f"{QUEUE}/{case.id}")[0] == 200
        status, _ = office.open(
            f"{QUEUE}/{case.id}/desbloquear",
            {"decision": "reintentar", "verified_by": "pqrsf", "reason": REASON},
        )
        assert status == 200 and Account.get_by_id(user.id).status == Account.PENDING
        assert office.open(f"{QUEUE}/{case.id}/responder", {"respuesta": ANSWER})[0] == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
    lines = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any("/pqrs/consulta/informacion" in line for line in lines)  # the log is there
    secrets_ = {
        "desbloqueo token": desbloqueo,
        "reply token": ficha,
        "radicado": radicado,
        "radicado as typed": radicado.lower(),
        "radicado compact": radicado.replace("-", ""),
        "document": numero,
        "e-mail": email,
        "filer's mobile": "3001234567",
        "certificate code": cert.codigo,
        "activation token": activation.rsplit("/", 1)[-1],
    }
    leaks = {name: line for line in lines for name, value in secrets_.items() if value in line}
    assert leaks == {}
    assert outbox.all("email")  # the round did send its notices (through the outbox, not logs)
