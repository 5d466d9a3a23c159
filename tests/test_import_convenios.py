"""core.convenios_data: the entities-and-sedes CSV loads all or nothing, the demo set is valid,
and each back-office change is one audited transaction."""

from pathlib import Path

import pytest
from stdnum.co import nit as stdnum_nit

from core import convenios_data as cd
from core.convenios_data import COLUMNS, ConvenioError, Problem, import_convenios
from models import AuditEvent, Entidad, Sede

DATA = Path(__file__).parent / "data"


def make_row(**over) -> dict:
    row = {
        "entidad_nit": "890102044-1",
        "entidad_nombre": "Gimnasio Olas del Norte S.A.S.",
        "entidad_estado": "ACTIVA",
        "sede_codigo": "GN-01",
        "sede_nombre": "Sede Prado",
        "municipio": "08001",
        "direccion": "Carrera 54 # 64-120",
        "sede_activa": "SI",
    }
    row.update(over)
    return row


def write_csv(tmp_path, rows, *, header=COLUMNS, name="convenios.csv"):
    lines = [";".join(header)] + [";".join(row.get(c, "") for c in header) for row in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def counts() -> tuple[int, int]:
    return Entidad.select().count(), Sede.select().count()


def sede(nit: str, codigo: str) -> Sede:
    return Sede.select().join(Entidad).where((Entidad.nit == nit) & (Sede.codigo == codigo)).get()


# --- import -------------------------------------------------------------------------


def test_imports_the_ok_file_with_bom_semicolons_and_loose_values(db):
    report = import_convenios(DATA / "convenios_ok.csv")

    assert report.ok, report.rejected
    assert (report.accepted, report.created, report.updated) == (4, 4, 0)
    assert (report.entidades_created, report.entidades_updated) == (2, 0)
    gym = Entidad.get(Entidad.nit == "8901020441")
    assert (gym.nombre, gym.estado) == ("Gimnasio Olas del Norte S.A.S.", "ACTIVA")
    # Lower-case code upper-cased; the zero a spreadsheet dropped put back.
    soledad = sede("8901020441", "GN-02")
    assert soledad.municipio == "08758"
    school = sede("8001234565", "CML")
    assert (school.direccion, school.activa) == ("Barrio Manga, calle 27 # 20-14", True)
    assert sede("8001234565", "CML-2").activa is False
    assert report.summary_lines()[:2] == [
        "Importación completa: 4 filas aceptadas (4 nuevas, 0 actualizadas).",
        "Entidades: 2 nuevas, 0 actualizadas.",
    ]


def test_second_run_of_the_same_file_changes_nothing(db):
    assert import_convenios(DATA / "convenios_ok.csv").ok
    before = list(Sede.select().order_by(Sede.id).dicts())

    report = import_convenios(DATA / "convenios_ok.csv")

    assert report.ok
    assert (report.created, report.updated) == (0, 4)
    assert (report.entidades_created, report.entidades_updated) == (0, 2)
    assert counts() == (2, 4)
    assert list(Sede.select().order_by(Sede.id).dicts()) == before


def test_reimport_updates_by_nit_and_code_and_leaves_missing_sedes_alone(db):
    assert import_convenios(DATA / "convenios_ok.csv").ok

    report = import_convenios(DATA / "convenios_segunda.csv")

    assert report.ok, report.rejected
    assert (report.entidades_created, report.entidades_updated) == (1, 1)
    assert (report.created, report.updated) == (1, 1)
    assert counts() == (3, 5)
    gym = Entidad.get(Entidad.nit == "8901020441")
    assert (gym.nombre, gym.estado) == ("Gimnasio Olas del Norte SAS", "INACTIVA")
    prado = sede("8901020441", "GN-01")
    assert (prado.nombre, prado.direccion, prado.activa) == (
        "Sede Prado (renovada)",
        "Carrera 54 # 64-122",
        False,
    )
    # GN-02 is not in the second file: it stays, still active.
    assert sede("8901020441", "GN-02").activa is True


@pytest.mark.parametrize("nit", ["890102044-1", "8901020441", "890.102.044-1", " 890 102 044 - 1 "])
def test_nit_is_accepted_with_or_without_the_dash(db, tmp_path, nit):
    report = import_convenios(write_csv(tmp_path, [make_row(entidad_nit=nit)]))

    assert report.ok, report.rejected
    assert Entidad.get().nit == "8901020441"


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("entidad_nit", "890102044-2", "dígito de verificación del NIT no es válido"),
        ("entidad_nit", "89O102044-1", "solo lleva números"),
        ("entidad_nit", "", "Escriba el NIT"),
        ("entidad_nombre", "", "es obligatorio"),
        ("entidad_nombre", "X" * 161, "más de 160 caracteres"),
        ("entidad_estado", "SUSPENDIDA", "no es un estado conocido"),
        ("entidad_estado", "", "es obligatorio"),
        ("sede_codigo", "", "código de la sede"),
        ("sede_codigo", "SEDE 1", "sin espacios"),
        ("sede_nombre", "", "es obligatorio"),
        ("municipio", "99999", "no es un municipio de la DIVIPOLA"),
        ("municipio", "BARRANQUILLA", "no es un código DIVIPOLA"),
        ("municipio", "", "código DIVIPOLA de 5 dígitos"),
        ("direccion", "X" * 161, "más de 160 caracteres"),
        ("sede_activa", "QUIZÁS", "SI o NO"),
    ],
)
def test_one_bad_row_rejects_the_whole_file(db, tmp_path, column, value, fragment):
    rows = [
        make_row(),
        make_row(**{"sede_codigo": "GN-02", column: value}),
        make_row(entidad_nit="800123456-5", entidad_nombre="Colegio Mar de Letras"),
    ]

    report = import_convenios(write_csv(tmp_path, rows))

    assert not report.ok
    [(line, reason)] = report.rejected
    assert line == 3
    assert f"columna {column}" in reason
    assert fragment in reason
    assert report.accepted == 2
    assert counts() == (0, 0)
    assert report.summary_lines()[0] == "Archivo rechazado: no se guardó ningún dato."


