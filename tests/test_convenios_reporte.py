"""'Generar Reporte de Convenio' (H6): totals, uses per month in Bogotá time, CSV and XLSX downloads."""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import secrets
import tempfile
from datetime import date, datetime, time

import openpyxl
import pytest

from core import export
from models import ConsultaConvenio, UserSession, UsoConvenio
from tests.factories import grant_convenios, make_entidad, make_user

TODAY = datetime(
    2026, 7, 15, 10, 0
)  # Bogotá wall clock; the default range is 01/08/2025–15/07/2026
HEADER = (
    "Fecha consulta;Hora consulta;Sede;Operador;Cédula;Nombre;Estado afiliado;Tarifa;"
    "Resultado;Uso reportado;Recibo;Fecha uso;Hora uso"
)


@pytest.fixture()
def desk(app, client, auth, clock):
    """A desk user granted Sede 1 and Sede 2 of an entity (not its Sede 3), Sede 1 chosen."""
    clock.set(TODAY)
    entidad, (norte, sur, ajena) = make_entidad(nombre="Gimnasio Brío", sedes=3)
    _, (otra,) = make_entidad(nombre="Colegio Otro", sedes=1)
    user = make_user(email="mostrador@example.com")
    grant_convenios(user, [norte, sur])
    auth.login(client, user)
    UserSession.update(convenio_sede=norte.id).where(UserSession.account == user.id).execute()
    return type(
        "Desk",
        (),
        {"user": user, "norte": norte, "sur": sur, "ajena": ajena, "otra": otra},
    )


def consulta(
    sede,
    at: datetime,
    *,
    user,
    documento="71234567",
    nombre="JOSÉ LUIS PÉREZ",
    resultado=ConsultaConvenio.ACTIVO,
    usado: datetime | None = None,
):
    """A look-up at sede at the naive-UTC instant at, and its use when usado is given."""
    row = ConsultaConvenio.create(
        account=user.id,
        entidad=sede.entidad_id,
        sede=sede.id,
        numero_documento=documento,
        resultado=resultado,
        nombre=nombre,
        estado_afiliado="ACTIVO" if resultado == ConsultaConvenio.ACTIVO else "INACTIVO",
        tarifa="A" if resultado == ConsultaConvenio.ACTIVO else "D",
        clave=secrets.token_urlsafe(16),
        created_at=at,
    )
    if usado is not None:
        UsoConvenio.create(
            consulta=row.id,
            numero=secrets.token_hex(4).upper(),
            account=user.id,
            entidad=sede.entidad_id,
            sede=sede.id,
            created_at=usado,
        )
    return row


def page_of(client, **args) -> str:
    response = client.get("/convenios/reporte", query_string=args)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def total(page: str, label: str) -> str:
    return re.search(rf"<dt>{label}</dt><dd>([^<]*)</dd>", page).group(1)


def csv_rows(response) -> list[list[str]]:
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


# --- the page --------------------------------------------------------------------


def test_the_page_proposes_the_current_sede_and_the_last_twelve_months(desk, client):
    page = page_of(client)
    assert "Generar Reporte de Convenio" in page
    assert "Gimnasio Brío · Sede 1" in page  # the layout's chosen sede
    assert re.search(rf'<option selected value="{desk.norte.id}">', page)
    assert f'value="{desk.sur.id}"' in page and 'value="todas">Todas mis sedes' in page
    assert "Sede 3" not in page and "Colegio Otro" not in page
    assert 'name="desde" type="text" value="01/08/2025"' in page
    assert 'name="hasta" type="text" value="15/07/2026"' in page
    assert "Descargar Excel (.xlsx)" in page and "Descargar CSV" in page
    assert (
        f"/convenios/reporte.csv?sede={desk.norte.id}&amp;desde=2025-08-01&amp;hasta=2026-07-15"
        in page
    )


