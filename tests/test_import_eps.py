"""core.eps_data: the IPS, EPS affiliate and authorization CSVs load all or nothing, and the
núcleo familiar is one cotizante with its beneficiaries, never a chain."""

from datetime import date

import pytest

from core.eps_data import (
    AUTORIZACION_COLUMNS,
    EPS_COLUMNS,
    IPS_COLUMNS,
    import_autorizaciones,
    import_eps,
    import_ips,
)
from models import Autorizacion, EpsAfiliado, Ips

IPS_NIT = "890102044-1"


def write_csv(tmp_path, header, rows, *, delimiter=";", bom=False, name="datos.csv"):
    lines = [delimiter.join(header)] + [delimiter.join(r.get(c, "") for c in header) for r in rows]
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\r\n".join(lines) + "\r\n").encode())
    return path


def ips_row(**over) -> dict:
    row = {
        "nit": IPS_NIT,
        "nombre": "IPS Salud Norte",
        "email": "citas@saludnorte.example.com",
        "telefono": "6053851020",
        "direccion": "Carrera 46 # 84-20",
        "municipio": "08001",
    }
    return row | over


def eps_row(numero="52123456", parentesco="COTIZANTE", cabeza="", **over) -> dict:
    row = {
        "tipo_documento": "CC",
        "numero_documento": numero,
        "primer_nombre": "MARTHA",
        "segundo_nombre": "LUCÍA",
        "primer_apellido": "CASTRO",
        "segundo_apellido": "PINZÓN",
        "fecha_nacimiento": "1979-08-30",
        "fecha_expedicion": "1997-09-15",
        "sexo": "F",
        "regimen": "CONTRIBUTIVO",
        "estado": "ACTIVO",
        "celular": "3101234567",
        "email": "martha@example.com",
        "direccion": "Calle 72 # 45-18",
        "municipio": "08001",
        "ips_nit": "",
        "cabeza_tipo_documento": "CC" if cabeza else "",
        "cabeza_numero_documento": cabeza,
        "parentesco": parentesco,
    }
    return row | over


def aut_row(**over) -> dict:
    row = {
        "numero": "AUT-1",
        "tipo_documento": "CC",
        "numero_documento": "52123456",
        "codigo_servicio": "890201",
        "nombre_servicio": "Consulta de primera vez por medicina general",
        "fecha": "2025-10-02",
        "estado": "APROBADA",
        "ips_nit": IPS_NIT,
    }
    return row | over


def family() -> list[dict]:
    return [
        eps_row(),
        eps_row("79111222", "CONYUGE", "52123456", sexo="M", primer_nombre="JORGE"),
        eps_row(
            "1012345678",
            "HIJA",
            "52123456",
            tipo_documento="TI",
            fecha_nacimiento="15/03/2012",
            fecha_expedicion="20/03/2019",
        ),
    ]


def load_ips(tmp_path):
    assert import_ips(write_csv(tmp_path, IPS_COLUMNS, [ips_row()], name="ips.csv")).ok


def person(numero: str) -> EpsAfiliado:
    return EpsAfiliado.get(EpsAfiliado.numero_documento == numero)


# --- IPS ---------------------------------------------------------------------------


def test_ips_import_normalizes_nit_phone_and_is_idempotent(db, tmp_path):
    path = write_csv(tmp_path, IPS_COLUMNS, [ips_row(), ips_row(nit="800.123.456-5")], bom=True)

    first = import_ips(path)
    again = import_ips(path)

    assert first.ok, first.rejected
    assert (first.created, first.updated, again.created, again.updated) == (2, 0, 0, 2)
    ips = Ips.get(Ips.nit == "8901020441")
    assert (ips.nombre, ips.telefono, ips.municipio) == ("IPS Salud Norte", "6053851020", "08001")
    assert Ips.select().count() == 2


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("nit", "890102044-2", "dígito de verificación"),
        ("nit", "", "Escriba el NIT"),
        ("nombre", "", "es obligatorio"),
        ("email", "no-es-correo", "correo electrónico"),
        ("telefono", "12", "teléfono colombiano"),
        ("municipio", "99999", "DIVIPOLA"),
    ],
)
def test_one_bad_ips_row_rejects_the_file(db, tmp_path, column, value, fragment):
    rows = [ips_row(nit="800123456-5"), ips_row(**{column: value})]

    report = import_ips(write_csv(tmp_path, IPS_COLUMNS, rows))

    [(line, reason)] = report.rejected
    assert line == 3 and f"columna {column}" in reason and fragment in reason
    assert Ips.select().count() == 0


