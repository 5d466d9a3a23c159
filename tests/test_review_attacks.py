"""Attacks from a review of the hardened account journeys (issue 6), kept as regressions.

Each one failed before its fix. They use only what a stranger sees (pages,
options, status codes) or what an operator's logs hold.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from blueprints.accounts import service
from core import quiz
from core.clock import utcnow
from core.demo import demo_afiliados
from core.importer import upsert_afiliados
from models import Account, Afiliado
from tests.factories import PASSWORD, make_afiliado, make_user, registration_form


@pytest.fixture
def caja(db):
    """A few hundred affiliates: the population the quiz's options come from."""
    upsert_afiliados(demo_afiliados(seed=5, count=400))


def pending(afiliado) -> tuple[Account, str]:
    user = make_user(
        status=Account.PENDING,
        afiliado=afiliado,
        tipo_documento=afiliado.tipo_documento,
        numero_documento=afiliado.numero_documento,
    )
    return user, service.activation_link(user, secret="test-secret", base_url="")


def bank_of(user) -> dict[str, dict]:
    return {q["key"]: q for q in service.quiz_bank(user)}


def later(monkeypatch, **delta):
    moved = utcnow() + timedelta(**delta)
    monkeypatch.setattr(service, "utcnow", lambda: moved)


def right(question) -> str:
    return question["options"][question["answer"]]


# --- 1. the quiz must not give its own answers away ---------------------------------------------------


def test_the_code_page_names_no_answer_of_the_quiz(db, caja, client):
    """ "No recuerdo mis datos" shows the mobile on file, masked like a phone option.

    So no question may be about that mobile, and whether there is one (which
    decides what the pages offer) may answer none either.
    """
    assert all(kind.field != "celular" for kind in quiz.KINDS)
    for afiliado in Afiliado.select().where(Afiliado.celular != "").order_by(Afiliado.id):
        user, link = pending(afiliado)
        if service.activation_kind(user) is service.Activation.QUIZ:
            break
    page = client.post(f"{link}/codigo", data={"accion": "enviar"})
    shown = re.search(r"Enviamos un código al celular (\S+)\.", page.text).group(1)
    for question in bank_of(user).values():
        assert shown not in question["options"], question["text"]


def test_join_dates_shown_do_not_tell_the_birth_date(db):
    """Wrong join dates drawn only after the person's 14th birthday would bound the birth.

    The stranger keeps the birth dates whose 14th birthday comes before every join
    date shown and picks the latest: that was right half the time, not one in four.
    """
    people = [SimpleNamespace(**row) for row in demo_afiliados(seed=11, count=1200)]
    population = quiz.build_population(people)
    rng = random.Random(2)

    def as_date(label):
        d, m, y = map(int, label.split("/"))
        return date(y, m, d)

    asked = hits = 0
    for person in people:
        bank = {q["key"]: q for q in quiz.build_bank(person, population, rng)}
        if not {"fecha_nacimiento", "fecha_ingreso"} <= set(bank):
            continue
        births = [as_date(o) for o in bank["fecha_nacimiento"]["options"]]
        first_join = min(as_date(o) for o in bank["fecha_ingreso"]["options"])
        fits = [
            i
            for i, b in enumerate(births)
            if date(b.year + quiz.MIN_AGE_YEARS, b.month, min(b.day, 28)) <= first_join
        ]
        pick = max(fits, key=lambda i: births[i]) if fits else 0
        asked += 1
        hits += pick == bank["fecha_nacimiento"]["answer"]
    assert asked > 300
    rate = hits / asked
    assert rate <= 0.30, f"birth date guessed {rate:.0%} of the time from the join dates shown"


def test_one_spouse_question_at_most_so_sin_asignar_stays_one_in_four(db):
    """The spouse's three fields are empty together when there is no spouse.

    Asking several of them let their number, and the pattern of "Sin asignar"
    across them, tell the answer (a lone one offering it was right 90 % of the time).
    """
    people = [SimpleNamespace(**row) for row in demo_afiliados(seed=11, count=1200)]
    population = quiz.build_population(people)
    rng = random.Random(5)
    spouse = ("conyuge_celular", "conyuge_profesion", "conyuge_cargo")
    offered = hits = 0
    for person in people:
        bank = {q["key"]: q for q in quiz.build_bank(person, population, rng)}
        asked = [bank[k] for k in spouse if k in bank]
        assert len(asked) <= 1
        if len(asked) == 1 and quiz.UNASSIGNED in asked[0]["options"]:
            offered += 1
            hits += right(asked[0]) == quiz.UNASSIGNED
    assert offered > 100
    rate = hits / offered
    assert rate <= 0.35, f"a lone spouse question's «Sin asignar» is right {rate:.0%} of the time"


