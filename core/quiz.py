"""The activation quiz (SPEC H2): questions from the Caja's data, options that give nothing away.

A stranger who knows how options are built, has seen every earlier attempt
and many other people's quizzes, must do no better than blind guessing. So:

- Options are drawn once per person and question and kept (a "bank"): every
  attempt shows the same four, and intersecting attempts leaves four.
- Every option comes from the Caja's own data at population level (a model
  built from all affiliates): text values only when at least MIN_SHARED
  affiliates share them, in one house style; phones with the population's
  operator prefixes; dates from the population's months and days of month.
- Wrong options are drawn so that, given the four shown, each is the right
  one with probability 1/4: text values by conditional Poisson sampling
  calibrated to the values' shares, "Sin asignar" among them; a value too
  common to hide is asked of only some of its holders, one too rare never.

The right answer stays with the bank and the attempt rows on the server.
"""

from __future__ import annotations

import functools
import hashlib
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.colombia import format_date, mask_phone

UNASSIGNED = "Sin asignar"
QUESTIONS_PER_QUIZ = 6
OPTIONS_PER_QUESTION = 4
# Fewer questions than this and a blind guess passes too often (1/4**5 per try).
MIN_QUESTIONS = 5
# An option value must be shared by this many affiliates, so no option points at a person.
MIN_SHARED = 5
# No value may be the answer of more than this share of the people it is asked of;
# the balanced draw needs it below 1/4.
MAX_SHARE = 0.24
# Join dates and birth dates must be plausible for an adult worker.
MIN_AGE_YEARS = 14


@dataclass(frozen=True)
class Kind:
    key: str
    text: str
    field: str
    shape: str  # "text", "phone", "date"
    style: str = "sentence"  # how text labels are written: "sentence" or "name"
    # The spouse's questions share one fact (is there a spouse on file?): asking
    # several would let the pattern of "Sin asignar" across them tell it, so a
    # person is asked at most one question of a group.
    group: str = ""


KINDS = (
    Kind("profesion", "¿Cuál es la profesión del afiliado?", "profesion", "text"),
    Kind(
        "conyuge_celular",
        "¿Cuál es el número celular del cónyuge del afiliado?",
        "conyuge_celular",
        "phone",
        group="conyuge",
    ),
    Kind(
        "conyuge_profesion",
        "¿Cuál es la profesión del cónyuge del afiliado?",
        "conyuge_profesion",
        "text",
        group="conyuge",
    ),
    Kind(
        "fecha_ingreso",
        "¿Cuál es la fecha de ingreso a la empresa del afiliado?",
        "fecha_ingreso_empresa",
        "date",
    ),
    Kind(
        "conyuge_cargo",
        "¿Cuál es el cargo actual del cónyuge del afiliado?",
        "conyuge_cargo",
        "text",
        group="conyuge",
    ),
    Kind("fecha_nacimiento", "¿Cuál es su fecha de nacimiento?", "fecha_nacimiento", "date"),
    # Not the mobile on file: the SMS-code page names it (masked), and whether
    # there is one decides what that page offers.
    Kind("telefono", "¿Cuál es su teléfono fijo registrado en la Caja?", "telefono", "phone"),
    Kind(
        "empresa",
        "¿Cuál es el nombre de la empresa donde trabaja?",
        "empresa_nombre",
        "text",
        style="name",
    ),
)
KINDS_BY_KEY = {kind.key: kind for kind in KINDS}


# --- words: one key per value, one house style per kind ---------------------


