"""Activation over HTTP (SPEC H2): the link's page, the quiz, its clock and the SMS code."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from blueprints.accounts import service
from core import tokens
from core.clock import utcnow
from core.demo import demo_afiliados
from core.importer import upsert_afiliados
from models import Account, Afiliado, HannaUser, OneTimeCode, QuizAttempt, QuizBank
from tests.factories import make_afiliado, make_user


@pytest.fixture
def caja(db):
    """A few hundred affiliates: the population the quiz's options come from."""
    upsert_afiliados(demo_afiliados(seed=5, count=400))


def pending(afiliado=None) -> tuple[Account, str]:
    user = make_user(
        status=Account.PENDING,
        afiliado=afiliado,
        **(
            dict(tipo_documento=afiliado.tipo_documento, numero_documento=afiliado.numero_documento)
            if afiliado
            else {}
        ),
    )
    return user, service.activation_link(user, secret="test-secret", base_url="")


def quiz_taker(caja) -> tuple[Account, str]:
    """A pending account of an affiliate whose data makes a fair quiz."""
    for afiliado in Afiliado.select().where(Afiliado.celular != "").order_by(Afiliado.id):
        if HannaUser.get_or_none(HannaUser.afiliado == afiliado):
            continue
        user, link = pending(afiliado)
        if service.activation_kind(user) is service.Activation.QUIZ:
            return user, link
    raise AssertionError("no affiliate with a fair quiz")


def current_attempt(user) -> QuizAttempt:
    return (
        QuizAttempt.select()
        .where(QuizAttempt.account == user)
        .order_by(QuizAttempt.id.desc())
        .first()
    )


def right_answers(user) -> dict:
    attempt = current_attempt(user)
    return {
        "intento": str(attempt.id),
        **{q["key"]: str(q["answer"]) for q in json.loads(attempt.questions)},
    }


def wrong_answers(user) -> dict:
    answers = right_answers(user)
    key = next(k for k in answers if k != "intento")
    answers[key] = str((int(answers[key]) + 1) % 4)
    return answers


def options_shown(html: str) -> dict[str, list[str]]:
    shown: dict[str, list[str]] = {}
    for name, label in re.findall(r'name="([a-z_]+)" value="\d" required> ([^<]+)</label>', html):
        shown.setdefault(name, []).append(label.strip())
    return shown


def start(client, link):
    return client.post(link, data={"accion": "comenzar"})


def later(monkeypatch, **delta):
    moved = utcnow() + timedelta(**delta)
    monkeypatch.setattr(service, "utcnow", lambda: moved)


# --- the link's page: a GET changes nothing ------------------------------------------------


def test_non_affiliate_link_activates_only_with_the_button(db, client):
    user, link = pending()
    for _ in range(3):  # a mail scanner opens it
        page = client.get(link)
        assert page.status_code == 200 and "Activar mi cuenta" in page.text
    assert Account.get_by_id(user.id).status == Account.PENDING
    done = client.post(link, data={"accion": "activar"})
    assert done.status_code == 303 and done.location.endswith("/inicio")
    assert Account.get_by_id(user.id).status == Account.ACTIVE
    assert client.get(link).status_code == 410  # the link has done its job


def test_mail_scanner_opening_the_link_starts_no_attempt(db, caja, client):
    user, link = quiz_taker(caja)
    for _ in range(5):
        page = client.get(link)
        assert page.status_code == 200
        assert "Comenzar las preguntas" in page.text and "Validar Mis Datos" not in page.text
    assert QuizAttempt.select().where(QuizAttempt.account == user).count() == 0
    assert HannaUser.get_by_id(user.id).quiz_failures == 0


def test_the_button_starts_a_quiz_of_four_options_each_without_answers(db, caja, client):
    user, link = quiz_taker(caja)
    page = start(client, link).text
    assert "Preguntas para activación de cuenta" in page and "Validar Mis Datos" in page
    shown = options_shown(page)
    assert 5 <= len(shown) <= 6
    assert all(len(options) == 4 for options in shown.values())
    assert "answer" not in page
    assert Account.get_by_id(user.id).status == Account.PENDING


def test_a_reload_shows_the_started_attempt_again(db, caja, client):
    user, link = quiz_taker(caja)
    first = options_shown(start(client, link).text)
    assert options_shown(client.get(link).text) == first
    assert QuizAttempt.select().where(QuizAttempt.account == user).count() == 1


# --- the quiz ------------------------------------------------------------------------------


def test_right_answers_activate_and_sign_in(db, caja, client):
    user, link = quiz_taker(caja)
    start(client, link)
    done = client.post(link, data=right_answers(user))
    assert done.status_code == 303
    assert Account.get_by_id(user.id).status == Account.ACTIVE
    assert "Bienvenido(a)" in client.get("/inicio").text
    assert client.get(link).status_code == 410


