"""Password rules (SPEC H1) and argon2id hashing, shared by every place a password is set."""

import gzip
import re
from collections.abc import Iterable
from datetime import date
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Word for word from the manual, which shows the advice above the numbered rules.
RULES: list[str] = [
    "Mínimo 8 caracteres.",
    "Caracteres en mayúscula.",
    "Caracteres en minúscula.",
    "Debe contener números.",
]
ADVICE = (
    "Recuerde que para una mayor seguridad de sus datos, no utilice información "
    "personal como teléfonos, identificación o fechas de cumpleaños, que sean "
    "fáciles de recordar por terceros."
)
RULES_HELP: list[str] = [*RULES, ADVICE]

MIN_LENGTH = 8
# argon2 accepts any length; the cap keeps a megabyte "password" from being a
# cheap way to make the server hash for a long time.
MAX_LENGTH = 128

TOO_SHORT = "Debe tener mínimo 8 caracteres."
TOO_LONG = "No puede tener más de 128 caracteres."
NO_UPPER = "Debe contener al menos una letra mayúscula."
NO_LOWER = "Debe contener al menos una letra minúscula."
NO_DIGIT = "Debe contener al menos un número."
HAS_DOCUMENT = "No puede contener su número de documento."
HAS_PHONE = "No puede contener sus números de teléfono."
HAS_BIRTH_DATE = "No puede contener su fecha de nacimiento."
HAS_EMAIL = "No puede contener su correo electrónico."
TOO_COMMON = "Es una contraseña muy común; elija otra más difícil de adivinar."
# The problem each numbered rule of RULES stands for, in the same order.
RULE_PROBLEMS = (TOO_SHORT, NO_UPPER, NO_LOWER, NO_DIGIT)
_ALL_PROBLEMS = (
    *RULE_PROBLEMS,
    TOO_LONG,
    HAS_DOCUMENT,
    HAS_PHONE,
    HAS_BIRTH_DATE,
    HAS_EMAIL,
    TOO_COMMON,
)

COMMON_PASSWORDS_PATH = Path(__file__).parent / "data" / "common-passwords.txt.gz"

_NON_DIGITS = re.compile(r"[^0-9]")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
# Below this a stripped core ("abc" from "abc12345!") matches too much of the list.
_MIN_CORE = 4
# Digits around a common word up to this many ("2024", "123") keep it common.
_TRIVIAL_LENGTH = 4

# Incremented on every hash and verify so tests can count the expensive calls.
HASH_CALLS = 0
_hasher: PasswordHasher | None = None
_dummy_hash: str | None = None