def canonical(text: str) -> str:
    """Return the key that spellings of one value share (case, accents, spaces)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace(".", ". ").split()).replace(". ", ".").strip(" .,;")


_CONNECTORS = frozenset({"de", "del", "la", "las", "el", "los", "y", "e", "en", "a"})


def styled(text: str, style: str) -> str:
    """Write a value in its kind's one style, whatever case the data came in."""
    words = " ".join((text or "").split()).lower()
    if style == "name":
        out = []
        for i, word in enumerate(words.split(" ")):
            if "." in word.strip("."):
                out.append(word.upper())  # S.A.S., E.S.P.
            elif i and word in _CONNECTORS:
                out.append(word)
            else:
                out.append(word[:1].upper() + word[1:])
        return " ".join(out)
    return words[:1].upper() + words[1:]


def _value(afiliado: Any, kind: Kind) -> Any:
    value = getattr(afiliado, kind.field, None)
    value = value.strip() if isinstance(value, str) else value
    if kind.key == "telefono" and value and value.startswith("3"):
        return None  # a mobile written as the landline: not a landline question
    return value


def _prefix(phone: str) -> str:
    """Return what a masked phone shows of its kind: the first 3 digits and the length."""
    return f"{phone[:3]}|{len(phone)}"


# --- the population model ----------------------------------------------------


def _flatten(shares: dict[str, float], cap: float) -> tuple[dict[str, float], dict[str, float]]:
    """Return (share among those asked, chance to ask) so that no share exceeds cap.

    A value held by too many people is asked of only some of them, chosen at
    random once; among the people asked, its share is then at most cap.
    """
    if not shares or len(shares) * cap < 1:
        return {}, {}
    lo, hi = 0.0, max(shares.values())
    for _ in range(60):  # bisection on the per-value ceiling c
        mid = (lo + hi) / 2
        total = sum(min(p, mid) for p in shares.values())
        if mid / total <= cap:
            lo = mid
        else:
            hi = mid
    c = lo
    total = sum(min(p, c) for p in shares.values())
    flat = {k: min(p, c) / total for k, p in shares.items()}
    ask = {k: min(1.0, c / p) for k, p in shares.items()}
    return flat, ask


def _inclusion(weights: list[float], n: int) -> list[float]:
    """Return each item's chance to be in a conditional Poisson sample of size n."""
    m = len(weights)
    prefix = [[1.0] + [0.0] * n]
    for w in weights:
        prev = prefix[-1]
        prefix.append([prev[0]] + [prev[k] + w * prev[k - 1] for k in range(1, n + 1)])
    suffix = [[1.0] + [0.0] * n]
    for w in reversed(weights):
        prev = suffix[-1]
        suffix.append([prev[0]] + [prev[k] + w * prev[k - 1] for k in range(1, n + 1)])
    suffix.reverse()
    total = prefix[m][n]
    out = []
    for i, w in enumerate(weights):
        left, right = prefix[i], suffix[i + 1]
        without = sum(left[j] * right[n - 1 - j] for j in range(n))
        out.append(w * without / total)
    return out


def calibrate(shares: dict[str, float], n: int = OPTIONS_PER_QUESTION) -> dict[str, float]:
    """Return weights whose size-n conditional Poisson sample includes each value n·share times.

    Then drawing the n - 1 wrong options with those weights, next to a right
    answer distributed as `shares`, leaves every shown option equally likely.
    """
    keys = list(shares)
    target = [n * shares[k] for k in keys]
    lam = list(target)
    for _ in range(500):
        pi = _inclusion(lam, n)
        if max(abs(p - t) for p, t in zip(pi, target, strict=True)) < 1e-10:
            break
        lam = [w * t / p for w, t, p in zip(lam, target, pi, strict=True)]
        scale = sum(lam)
        lam = [w / scale for w in lam]
    return dict(zip(keys, lam, strict=True))


def sample_weighted(items: list[str], weights: dict[str, float], n: int, rng) -> list[str]:
    """Draw n distinct items with chance proportional to the product of their weights."""
    w = [weights[i] for i in items]
    m = len(items)
    suffix = [[0.0] * (n + 1) for _ in range(m + 1)]
    suffix[m][0] = 1.0
    for j in range(m - 1, -1, -1):
        suffix[j][0] = 1.0
        for k in range(1, n + 1):
            suffix[j][k] = suffix[j + 1][k] + w[j] * suffix[j + 1][k - 1]
    chosen, k = [], n
    for j in range(m):
        if k == 0:
            break
        if rng.random() * suffix[j][k] < w[j] * suffix[j + 1][k - 1]:
            chosen.append(items[j])
            k -= 1
    return chosen


