"""Tables as downloads: CSV for Excel in Spanish, and XLSX, both a row at a time.

Flask-free, so the views and the benchmark share it. Neither writer holds the
table: the CSV is yielded in small chunks as rows arrive, and the XLSX is
written by XlsxWriter in constant-memory mode (each row goes to disk when the
next one starts) into a file the caller gives, then sent from there.

Cells are plain values: a ``str``, a ``date``, a ``time`` or None (empty).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO

import xlsxwriter

from core.colombia import format_date, to_bogota

Cell = str | date | time | None

BOM = "\ufeff"  # without it Excel reads UTF-8 as Windows-1252 ("CÃ©dula")
DELIMITER = ";"  # Excel with Spanish regional settings splits on ";" (the decimal mark is ",")
# A spreadsheet takes a cell starting with one of these as a formula (or DDE):
# "=HYPERLINK(…)" in a worker's name must reach the partner as text (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 16 * 1024  # characters of CSV per piece sent: fewer, bigger writes than one per row
XLSX_MAX_ROWS = 1_048_576  # Excel's limit, header included
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv"


@dataclass(frozen=True)
class Column:
    """A column of a download: its heading, its width in Excel (characters) and its cells' kind."""

    title: str
    width: float
    kind: str = "text"  # "text", "date" (dd/mm/aaaa) or "time" (hh:mm)


def neutralize(value: str) -> str:
    """Return a CSV cell that no spreadsheet runs as a formula: a leading apostrophe if needed."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        raise TypeError("a datetime cell must be split into its date and its time first")
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    return neutralize(str(value))


def csv_chunks(columns: Sequence[Column], rows: Iterable[Sequence[Cell]]) -> Iterator[bytes]:
    """Yield a UTF-8 CSV with BOM, ";" and CRLF in pieces of about CHUNK characters.

    rows is consumed lazily: only the current piece is ever in memory.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([c.title for c in columns])
    for row in rows:
        writer.writerow([_csv_text(v) for v in row])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(
    target: IO[bytes],
    columns: Sequence[Column],
    rows: Iterable[Sequence[Cell]],
    *,
    sheet: str = "Reporte",
    overflow_note: str = "",
) -> int:
    """Write rows as one XLSX sheet into the binary file target; return how many rows it holds.

    Dates and times are real cells (dd/mm/yyyy, hh:mm), strings are always
    strings (never formulas, numbers or links), the header is bold and frozen.
    XlsxWriter's own scratch files go into a private folder removed at the end,
    also when rows raises half-way. Past Excel's row limit, overflow_note is
    written as the last row and the rest left out.
    """
    scratch = tempfile.mkdtemp(prefix="xlsx-")
    try:
        workbook = xlsxwriter.Workbook(
            target,
            {
                "constant_memory": True,
                "tmpdir": scratch,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        bold = workbook.add_format({"bold": True})
        formats = {
            "date": workbook.add_format({"num_format": "dd/mm/yyyy"}),
            "time": workbook.add_format({"num_format": "hh:mm"}),
        }
        ws = workbook.add_worksheet(sheet)
        for i, column in enumerate(columns):
            ws.set_column(i, i, column.width, formats.get(column.kind))
        ws.freeze_panes(1, 0)
        for i, column in enumerate(columns):
            ws.write_string(0, i, column.title, bold)
        written = 0
        for row in rows:
            if written + 2 >= XLSX_MAX_ROWS:
                ws.write_string(written + 1, 0, overflow_note)
                break
            written += 1
            for i, value in enumerate(row):
                if value is None or value == "":
                    continue
                if isinstance(value, date | time):
                    ws.write_datetime(
                        written, i, value, formats["date" if isinstance(value, date) else "time"]
                    )
                else:
                    ws.write_string(written, i, str(value))
        ws.autofilter(0, 0, max(written, 1), len(columns) - 1)
        workbook.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


# --- the convenio report (H6) -----------------------------------------------------

CONVENIO_COLUMNS = (
    Column("Fecha consulta", 14, "date"),
    Column("Hora consulta", 13, "time"),
    Column("Sede", 24),
    Column("Operador", 28),
    Column("Cédula", 14),
    Column("Nombre", 36),
    Column("Estado afiliado", 16),
    Column("Tarifa", 8),
    Column("Resultado", 26),
    Column("Uso reportado", 14),
    Column("Recibo", 12),
    Column("Fecha uso", 12, "date"),
    Column("Hora uso", 10, "time"),
)


def _local(moment: datetime | None) -> tuple[date | None, time | None]:
    """Split a stored naive-UTC instant into its Bogotá date and hh:mm."""
    if moment is None:
        return None, None
    local = to_bogota(moment)
    return local.date(), local.time().replace(second=0, microsecond=0, tzinfo=None)


def convenio_cells(row) -> tuple[Cell, ...]:
    """Return a core.convenios.ReportRow as the cells of CONVENIO_COLUMNS, in Bogotá time."""
    fecha, hora = _local(row.consultado)
    fecha_uso, hora_uso = _local(row.usado)
    return (
        fecha,
        hora,
        row.sede,
        row.operador,
        row.cedula,
        row.nombre,
        row.estado_afiliado,
        row.tarifa,
        row.resultado,
        "Sí" if row.usado else "No",
        row.recibo,
        fecha_uso,
        hora_uso,
    )
