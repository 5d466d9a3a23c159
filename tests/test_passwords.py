"""Password rules and argon2id hashing."""

from datetime import date

import pytest
from argon2 import Type

from core import passwords
from core.passwords import password_problems

GOOD = "Tr4vesia-Luna"


@pytest.fixture(autouse=True)
def cheap_hasher():
    """Use cheap argon2 parameters and put back whatever was set before."""
    saved = passwords._hasher, passwords._dummy_hash
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords._hasher, passwords._dummy_hash = saved


def test_rules_help_is_the_manuals_text():
    assert passwords.RULES_HELP == [
        "Mínimo 8 caracteres.",
        "Caracteres en mayúscula.",
        "Caracteres en minúscula.",
        "Debe contener números.",
        (
            "Recuerde que para una mayor seguridad de sus datos, no utilice información "
            "personal como teléfonos, identificación o fechas de cumpleaños, que sean "
            "fáciles de recordar por terceros."
        ),
    ]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Tr4v-Lu", passwords.TOO_SHORT),
        ("Tr4vesia-" + "x" * 120, passwords.TOO_LONG),
        ("tr4vesia-luna", passwords.NO_UPPER),
        ("TR4VESIA-LUNA", passwords.NO_LOWER),
        ("Travesia-Luna", passwords.NO_DIGIT),
    ],
)
def test_each_basic_rule_is_reported_alone(password, problem):
    assert password_problems(password) == [problem]


def test_length_limits_are_inclusive():
    assert password_problems("Tr4vesia") == []
    assert password_problems("Tr4vesia-" + "x" * 119) == []


def test_every_broken_rule_is_reported():
    problems = password_problems("abc")
    assert {passwords.TOO_SHORT, passwords.NO_UPPER, passwords.NO_DIGIT} <= set(problems)
    assert passwords.NO_LOWER not in problems


@pytest.mark.parametrize(
    ("password", "document"),
    [
        ("Lu1143456789na", "1143456789"),
        ("Lu-1.143.456.789", "1143456789"),
        ("Lu1143456789na", "1.143.456.789"),
        ("Clave8901020441x", "8901020441"),
        ("Xab123456yz9", "AB123456"),
        ("XAB-123456yz", "ab123456"),
    ],
)
def test_password_must_not_contain_document(password, document):
    assert password_problems(password, document=document) == [passwords.HAS_DOCUMENT]


@pytest.mark.parametrize("document", ["123", "", None, "99999999"])
def test_short_absent_or_unrelated_document_is_ignored(document):
    assert password_problems("Tr4vesia-123-Luna", document=document) == []


@pytest.mark.parametrize(
    ("password", "phones"),
    [
        ("Sol3007386448x", ["3007386448"]),
        ("Sol300-738-6448x", ["3007386448"]),
        ("Sol3007386448x", ["+57 300 738 6448"]),
        ("Casa2345678y", ["", "3001112233", "234 5678"]),
        ("Casa6012345678y", ["601 234 5678"]),
    ],
)
def test_password_must_not_contain_phone(password, phones):
    assert password_problems(password, phones=phones) == [passwords.HAS_PHONE]


def test_phone_shorter_than_seven_digits_is_ignored():
    assert password_problems("Casa12345y", phones=["12345"]) == []


@pytest.mark.parametrize(
    "password",
    [
        "Kiwa15031990x",
        "Kiwa19900315x",
        "Kiwa150390x",
        "Kiwa15/03/1990x",
        "Kiwa1990-03-15x",
        "Kiwa15.03.1990x",
    ],
)
def test_password_must_not_contain_birth_date(password):
    assert password_problems(password, birth_date=date(1990, 3, 15)) == [passwords.HAS_BIRTH_DATE]


def test_other_dates_are_fine():
    assert password_problems("Kiwa15031991x", birth_date=date(1990, 3, 15)) == []


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("JuanPerez77x", "juanperez@example.com"),
        ("Mi-JUANPEREZ-7", "JuanPerez@example.com"),
    ],
)
def test_password_must_not_contain_email_local_part(password, email):
    assert password_problems(password, email=email) == [passwords.HAS_EMAIL]