def test_the_totals_and_the_chart_count_the_chosen_sede_only(desk, client):
    u = desk.user
    consulta(desk.norte, datetime(2026, 3, 10, 15), user=u, usado=datetime(2026, 3, 10, 15, 2))
    consulta(desk.norte, datetime(2026, 3, 20, 15), user=u, usado=datetime(2026, 3, 20, 15, 1))
    consulta(
        desk.norte,
        datetime(2026, 4, 2, 15),
        user=u,
        documento="1001",
        resultado=ConsultaConvenio.NO_AFILIADO,
    )
    consulta(
        desk.norte,
        datetime(2026, 4, 3, 15),
        user=u,
        documento="1002",
        resultado=ConsultaConvenio.LIMITE,
    )  # refused by a quota: not a consulted worker
    consulta(
        desk.sur,
        datetime(2026, 5, 5, 15),
        user=u,
        documento="2002",
        usado=datetime(2026, 5, 5, 15, 3),
    )
    consulta(
        desk.otra,
        datetime(2026, 5, 5, 15),
        user=u,
        documento="3003",
        usado=datetime(2026, 5, 5, 15, 4),
    )
    consulta(desk.norte, datetime(2025, 6, 1, 15), user=u, usado=datetime(2025, 6, 1, 15, 1))

    page = page_of(client)
    assert (total(page, "Consultas"), total(page, "Con beneficio")) == ("3", "2")
    assert (total(page, "Usos reportados"), total(page, "Trabajadores distintos")) == ("2", "2")
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert svg.count("<rect") == 12  # ago 2025 … jul 2026
    assert "<title>mar 2026: 2 usos</title>" in svg and "<title>may 2026: 0 usos</title>" in svg
    assert "<tr><td>mar 2026</td><td>2</td></tr>" in page  # the same figures as a table

    todas = page_of(client, sede="todas")
    assert total(todas, "Consultas") == "4" and total(todas, "Usos reportados") == "3"
    assert "<title>may 2026: 1 uso</title>" in todas and "Todas mis sedes: del" in todas

    sur = page_of(client, sede=desk.sur.id, desde="01/05/2026", hasta="31/05/2026")
    assert total(sur, "Consultas") == "1" and total(sur, "Usos reportados") == "1"
    assert re.search(r"<svg.*?</svg>", sur, re.S).group(0).count("<rect") == 1


def test_the_chart_is_an_image_with_a_title_for_screen_readers(desk, client):
    page = page_of(client)
    svg = re.search(r"<svg[^>]*>", page).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="grafica-usos-titulo grafica-usos-desc"' in svg
    assert '<title id="grafica-usos-titulo">Usos reportados por mes</title>' in page
    assert "No hay usos reportados en este periodo." in page
    assert "<script" not in re.search(r"<svg.*?</svg>", page, re.S).group(0)


def test_a_use_at_three_utc_on_the_first_belongs_to_the_month_before(desk, client):
    # 01/03/2026 03:00 UTC is 28/02/2026 22:00 in Bogotá.
    consulta(
        desk.norte, datetime(2026, 3, 1, 2, 58), user=desk.user, usado=datetime(2026, 3, 1, 3, 0)
    )
    page = page_of(client)
    assert "<title>feb 2026: 1 uso</title>" in page
    assert "<title>mar 2026: 0 usos</title>" in page
    row = csv_rows(client.get("/convenios/reporte.csv"))[1]
    assert row[:2] == ["28/02/2026", "21:58"] and row[11:] == ["28/02/2026", "22:00"]


def test_a_range_that_starts_at_bogota_midnight_keeps_the_evening_of_the_day_before_out(
    desk, client
):
    consulta(desk.norte, datetime(2026, 4, 1, 4, 59), user=desk.user)  # 31/03 23:59 Bogotá
    consulta(desk.norte, datetime(2026, 4, 1, 5, 0), user=desk.user)  # 01/04 00:00 Bogotá
    page = page_of(client, desde="01/04/2026", hasta="30/04/2026")
    assert total(page, "Consultas") == "1"


# --- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"desde": "31/02/2026"}, "desde", "La fecha 31/02/2026 no existe."),
        ({"desde": "ayer"}, "desde", "Escriba la fecha como dd/mm/aaaa."),
        ({"hasta": "15/13/2026"}, "hasta", "La fecha 15/13/2026 no existe."),
        (
            {"desde": "10/05/2026", "hasta": "09/05/2026"},
            "hasta",
            "Hasta debe ser la misma fecha de Desde o una posterior.",
        ),
        (
            {"desde": "01/07/2024", "hasta": "15/07/2026"},
            "desde",
            "El reporte abarca como máximo 24 meses: con Hasta el 15/07/2026, Desde puede ser "
            "desde el 16/07/2024.",
        ),
        ({"sede": "abc"}, "sede", "Elija una de sus sedes o «Todas mis sedes»."),
        ({"sede": "²"}, "sede", "Elija una de sus sedes o «Todas mis sedes»."),
    ],
)
@pytest.mark.parametrize(
    "path", ["/convenios/reporte", "/convenios/reporte.csv", "/convenios/reporte.xlsx"]
)
def test_bad_filters_answer_422_with_the_message_next_to_the_field(
    desk, client, path, args, field, message
):
    response = client.get(path, query_string=args)
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert f'<p class="error" id="{field}-error">{message}</p>' in page
    for name, value in args.items():
        if name != "sede":
            assert f'value="{value}"' in page  # what was typed stays
    assert "Descargar CSV" not in page


