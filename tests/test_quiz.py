"""The activation quiz's options (SPEC H2), without HTTP: form, sources and balance."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date
from types import SimpleNamespace

import pytest

from core import quiz
from core.demo import demo_afiliados


@pytest.fixture(scope="module")
def people():
    return [SimpleNamespace(**row) for row in demo_afiliados(seed=7)]


@pytest.fixture(scope="module")
def population(people):
    return quiz.build_population(people)


def banks(people, population, seed=1):
    rng = random.Random(seed)
    return [(p, quiz.build_bank(p, population, rng)) for p in people]


def test_every_question_has_four_distinct_options_and_one_right_answer(people, population):
    for _person, bank in banks(people, population):
        for q in bank:
            assert len(q["options"]) == quiz.OPTIONS_PER_QUESTION
            assert len({o.casefold() for o in q["options"]}) == 4
            assert 0 <= q["answer"] < 4


def right_label(person, key):
    kind = quiz.KINDS_BY_KEY[key]
    value = getattr(person, kind.field)
    if not value:
        return quiz.UNASSIGNED
    if kind.shape == "phone":
        return value[:3] + "****" + value[-3:]
    if kind.shape == "date":
        return value.strftime("%d/%m/%Y")
    return None  # text: compared by key below


def test_right_answer_is_the_persons_data_in_the_house_style(people, population):
    for person, bank in banks(people, population):
        for q in bank:
            got = q["options"][q["answer"]]
            expected = right_label(person, q["key"])
            if expected is not None:
                assert got == expected
            else:
                value = getattr(person, quiz.KINDS_BY_KEY[q["key"]].field)
                assert quiz.canonical(got) == quiz.canonical(value)


def test_a_value_written_in_capitals_shows_like_every_other_option(people, population):
    shouting = [
        (p, b) for p, b in banks(people, population) if p.profesion and p.profesion.isupper()
    ]
    assert shouting, "the demo data has values in capitals"
    for _person, bank in shouting:
        for q in bank:
            if q["key"] == "profesion":
                for option in q["options"]:
                    assert option == quiz.UNASSIGNED or not option.isupper()
                    assert option[0].isupper() and option[1:] == option[1:].lower()


def test_phones_are_masked_and_dates_are_dd_mm_aaaa(people, population):
    for _person, bank in banks(people, population):
        for q in bank:
            if q["key"] == "conyuge_celular":
                assert all(re.fullmatch(r"3\d\d\*{4}\d{3}|Sin asignar", o) for o in q["options"])
            if q["key"] == "telefono":  # a landline: 60 and the area digit
                assert all(re.fullmatch(r"60\d\*{4}\d{3}|Sin asignar", o) for o in q["options"])
            if q["key"].startswith("fecha"):
                assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", o) for o in q["options"])


def test_dates_offered_are_plausible_and_bounded_alike_for_everybody(people, population):
    """Bounds from the person's own birth date would tell the birth year (see the review)."""
    today = date.today()
    for _person, bank in banks(people, population):
        for q in bank:
            if not q["key"].startswith("fecha"):
                continue
            for option in q["options"]:
                d, m, y = map(int, option.split("/"))
                offered = date(y, m, d)
                assert offered <= today
                if q["key"] == "fecha_nacimiento":
                    assert offered.year <= today.year - quiz.MIN_AGE_YEARS


def test_every_option_is_a_value_many_affiliates_share(people, population):
    shared = {
        key: {quiz.canonical(getattr(p, quiz.KINDS_BY_KEY[key].field) or "") for p in people}
        for key in ("profesion", "conyuge_profesion", "conyuge_cargo", "empresa")
    }
    counts = {
        key: Counter(quiz.canonical(getattr(p, quiz.KINDS_BY_KEY[key].field) or "") for p in people)
        for key in shared
    }
    for _person, bank in banks(people, population):
        for q in bank:
            if q["key"] in counts:
                for option in q["options"]:
                    key = "" if option == quiz.UNASSIGNED else quiz.canonical(option)
                    assert counts[q["key"]][key] >= quiz.MIN_SHARED, option


def test_a_rare_answer_is_not_asked(population):
    person = SimpleNamespace(
        profesion="Domador de leones",
        conyuge_celular="",
        conyuge_profesion="",
        conyuge_cargo="",
        fecha_ingreso_empresa=None,
        fecha_nacimiento=date(1985, 3, 3),
        celular="3001234567",
        empresa_nombre="",
    )
    for seed in range(20):
        bank = quiz.build_bank(person, population, random.Random(seed))
        assert "profesion" not in {q["key"] for q in bank}


def test_a_very_common_answer_is_asked_of_only_some_of_its_holders(population):
    model = population.models["conyuge_profesion"]
    most_common = max(model.ask, key=lambda k: population_share(population, k))
    assert model.ask[most_common] < 1
    assert max(model.share.values()) <= quiz.MAX_SHARE + 1e-9


def population_share(population, key):
    model = population.models["conyuge_profesion"]
    return model.share[key] / model.ask[key]