def test_wrong_check_digit_names_the_line_and_column(db, tmp_path):
    report = import_convenios(write_csv(tmp_path, [make_row(entidad_nit="890102044-2")]))

    assert report.rejected == [
        (2, "columna entidad_nit: El dígito de verificación del NIT no es válido.")
    ]


def test_a_bad_file_leaves_earlier_data_untouched(db, tmp_path):
    assert import_convenios(DATA / "convenios_ok.csv").ok
    before = list(Entidad.select().order_by(Entidad.id).dicts())
    rows = [
        make_row(entidad_nombre="Nombre nuevo", entidad_estado="INACTIVA"),
        make_row(sede_codigo="GN-09", municipio="00000"),
    ]

    report = import_convenios(write_csv(tmp_path, rows))

    assert not report.ok
    assert list(Entidad.select().order_by(Entidad.id).dicts()) == before
    assert counts() == (2, 4)


def test_unknown_municipio_is_rejected(db, tmp_path):
    report = import_convenios(write_csv(tmp_path, [make_row(municipio="08002")]))

    assert report.rejected == [
        (2, "columna municipio: El código 08002 no es un municipio de la DIVIPOLA.")
    ]


def test_missing_column_rejects_the_file(db, tmp_path):
    header = [c for c in COLUMNS if c not in ("municipio", "sede_activa")]

    report = import_convenios(write_csv(tmp_path, [make_row()], header=header))

    assert report.rejected == [(1, "faltan columnas en el encabezado: municipio, sede_activa.")]
    assert counts() == (0, 0)


def test_duplicate_sede_code_in_one_file_rejects_the_second(db, tmp_path):
    rows = [make_row(), make_row(sede_codigo="GN-02"), make_row(sede_codigo="gn-01")]

    report = import_convenios(write_csv(tmp_path, rows))

    assert report.rejected == [
        (4, "columna sede_codigo: la sede ya aparece en la línea 2 con el mismo NIT.")
    ]
    assert counts() == (0, 0)


def test_same_sede_code_under_two_entities_is_fine(db, tmp_path):
    rows = [make_row(), make_row(entidad_nit="800123456-5", entidad_nombre="Colegio")]

    report = import_convenios(write_csv(tmp_path, rows))

    assert report.ok and counts() == (2, 2)