def test_wrong_answer_uses_an_attempt_and_waits_for_the_button(db, caja, client):
    user, link = quiz_taker(caja)
    start(client, link)
    page = client.post(link, data=wrong_answers(user))
    assert page.status_code == 422
    assert "no coincide" in page.text and "quedan <strong>2 intentos" in page.text
    assert "Comenzar las preguntas" in page.text
    assert HannaUser.get_by_id(user.id).quiz_failures == 1
    assert QuizAttempt.select().where(QuizAttempt.account == user).count() == 1


def test_every_attempt_shows_the_same_options(db, caja, client):
    """Intersecting attempts must leave four options, not the answer."""
    user, link = quiz_taker(caja)
    seen = []
    for _ in range(3):
        seen.append(options_shown(start(client, link).text))
        client.post(link, data=wrong_answers(user))
    for key in set(seen[0]) & set(seen[1]) & set(seen[2]):
        assert seen[0][key] == seen[1][key] == seen[2][key]


def test_a_new_account_for_the_same_person_sees_the_same_options(db, caja, client):
    user, link = quiz_taker(caja)
    first = options_shown(start(client, link).text)
    afiliado = user.hanna.afiliado
    Account.delete().where(Account.id == user.id).execute()
    again, link = pending(afiliado)
    second = options_shown(client.post(link, data={"accion": "comenzar"}).text)
    for key in set(first) & set(second):
        assert first[key] == second[key]
    assert QuizBank.select().where(QuizBank.afiliado == afiliado).count() == 1


def test_three_failures_block_the_account_with_pqrsf_instructions(db, caja, client):
    user, link = quiz_taker(caja)
    for _ in range(3):
        start(client, link)
        page = client.post(link, data=wrong_answers(user))
    assert page.status_code == 403
    assert "bloqueado" in page.text and "PQRSF" in page.text
    assert 'href="/pqrs?tipo=desbloqueo&amp;cuenta=' in page.text and 'href="tel:' in page.text
    assert Account.get_by_id(user.id).status == Account.BLOCKED
    assert client.get(link).status_code in (403, 410)


def test_two_minutes_idle_counts_as_a_failed_attempt(db, caja, client, monkeypatch):
    user, link = quiz_taker(caja)
    start(client, link)
    answers = right_answers(user)
    later(monkeypatch, minutes=2, seconds=5)
    page = client.post(link, data=answers)
    assert page.status_code == 422 and "2 minutos" in page.text
    assert HannaUser.get_by_id(user.id).quiz_failures == 1
    assert Account.get_by_id(user.id).status == Account.PENDING


def test_an_idle_third_attempt_blocks_for_good(db, caja, client, monkeypatch):
    user, link = quiz_taker(caja)
    for _ in range(2):
        start(client, link)
        client.post(link, data=wrong_answers(user))
    start(client, link)
    later(monkeypatch, minutes=3)
    assert client.get(link).status_code == 403  # shown as blocked, nothing written by a GET
    page = start(client, link)  # the next press records the timeout
    assert page.status_code == 403 and "bloqueado" in page.text
    assert Account.get_by_id(user.id).status == Account.BLOCKED  # committed, not rolled back
    assert HannaUser.get_by_id(user.id).quiz_failures == 3


def test_two_concurrent_submits_grade_an_attempt_once(db, caja, client):
    user, link = quiz_taker(caja)
    start(client, link)
    answers = wrong_answers(user)
    attempt_id = int(answers.pop("intento"))
    results = [service.answer_quiz(user, attempt_id, answers) for _ in range(2)]
    assert results == [service.QuizResult.FAILED, service.QuizResult.EXPIRED]
    assert HannaUser.get_by_id(user.id).quiz_failures == 1


@pytest.mark.parametrize(
    "field, value",
    [("intento", "9" * 23), ("intento", "²"), ("question", "²"), ("question", "9" * 30)],
)
def test_odd_quiz_input_is_a_wrong_answer_not_a_500(db, caja, client, field, value):
    user, link = quiz_taker(caja)
    start(client, link)
    answers = right_answers(user)
    if field == "question":
        field = next(k for k in answers if k != "intento")
    answers[field] = value
    page = client.post(link, data=answers)
    assert page.status_code in (422, 403)
    assert Account.get_by_id(user.id).status == Account.PENDING


# --- the SMS code ("No recuerdo mis datos", thin data) ----------------------------------------


def sent_code(outbox) -> str:
    return re.search(r"\b(\d{6})\b", outbox.all("sms")[-1].body_text).group(1)


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_no_recuerdo_sends_a_code_to_the_mobile_on_file(db, client, outbox):
    user, link = pending(make_afiliado(celular="3157654321"))
    page = client.post(f"{link}/codigo", data={"accion": "enviar"})
    assert "315****321" in page.text
    assert outbox.all("sms")[-1].recipient == "3157654321"  # the Caja's, not the form's
    code = sent_code(outbox)
    wrong = client.post(f"{link}/codigo", data={"codigo": other_than(code)})
    assert wrong.status_code == 422 and "no es correcto" in wrong.text
    done = client.post(f"{link}/codigo", data={"codigo": code})
    assert done.status_code == 303
    assert Account.get_by_id(user.id).status == Account.ACTIVE


