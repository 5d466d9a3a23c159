"""core.demo: a deterministic, idempotent demo data set with documented fixed records."""

import random
from collections import Counter
from datetime import date

import pyotp
import pytest
from stdnum.co import nit

import models
from core import passwords, second_factor
from core.clock import utcnow
from core.colombia import normalize_mobile
from core.db import init_schema, open_database
from core.demo import (
    AFFILIATES,
    COMPANY_WORDS,
    DEMO_PASSWORD,
    FIXED_STAFF,
    JOB_TITLES,
    PROFESSIONS,
    demo_afiliados,
    load_demo,
    summary_lines,
)
from core.importer import COLUMNS, clean_row
from core.permissions import Action, Role, allowed, roles_of
from core.quiz import build_bank, build_population, canonical, is_thin
from models import Acceso, AccesoSede, Account, Afiliado, HannaUser


@pytest.fixture
def database(tmp_path, monkeypatch):
    # Cheap hashing for these tests only: the hasher is put back afterwards.
    monkeypatch.setattr(passwords, "_hasher", passwords._hasher)
    monkeypatch.setattr(passwords, "_dummy_hash", passwords._dummy_hash)
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    database = open_database("sqlite:///" + str(tmp_path / "demo.db"))
    models.db.initialize(database)
    init_schema(database, models.MODELS, models.SchemaVersion)
    yield database
    database.close()


def snapshot() -> list[dict]:
    rows = Afiliado.select().order_by(Afiliado.id).dicts()
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in rows]


def test_demo_rows_are_deterministic_for_a_seed():
    assert demo_afiliados(2026) == demo_afiliados(2026)
    assert demo_afiliados(2026) != demo_afiliados(7)


def test_load_demo_twice_changes_nothing(database):
    first = load_demo()
    before = snapshot()
    users_before = list(Account.select(Account.id, Account.email).tuples())

    second = load_demo()

    assert first["affiliates"] == second["affiliates"] == AFFILIATES
    assert (first["affiliates_created"], first["affiliates_updated"]) == (AFFILIATES, 0)
    assert (second["affiliates_created"], second["affiliates_updated"]) == (0, AFFILIATES)
    assert (first["users_created"], second["users_created"]) == (3, 0)
    assert (first["staff_created"], second["staff_created"]) == (len(FIXED_STAFF), 0)
    assert snapshot() == before
    assert list(Account.select(Account.id, Account.email).tuples()) == users_before
    assert Afiliado.select().count() == AFFILIATES
    assert Account.select().where(Account.kind == Account.HANNA).count() == 3
    assert Account.select().where(Account.kind == Account.STAFF).count() == len(FIXED_STAFF)


def test_same_seed_gives_same_data_in_another_database(database, tmp_path):
    load_demo(seed=99)
    first = snapshot()
    other = open_database("sqlite:///" + str(tmp_path / "other.db"))
    models.db.initialize(other)
    init_schema(other, models.MODELS, models.SchemaVersion)
    try:
        load_demo(seed=99)
        assert snapshot() == first
    finally:
        other.close()
        models.db.initialize(database)


def test_fixed_affiliate_with_full_data(database):
    load_demo()
    ana = Afiliado.find("CC", "1000000001")

    assert ana.nombre_completo == "ANA MARÍA PÉREZ GÓMEZ"
    assert (ana.estado, ana.categoria) == ("ACTIVO", "A")
    for column in (
        "profesion",
        "conyuge_celular",
        "conyuge_profesion",
        "conyuge_cargo",
        "celular",
        "empresa_nombre",
        "fecha_ingreso_empresa",
        "fecha_nacimiento",
    ):
        assert getattr(ana, column), column
    population = build_population(Afiliado.select())
    bank = build_bank(ana, population)
    assert not is_thin(bank)
    # The README tells a tester these answers: they must be what the quiz asks.
    asked = {q["key"] for q in bank}
    assert {"profesion", "empresa", "fecha_ingreso", "fecha_nacimiento", "telefono"} <= asked


def test_fixed_affiliate_with_thin_data_has_a_mobile(database):
    load_demo()
    thin = Afiliado.find("CC", "1000000002")

    assert thin.estado == "ACTIVO"
    assert thin.celular.startswith("3") and len(thin.celular) == 10
    assert thin.profesion == thin.conyuge_celular == thin.conyuge_profesion == ""
    assert thin.conyuge_cargo == ""
    assert thin.fecha_ingreso_empresa is None
    assert is_thin(build_bank(thin, build_population(Afiliado.select())))


def test_demo_accounts_are_active_and_log_in(database):
    result = load_demo()

    demo = Account.by_email("juan.torres@hanna.test")
    assert demo.is_active and demo.hanna.afiliado is None
    assert (demo.hanna.tipo_documento, demo.hanna.numero_documento) == ("CC", "1000000099")
    assert demo.celular and isinstance(demo.hanna.fecha_nacimiento, date)
    assert Afiliado.find("CC", "1000000099") is None
    assert passwords.verify_password(demo.password_hash, DEMO_PASSWORD)

    afiliada = Account.by_email("afiliada@hanna.test")
    assert afiliada.is_active
    assert afiliada.hanna.afiliado.numero_documento == "1000000003"
    assert passwords.verify_password(afiliada.password_hash, DEMO_PASSWORD)

    assert {c["email"] for c in result["credentials"]} == {
        "juan.torres@hanna.test",
        "afiliada@hanna.test",
        "convenio@hanna.test",
    }
    assert all(c["password"] == DEMO_PASSWORD for c in result["credentials"])
    assert [a["numero_documento"] for a in result["fixed_affiliates"]] == [
        "1000000001",
        "1000000002",
        "1000000003",
    ]
    assert result["fixed_affiliates"][0]["nombre"] == "ANA MARÍA PÉREZ GÓMEZ"