@dataclass
class TextModel:
    labels: dict[str, str]  # canonical key -> label; "" is "Sin asignar"
    share: dict[str, float]  # among the people asked
    ask: dict[str, float]
    weights: dict[str, float] = field(default_factory=dict)


@dataclass
class PhoneModel:
    prefixes: dict[str, int]  # operator prefix -> people
    unassigned: float  # share of "Sin asignar" among the people asked (0: never offered)
    ask_unassigned: float  # chance to ask someone whose answer is "Sin asignar"


@dataclass
class DateModel:
    years: dict[int, int]  # year -> people (only years many people share)
    months: dict[int, int]  # month -> people
    days: dict[int, int]  # day of month -> people


@dataclass
class Population:
    """What the Caja's data looks like as a whole: the only source of options."""

    models: dict[str, Any]
    size: int


def _fact(row: Any, kind: Kind, today: date):
    """Return what counts of one answer: a text's key, a phone's prefix, a date; None if none."""
    value = _value(row, kind)
    if kind.shape == "text":
        return canonical(value) if value else ""
    if kind.shape == "phone":
        return None if value is None else (_prefix(value) if value else "")
    return value if value and value <= today else None


@dataclass
class _Tally:
    """Counts of the population's values: weighted (the quiz takers), and raw (people)."""

    weights: dict = field(default_factory=dict)  # (table, kind) -> Counter
    people: dict = field(default_factory=dict)

    def add(self, table: str, kind: str, key, weight: float, people: int) -> None:
        slot = (table, kind)
        if slot not in self.weights:
            self.weights[slot], self.people[slot] = Counter(), Counter()
        self.weights[slot][key] += weight
        self.people[slot][key] += people

    def weighted(self, table: str, kind: str, shared: bool = True) -> dict:
        """Return the weighted counts of the values at least MIN_SHARED people hold."""
        weights = self.weights.get((table, kind), Counter())
        people = self.people.get((table, kind), Counter())
        return {
            k: w for k, w in weights.items() if w > 0 and (people[k] >= MIN_SHARED or not shared)
        }


def _tally(facts: Counter, weigh) -> _Tally:
    """Count every person's facts, each answer weighted by weigh(facts)[question]."""
    tally = _Tally()
    for row, people in facts.items():
        weights = weigh(row)
        for kind, fact, weight in zip(KINDS, row, weights, strict=True):
            if weight <= 0 or fact is None:
                continue
            w = weight * people
            if kind.shape == "text":
                tally.add("texts", kind.key, fact, w, people)
            elif kind.shape == "phone":
                tally.add("prefixes" if fact else "empty", kind.key, fact, w, people)
            else:
                tally.add("years", kind.key, fact.year, w, people)
                tally.add("months", kind.key, fact.month, w, people)
                tally.add("days", kind.key, fact.day, w, people)
    return tally


