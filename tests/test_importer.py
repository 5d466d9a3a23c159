"""core.importer: the Caja affiliate CSV is validated row by row and loaded all or nothing."""

from datetime import date

import pytest

import models
from core.db import init_schema, open_database
from core.importer import COLUMNS, ImportReport, import_afiliados
from models import Afiliado


@pytest.fixture
def database(tmp_path):
    database = open_database("sqlite:///" + str(tmp_path / "importer.db"))
    models.db.initialize(database)
    init_schema(database, models.MODELS, models.SchemaVersion)
    yield database
    database.close()


def make_row(**over) -> dict:
    row = {
        "tipo_documento": "CC",
        "numero_documento": "52123456",
        "primer_nombre": "MARTHA",
        "segundo_nombre": "LUCÍA",
        "primer_apellido": "CASTRO",
        "segundo_apellido": "PINZÓN",
        "fecha_nacimiento": "1979-08-30",
        "email": "martha@example.com",
        "celular": "3101234567",
        "telefono": "6017654321",
        "estado": "ACTIVO",
        "categoria": "A",
        "empresa_nit": "8901020441",
        "empresa_nombre": "Distribuidora Andina S.A.S.",
        "empresa_estado": "ACTIVA",
        "fecha_ingreso_empresa": "2012-03-01",
        "profesion": "Contador público",
        "conyuge_celular": "3157654321",
        "conyuge_profesion": "Docente",
        "conyuge_cargo": "Docente de primaria",
    }
    row.update(over)
    return row


def write_csv(tmp_path, rows, *, delimiter=";", header=COLUMNS, bom=False, name="afiliados.csv"):
    lines = [delimiter.join(header)]
    lines += [delimiter.join(row.get(c, "") for c in header) for row in rows]
    text = "\r\n".join(lines) + "\r\n"
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_imports_semicolon_file_with_iso_dates(database, tmp_path):
    path = write_csv(tmp_path, [make_row(), make_row(numero_documento="1020304050")])

    report = import_afiliados(path)

    assert report.ok
    assert (report.accepted, report.created, report.updated) == (2, 2, 0)
    ana = Afiliado.find("CC", "52123456")
    assert ana.fecha_nacimiento == date(1979, 8, 30)
    assert ana.fecha_ingreso_empresa == date(2012, 3, 1)
    assert ana.conyuge_cargo == "Docente de primaria"
    assert ana.updated_at is not None


def test_imports_comma_file_with_bom_and_dmy_dates(database, tmp_path):
    row = make_row(
        fecha_nacimiento="30/08/1979",
        fecha_ingreso_empresa="1/3/2012",
        empresa_nombre="Servicios Integral Ltda.",
    )
    path = write_csv(tmp_path, [row], delimiter=",", bom=True)

    report = import_afiliados(path)

    assert report.ok, report.rejected
    ana = Afiliado.find("CC", "52123456")
    assert ana.fecha_nacimiento == date(1979, 8, 30)
    assert ana.fecha_ingreso_empresa == date(2012, 3, 1)


def test_normalizes_values_and_allows_empty_optional_ones(database, tmp_path):
    row = make_row(
        numero_documento="52.123.456",
        primer_nombre="  MARÍA   JOSÉ ",
        email=" Martha@Example.COM ",
        celular="+57 310 123 4567",
        estado="activo",
        categoria="b",
        empresa_nit="890.102.044-1",
        fecha_nacimiento="",
        fecha_ingreso_empresa="",
        telefono="",
        conyuge_celular="",
        conyuge_profesion="",
        conyuge_cargo="",
        segundo_nombre="",
    )
    path = write_csv(tmp_path, [row])

    assert import_afiliados(path).ok
    a = Afiliado.find("CC", "52123456")
    assert a.primer_nombre == "MARÍA JOSÉ"
    assert a.email == "martha@example.com"
    assert a.celular == "3101234567"
    assert (a.estado, a.categoria) == ("ACTIVO", "B")
    assert a.empresa_nit == "8901020441"
    assert a.fecha_nacimiento is None and a.fecha_ingreso_empresa is None
    assert a.conyuge_celular == ""


