"""The activation quiz drawn from the Caja's data (SPEC H2), without HTTP."""

from __future__ import annotations

import random
import re
from datetime import date
from types import SimpleNamespace

import pytest

from core import quiz


def person(**over):
    data = dict(
        profesion="Docente",
        conyuge_celular="3216517487",
        conyuge_profesion="Enfermero",
        fecha_ingreso_empresa=date(2016, 1, 26),
        conyuge_cargo="Patrullero",
        fecha_nacimiento=date(1980, 2, 29),
        celular="3007386448",
        empresa_nombre="Servicios Andina S.A.S.",
    )
    data.update(over)
    return SimpleNamespace(**data)


@pytest.mark.parametrize("seed", range(30))
def test_every_question_has_four_distinct_options_and_one_right_answer(seed):
    questions = quiz.draw(person(), random.Random(seed))
    assert len(questions) == quiz.QUESTIONS_PER_QUIZ
    assert len({q["key"] for q in questions}) == 6
    for q in questions:
        assert len(q["options"]) == 4
        assert len({o.casefold() for o in q["options"]}) == 4
        assert 0 <= q["answer"] < 4


def test_right_answers_are_the_persons_data_formatted():
    questions = {q["key"]: q for q in quiz.draw(person(), random.Random(1))}
    right = {k: q["options"][q["answer"]] for k, q in questions.items()}
    expected = {
        "profesion": "Docente",
        "conyuge_celular": "321****487",
        "fecha_nacimiento": "29/02/1980",
        "fecha_ingreso": "26/01/2016",
        "celular": "300****448",
        "conyuge_cargo": "Patrullero",
        "conyuge_profesion": "Enfermero",
        "empresa": "Servicios Andina S.A.S.",
    }
    for key, value in right.items():
        assert value == expected[key]


def test_phones_are_masked_and_dates_are_dd_mm_aaaa():
    for seed in range(20):
        for q in quiz.draw(person(), random.Random(seed)):
            if q["key"].endswith("celular"):
                assert all(re.fullmatch(r"3\d\d\*{4}\d{3}|Sin asignar", o) for o in q["options"])
            if q["key"].startswith("fecha"):
                assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", o) for o in q["options"])


def test_empty_data_makes_sin_asignar_right_and_empty_dates_are_not_asked():
    empty = person(profesion="", conyuge_celular="", fecha_ingreso_empresa=None)
    questions = {q["key"]: q for q in quiz.draw(empty, random.Random(3))}
    assert "fecha_ingreso" not in questions
    for key in ("profesion", "conyuge_celular"):
        if key in questions:
            q = questions[key]
            assert q["options"][q["answer"]] == quiz.UNASSIGNED


def test_known_answers_come_first():
    questions = quiz.draw(person(profesion=""), random.Random(5))
    assert "profesion" not in {q["key"] for q in questions}  # 7 known answers fill the quiz


def test_a_new_attempt_prefers_other_questions():
    first = quiz.draw(person(), random.Random(7))
    avoid = frozenset(q["key"] for q in first)
    second = quiz.draw(person(), random.Random(8), avoid=avoid)
    fresh = {q["key"] for q in second} - avoid
    assert fresh == {k.key for k in quiz.KINDS} - avoid


def test_wrong_options_come_from_catalogues_not_from_other_people():
    q = quiz.build_question(quiz.KINDS[0], person(profesion="Docente"), random.Random(2))
    wrong = [o for i, o in enumerate(q["options"]) if i != q["answer"] and o != quiz.UNASSIGNED]
    assert all(o in quiz.PROFESSIONS for o in wrong)


def test_future_dates_are_never_offered():
    young = person(fecha_ingreso_empresa=date.today().replace(day=1))
    for seed in range(20):
        for q in quiz.draw(young, random.Random(seed)):
            if q["key"].startswith("fecha"):
                for option in q["options"]:
                    d, m, y = map(int, option.split("/"))
                    assert date(y, m, d) <= date.today()


@pytest.mark.parametrize(
    "over, thin",
    [
        ({}, False),
        (
            dict(
                profesion="",
                conyuge_celular="",
                conyuge_profesion="",
                conyuge_cargo="",
                fecha_ingreso_empresa=None,
            ),
            False,
        ),  # birth date, celular, employer: enough
        (
            dict(
                profesion="",
                conyuge_celular="",
                conyuge_profesion="",
                conyuge_cargo="",
                empresa_nombre="",
                fecha_ingreso_empresa=None,
            ),
            True,
        ),  # only two known answers
    ],
)
def test_thin_data_is_detected(over, thin):
    assert quiz.is_thin(person(**over)) is thin


@pytest.mark.parametrize(
    "answers, ok",
    [
        ({"a": "1", "b": "2"}, True),
        ({"a": "1", "b": "3"}, False),
        ({"a": "1"}, False),
        ({"a": "x", "b": "2"}, False),
        ({"a": "01", "b": "2"}, True),
    ],
)
def test_grade(answers, ok):
    questions = [{"key": "a", "answer": 1}, {"key": "b", "answer": 2}]
    assert quiz.grade(questions, answers) is ok
