"""core.demo: a deterministic, idempotent demo data set with documented fixed records."""

import random
import re
from collections import Counter
from datetime import date, datetime, timedelta

import pyotp
import pytest
from stdnum.co import nit

import models
from core import clock, convenios, passwords, second_factor
from core.clock import utcnow
from core.colombia import normalize_mobile, to_bogota
from core.convenios_demo import plan_history
from core.db import init_schema, open_database
from core.demo import (
    AFFILIATES,
    COMPANY_WORDS,
    DEMO_PASSWORD,
    FIXED_PURPOSE,
    FIXED_STAFF,
    JOB_TITLES,
    NO_AFILIADO,
    PROFESSIONS,
    demo_afiliados,
    load_demo,
    summary_lines,
)
from core.importer import COLUMNS, clean_row
from core.permissions import Action, Role, allowed, roles_of
from core.quiz import build_bank, build_population, canonical, is_thin
from models import (
    Acceso,
    AccesoSede,
    Account,
    Afiliado,
    ConsultaConvenio,
    HannaUser,
    Sede,
    UsoConvenio,
)


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
    assert Account.select().where(Account.kind == Account.HANNA).count() == 4  # + the blocked one
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
        *(f"10000000{n}" for n in range(10, 16)),
    ]
    assert result["fixed_affiliates"][0]["nombre"] == "ANA MARÍA PÉREZ GÓMEZ"


def test_load_demo_restores_a_changed_demo_account(database):
    load_demo()
    Account.update(status=Account.BLOCKED, password_hash="x").execute()
    HannaUser.update(quiz_failures=3).execute()

    load_demo()

    for user in Account.select().where(Account.kind == Account.HANNA):
        assert passwords.verify_password(user.password_hash, DEMO_PASSWORD)
        if user.email == "bloqueada@hanna.test":  # back to blocked, with her PQRSF (pqrs_demo)
            assert user.status == Account.BLOCKED and user.hanna.quiz_failures == 3
            continue
        assert user.is_active and user.hanna.quiz_failures == 0


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


# --- Convenios (H6): the demo desk, its fixed cédulas and its year of look-ups ------
#
# On the `db` fixture (conftest), so they also run on DATABASE_URL's PostgreSQL.


def _demo_desk():
    user = Account.by_email("convenio@hanna.test")
    return user, convenios.granted_sedes(user)


@pytest.mark.parametrize(
    ("numero", "resultado", "estado", "tarifa", "empresa"),
    [
        ("1000000010", ConsultaConvenio.ACTIVO, "ACTIVO", "A", "ACTIVA"),
        ("1000000011", ConsultaConvenio.ACTIVO, "ACTIVO", "C", ""),
        ("1000000012", ConsultaConvenio.AFILIADO_INACTIVO, "INACTIVO", "D", "ACTIVA"),
        ("1000000013", ConsultaConvenio.AFILIADO_INACTIVO, "RETIRADO", "D", ""),
        ("1000000014", ConsultaConvenio.EMPRESA_INACTIVA, "ACTIVO", "D", "MORA"),
        ("1000000015", ConsultaConvenio.EMPRESA_INACTIVA, "ACTIVO", "D", "INACTIVA"),
    ],
)
def test_each_fixed_convenio_cedula_shows_its_case(db, numero, resultado, estado, tarifa, empresa):
    load_demo()

    shown = convenios.trabajador_of(numero, Afiliado.find("CC", numero))

    assert (shown.resultado, shown.estado_afiliado) == (resultado, estado)
    assert (shown.tarifa, shown.estado_empresa) == (tarifa, empresa)
    assert shown.nombre and FIXED_PURPOSE[numero].startswith("Convenios: ")


def test_the_no_afiliado_cedula_is_in_no_demo_data(db):
    result = load_demo()

    assert Afiliado.select().where(Afiliado.numero_documento == NO_AFILIADO).count() == 0
    assert convenios.trabajador_of(NO_AFILIADO, None).tarifa == "D"
    # The generated people keep out of the fixed records' range, whatever the seed.
    for seed in (1, 7, 2026):
        assert NO_AFILIADO not in {r["numero_documento"] for r in demo_afiliados(seed)}
    logged = ConsultaConvenio.select().where(ConsultaConvenio.numero_documento == NO_AFILIADO)
    assert logged.count() == 0
    assert result["convenio"]["no_afiliado"] == NO_AFILIADO