def _models(tally: _Tally, spellings: dict) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for kind in KINDS:
        if kind.shape == "text":
            counts = tally.weighted("texts", kind.key)
            total = sum(counts.values())
            if not total:
                continue
            share, ask = _flatten({k: n / total for k, n in counts.items()}, MAX_SHARE)
            if not share:
                continue
            written = spellings.get(kind.key, {})
            labels = {
                k: styled(written[k].most_common(1)[0][0], kind.style) if k else UNASSIGNED
                for k in share
            }
            models[kind.key] = TextModel(labels, share, ask, calibrate(share))
        elif kind.shape == "phone":
            common = tally.weighted("prefixes", kind.key)
            phones = sum(common.values())
            if not phones:
                continue
            empty = tally.weighted("empty", kind.key).get("", 0.0)
            p_empty = empty / (empty + phones)
            ask_empty = 1.0
            if p_empty > MAX_SHARE:
                # Keep "Sin asignar" at MAX_SHARE among the people asked.
                ask_empty = MAX_SHARE * (1 - p_empty) / ((1 - MAX_SHARE) * p_empty)
            asked_empty = p_empty * ask_empty
            unassigned = asked_empty / (asked_empty + (1 - p_empty)) if empty else 0.0
            models[kind.key] = PhoneModel(common, unassigned, ask_empty if empty else 0.0)
        else:
            years = tally.weighted("years", kind.key)
            if len(years) >= OPTIONS_PER_QUESTION * 2:
                months = tally.weighted("months", kind.key, shared=False)
                days = tally.weighted("days", kind.key, shared=False)
                models[kind.key] = DateModel(years, months, days)
    return models


def _ask_chance(kind: Kind, fact, models: dict[str, Any], today: date) -> float:
    """Return the chance that a person with this fact is asked this question (0: never)."""
    model = models.get(kind.key)
    if model is None or fact is None:
        return 0.0
    if kind.shape == "text":
        return model.ask.get(fact, 0.0)
    if kind.shape == "phone":
        return (1.0 if fact in model.prefixes else 0.0) if fact else model.ask_unassigned
    start, end = _window(kind, today)
    return 1.0 if start <= fact <= end and fact.year in model.years else 0.0


def _at_least(chances: list[float], n: int) -> float:
    """Return the chance that n or more of independent events with these chances happen."""
    at_least = [1.0] + [0.0] * len(chances)  # at_least[k]: chance of k or more so far
    for chance in chances:
        at_least = [1.0] + [
            at_least[k] + chance * (at_least[k - 1] - at_least[k]) for k in range(1, len(at_least))
        ]
    return at_least[n] if n < len(at_least) else 0.0


_SLOTS = [kind.group or kind.key for kind in KINDS]


@functools.lru_cache(maxsize=65536)
def _slot_weights(chances: tuple[float, ...]) -> tuple[float, ...]:
    """Return, per question, the chance to reach a quiz once it is asked (see quiz_weights)."""
    slots: dict[str, list[float]] = {}
    for slot, chance in zip(_SLOTS, chances, strict=True):
        slots.setdefault(slot, []).append(chance)
    mean = {slot: sum(c) / len(c) for slot, c in slots.items()}  # one of a group, at random
    reach = {
        slot: _at_least([c for other, c in mean.items() if other != slot], MIN_QUESTIONS - 1)
        for slot in mean
    }
    return tuple(reach[slot] for slot in _SLOTS)


def quiz_weights(facts: tuple, models: dict[str, Any], today: date) -> tuple[float, ...]:
    """Return, per question, the chance that this person gets a quiz once it is asked.

    Among the people a question is asked of, only those who reach
    MIN_QUESTIONS questions get a quiz: their answers are what options must
    look like.
    """
    chances = tuple(
        round(_ask_chance(kind, fact, models, today), 6)
        for kind, fact in zip(KINDS, facts, strict=True)
    )
    return _slot_weights(chances)


def build_population(rows, today: date | None = None, passes: int = 2) -> Population:
    """Build the model from the Caja's affiliates (all of them, or a random sample).

    Options must look like the answers of the people who get a quiz, not of
    everybody: those the Caja knows little about get the SMS code, and their
    blanks would make "Sin asignar" look likelier than it is. So after a first
    count, each person's answer to a question is counted again, weighted by
    their chance to get a quiz once that question is asked.
    """
    today = today or date.today()
    facts: Counter = Counter()
    spellings: dict[str, dict[str, Counter]] = {}
    size = 0
    for row in rows:
        size += 1
        fact = tuple(_fact(row, kind, today) for kind in KINDS)
        facts[fact] += 1
        for kind, key in zip(KINDS, fact, strict=True):
            if kind.shape == "text" and key:
                spellings.setdefault(kind.key, {}).setdefault(key, Counter())[
                    _value(row, kind)
                ] += 1
    everyone = (1.0,) * len(KINDS)
    tally = _tally(facts, lambda _row: everyone)
    for _ in range(passes):
        models = _models(tally, spellings)
        tally = _tally(facts, lambda row, m=models: quiz_weights(row, m, today))
    return Population(_models(tally, spellings), size)