def test_a_code_of_another_purpose_is_refused(db, client, outbox):
    """The digits are right, but the code was issued for something else: it does not activate."""
    user, link = pending(make_afiliado(celular="3157654321"))
    OneTimeCode.create(
        account=user,
        purpose="restablecer",
        code_hash=tokens.digest("246810"),
        expires_at=utcnow() + timedelta(minutes=10),
    )
    client.post(f"{link}/codigo", data={"accion": "enviar"})
    page = client.post(f"{link}/codigo", data={"codigo": "246810"})
    assert page.status_code == 422
    assert Account.get_by_id(user.id).status == Account.PENDING
    assert OneTimeCode.get(OneTimeCode.purpose == "restablecer").used_at is None


def test_code_cannot_be_resent_within_a_minute(db, client, outbox):
    _, link = pending(make_afiliado())
    client.post(f"{link}/codigo", data={"accion": "enviar"})
    again = client.post(f"{link}/codigo", data={"accion": "enviar"})
    assert again.status_code == 422 and "Espere" in again.text
    assert len(outbox.all("sms")) == 1


def test_codes_are_capped_per_day_per_account(db, client, outbox, monkeypatch):
    _, link = pending(make_afiliado())
    for minute in range(service.CODE_DAILY_CAP + 1):
        later(monkeypatch, minutes=2 * minute)
        page = client.post(f"{link}/codigo", data={"accion": "enviar"})
    assert page.status_code == 422 and "últimas 24 horas" in page.text
    assert len(outbox.all("sms")) == service.CODE_DAILY_CAP
    later(monkeypatch, hours=25)
    assert client.post(f"{link}/codigo", data={"accion": "enviar"}).status_code == 200


def test_codes_are_capped_per_day_per_phone_across_accounts(db, client, outbox, monkeypatch):
    links = [pending(make_afiliado(celular="3001112233"))[1] for _ in range(3)]
    for i in range(service.CODE_DAILY_CAP + 1):
        later(monkeypatch, minutes=2 * i)
        page = client.post(f"{links[i % 3]}/codigo", data={"accion": "enviar"})
    assert page.status_code == 422
    assert len(outbox.all("sms")) == service.CODE_DAILY_CAP


def test_a_code_burned_by_wrong_tries_counts_toward_the_block(db, client, outbox, monkeypatch):
    user, link = pending(make_afiliado())
    for burn in range(3):
        later(monkeypatch, minutes=2 * burn)
        client.post(f"{link}/codigo", data={"accion": "enviar"})
        wrong = other_than(sent_code(outbox))
        for _ in range(service.CODE_TRIES):
            page = client.post(f"{link}/codigo", data={"codigo": wrong})
        assert HannaUser.get_by_id(user.id).quiz_failures == burn + 1
    assert page.status_code == 403 and "bloqueado" in page.text
    assert Account.get_by_id(user.id).status == Account.BLOCKED
    assert OneTimeCode.select().where(OneTimeCode.used_at.is_null()).count() == 0


def test_without_a_mobile_on_file_no_code_is_offered(db, caja, client):
    user, link = quiz_taker(caja)
    Afiliado.update(celular="").where(Afiliado.id == user.hanna.afiliado_id).execute()
    page = client.get(link).text
    assert "No recuerdo mis datos" not in page and "tel:+576053714545" in page
    refused = client.post(f"{link}/codigo", data={"accion": "enviar"})
    assert refused.status_code == 422 and "no tiene un celular" in refused.text


def test_thin_data_goes_straight_to_the_code(db, client):
    _, link = pending(make_afiliado(profesion="", conyuge_celular="", fecha_nacimiento=None))
    page = client.get(link).text  # one affiliate: nothing is shared, nothing can be asked
    assert "no tiene suficientes datos" in page and "Enviar código" in page


def test_an_old_link_sends_no_mail_after_a_newer_registration_took_over(db, client, outbox):
    user, link = pending()
    token = link.rsplit("/", 1)[1]
    HannaUser.update(activation_nonce="otro").where(HannaUser.account == user.id).execute()
    Account.update(email="nuevo.titular@example.com").where(
        Account.id == user.id
    ).execute()  # what a takeover by a newer registration does
    page = client.post(f"/activacion/reenviar/{token}")
    assert page.status_code == 410
    assert outbox.all("email") == []


def test_a_large_caja_is_modelled_from_a_random_sample(db, caja, monkeypatch):
    """Shares need no more than a sample; reading a million rows would stall the quiz."""
    # The sample is drawn by a fixed hash, so this holds on every run, not most of them.
    monkeypatch.setattr(service, "POPULATION_SAMPLE", 350)
    service._population_cache.clear()
    population = service._population()
    assert population.size == 350
    user, _ = quiz_taker(caja)
    assert 5 <= len(service.quiz_bank(user)) <= 6