def test_demo_desk_is_granted_two_of_the_three_sedes(db):
    load_demo()
    user, sedes = _demo_desk()

    assert allowed(user, Action.USE_CONVENIOS)
    assert [(s.codigo, s.nombre) for s in sedes] == [
        ("BRIO-01", "Sede Norte"),
        ("BRIO-02", "Sede Soledad"),
    ]
    assert {s.entidad.nombre for s in sedes} == {"Gimnasio Brío Caribe S.A.S."}
    third = Sede.get(Sede.codigo == "BRIO-03")
    assert third.activa and third.entidad_id == sedes[0].entidad_id
    assert convenios.granted_sede(user, third.id) is None


def test_load_demo_takes_the_third_sede_back_from_an_older_demo_database(db):
    load_demo()
    user, _ = _demo_desk()
    # What the demo used to grant: every sede of the entity.
    acceso = Acceso.get(Acceso.account == user)
    AccesoSede.insert(acceso=acceso, sede=Sede.get(Sede.codigo == "BRIO-03")).execute()
    assert len(_demo_desk()[1]) == 3

    load_demo()

    assert [s.codigo for s in _demo_desk()[1]] == ["BRIO-01", "BRIO-02"]
    assert AccesoSede.select().where(AccesoSede.acceso == acceso).count() == 2