def test_an_entity_must_read_the_same_on_each_of_its_rows(db, tmp_path):
    rows = [
        make_row(),
        make_row(sede_codigo="GN-02", entidad_estado="INACTIVA"),
        make_row(sede_codigo="GN-03", entidad_nombre="Otro nombre", municipio="X"),
    ]

    report = import_convenios(write_csv(tmp_path, rows))

    assert [line for line, _ in report.rejected] == [3, 4]
    assert report.rejected[0][1].startswith("columna entidad_estado: la entidad de este NIT")
    assert "línea 2" in report.rejected[0][1]
    assert report.accepted == 1
    assert counts() == (0, 0)


def test_file_not_in_utf8_is_rejected(db, tmp_path):
    path = tmp_path / "latin1.csv"
    text = ";".join(COLUMNS) + "\n" + ";".join(make_row(sede_nombre="Sede Ciénaga").values())
    path.write_bytes(text.encode("latin-1"))

    report = import_convenios(path)

    assert report.rejected == [(2, "el archivo no está en UTF-8; guárdelo como «CSV UTF-8».")]


# --- DIVIPOLA -------------------------------------------------------------------------


def test_divipola_has_every_row_and_fixes_the_commas():
    municipios = cd.municipios()

    assert len(municipios) == 1122
    assert municipios["11001"].nombre == "BOGOTÁ, D.C."
    assert cd.municipio_label("08001") == "BARRANQUILLA (ATLÁNTICO)"
    assert cd.municipio_label("99999") == "99999"


def test_departments_group_by_code_not_by_row_order():
    groups = dict(cd.departamentos())

    assert len(groups) == 33
    assert "19318" in {m.codigo for m in groups["CAUCA"]}
    assert "19318" not in {m.codigo for m in groups["BOYACÁ"]}
    names = [m.nombre for m in groups["ATLÁNTICO"]]
    assert names == sorted(names, key=cd._sort_key)


# --- demo -----------------------------------------------------------------------------


def test_demo_convenios_are_valid_and_load_twice_the_same(db):
    rows = cd.demo_convenios()
    for row in rows:
        nit = row["entidad_nit"].replace("-", "")
        assert stdnum_nit.is_valid(nit)
        assert row["municipio"][:2] in {"08", "13", "20", "23", "44", "47", "70"}
        assert cd.clean_row(row)[1] == []
    by_nit = {r["entidad_nit"]: r["entidad_estado"] for r in rows}
    assert 4 <= len(by_nit) <= 5
    assert list(by_nit.values()).count("INACTIVA") == 1
    assert all(sum(r["entidad_nit"] == n for r in rows) >= 1 for n in by_nit)

    assert cd.load_demo_convenios() == len(rows)
    first = list(Sede.select().order_by(Sede.id).dicts())
    assert cd.load_demo_convenios() == len(rows)

    assert counts() == (len(by_nit), len(rows))
    assert list(Sede.select().order_by(Sede.id).dicts()) == first


# --- back-office services -----------------------------------------------------------


class Staff:
    id = 7
    email = "admin@cajacopi.test"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def test_create_entidad_normalizes_and_audits(db):
    entidad = cd.create_entidad(
        Staff(), "890.102.044-1", "  Gimnasio   Olas ", "ACTIVA", ip="10.0.0.1"
    )

    assert (entidad.nit, entidad.nombre) == ("8901020441", "Gimnasio Olas")
    [event] = events("entidad.crear")
    assert (event.actor_id, event.target_type, event.target_id, event.ip) == (
        7,
        "entidad",
        entidad.id,
        "10.0.0.1",
    )
    assert event.before is None
    assert '"nit":"8901020441"' in event.after


def test_create_entidad_refuses_a_nit_already_registered(db):
    cd.create_entidad(Staff(), "8901020441", "Uno")

    with pytest.raises(ConvenioError) as caught:
        cd.create_entidad(Staff(), "890102044-1", "Dos")

    assert (caught.value.field, caught.value.problem) == ("nit", Problem.NIT_TAKEN)
    assert Entidad.select().count() == 1
    assert len(events("entidad.crear")) == 1