def test_short_email_local_part_is_ignored():
    assert password_problems("Ana-Tr4vesia", email="ana@example.com") == []


@pytest.mark.parametrize(
    "password",
    [
        "Password1",
        "Password123",
        "PASSWORD123!",
        "Colombia2024",
        "Colombia123*",
        "Millonarios1",
        "Contraseña1",
        "Teamo12345",
        "2024Barranquilla!",
        "Qwerty123",
        "Iloveyou1",
    ],
)
def test_common_passwords_are_rejected(password):
    assert passwords.TOO_COMMON in password_problems(password)


@pytest.mark.parametrize(
    "password", [GOOD, "Cafetal-Nublado7", "Xq7-Lomas-Verdes", "Abc12345!Zorro"]
)
def test_uncommon_passwords_are_accepted(password):
    assert password_problems(password) == []


def test_common_list_is_lower_case_and_has_spanish_additions():
    common = passwords.common_passwords()
    assert len(common) > 20000
    assert {
        "password",
        "colombia",
        "contraseña",
        "contrasena",
        "cajacopi",
        "teamo123",
    } <= common
    assert all(word == word.lower() for word in common)
    assert passwords.common_passwords() is common


@pytest.mark.parametrize(
    "password",
    ["Password12345678", "Colombia2024!", "Lucia1234", "Lucia2000!", "123Maria", "Maria111111"],
)
def test_a_common_word_with_a_trivial_ending_is_common(password):
    assert passwords.is_common(password)


@pytest.mark.parametrize("password", ["Lucia04052000", "Carlos17081985", "Maria-0713-Andes9"])
def test_a_name_with_a_long_non_trivial_number_is_not_called_common(password):
    # A name plus a date is weak only for someone who knows the person: the
    # birth-date rule covers the holder's own date, the list does not.
    assert not passwords.is_common(password)
    assert passwords.TOO_COMMON not in password_problems(password)


def test_the_holders_own_birth_date_still_refuses_a_name_and_date():
    problems = password_problems("Lucia04052000", birth_date=date(2000, 5, 4))
    assert problems == [passwords.HAS_BIRTH_DATE]


def test_strip_core_shorter_than_four_letters_is_not_matched():
    # "abc" is on the list; the core rule alone must not reject this.
    assert "abc" in passwords.common_passwords()
    assert not passwords.is_common("Abc98765!")


def test_hash_verifies_and_is_argon2id():
    stored = passwords.hash_password(GOOD)
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, GOOD)
    assert not passwords.verify_password(stored, GOOD.lower())


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$argon2id$v=19$m=8,t=1,p=1$broken", None])
def test_verify_never_raises_on_bad_hash(stored):
    assert passwords.verify_password(stored, GOOD) is False


def test_needs_rehash_when_parameters_rise():
    stored = passwords.hash_password(GOOD)
    assert not passwords.needs_rehash(stored)
    passwords.configure(time_cost=2, memory_cost=16, parallelism=1)
    assert passwords.needs_rehash(stored)
    assert passwords.verify_password(stored, GOOD)


def test_needs_rehash_on_unreadable_hash():
    assert passwords.needs_rehash("not-a-hash")


def test_default_hasher_is_owasp_minimum():
    hasher = passwords.make_hasher()
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (2, 19456, 1)
    assert hasher.type is Type.ID


def test_hash_calls_counts_hash_verify_and_burn():
    passwords.dummy_hash()
    before = passwords.HASH_CALLS
    stored = passwords.hash_password(GOOD)
    passwords.verify_password(stored, GOOD)
    passwords.verify_password("bad", GOOD)
    passwords.burn_hash_time(GOOD)
    assert passwords.HASH_CALLS == before + 4


def test_dummy_hash_is_lazy_and_follows_parameters():
    first = passwords.DUMMY_HASH
    assert first.startswith("$argon2id$") and "m=8,t=1,p=1" in first
    assert passwords.DUMMY_HASH == first
    passwords.configure(time_cost=2, memory_cost=16, parallelism=1)
    assert "m=16,t=2,p=1" in passwords.DUMMY_HASH