def test_repeated_ips_nit_is_rejected(db, tmp_path):
    report = import_ips(write_csv(tmp_path, IPS_COLUMNS, [ips_row(), ips_row(nit="8901020441")]))

    assert report.rejected == [(3, "columna nit: la IPS ya aparece en la línea 2.")]


# --- EPS affiliates and the núcleo familiar ---------------------------------------


@pytest.mark.parametrize("delimiter", [";", ","])
def test_family_loads_with_both_date_formats_and_either_separator(db, tmp_path, delimiter):
    load_ips(tmp_path)
    rows = family()
    rows[0]["ips_nit"] = "890.102.044-1"

    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows, delimiter=delimiter, bom=True))

    assert report.ok, report.rejected
    assert (report.accepted, report.created, report.updated) == (3, 3, 0)
    head = person("52123456")
    assert head.cabeza is None and head.parentesco == "COTIZANTE"
    assert head.ips.nit == "8901020441"
    assert head.fecha_expedicion == date(1997, 9, 15)
    daughter = person("1012345678")
    assert (daughter.cabeza_id, daughter.parentesco) == (head.id, "HIJO")
    assert daughter.fecha_nacimiento == date(2012, 3, 15)
    assert sorted(b.numero_documento for b in head.beneficiarios) == ["1012345678", "79111222"]


def test_beneficiary_may_come_before_its_cotizante(db, tmp_path):
    rows = list(reversed(family()))

    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows))

    assert report.ok, report.rejected
    assert person("79111222").cabeza_id == person("52123456").id


def test_reimport_changes_nothing_and_updates_by_document(db, tmp_path):
    path = write_csv(tmp_path, EPS_COLUMNS, family())
    assert import_eps(path).ok
    before = list(EpsAfiliado.select().order_by(EpsAfiliado.id).dicts())

    again = import_eps(path)

    assert (again.created, again.updated) == (0, 3)
    after = list(EpsAfiliado.select().order_by(EpsAfiliado.id).dicts())
    assert [{**r, "updated_at": None} for r in after] == [{**r, "updated_at": None} for r in before]


def test_a_beneficiary_may_name_a_cotizante_already_loaded(db, tmp_path):
    assert import_eps(write_csv(tmp_path, EPS_COLUMNS, [eps_row()], name="a.csv")).ok

    later = [eps_row("1012345679", "HIJO", "52123456", tipo_documento="TI")]
    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, later, name="b.csv"))

    assert report.ok, report.rejected
    assert person("1012345679").cabeza_id == person("52123456").id