def test_import_twice_creates_then_updates_without_duplicates(database, tmp_path):
    first = write_csv(tmp_path, [make_row(), make_row(numero_documento="1020304050")])
    assert import_afiliados(first).created == 2
    before = Afiliado.find("CC", "52123456").updated_at

    second = write_csv(
        tmp_path,
        [make_row(estado="RETIRADO", profesion=""), make_row(numero_documento="79111222")],
        name="segunda.csv",
    )
    report = import_afiliados(second)

    assert (report.accepted, report.created, report.updated) == (2, 1, 1)
    assert Afiliado.select().count() == 3
    updated = Afiliado.find("CC", "52123456")
    assert (updated.estado, updated.profesion) == ("RETIRADO", "")
    assert updated.updated_at >= before
    assert "1 nuevas, 1 actualizadas" in report.summary_lines()[0]


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("tipo_documento", "XX", "no es un tipo de documento"),
        ("tipo_documento", "", "es obligatorio"),
        ("numero_documento", "12A45", "solo números"),
        ("numero_documento", "", "número de documento"),
        ("primer_nombre", "   ", "es obligatorio"),
        ("primer_apellido", "", "es obligatorio"),
        ("segundo_apellido", "X" * 61, "más de 60 caracteres"),
        ("fecha_nacimiento", "31/02/1990", "no existe"),
        ("fecha_nacimiento", "1990/01/31", "AAAA-MM-DD o dd/mm/aaaa"),
        ("fecha_ingreso_empresa", "2999-01-01", "futura"),
        ("email", "sin-arroba.example.com", "correo"),
        ("celular", "12345", "celular"),
        ("conyuge_celular", "6015551234", "celular"),
        ("telefono", "12", "teléfono"),
        ("estado", "", "es obligatorio"),
        ("estado", "FALLECIDO", "no es un estado conocido"),
        ("categoria", "D", "A, B, C"),
        ("empresa_nit", "89O102044", "solo números"),
        ("empresa_nit", "12345", "entre 6 y 15"),
    ],
)
def test_one_bad_row_rejects_the_whole_file(database, tmp_path, column, value, fragment):
    existing = write_csv(tmp_path, [make_row(numero_documento="79111222")], name="antes.csv")
    assert import_afiliados(existing).ok
    rows = [
        make_row(),
        make_row(**{"numero_documento": "1020304050", column: value}),
        make_row(numero_documento="1020304051"),
    ]
    path = write_csv(tmp_path, rows)

    report = import_afiliados(path)

    assert not report.ok
    assert len(report.rejected) == 1
    line, reason = report.rejected[0]
    assert line == 3
    assert f"columna {column}" in reason
    assert fragment in reason
    assert (report.accepted, report.created, report.updated) == (2, 0, 0)
    assert Afiliado.select().count() == 1
    assert Afiliado.find("CC", "52123456") is None
    summary = report.summary_lines()
    assert summary[0] == "Archivo rechazado: no se guardó ningún dato."
    assert any(s.startswith("Línea 3: columna ") for s in summary)


def test_nit_with_wrong_check_digit_is_rejected(database, tmp_path):
    path = write_csv(tmp_path, [make_row(tipo_documento="NI", numero_documento="890102044-2")])

    report = import_afiliados(path)

    assert report.rejected == [
        (2, "columna numero_documento: El dígito de verificación del NIT no es válido.")
    ]


def test_every_problem_of_a_row_is_named(database, tmp_path):
    path = write_csv(tmp_path, [make_row(celular="1", estado="X", categoria="Z")])

    [(line, reason)] = import_afiliados(path).rejected

    assert line == 2
    for column in ("celular", "estado", "categoria"):
        assert f"columna {column}" in reason


def test_missing_header_column_rejects_the_file(database, tmp_path):
    header = [c for c in COLUMNS if c not in ("celular", "conyuge_cargo")]
    path = write_csv(tmp_path, [make_row()], header=header)

    report = import_afiliados(path)

    assert report.rejected == [(1, "faltan columnas en el encabezado: celular, conyuge_cargo.")]
    assert report.accepted == 0
    assert Afiliado.select().count() == 0