def test_calibrated_weights_include_each_value_in_proportion_to_its_share():
    shares = {"a": 0.2, "b": 0.2, "c": 0.15, "d": 0.15, "e": 0.1, "f": 0.1, "g": 0.05, "h": 0.05}
    weights = quiz.calibrate(shares)
    inclusion = quiz._inclusion([weights[k] for k in shares], 4)
    for (_key, share), pi in zip(shares.items(), inclusion, strict=True):
        assert pi == pytest.approx(4 * share, abs=1e-8)


def test_seen_options_do_not_tell_which_one_is_right(population):
    """Draw many questions: whatever an option's share, it is right one time in four."""
    model = population.models["profesion"]
    rng = random.Random(3)
    keys = list(model.share)
    by_rank = Counter()
    rounds = 20000
    for _ in range(rounds):
        answer = rng.choices(keys, weights=[model.share[k] for k in keys])[0]
        others = [k for k in keys if k != answer]
        shown = [answer, *quiz.sample_weighted(others, model.weights, 3, rng)]
        # The attacker's best bet without the balance: the most common value shown.
        ranked = sorted(shown, key=lambda k: -model.share[k])
        by_rank[ranked.index(answer)] += 1
    for rank in range(4):
        assert by_rank[rank] / rounds == pytest.approx(0.25, abs=0.02)


def test_sin_asignar_next_to_a_phone_is_right_one_time_in_four(population):
    model = population.models["conyuge_celular"]
    rng = random.Random(4)
    # The share of empty numbers in the whole population, before some are left unasked.
    u, a = model.unassigned, model.ask_unassigned
    empty_share = u / (a * (1 - u) + u)
    shown_with_unassigned = right_when_shown = 0
    for _ in range(20000):
        empty = rng.random() < empty_share
        value = "" if empty else quiz._random_phone(model, rng)
        labels = quiz._phone_question(model, value, random.Random(rng.random()))
        if labels is None:
            continue  # a person not asked this question
        if quiz.UNASSIGNED in labels:
            shown_with_unassigned += 1
            right_when_shown += labels[0] == quiz.UNASSIGNED
    assert right_when_shown / shown_with_unassigned == pytest.approx(0.25, abs=0.02)


def test_too_thin_a_bank_means_an_sms_code():
    assert quiz.is_thin([{}] * (quiz.MIN_QUESTIONS - 1))
    assert not quiz.is_thin([{}] * quiz.MIN_QUESTIONS)


def test_an_attempt_takes_at_most_six_questions_of_the_bank_in_its_order():
    bank = [{"key": str(i)} for i in range(8)]
    drawn = quiz.draw(bank, random.Random(1))
    assert len(drawn) == quiz.QUESTIONS_PER_QUIZ
    assert [int(q["key"]) for q in drawn] == sorted(int(q["key"]) for q in drawn)
    assert quiz.draw(bank[:5]) == bank[:5]


@pytest.mark.parametrize(
    "answers, ok",
    [
        ({"a": "1", "b": "2"}, True),
        ({"a": "1", "b": "3"}, False),
        ({"a": "1"}, False),
        ({"a": "x", "b": "2"}, False),
        ({"a": "01", "b": "2"}, False),
        ({"a": "1", "b": "²"}, False),  # passes str.isdigit()
        ({"a": "1", "b": "2" * 40}, False),
    ],
)
def test_grade(answers, ok):
    questions = [{"key": "a", "answer": 1}, {"key": "b", "answer": 2}]
    assert quiz.grade(questions, answers) is ok


def test_among_the_people_who_get_a_quiz_no_option_is_likelier_than_another():
    """What a crawler of many quizzes sees: how often each label shows, and "Sin asignar".

    People the Caja knows little about get the SMS code instead; their blanks
    must not make "Sin asignar" look likelier than it is among quiz takers.
    """
    people = [SimpleNamespace(**row) for row in demo_afiliados(seed=13, count=3000)]
    population = quiz.build_population(people)
    rng = random.Random(13)
    takers = [
        b for b in (quiz.build_bank(p, population, rng) for p in people) if not quiz.is_thin(b)
    ]
    shown: dict[str, Counter] = {}
    for bank in takers:
        for q in bank:
            shown.setdefault(q["key"], Counter()).update(q["options"])
    rarest_right, asked, unassigned_right, unassigned_shown = Counter(), Counter(), 0, 0
    for bank in takers:
        for q in bank:
            counts = [(shown[q["key"]][o], rng.random()) for o in q["options"]]
            rarest_right[q["key"]] += counts.index(min(counts)) == q["answer"]
            asked[q["key"]] += 1
            if quiz.UNASSIGNED in q["options"]:
                unassigned_shown += 1
                unassigned_right += q["options"][q["answer"]] == quiz.UNASSIGNED
    for key, n in asked.items():
        assert rarest_right[key] / n == pytest.approx(0.25, abs=0.05), key
    assert unassigned_right / unassigned_shown == pytest.approx(0.25, abs=0.02)