def test_exactly_twenty_four_months_is_allowed(desk, client):
    page = page_of(client, desde="16/07/2024", hasta="15/07/2026")
    assert re.search(r"<svg.*?</svg>", page, re.S).group(0).count("<rect") == 25


# --- who may see what ------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/convenios/reporte", "/convenios/reporte.csv", "/convenios/reporte.xlsx"]
)
def test_a_sede_not_granted_is_404_in_every_format(desk, client, path):
    consulta(desk.otra, datetime(2026, 5, 5, 15), user=desk.user, usado=datetime(2026, 5, 5, 15, 4))
    for sede in (desk.otra, desk.ajena):
        assert client.get(path, query_string={"sede": sede.id}).status_code == 404
    assert client.get(path, query_string={"sede": "99999999999999999999"}).status_code == 404


@pytest.mark.parametrize(
    "path", ["/convenios/reporte", "/convenios/reporte.csv", "/convenios/reporte.xlsx"]
)
def test_a_user_without_the_grant_gets_404_and_the_anonymous_the_login(app, client, auth, path):
    assert client.get(path).status_code == 302
    auth.login(client, make_user())
    assert client.get(path).status_code == 404


def test_todas_covers_only_the_users_own_sedes(desk, client):
    consulta(desk.ajena, datetime(2026, 5, 5, 15), user=desk.user, documento="555")
    consulta(desk.otra, datetime(2026, 5, 5, 15), user=desk.user, documento="666")
    consulta(desk.sur, datetime(2026, 5, 5, 15), user=desk.user, documento="777")
    rows = csv_rows(client.get("/convenios/reporte.csv", query_string={"sede": "todas"}))
    assert [r[4] for r in rows[1:]] == ["777"]


# --- the CSV ---------------------------------------------------------------------