def test_demo_history_is_a_year_of_uses_at_the_granted_sedes(db):
    result = load_demo()
    user, sedes = _demo_desk()
    granted = {s.id for s in sedes}
    consultas = list(ConsultaConvenio.select().where(ConsultaConvenio.account == user))
    usos = list(UsoConvenio.select().where(UsoConvenio.account == user))
    today = clock.today()

    assert 300 <= len(consultas) <= 400 and 250 <= len(usos) < len(consultas)
    assert (result["convenio"]["consultas"], result["convenio"]["usos"]) == (
        len(consultas),
        len(usos),
    )
    by_id = {c.id: c for c in consultas}
    for uso in usos:
        consulta = by_id[uso.consulta_id]
        assert consulta.resultado == ConsultaConvenio.ACTIVO
        assert uso.sede_id == consulta.sede_id and uso.sede_id in granted
        assert uso.entidad_id == consulta.entidad_id
        assert timedelta(0) < uso.created_at - consulta.created_at < convenios.USE_WINDOW
    months = {to_bogota(u.created_at).strftime("%Y-%m") for u in usos}
    assert len(months) >= 10
    results = Counter(c.resultado for c in consultas)
    assert results[ConsultaConvenio.ACTIVO] > 0.8 * len(consultas)
    assert results[ConsultaConvenio.NO_AFILIADO] > 0
    assert (
        results[ConsultaConvenio.AFILIADO_INACTIVO] + results[ConsultaConvenio.EMPRESA_INACTIVA] > 0
    )
    for c in consultas:
        local = to_bogota(c.created_at)
        assert today - timedelta(days=365) <= local.date() < today
        assert 6 <= local.hour < 21  # the desk's opening hours, in Bogotá
        assert c.sede_id in granted
        # What was logged is what the desk would see for that cédula now.
        shown = convenios.trabajador_from_log(c)
        assert (c.resultado, c.tarifa, c.nombre) == (shown.resultado, shown.tarifa, shown.nombre)
        assert (c.estado_afiliado, c.empresa_estado) == (
            shown.estado_afiliado,
            shown.estado_empresa,
        )
    # No use for a look-up without benefit; numbers as a receipt shows them.
    assert all(re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", u.numero) for u in usos)


def test_load_demo_twice_adds_no_lookups_or_uses(db):
    first = load_demo()["convenio"]

    second = load_demo()["convenio"]

    assert first["consultas_created"] == first["consultas"] > 0
    assert (second["consultas_created"], second["usos_created"]) == (0, 0)
    assert (second["consultas"], second["usos"]) == (first["consultas"], first["usos"])
    assert ConsultaConvenio.select().count() == first["consultas"]
    assert UsoConvenio.select().count() == first["usos"]


def test_demo_history_is_the_same_for_a_seed_and_a_day():
    rows = demo_afiliados()
    taken = {r["numero_documento"] for r in rows}
    day = date(2026, 3, 15)

    plan = plan_history(rows[9:], taken, 2026, day)

    assert plan == plan_history(rows[9:], taken, 2026, day)
    assert plan != plan_history(rows[9:], taken, 7, day)
    assert plan_history(rows[9:], taken, 2026, date(2026, 3, 16))[0].at != plan[0].at


@pytest.mark.parametrize("today", [date(2026, 3, 15), date(2026, 8, 1), date(2027, 1, 10)])
def test_demo_uses_peak_in_the_holidays(today):
    rows = demo_afiliados()
    plan = plan_history(rows[9:], {r["numero_documento"] for r in rows}, 2026, today)
    per_month = Counter(to_bogota(p.used_at).date().replace(day=1) for p in plan if p.recibo)
    # The months at both ends of the window are partial: compare the whole ones.
    whole = {m.month: n for m, n in sorted(per_month.items())[1:-1]}
    holidays = [whole[m] for m in (12, 1, 6, 7) if m in whole]
    others = [n for m, n in whole.items() if m not in (12, 1, 6, 7)]

    assert len(whole) >= 10
    assert sum(holidays) / len(holidays) > 1.4 * sum(others) / len(others)
    assert whole[12] > 2 * whole[9]


def test_summary_lines_name_the_convenio_desk_and_its_history(db):
    result = load_demo()
    lines = summary_lines(result)
    convenio = result["convenio"]

    assert any(
        "convenio@hanna.test atiende en Gimnasio Brío Caribe S.A.S. "
        "(BRIO-01 Sede Norte, BRIO-02 Sede Soledad)"
        in line
        and f"{convenio['consultas']} consultas y {convenio['usos']} usos" in line
        for line in lines
    )
    assert any("CC 1000000020: no afiliado" in line for line in lines)
    assert any(
        "CC 1000000014 ÉDGAR ALONSO BARRIOS NIEBLES: Convenios:" in line and "MORA" in line
        for line in lines
    )


# --- EPS (Génesis) demo data -------------------------------------------------------


def test_demo_eps_family_has_beneficiaries_of_several_ages_and_an_inactive_affiliate(database):
    result = load_demo()

    assert result["eps"]["afiliados"] > 100
    head = models.EpsAfiliado.find("CC", "1000000101")
    assert (head.estado, head.cabeza, head.celular) == ("ACTIVO", None, "3004567101")
    assert head.fecha_expedicion == date(2000, 5, 2)
    members = {b.numero_documento: b for b in head.beneficiarios}
    assert {b.parentesco for b in members.values()} == {"CONYUGE", "HIJO", "MADRE"}
    ages = sorted(2026 - b.fecha_nacimiento.year for b in members.values())
    assert ages[0] < 7 and 10 < ages[1] < 18 and ages[-1] > 70
    assert models.EpsAfiliado.find("CC", "1000000110").estado == "INACTIVO"
    mine = (
        models.Autorizacion.select()
        .join(models.EpsAfiliado)
        .where((models.EpsAfiliado.id == head.id) | (models.EpsAfiliado.cabeza == head.id))
    )
    assert {a.estado for a in mine} == {"PENDIENTE", "APROBADA", "NEGADA", "ANULADA", "VENCIDA"}
    assert any("1000000101" in line for line in summary_lines(result))


def test_load_demo_twice_leaves_the_eps_data_as_it_was(database):
    load_demo()
    before = (
        list(models.EpsAfiliado.select(models.EpsAfiliado.id, models.EpsAfiliado.cabeza).tuples()),
        list(
            models.Autorizacion.select(
                models.Autorizacion.numero, models.Autorizacion.estado
            ).tuples()
        ),
    )

    again = load_demo()

    assert again["eps"]["afiliados_created"] == 0 and again["eps"]["autorizaciones_created"] == 0
    assert (
        list(models.EpsAfiliado.select(models.EpsAfiliado.id, models.EpsAfiliado.cabeza).tuples()),
        list(
            models.Autorizacion.select(
                models.Autorizacion.numero, models.Autorizacion.estado
            ).tuples()
        ),
    ) == before


def test_demo_eps_rows_are_deterministic_and_pass_the_importer():
    from core import eps_data, eps_demo

    rows = eps_demo.demo_eps()
    assert rows == eps_demo.demo_eps()
    assert all(not eps_data.clean_eps(r)[1] for r in rows)
    assert all(not eps_data.clean_ips(r)[1] for r in eps_demo.demo_ips())
    auts = eps_demo.demo_autorizaciones(rows)
    assert all(not eps_data.clean_autorizacion(r)[1] for r in auts)
    assert {r["estado"] for r in auts} == set(eps_data.ESTADOS_AUTORIZACION)


def test_demo_authorization_requests_come_with_their_files_once(database, tmp_path):
    from core import uploads

    folder = tmp_path / "uploads"
    first = load_demo(upload_dir=str(folder))
    again = load_demo(upload_dir=str(folder))

    solicitudes = list(models.SolicitudAutorizacion.select())
    assert len(solicitudes) == 6 and first["eps"]["solicitudes_created"] == 6
    assert again["eps"]["solicitudes_created"] == 0
    assert {s.estado for s in solicitudes} == {"PENDIENTE", "APROBADA", "RECHAZADA"}
    for s in solicitudes:
        files = models.Attachment.of("solicitud_autorizacion", s.id)
        assert len(files) == 1 and files[0].kind == "pdf"
        assert uploads.path_for(files[0].key, folder).exists()
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 6


def test_demo_pqrsf_fill_the_staff_queue_in_every_state_once(database, clock):
    from core import pqrs as pqrs_core
    from core import workdays
    from core.pqrs_demo import BLOCKED_USER

    clock.set(datetime(2026, 3, 18, 15, 0))  # a Wednesday, 10:00 in Bogotá
    first = load_demo()["pqrs"]
    again = load_demo()["pqrs"]
    rows = list(models.Pqrs.select().order_by(models.Pqrs.radicado))
    assert len(rows) == 7 and first["created"] == 7 and again["created"] == 0
    assert [p["radicado"] for p in first["pqrs"]] == [r.radicado for r in rows]
    assert all(pqrs_core.clean_radicado(r.radicado) == r.radicado for r in rows)
    today = date(2026, 3, 18)
    open_rows = [r for r in rows if r.estado == models.Pqrs.RADICADA]
    states = Counter(workdays.due_state(r.due_on, today) for r in open_rows)
    assert set(states) == set(workdays.DueState)  # past due, near, on time
    assert {r.estado for r in rows} == {"radicada", "informacion", "respondida"}
    for r in rows:  # each due date is its legal term from its filing
        assert r.due_on == workdays.add_working_days(r.created_at, r.term_days)
    waiting = next(r for r in rows if r.estado == models.Pqrs.INFORMACION)
    assert waiting.mensajes.count() == 1
    assert pqrs_core.information_asked_on(waiting) < today
    # The desbloqueo names a Hanna account the quiz blocked, which staff can unblock from it.
    desbloqueo = next(r for r in rows if r.tipo == models.Pqrs.DESBLOQUEO)
    blocked = Account.get_by_id(desbloqueo.cuenta_bloqueada_id)
    assert blocked.status == Account.BLOCKED and blocked.email == BLOCKED_USER["email"]
    assert blocked.hanna.blocked_reason == "preguntas"
    assert (desbloqueo.tipo_documento, desbloqueo.numero_documento) == ("CC", "1000000201")
    # Luis's were filed while signed in; everyone's can be followed by its three fields.
    luis = [r for r in rows if r.numero_documento == "1000000120"]
    assert len(luis) == 2 and all(r.account_id is not None for r in luis)
    for r in rows:
        assert pqrs_core.follow(r.tipo_documento, r.numero_documento, r.radicado) == r


def test_demo_help_desk_cases_from_40912_in_every_state_once(database, clock):
    from core import ips_demo, mesa
    from core import workdays as wd
    from core.eps_data import normalize_nit

    clock.set(datetime(2026, 3, 18, 10, 0))  # a Wednesday in Bogotá
    first = load_demo()["mesa"]
    again = load_demo()["mesa"]
    casos = list(models.CasoMesa.select().order_by(models.CasoMesa.numero))
    assert [c.numero for c in casos] == list(range(40912, 40918))
    assert first["casos_created"] == 6 and again["casos_created"] == 0
    assert {c.estado for c in casos} == set(mesa.ESTADOS)
    marks = {mesa.due_state(c) for c in casos} - {None}
    assert {wd.DueState.VENCIDO, wd.DueState.AL_DIA} <= marks
    manual = casos[0]
    assert (manual.motivo.nombre, manual.asunto.nombre) == (
        "CAPACITACION",
        "CARGUE RESOLUCION 2463",
    )
    # The internal note is there for staff only; each IPS's operators sign in with the NIT.
    note = models.MensajeMesa.get(models.MensajeMesa.interna == True)  # noqa: E712
    assert note.id not in [m.id for m in mesa.thread_for_ips(note.caso)]
    for ips_nit, email, _nombre, _admin in ips_demo.OPERADORES:
        account = Account.by_login(Account.IPS, f"{normalize_nit(ips_nit)}:{email}")
        assert account.is_active and passwords.verify_password(account.password_hash, DEMO_PASSWORD)
    almendros = Account.by_login(
        Account.IPS, f"{normalize_nit(ips_demo.OPERADORES[2][0])}:sistemas@almendros.test"
    )
    assert [c.numero for c in mesa.cases_of_ips(almendros.ips.ips_id)] == [40917]


def test_the_demo_authorization_requests_open_by_their_number(database, tmp_path):
    """A demo number the office cannot read (DEMO-0001 has a 0 and a 1) was a 404 behind its link."""
    from core import genesis

    load_demo(upload_dir=str(tmp_path / "uploads"))
    numeros = [s.numero for s in models.SolicitudAutorizacion.select()]
    assert len(numeros) >= 6
    for numero in numeros:
        assert genesis.request_by_numero(numero).numero == numero