def test_load_demo_restores_a_changed_demo_account(database):
    load_demo()
    Account.update(status=Account.BLOCKED, password_hash="x").execute()
    HannaUser.update(quiz_failures=3).execute()

    load_demo()

    for user in Account.select().where(Account.kind == Account.HANNA):
        assert user.is_active and user.hanna.quiz_failures == 0
        assert passwords.verify_password(user.password_hash, DEMO_PASSWORD)


def test_every_demo_nit_has_a_valid_check_digit():
    nits = {row["empresa_nit"] for row in demo_afiliados() if row["empresa_nit"]}

    assert len(nits) > 10
    assert all(nit.is_valid(n) for n in nits)


def test_demo_rows_pass_the_importer_validation():
    for row in demo_afiliados():
        as_csv = {c: "" if row[c] is None else str(row[c]) for c in COLUMNS}
        cleaned, problems = clean_row(as_csv)
        assert problems == []
        assert cleaned == row


def test_demo_mobiles_are_colombian_mobiles():
    for row in demo_afiliados():
        for column in ("celular", "conyuge_celular"):
            if row[column]:
                assert normalize_mobile(row[column]) == row[column]


def test_demo_values_are_the_vocabulary_written_as_an_export_would():
    company_names = {
        f"{a} {b} {c}" for a in COMPANY_WORDS[0] for b in COMPANY_WORDS[1] for c in COMPANY_WORDS[2]
    }
    professions = {canonical(p) for p in PROFESSIONS}
    titles = {canonical(t) for t in JOB_TITLES}
    spellings = set()
    for row in demo_afiliados():
        assert canonical(row["profesion"]) in {"", *professions}
        assert canonical(row["conyuge_profesion"]) in {"", *professions}
        assert canonical(row["conyuge_cargo"]) in {"", *titles}
        assert row["empresa_nombre"] == "" or row["empresa_nombre"] in company_names
        if row["profesion"]:
            spellings.add(row["profesion"])
    # Real exports mix capitals and missing accents: the quiz must not care.
    assert any(s.isupper() for s in spellings)
    assert len(spellings) > len(professions)


def test_demo_has_a_realistic_mix():
    rows = demo_afiliados()
    estados = Counter(r["estado"] for r in rows)
    with_spouse = sum(1 for r in rows if r["conyuge_celular"] or r["conyuge_profesion"])

    assert estados.most_common(1)[0][0] == "ACTIVO"
    assert estados["ACTIVO"] > len(rows) / 2
    assert len(estados) == 5
    assert {r["categoria"] for r in rows} == {"A", "B", "C", ""}
    assert 0.35 < with_spouse / len(rows) < 0.65
    assert sum(1 for r in rows if not r["profesion"]) >= 10
    people = [_Row(r) for r in rows]
    population = build_population(people)
    rng = random.Random(1)
    banks = [build_bank(p, population, rng) for p in people]
    thin = sum(1 for bank in banks if is_thin(bank))
    # Some people get the SMS code instead of the quiz, most get the quiz.
    assert 5 <= thin < len(rows) / 3
    assert {r["tipo_documento"] for r in rows} >= {"CC", "CE"}
    emails = [r["email"] for r in rows if r["email"]]
    assert len(emails) == len(set(emails))
    assert all(e.endswith((".test", "example.com", "example.org", "example.net")) for e in emails)


def test_summary_lines_name_the_credentials(database):
    lines = summary_lines(load_demo())

    assert lines[0] == "Datos de demostración cargados (semilla 2026)."
    assert any("juan.torres@hanna.test / Hanna2026Demo" in line for line in lines)
    assert any("CC 1000000001 ANA MARÍA PÉREZ GÓMEZ" in line for line in lines)


class _Row:
    """Attribute access to a row dict, as core.quiz reads an Afiliado."""

    def __init__(self, row: dict):
        self.__dict__.update(row)


def test_demo_staff_have_their_role_and_a_working_second_factor(database):
    result = load_demo()
    for spec in FIXED_STAFF:
        account = Account.by_login(Account.STAFF, spec["email"])
        assert account.is_active and account.totp_enrolled_at is not None
        assert roles_of(account) == {Role(spec["role"])}
        assert passwords.verify_password(account.password_hash, DEMO_PASSWORD)
        code = pyotp.TOTP(spec["totp_secret"]).at(utcnow())
        assert second_factor.accept_code(account, code)
    assert [s["totp_secret"] for s in result["staff"]] == [s["totp_secret"] for s in FIXED_STAFF]


def test_demo_front_desk_user_is_granted_convenios_for_one_entity(database):
    load_demo()
    user = Account.by_email("convenio@hanna.test")
    assert allowed(user, Action.USE_CONVENIOS)
    acceso = Acceso.get(Acceso.account == user)
    assert (
        acceso.entidad.estado == "ACTIVA"
        and AccesoSede.select().where(AccesoSede.acceso == acceso).count() >= 1
    )