def test_empty_file_is_rejected(database, tmp_path):
    path = tmp_path / "vacio.csv"
    path.write_bytes(b"\xef\xbb\xbf")

    report = import_afiliados(path)

    assert not report.ok
    assert report.rejected[0][0] == 1


def test_header_only_file_is_ok_and_writes_nothing(database, tmp_path):
    report = import_afiliados(write_csv(tmp_path, []))

    assert report.ok and report.accepted == 0
    assert report.summary_lines() == ["El archivo no tiene filas de datos; no se guardó nada."]


def test_duplicate_document_within_file_rejects_second_occurrence(database, tmp_path):
    rows = [
        make_row(),
        make_row(numero_documento="1020304050"),
        make_row(numero_documento="52.123.456", primer_nombre="OTRA"),
    ]
    path = write_csv(tmp_path, rows)

    report = import_afiliados(path)

    assert report.rejected == [
        (4, "columna numero_documento: el documento ya aparece en la línea 2.")
    ]
    assert Afiliado.select().count() == 0


def test_same_number_with_another_type_is_not_a_duplicate(database, tmp_path):
    rows = [make_row(), make_row(tipo_documento="CE")]

    report = import_afiliados(write_csv(tmp_path, rows))

    assert report.ok and report.created == 2


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(database, tmp_path):
    header = ";".join(COLUMNS)
    good = ";".join(make_row().values())
    quoted = ";".join(
        make_row(numero_documento="1020304050", empresa_nombre='"Dos\nlíneas"').values()
    )
    bad = ";".join(make_row(numero_documento="1020304051", estado="X").values())
    path = tmp_path / "lineas.csv"
    path.write_text(f"{header}\n{good}\n\n{quoted}\n{bad}\n", encoding="utf-8")

    report = import_afiliados(path)

    assert [line for line, _ in report.rejected] == [6]


def test_row_with_wrong_number_of_fields_is_rejected(database, tmp_path):
    path = write_csv(tmp_path, [make_row()])
    with path.open("a", encoding="utf-8") as f:
        f.write("CC;123456;SOLO;TRES\r\n")

    report = import_afiliados(path)

    assert report.rejected[0][0] == 3
    assert "campos" in report.rejected[0][1]
    assert Afiliado.select().count() == 0


def test_file_not_in_utf8_is_rejected(database, tmp_path):
    path = write_csv(tmp_path, [make_row()])
    path.write_bytes(path.read_bytes().replace("PINZÓN".encode(), "PINZÓN".encode("latin-1")))

    report = import_afiliados(path)

    assert report.rejected == [(2, "el archivo no está en UTF-8; guárdelo como «CSV UTF-8».")]
    assert Afiliado.select().count() == 0


def test_extra_columns_are_ignored_and_reported(database, tmp_path):
    header = [*COLUMNS, "observaciones"]
    path = write_csv(tmp_path, [make_row(observaciones="nota")], header=header)

    report = import_afiliados(path)

    assert report.ok
    assert report.ignored_columns == ["observaciones"]
    assert report.summary_lines()[-1] == "Columnas ignoradas: observaciones."


def test_header_names_are_case_and_space_insensitive(database, tmp_path):
    header = [f" {c.upper()} " for c in COLUMNS]
    text = ";".join(header) + "\n" + ";".join(make_row().values()) + "\n"
    path = tmp_path / "mayusculas.csv"
    path.write_text(text, encoding="utf-8")

    assert import_afiliados(path).ok


def test_summary_lists_at_most_the_limit():
    report = ImportReport(accepted=0, rejected=[(n, "columna estado: x") for n in range(2, 62)])

    lines = report.summary_lines(limit=5)

    assert lines[1] == "Filas válidas: 0. Filas con errores: 60."
    assert lines[2] == "Línea 2: columna estado: x"
    assert lines[-1] == "… y 55 errores más."
    assert len(lines) == 8