@cache
def common_passwords() -> frozenset[str]:
    """Load the common-password list once."""
    with gzip.open(COMMON_PASSWORDS_PATH, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def is_common(password: str) -> bool:
    """Tell whether a password, or its letters without surrounding digits and symbols, is common."""
    lowered = password.lower()
    common = common_passwords()
    if lowered in common:
        return True
    core = _strip_non_letters(lowered)
    if len(core) < _MIN_CORE or core not in common:
        return False
    start = lowered.index(core)
    # A common word is common with "123" or "2024!" around it, not with a
    # long number such as a date ("Lucia04052000"): that guess needs the person.
    return _is_trivial(lowered[:start]) and _is_trivial(lowered[start + len(core) :])


def _strip_non_letters(text: str) -> str:
    """Drop the digits and symbols at both ends of a string."""
    start, end = 0, len(text)
    while start < end and not text[start].isalpha():
        start += 1
    while end > start and not text[end - 1].isalpha():
        end -= 1
    return text[start:end]


def _is_trivial(part: str) -> bool:
    """Tell whether digits and symbols next to a word add next to nothing.

    Trivial: at most 4 characters besides symbols (a year, "123"), one
    character repeated, a run like 12345 or 98765, or itself on the list.
    """
    digits = _NON_ALNUM.sub("", part)
    if len(digits) <= _TRIVIAL_LENGTH or len(set(digits)) == 1:
        return True
    steps = {int(b) - int(a) for a, b in zip(digits, digits[1:], strict=False)}
    return steps in ({1}, {-1}) or digits in common_passwords()


def _birth_date_forms(d: date) -> list[str]:
    """Return the ways people write a birth date inside a password."""
    dd, mm, yyyy = f"{d.day:02d}", f"{d.month:02d}", f"{d.year:04d}"
    return [
        dd + mm + yyyy,
        yyyy + mm + dd,
        dd + mm + yyyy[2:],
        f"{dd}/{mm}/{yyyy}",
        f"{yyyy}-{mm}-{dd}",
    ]


def _phone_digits(phone: str) -> str:
    """Return a phone's national digits, without the +57 country code."""
    digits = _NON_DIGITS.sub("", phone)
    if len(digits) == 12 and digits.startswith("57"):
        digits = digits[2:]
    return digits


def password_problems(
    password: str,
    *,
    document: str | None = None,
    phones: Iterable[str] = (),
    birth_date: date | None = None,
    email: str | None = None,
) -> list[str]:
    """Return every password rule the password breaks, as Spanish messages."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(TOO_SHORT)
    if len(password) > MAX_LENGTH:
        problems.append(TOO_LONG)
    if not any(c.isupper() for c in password):
        problems.append(NO_UPPER)
    if not any(c.islower() for c in password):
        problems.append(NO_LOWER)
    if not any(c.isdigit() for c in password):
        problems.append(NO_DIGIT)

    lowered = password.lower()
    # Separators are stripped so "1.234.567" or "300-123-4567" still count.
    pw_digits = _NON_DIGITS.sub("", password)
    pw_alnum = _NON_ALNUM.sub("", lowered)

    if document and len(document.strip()) >= 4:
        doc_digits = _NON_DIGITS.sub("", document)
        doc_alnum = _NON_ALNUM.sub("", document.lower())
        if doc_alnum.isdigit():
            found = len(doc_digits) >= 4 and doc_digits in pw_digits
        else:
            # Passports and permits carry letters: compare letters and digits.
            found = len(doc_alnum) >= 4 and doc_alnum in pw_alnum
        if found:
            problems.append(HAS_DOCUMENT)

    for phone in phones:
        digits = _phone_digits(phone or "")
        if len(digits) >= 7 and digits in pw_digits:
            problems.append(HAS_PHONE)
            break

    if birth_date is not None:
        forms = _birth_date_forms(birth_date)
        if any(f in lowered or (f.isdigit() and f in pw_digits) for f in forms):
            problems.append(HAS_BIRTH_DATE)

    if email:
        local = email.strip().lower().rpartition("@")[0] or email.strip().lower()
        if len(local) >= 4 and local in lowered:
            problems.append(HAS_EMAIL)

    if password and is_common(password):
        problems.append(TOO_COMMON)
    return problems


def rules_met(problems: Iterable[str]) -> list[bool]:
    """Tell, for each numbered rule, whether none of the problems breaks it.

    problems may be messages joined into longer strings (a form field's errors).
    """
    text = " ".join(problems)
    return [rule not in text for rule in RULE_PROBLEMS]


def other_problems(problems: Iterable[str]) -> list[str]:
    """Return the problems that no numbered rule shows (document, phone, common…)."""
    text = " ".join(problems)
    return [p for p in _ALL_PROBLEMS if p in text and p not in RULE_PROBLEMS]


def make_hasher(
    time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1
) -> PasswordHasher:
    """Build an argon2id hasher; the defaults are OWASP's minimum (19 MiB, t=2, p=1)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def configure(time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
    """Set the module's hasher parameters (tests use cheap ones)."""
    global _hasher, _dummy_hash
    _hasher = make_hasher(time_cost, memory_cost, parallelism)
    # The dummy must cost what a real verify costs, so it follows the parameters.
    _dummy_hash = None


def _get_hasher() -> PasswordHasher:
    """Return the module hasher, building the default one on first use."""
    global _hasher
    if _hasher is None:
        _hasher = make_hasher()
    return _hasher


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    global HASH_CALLS
    HASH_CALLS += 1
    return _get_hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Tell whether the password matches the stored hash; never raise."""
    global HASH_CALLS
    HASH_CALLS += 1
    if not isinstance(stored_hash, str) or not isinstance(password, str):
        return False
    try:
        return _get_hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError, TypeError, ValueError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Tell whether a hash was made with other parameters than the current ones."""
    if not isinstance(stored_hash, str):
        return True
    try:
        return _get_hasher().check_needs_rehash(stored_hash)
    except (InvalidHashError, TypeError, ValueError):
        # An unreadable hash can only be replaced, never kept.
        return True


def dummy_hash() -> str:
    """Return a hash of a throwaway password made with the current parameters."""
    global _dummy_hash
    if _dummy_hash is None:
        # Not counted in HASH_CALLS: it happens once, not once per request.
        _dummy_hash = _get_hasher().hash("cuenta-inexistente")
    return _dummy_hash


def burn_hash_time(password: str) -> None:
    """Spend one verify's work so a missing account answers as slowly as a real one."""
    verify_password(dummy_hash(), password)


def __getattr__(name: str) -> str:
    """Compute DUMMY_HASH lazily on first access."""
    if name == "DUMMY_HASH":
        return dummy_hash()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