def test_a_correction_by_the_caja_redraws_only_that_question(db, caja, client):
    """The code page tells a person whose data is wrong to call the Caja and come back.

    After the Caja's next import the quiz must grade the corrected value, and
    must not redraw the other questions (new options would help intersecting).
    """
    for afiliado in Afiliado.select().where(Afiliado.fecha_nacimiento.is_null(False)):
        user, _ = pending(afiliado)
        if service.activation_kind(user) is service.Activation.QUIZ:
            before = bank_of(user)
            if "fecha_nacimiento" in before:
                break
    row = {c: getattr(afiliado, c) for c in Afiliado._meta.sorted_field_names if c != "id"}
    row.pop("updated_at")
    born = afiliado.fecha_nacimiento
    row["fecha_nacimiento"] = born.replace(day=28 if born.day != 28 else 27)  # same year
    upsert_afiliados([row])  # the Caja's next import, after the call to the call centre
    after = bank_of(Account.get_by_id(user.id))
    assert right(after["fecha_nacimiento"]) == row["fecha_nacimiento"].strftime("%d/%m/%Y")
    for key, question in before.items():
        if key != "fecha_nacimiento":
            assert after[key]["options"] == question["options"]


# --- 2. SMS codes: every wrong guess counts -------------------------------------------


def sent_code(outbox) -> str:
    return re.search(r"\b(\d{6})\b", outbox.all("sms")[-1].body_text).group(1)


def test_wrong_codes_spread_over_new_codes_still_count_toward_the_block(
    db, client, outbox, monkeypatch
):
    """Four wrong guesses per code, then "Enviar otro código", day after day.

    Asking for a new code used to wipe the wrong tries, so guessing went on for
    ever; every five wrong codes now count as one failed attempt, whatever code.
    """
    user, link = pending(make_afiliado())
    guesses = minute = 0
    while Account.get_by_id(user.id).status != Account.BLOCKED and guesses < 100:
        minute += 2
        later(monkeypatch, days=minute // 10, minutes=minute)
        client.post(f"{link}/codigo", data={"accion": "enviar"})
        code = sent_code(outbox)
        for n in range(service.CODE_TRIES - 1):
            guess = f"{(int(code) + 1 + n) % 10**6:06d}"  # never the right one
            client.post(f"{link}/codigo", data={"codigo": guess})
            guesses += 1
    assert Account.get_by_id(user.id).status == Account.BLOCKED
    assert guesses <= service.QUIZ_ATTEMPTS * service.CODE_TRIES + service.CODE_TRIES


# --- 3. registration: no oracle for registered e-mails through the login page ----------------


def test_signing_in_after_registering_does_not_tell_whether_the_email_had_an_account(db, app):
    """Register a new document with address X and password P, then sign in with X and P.

    X free: a pending account with P exists; X taken: nothing was created. The
    login used to say "aún no está activa" to the first only.
    """
    make_user(email="conocida@example.com", password="Clave-Del-Titular-93")
    answers = {}
    for n, email in enumerate(("conocida@example.com", "libre@example.com")):
        client = app.test_client()  # the attacker's browser, fresh for each probe
        page = client.post(
            "/registro", data=registration_form(numero_documento=f"7055500{n}", email=email)
        )
        ticket = re.search(r'name="confirmacion" value="([^"]+)"', page.text).group(1)
        assert client.post("/registro", data={"confirmacion": ticket}).status_code == 303
        login = client.post("/", data={"email": email, "password": PASSWORD})
        answers[email] = (login.status_code, "no está activa" in login.text)
    assert answers["conocida@example.com"] == answers["libre@example.com"], answers


# --- 4. logs: no token in the Referer of gunicorn's access log --------------------------------


def test_access_log_lines_hold_no_token_even_in_the_referer(app):
    """Gunicorn's default access format logs the Referer: a request made from
    /restablecer/<token> (the live password check, the CSS) carries the live link."""
    from gunicorn.config import AccessLogFormat

    token = "eyJ1IjoxLCJwIjoiYWJjZGVmIn0.ZzZzZz.c2lnbmF0dXJlLW9mLXRoZS1yZXNldC1saW5r"
    atoms = {
        "h": "203.0.113.7",
        "l": "-",
        "u": "-",
        "t": "[01/Dec/2026:17:00:00 +0000]",
        "r": f"POST /restablecer/{token}/clave HTTP/1.1",
        "s": "200",
        "b": "812",
        "f": f"https://portal.example/restablecer/{token}",
        "a": "Mozilla/5.0",
    }
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("gunicorn.access")
    handler = Keep()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info(AccessLogFormat.default, atoms)  # how gunicorn's Logger.access logs
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records
    assert token not in records[0], records[0]