def test_a_beneficiary_can_move_to_be_a_cotizante(db, tmp_path):
    assert import_eps(write_csv(tmp_path, EPS_COLUMNS, family(), name="a.csv")).ok

    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, [eps_row("79111222")], name="b.csv"))

    assert report.ok, report.rejected
    assert person("79111222").cabeza is None
    assert [b.numero_documento for b in person("52123456").beneficiarios] == ["1012345678"]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (eps_row("79111222", "HIJO", "11111111"), "no está en el archivo ni en los datos"),
        (eps_row("79111222", "HIJO", "79111222"), "no puede ser su propia cabeza"),
        (eps_row("79111222", "HIJO"), "debe indicar el documento de su cotizante"),
        (eps_row("79111222", "COTIZANTE", "52123456"), "un cotizante es la cabeza"),
        (eps_row("79111222", "VECINO", "52123456"), "«VECINO» no es un valor válido"),
        (eps_row("79111222", ""), "parentesco: es obligatorio"),
        (eps_row("79111222", "HIJO", "52123456", cabeza_tipo_documento="XX"), "tipo de documento"),
        (eps_row("79111222", ips_nit=IPS_NIT), "no hay una IPS con ese NIT"),
        (eps_row("79111222", sexo="X"), "columna sexo"),
        (eps_row("79111222", regimen="ESPECIAL"), "columna regimen"),
        (eps_row("79111222", estado="MORA"), "columna estado"),
        (eps_row("79111222", fecha_nacimiento=""), "fecha_nacimiento: es obligatorio"),
        (eps_row("79111222", fecha_nacimiento="30-08-1979"), "use AAAA-MM-DD o dd/mm/aaaa"),
        (eps_row("79111222", fecha_nacimiento="2999-01-01"), "no puede ser futura"),
        (eps_row("79111222", fecha_expedicion="1970-01-01"), "anterior a la fecha de nacimiento"),
        (eps_row("79111222", celular="6011234567"), "celular colombiano"),
        (eps_row("79111222", municipio="BARRANQUILLA"), "DIVIPOLA"),
        (eps_row("79111222", primer_apellido=""), "primer_apellido: es obligatorio"),
        (eps_row("79111222", numero_documento="12AB"), "solo números"),
    ],
)
def test_one_bad_affiliate_row_rejects_the_whole_file(db, tmp_path, row, fragment):
    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, [eps_row(), row]))

    assert not report.ok
    [(line, reason)] = report.rejected
    assert line == 3 and fragment in reason
    assert EpsAfiliado.select().count() == 0
    assert report.summary_lines()[0] == "Archivo rechazado: no se guardó ningún dato."


def test_no_chains_in_the_file(db, tmp_path):
    rows = family() + [eps_row("1099888777", "NIETO", "79111222")]

    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows))

    [(line, reason)] = report.rejected
    assert line == 5 and "la cabeza indicada es beneficiaria en este archivo" in reason
    assert EpsAfiliado.select().count() == 0


def test_no_chains_through_the_database(db, tmp_path):
    assert import_eps(write_csv(tmp_path, EPS_COLUMNS, family(), name="a.csv")).ok

    rows = [eps_row("1099888777", "NIETO", "79111222")]
    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows, name="b.csv"))

    [(line, reason)] = report.rejected
    assert line == 2 and "beneficiaria en los datos ya cargados" in reason


def test_a_cotizante_with_stored_beneficiaries_cannot_become_one(db, tmp_path):
    assert import_eps(write_csv(tmp_path, EPS_COLUMNS, family(), name="a.csv")).ok

    rows = [eps_row("80000001"), eps_row("52123456", "CONYUGE", "80000001")]
    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows, name="b.csv"))

    [(line, reason)] = report.rejected
    assert line == 3 and "beneficiarios que el archivo no incluye" in reason
    assert person("52123456").cabeza is None


def test_every_bad_line_is_listed_and_the_report_hides_documents(db, tmp_path):
    rows = [eps_row(), eps_row("79111222", "HIJO", "11111111"), eps_row("79111223", sexo="Q")]

    report = import_eps(write_csv(tmp_path, EPS_COLUMNS, rows))

    assert [line for line, _ in report.rejected] == [3, 4]
    assert "11111111" not in " ".join(report.summary_lines())


# --- authorizations -----------------------------------------------------------------


def load_family(tmp_path):
    load_ips(tmp_path)
    assert import_eps(write_csv(tmp_path, EPS_COLUMNS, family(), name="eps.csv")).ok