def test_the_csv_is_utf8_with_bom_semicolons_crlf_and_bogota_times(desk, client):
    consulta(
        desk.norte, datetime(2026, 3, 10, 20, 5), user=desk.user, usado=datetime(2026, 3, 10, 20, 7)
    )
    consulta(
        desk.norte,
        datetime(2026, 3, 11, 2, 30),
        user=desk.user,
        documento="1001",
        nombre="",
        resultado=ConsultaConvenio.NO_AFILIADO,
    )
    response = client.get("/convenios/reporte.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="reporte-convenio-sede-1-2025-08-01-2026-07-15.csv"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Length" not in response.headers
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    recibo = UsoConvenio.get().numero
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[1] == (
        f"10/03/2026;15:05;Sede 1;mostrador@example.com;71234567;JOSÉ LUIS PÉREZ;ACTIVO;A;"
        f"Con beneficio;Sí;{recibo};10/03/2026;15:07"
    )
    # 02:30 UTC on the 11th is still the 10th in Bogotá.
    assert (
        lines[2]
        == "10/03/2026;21:30;Sede 1;mostrador@example.com;1001;;INACTIVO;D;No afiliado;No;;;"
    )
    assert lines[3] == "" and len(lines) == 4


@pytest.mark.parametrize(
    "nombre",
    ['=HYPERLINK("http://x.example","clic")', "+57 300", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"],
)
def test_a_cell_that_looks_like_a_formula_reaches_the_csv_as_text(desk, client, nombre):
    consulta(desk.norte, datetime(2026, 3, 10, 15), user=desk.user, nombre=nombre)
    row = csv_rows(client.get("/convenios/reporte.csv"))[1]
    assert row[5] == "'" + nombre


def test_the_csv_streams_in_pieces_and_is_sent_uncompressed_even_to_gzip_clients(desk, client):
    for i in range(400):
        consulta(
            desk.norte,
            datetime(2026, 3, 1, 15, i // 60, i % 60),
            user=desk.user,
            documento=f"{10_000 + i}",
            nombre="NOMBRE " * 10,
        )
    response = client.get("/convenios/reporte.csv", headers={"Accept-Encoding": "gzip, br"})
    assert response.is_streamed and response.status_code == 200
    assert "Content-Encoding" not in response.headers and "Content-Length" not in response.headers
    pieces = list(response.response)  # the generator, as the server sends it
    assert len(pieces) >= 2 and all(len(p) < 3 * export.CHUNK for p in pieces)
    body = b"".join(pieces)
    assert body.startswith(b"\xef\xbb\xbf") and body.count(b"\r\n") == 401


def test_a_gzip_client_gets_the_page_compressed_and_the_csv_readable(desk, client):
    consulta(desk.norte, datetime(2026, 3, 10, 15), user=desk.user)
    page = client.get("/convenios/reporte", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Generar Reporte" in gzip.decompress(page.get_data()).decode()
    download = client.get("/convenios/reporte.csv", headers={"Accept-Encoding": "gzip"})
    encoding = download.headers.get("Content-Encoding")
    body = download.get_data()
    text = (gzip.decompress(body) if encoding == "gzip" else body).decode("utf-8-sig")
    assert text.startswith(HEADER) and "71234567" in text


def test_an_empty_range_gives_the_header_only(desk, client):
    response = client.get(
        "/convenios/reporte.csv", query_string={"desde": "01/01/2026", "hasta": "31/01/2026"}
    )
    assert response.get_data() == b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n"
    assert (
        "reporte-convenio-sede-1-2026-01-01-2026-01-31.csv"
        in response.headers["Content-Disposition"]
    )


# --- the XLSX --------------------------------------------------------------------


def test_the_xlsx_has_a_bold_frozen_header_real_dates_and_strings_never_formulas(desk, client):
    consulta(
        desk.norte,
        datetime(2026, 3, 10, 20, 5),
        user=desk.user,
        nombre='=HYPERLINK("http://x.example","clic")',
        usado=datetime(2026, 3, 10, 20, 7),
    )
    consulta(
        desk.norte,
        datetime(2026, 3, 11, 15),
        user=desk.user,
        documento="1001",
        resultado=ConsultaConvenio.EMPRESA_INACTIVA,
    )
    response = client.get("/convenios/reporte.xlsx", query_string={"sede": "todas"})
    assert response.status_code == 200
    assert response.mimetype == export.XLSX_MIME
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="reporte-convenio-todas-2025-08-01-2026-07-15.xlsx"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_data()
    assert int(response.headers["Content-Length"]) == len(data)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header = [c.value for c in sheet[1]]
    assert header == HEADER.split(";")
    assert all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["H"].width
    first, second = sheet[2], sheet[3]
    assert first[0].value == datetime(2026, 3, 10) and first[0].number_format == "dd/mm/yyyy"
    assert first[1].value == time(15, 5) and first[1].number_format == "hh:mm"
    assert first[5].value == '=HYPERLINK("http://x.example","clic")' and first[5].data_type == "s"
    assert [c.value for c in first[2:11]] == [
        "Sede 1",
        "mostrador@example.com",
        "71234567",
        first[5].value,
        "ACTIVO",
        "A",
        "Con beneficio",
        "Sí",
        UsoConvenio.get().numero,
    ]
    assert first[11].value == datetime(2026, 3, 10) and first[12].value == time(15, 7)
    assert second[8].value == "Empresa inactiva o en mora" and second[9].value == "No"
    assert second[11].value is None and sheet.max_row == 3


def test_the_xlsx_leaves_no_file_behind_even_when_the_client_leaves_half_way(
    desk, client, tmp_path, monkeypatch
):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for i in range(50):
        consulta(desk.norte, datetime(2026, 3, 10, 15, i), user=desk.user, documento=f"{500 + i}")
    response = client.get("/convenios/reporte.xlsx")
    next(iter(response.response))  # the first piece, then the client goes away
    response.close()
    assert os.listdir(scratch) == []
    assert openpyxl.load_workbook(io.BytesIO(client.get("/convenios/reporte.xlsx").get_data()))
    assert os.listdir(scratch) == []


def test_an_xlsx_that_fails_half_way_leaves_no_scratch_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def rows():
        yield (
            date(2026, 1, 1),
            time(9, 0),
            "Sede",
            "op",
            "1",
            "N",
            "ACTIVO",
            "A",
            "x",
            "No",
            "",
            None,
            None,
        )
        raise RuntimeError("the database went away")

    with tempfile.TemporaryFile() as target, pytest.raises(RuntimeError):
        export.write_xlsx(target, export.CONVENIO_COLUMNS, rows())
    assert os.listdir(tmp_path) == []