def test_update_entidad_audits_before_and_after_and_skips_no_change(db):
    entidad = cd.create_entidad(Staff(), "8901020441", "Uno")

    cd.update_entidad(Staff(), entidad.id, "Uno", "INACTIVA")
    cd.update_entidad(Staff(), entidad.id, "Uno", "INACTIVA")

    [event] = events("entidad.editar")
    assert (event.before, event.after) == ('{"estado":"ACTIVA"}', '{"estado":"INACTIVA"}')
    assert Entidad.get_by_id(entidad.id).estado == "INACTIVA"


def test_sede_code_is_unique_within_its_entity(db):
    one = cd.create_entidad(Staff(), "8901020441", "Uno")
    two = cd.create_entidad(Staff(), "8001234565", "Dos")
    first = cd.create_sede(Staff(), one.id, "s-1", "Principal", "08001")
    cd.create_sede(Staff(), two.id, "S-1", "Principal", "08001")
    other = cd.create_sede(Staff(), one.id, "S-2", "Norte", "08758")

    with pytest.raises(ConvenioError) as caught:
        cd.create_sede(Staff(), one.id, "S-1", "Otra", "08001")
    assert caught.value.problem == Problem.CODIGO_TAKEN
    with pytest.raises(ConvenioError):
        cd.update_sede(Staff(), other.id, "s-1", "Norte", "08758", "", True)

    assert first.codigo == "S-1"
    assert Sede.get_by_id(other.id).codigo == "S-2"


def test_sede_changes_are_audited_with_the_code_kept(db):
    entidad = cd.create_entidad(Staff(), "8901020441", "Uno")
    created = cd.create_sede(Staff(), entidad.id, "S-1", "Principal", "08001", "Calle 1")

    cd.update_sede(Staff(), created.id, "S-1", "Principal", "08758", "Calle 1", True)
    cd.set_sede_activa(Staff(), created.id, False)

    [made] = events("sede.crear")
    assert '"sede":"S-1"' in made.after
    first, second = events("sede.editar")
    assert (first.before, first.after) == ('{"municipio":"08001"}', '{"municipio":"08758"}')
    assert (second.before, second.after) == ('{"activa":true}', '{"activa":false}')
    assert Sede.get_by_id(created.id).activa is False


def test_entidades_query_filters_by_nit_start_name_part_and_state(db):
    for base, name, estado in [
        ("800123456", "Colegio Mar", "ACTIVA"),
        ("860012345", "Almacén Uno", "INACTIVA"),
        ("890102044", "Gimnasio Olas", "ACTIVA"),
        ("900300400", "Club 100% Brisas", "ACTIVA"),
    ]:
        cd.create_entidad(Staff(), base + stdnum_nit.calc_check_digit(base), name, estado)
    gym = Entidad.get(Entidad.nit == "8901020441")
    cd.create_sede(Staff(), gym.id, "S-1", "Principal", "08001")
    cd.create_sede(Staff(), gym.id, "S-2", "Norte", "08001", activa=False)

    def names(*args, **kwargs):
        query = cd.entidades_query(*args, **kwargs).order_by(Entidad.nombre, Entidad.id)
        return [row["nombre"] for row in query.dicts()]

    assert names() == ["Almacén Uno", "Club 100% Brisas", "Colegio Mar", "Gimnasio Olas"]
    assert names("890.102") == names("890102044-1") == ["Gimnasio Olas"]
    assert names("olas") == ["Gimnasio Olas"]
    assert names("0% B") == ["Club 100% Brisas"]
    assert names("_") == []
    assert names(estado="INACTIVA") == ["Almacén Uno"]
    [row] = cd.entidades_query("890102044").dicts()
    assert row["sedes_activas"] == 1


# --- CLI ------------------------------------------------------------------------------------


def test_cli_import_convenios_reports_and_fails_on_a_bad_file(app, runner, tmp_path):
    ok = runner.invoke(args=["import", "convenios", str(DATA / "convenios_ok.csv")])
    bad = runner.invoke(
        args=["import", "convenios", str(write_csv(tmp_path, [make_row(municipio="99999")]))]
    )

    assert ok.exit_code == 0, ok.output
    assert "Entidades: 2 nuevas, 0 actualizadas." in ok.output
    assert bad.exit_code == 1
    assert "Línea 2: columna municipio" in bad.output