# --- one person's bank of questions --------------------------------------------


def _window(kind: Kind, today: date) -> tuple[date, date]:
    """Return the dates an answer to a date question can take, the same for everybody.

    Not bounded by the person's own birth date: wrong join dates drawn after
    it would tell the birth year, and so the answer of the other question.
    """
    if kind.key == "fecha_nacimiento":
        return date(1900, 1, 1), date(today.year - MIN_AGE_YEARS, today.month, min(today.day, 28))
    return date(1900, 1, 1), today


def _weighted_choice(weights: dict, rng):
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _random_phone(model: PhoneModel, rng) -> str:
    start, length = _weighted_choice(model.prefixes, rng).split("|")
    rest = int(length) - len(start)
    return f"{start}{rng.randrange(10**rest):0{rest}d}"


def _random_date(model: DateModel, start: date, end: date, rng) -> date | None:
    years = {y: n for y, n in model.years.items() if start.year <= y <= end.year}
    if not years:
        return None
    for _ in range(50):
        year = _weighted_choice(years, rng)
        month = _weighted_choice(model.months, rng)
        day = _weighted_choice(model.days, rng)
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue  # 31 of a 30-day month: draw again, as people are never born then
        if start <= candidate <= end:
            return candidate
    return None


def _text_question(kind: Kind, model: TextModel, value: str, rng) -> list[str] | None:
    key = canonical(value) if value else ""
    if key not in model.share or rng.random() >= model.ask[key]:
        return None
    others = [k for k in model.share if k != key]
    wrong = sample_weighted(others, model.weights, OPTIONS_PER_QUESTION - 1, rng)
    return [model.labels[key]] + [model.labels[k] for k in wrong]


def _phone_question(model: PhoneModel, value: str | None, rng) -> list[str] | None:
    if value is None:
        return None  # not a number this question is about
    if not value:
        if not model.unassigned or rng.random() >= model.ask_unassigned:
            return None
        right, offer_unassigned = UNASSIGNED, False
    else:
        if _prefix(value) not in model.prefixes:
            return None
        rho = model.unassigned / (1 - model.unassigned)
        right = mask_phone(value)
        # "Sin asignar" is shown next to a real phone just often enough that,
        # when shown, it is right one time in four.
        offer_unassigned = rng.random() < 3 * rho
    labels = [right] + ([UNASSIGNED] if offer_unassigned else [])
    while len(labels) < OPTIONS_PER_QUESTION:
        label = mask_phone(_random_phone(model, rng))
        if label not in labels:
            labels.append(label)
    return labels


def _date_question(kind: Kind, model: DateModel, value: date | None, today: date, rng):
    if not value:
        return None
    start, end = _window(kind, today)
    if not (start <= value <= end) or value.year not in model.years:
        return None  # a date that stands out (a rare year, implausible) is not asked
    labels = [format_date(value)]
    for _ in range(200):
        candidate = _random_date(model, start, end, rng)
        if candidate is None:
            return None
        label = format_date(candidate)
        if label not in labels:
            labels.append(label)
        if len(labels) == OPTIONS_PER_QUESTION:
            return labels
    return None