def test_authorizations_load_link_affiliate_and_ips_and_reimport_idempotently(db, tmp_path):
    load_family(tmp_path)
    rows = [
        aut_row(),
        aut_row(numero="aut-2", tipo_documento="TI", numero_documento="1012345678", ips_nit="")
        | {"estado": "pendiente", "fecha": "01/12/2025"},
    ]
    path = write_csv(tmp_path, AUTORIZACION_COLUMNS, rows, delimiter=",", bom=True)

    first = import_autorizaciones(path)
    again = import_autorizaciones(path)

    assert first.ok, first.rejected
    assert (first.created, again.created, again.updated) == (2, 0, 2)
    one = Autorizacion.get(Autorizacion.numero == "AUT-1")
    assert (one.afiliado.numero_documento, one.ips.nit, one.estado) == (
        "52123456",
        "8901020441",
        "APROBADA",
    )
    two = Autorizacion.get(Autorizacion.numero == "AUT-2")
    assert (two.ips, two.estado, two.fecha) == (None, "PENDIENTE", date(2025, 12, 1))
    assert Autorizacion.select().count() == 2


def test_reimport_moves_an_authorization_to_its_new_state(db, tmp_path):
    load_family(tmp_path)
    assert import_autorizaciones(write_csv(tmp_path, AUTORIZACION_COLUMNS, [aut_row()])).ok

    path = write_csv(tmp_path, AUTORIZACION_COLUMNS, [aut_row(estado="VENCIDA")], name="b.csv")
    assert import_autorizaciones(path).ok

    assert Autorizacion.get().estado == "VENCIDA"


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"numero_documento": "11111111"}, "no hay un afiliado de la EPS"),
        ({"ips_nit": "800123456-5"}, "no hay una IPS con ese NIT"),
        ({"estado": "EN TRÁMITE"}, "columna estado"),
        ({"numero": ""}, "numero: es obligatorio"),
        ({"numero": "AUT 1/2"}, "sin espacios"),
        ({"codigo_servicio": ""}, "codigo_servicio: es obligatorio"),
        ({"nombre_servicio": ""}, "nombre_servicio: es obligatorio"),
        ({"fecha": "2025-02-30"}, "no existe"),
        ({"tipo_documento": ""}, "tipo_documento: es obligatorio"),
    ],
)
def test_one_bad_authorization_rejects_the_file(db, tmp_path, over, fragment):
    load_family(tmp_path)
    rows = [aut_row(numero="AUT-9"), aut_row(**over)]

    report = import_autorizaciones(write_csv(tmp_path, AUTORIZACION_COLUMNS, rows))

    [(line, reason)] = report.rejected
    assert line == 3 and fragment in reason
    assert Autorizacion.select().count() == 0


def test_repeated_authorization_number_is_rejected(db, tmp_path):
    load_family(tmp_path)
    rows = [aut_row(), aut_row(numero="aut-1")]

    report = import_autorizaciones(write_csv(tmp_path, AUTORIZACION_COLUMNS, rows))

    assert report.rejected == [(3, "columna numero: la autorización ya aparece en la línea 2.")]


def test_cli_imports_ips_eps_and_autorizaciones_and_fails_on_a_bad_file(app, runner, tmp_path):
    files = {
        "ips": write_csv(tmp_path, IPS_COLUMNS, [ips_row()], name="ips.csv"),
        "eps": write_csv(tmp_path, EPS_COLUMNS, family(), name="eps.csv"),
        "autorizaciones": write_csv(tmp_path, AUTORIZACION_COLUMNS, [aut_row()], name="a.csv"),
    }
    results = [runner.invoke(args=["import", name, str(path)]) for name, path in files.items()]
    bad_rows = [aut_row(numero_documento="11111111")]
    bad = runner.invoke(
        args=["import", "autorizaciones", str(write_csv(tmp_path, AUTORIZACION_COLUMNS, bad_rows))]
    )

    assert [r.exit_code for r in results] == [0, 0, 0], [r.output for r in results]
    assert "Importación completa: 3 filas aceptadas (3 nuevas" in results[1].output
    assert bad.exit_code == 1
    assert "Línea 2: columna numero_documento: no hay un afiliado de la EPS" in bad.output
