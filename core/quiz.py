"""The activation quiz (SPEC H2): questions drawn from the Caja's data on a person.

Wrong options are synthetic (generated numbers and dates, words from the
catalogues below), never another person's data. The right answer is kept with
the attempt on the server; the page only sees option labels and indices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.colombia import format_date, mask_phone

UNASSIGNED = "Sin asignar"
QUESTIONS_PER_QUIZ = 6
OPTIONS_PER_QUESTION = 4
# Below this many questions with real answers, a quiz is not a fair test.
MIN_KNOWN_ANSWERS = 3

PROFESSIONS = (
    "Abogado",
    "Administrador de empresas",
    "Auxiliar administrativo",
    "Auxiliar contable",
    "Auxiliar de enfermería",
    "Bacteriólogo",
    "Cajero",
    "Comerciante",
    "Conductor",
    "Contador público",
    "Docente",
    "Economista",
    "Electricista",
    "Enfermero",
    "Estilista",
    "Fisioterapeuta",
    "Ingeniero civil",
    "Ingeniero de sistemas",
    "Ingeniero industrial",
    "Licenciado en educación",
    "Mecánico",
    "Médico general",
    "Mensajero",
    "Odontólogo",
    "Operario",
    "Psicólogo",
    "Secretaria",
    "Servicios generales",
    "Técnico en sistemas",
    "Tecnólogo en logística",
    "Vendedor",
    "Vigilante",
    "Ama de casa",
    "Trabajador social",
    "Chef",
    "Diseñador gráfico",
    "Agrónomo",
    "Arquitecto",
)

JOB_TITLES = (
    "Analista contable",
    "Asesor comercial",
    "Auxiliar de bodega",
    "Auxiliar de cocina",
    "Cajero principal",
    "Coordinador de compras",
    "Coordinador de talento humano",
    "Director administrativo",
    "Ejecutivo de cuenta",
    "Jefe de mantenimiento",
    "Líder de proyectos",
    "Operador de planta",
    "Patrullero",
    "Profesional de gestión",
    "Recepcionista",
    "Supervisor de turno",
    "Técnico de soporte",
    "Vendedor de mostrador",
    "Conductor de reparto",
    "Docente de primaria",
)

COMPANY_WORDS = (
    (
        "Distribuidora",
        "Comercializadora",
        "Inversiones",
        "Servicios",
        "Industrias",
        "Transportes",
        "Construcciones",
        "Soluciones",
    ),
    (
        "del Caribe",
        "Andina",
        "del Norte",
        "Costera",
        "Integral",
        "Nacional",
        "La Esperanza",
        "El Prado",
        "Santa Marta",
        "del Magdalena",
    ),
    ("S.A.S.", "Ltda.", "S.A."),
)

MOBILE_PREFIXES = (
    300,
    301,
    302,
    304,
    305,
    310,
    311,
    312,
    313,
    314,
    315,
    316,
    317,
    318,
    319,
    320,
    321,
    322,
    323,
    350,
    351,
)


@dataclass(frozen=True)
class Kind:
    key: str
    text: str
    field: str
    shape: str  # "text", "phone", "date"
    catalogue: tuple = ()
    # Text and phone questions always offer "Sin asignar" (it is right when the
    # data is empty); date questions are asked only when the date is known, so
    # the option's presence never hints at the answer.
    optional: bool = True


KINDS = (
    Kind("profesion", "¿Cuál es la profesión del afiliado?", "profesion", "text", PROFESSIONS),
    Kind(
        "conyuge_celular",
        "¿Cuál es el número celular del cónyuge del afiliado?",
        "conyuge_celular",
        "phone",
    ),
    Kind(
        "conyuge_profesion",
        "¿Cuál es la profesión del cónyuge del afiliado?",
        "conyuge_profesion",
        "text",
        PROFESSIONS,
    ),
    Kind(
        "fecha_ingreso",
        "¿Cuál es la fecha de ingreso a la empresa del afiliado?",
        "fecha_ingreso_empresa",
        "date",
        optional=False,
    ),
    Kind(
        "conyuge_cargo",
        "¿Cuál es el cargo actual del cónyuge del afiliado?",
        "conyuge_cargo",
        "text",
        JOB_TITLES,
    ),
    Kind(
        "fecha_nacimiento",
        "¿Cuál es su fecha de nacimiento?",
        "fecha_nacimiento",
        "date",
        optional=False,
    ),
    Kind("celular", "¿Cuál es su número celular registrado en la Caja?", "celular", "phone"),
    Kind("empresa", "¿Cuál es el nombre de la empresa donde trabaja?", "empresa_nombre", "text"),
)


def _value(afiliado: Any, kind: Kind) -> Any:
    value = getattr(afiliado, kind.field, None)
    return value.strip() if isinstance(value, str) else value


def known_answers(afiliado: Any) -> int:
    """Count the quiz questions whose answer is in the data (not "Sin asignar")."""
    return sum(1 for kind in KINDS if _value(afiliado, kind))


def is_thin(afiliado: Any) -> bool:
    """Tell whether the data is too thin for a fair quiz."""
    return known_answers(afiliado) < MIN_KNOWN_ANSWERS


def _label(kind: Kind, value: Any) -> str:
    if kind.shape == "phone":
        return mask_phone(value)
    if kind.shape == "date":
        return format_date(value)
    return value


def _synthetic(kind: Kind, right: Any, rng: random.Random) -> Any:
    if kind.shape == "phone":
        return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"
    if kind.shape == "date":
        spread = 15 * 365 if kind.key == "fecha_nacimiento" else 8 * 365
        candidate = right + timedelta(days=rng.randint(-spread, spread))
        return min(candidate, date.today() - timedelta(days=1))
    if kind.catalogue:
        return rng.choice(kind.catalogue)
    return " ".join(rng.choice(words) for words in COMPANY_WORDS)


def build_question(kind: Kind, afiliado: Any, rng: random.Random) -> dict:
    """Return {key, text, options, answer} with four distinct option labels."""
    right = _value(afiliado, kind)
    right_label = _label(kind, right) if right else UNASSIGNED
    labels = {right_label.casefold(): right_label}
    if kind.optional:
        labels.setdefault(UNASSIGNED.casefold(), UNASSIGNED)
    anchor = right or date(1980, 1, 1)
    while len(labels) < OPTIONS_PER_QUESTION:
        label = _label(kind, _synthetic(kind, anchor, rng))
        labels.setdefault(label.casefold(), label)
    options = list(labels.values())
    rng.shuffle(options)
    return {
        "key": kind.key,
        "text": kind.text,
        "options": options,
        "answer": options.index(right_label),
    }


def draw(
    afiliado: Any, rng: random.Random | None = None, avoid: frozenset[str] = frozenset()
) -> list[dict]:
    """Draw a quiz: questions with real answers first, fresh ones before `avoid`."""
    rng = rng or random.SystemRandom()
    pool = [k for k in KINDS if k.optional or _value(afiliado, k)]
    rng.shuffle(pool)
    pool.sort(key=lambda k: (not _value(afiliado, k), k.key in avoid))
    chosen = pool[:QUESTIONS_PER_QUIZ]
    rng.shuffle(chosen)
    return [build_question(kind, afiliado, rng) for kind in chosen]


def grade(questions: list[dict], answers: dict[str, str]) -> bool:
    """Tell whether every question got its right option (answers: key -> index)."""
    for question in questions:
        given = answers.get(question["key"], "")
        if not given.isdigit() or int(given) != question["answer"]:
            return False
    return True