def _ordered(kind: Kind, labels: list[str]) -> list[str]:
    """Sort the options the way the manual shows them ("Sin asignar" last)."""

    def key(label: str):
        if label == UNASSIGNED:
            return (1, "")
        if kind.shape == "date":
            d, m, y = label.split("/")
            return (0, f"{y}{m}{d}")
        return (0, canonical(label))

    return sorted(labels, key=key)


def fingerprint(afiliado: Any, kind: Kind) -> str:
    """Return what a question's answer was drawn from, to notice when the Caja corrects it."""
    value = _value(afiliado, kind)
    text = canonical(value) if isinstance(value, str) else str(value or "")
    return hashlib.sha256(f"{kind.key}:{text}".encode()).hexdigest()[:16]


def build_question(
    kind: Kind, afiliado: Any, population: Population, rng, today: date | None = None
) -> dict | None:
    """Draw one question for this person, or None when it cannot be asked fairly."""
    model = population.models.get(kind.key)
    if model is None:
        return None
    value = _value(afiliado, kind)
    if kind.shape == "text":
        labels = _text_question(kind, model, value, rng)
    elif kind.shape == "phone":
        labels = _phone_question(model, value, rng)
    else:
        labels = _date_question(kind, model, value, today or date.today(), rng)
    if labels is None:
        return None
    options = _ordered(kind, labels)
    return {
        "key": kind.key,
        "text": kind.text,
        "options": options,
        "answer": options.index(labels[0]),
        "fp": fingerprint(afiliado, kind),
    }


def build_bank(
    afiliado: Any, population: Population, rng=None, today: date | None = None
) -> list[dict]:
    """Return this person's questions, each {key, text, options, answer, fp}, drawn once for good."""
    rng = rng or random.SystemRandom()
    groups: dict[str, list[Kind]] = {}
    for kind in KINDS:
        if kind.group:
            groups.setdefault(kind.group, []).append(kind)
    # One question of each group, picked before looking at the answers.
    chosen = {group: rng.choice(kinds) for group, kinds in groups.items()}
    bank = []
    for kind in KINDS:
        if kind.group and chosen[kind.group] is not kind:
            continue
        question = build_question(kind, afiliado, population, rng, today)
        if question is not None:
            bank.append(question)
    return bank


def refresh_bank(
    bank: list[dict], afiliado: Any, population, rng=None, today: date | None = None
) -> list[dict] | None:
    """Redraw only the questions whose data the Caja has corrected; None when nothing changed.

    The others keep their options, so a correction shows nothing new about them.
    population may be a callable: it is built only when something changed.
    """

    def current(question: dict) -> bool:
        kind = KINDS_BY_KEY.get(question["key"])
        return kind is not None and question.get("fp") == fingerprint(afiliado, kind)

    if all(current(q) for q in bank):
        return None
    if callable(population):
        population = population()
    rng = rng or random.SystemRandom()
    fresh = []
    for question in bank:
        if current(question):
            fresh.append(question)
            continue
        kind = KINDS_BY_KEY.get(question["key"])
        redrawn = build_question(kind, afiliado, population, rng, today) if kind else None
        if redrawn is not None:
            fresh.append(redrawn)
    return fresh


def is_thin(bank: list[dict]) -> bool:
    """Tell whether too few questions can be asked fairly (then an SMS code is sent)."""
    return len(bank) < MIN_QUESTIONS


def draw(bank: list[dict], rng=None) -> list[dict]:
    """Pick one attempt's questions from the bank, in the bank's order."""
    rng = rng or random.SystemRandom()
    if len(bank) <= QUESTIONS_PER_QUIZ:
        return list(bank)
    keep = set(rng.sample(range(len(bank)), QUESTIONS_PER_QUIZ))
    return [q for i, q in enumerate(bank) if i in keep]


def grade(questions: list[dict], answers: dict[str, str]) -> bool:
    """Tell whether every question got its right option (answers: key -> "0".."3")."""
    for question in questions:
        if answers.get(question["key"]) != str(question["answer"]):
            return False
    return True
