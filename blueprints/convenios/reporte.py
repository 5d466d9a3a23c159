""" "Generar Reporte de Convenio": the totals and uses per month of a range, and its downloads.

One GET form (sede, Desde, Hasta) drives the page and both downloads, so a
link carries the filters and the same checks run for each: a sede not granted
to this account is a 404, whatever the format. The downloads are streamed: the
CSV as the rows come from the database, the XLSX from a temporary file that
is gone once it is open (nothing is left behind when the client goes away).
"""

from __future__ import annotations

import calendar
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app, request, stream_with_context, url_for
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file
from wtforms import SelectField
from wtforms.validators import ValidationError

from blueprints.auth import require
from blueprints.convenios import bp, current_sede, sede_or_404, sedes
from blueprints.queue import DateFilter, FilterForm
from blueprints.web import render
from core import clock, convenios, export, svg_chart
from core.colombia import format_date
from core.permissions import Action
from models import Sede

TODAS = "todas"
MAX_MONTHS = 24
DEFAULT_MONTHS = 12


def months_before(day: date, months: int) -> date:
    """Return the same day months earlier (the month's last day when that one is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def default_desde(hasta: date) -> date:
    """The first day of the month DEFAULT_MONTHS - 1 before hasta's: twelve bars, the last one running."""
    return months_before(hasta.replace(day=1), DEFAULT_MONTHS - 1)


class ReporteForm(FilterForm):
    """The report's filters (a GET form: a bookmarkable link, no CSRF)."""

    sede = SelectField("Sede", validate_choice=False)
    desde = DateFilter("Desde")
    hasta = DateFilter("Hasta")

    def validate_sede(self, field) -> None:
        if field.data not in {value for value, _label in field.choices}:
            raise ValidationError("Elija una de sus sedes o «Todas mis sedes».")

    def validate(self, extra_validators=None) -> bool:
        """Check each field, then fill the blank dates and check the range they make."""
        if not super().validate(extra_validators):
            return False
        if self.hasta.data is None:
            self.hasta.data = clock.today()
        if self.desde.data is None:
            self.desde.data = default_desde(self.hasta.data)
        if self.desde.data > self.hasta.data:
            self.hasta.errors.append("Hasta debe ser la misma fecha de Desde o una posterior.")
            return False
        earliest = months_before(self.hasta.data, MAX_MONTHS) + timedelta(days=1)
        if self.desde.data < earliest:
            self.desde.errors.append(
                f"El reporte abarca como máximo {MAX_MONTHS} meses: con Hasta el "
                f"{format_date(self.hasta.data)}, Desde puede ser desde el {format_date(earliest)}."
            )
            return False
        return True


@dataclass(frozen=True)
class Filtros:
    """What a report covers, once checked: the sedes (granted), and the range in Bogotá dates."""

    sedes: list[Sede]
    sede: Sede | None  # None: all of the account's sedes
    desde: date
    hasta: date

    @property
    def sede_ids(self) -> list[int]:
        return [s.id for s in self.sedes]

    def args(self) -> dict:
        """The query string of a link to this same report."""
        return {
            "sede": self.sede.id if self.sede else TODAS,
            "desde": self.desde.isoformat(),
            "hasta": self.hasta.isoformat(),
        }

    def filename(self, extension: str) -> str:
        """reporte-convenio-<sede or todas>-<desde>-<hasta>.<extension>, ASCII only."""
        who = slug(self.sede.nombre) if self.sede else TODAS
        return f"reporte-convenio-{who}-{self.desde}-{self.hasta}.{extension}"


def slug(text: str) -> str:
    """Return text as lowercase ASCII words joined by "-" ("Sede Norte Ñ" -> "sede-norte-n")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40] or "sede"


def _sede_label(sede: Sede) -> str:
    return f"{sede.entidad.nombre} · {sede.nombre}"


def _page(status: int = 200, **context) -> Response:
    return render("convenios/reporte.html", status=status, sedes_count=len(sedes()), **context)


def _filters() -> tuple[Filtros, ReporteForm] | Response:
    """Read and check the filters of this request: Filtros and the form, or the page to answer.

    A sede id not granted to this account answers 404 before anything else.
    """
    granted = sedes()
    if not granted:
        return render("convenios/sin_sedes.html", sedes_count=0)
    raw = request.args.get("sede", "").strip()
    if raw.isascii() and raw.isdigit():  # "²".isdigit() too, and int() refuses it
        sede_or_404(int(raw))
    current = current_sede()  # also what the layout shows
    if current is None and len(granted) == 1:
        current = granted[0]
    form = ReporteForm(sede=str(current.id) if current else TODAS)
    form.sede.choices = [(str(s.id), _sede_label(s)) for s in granted] + [
        (TODAS, "Todas mis sedes")
    ]
    if not form.validate():
        return _page(status=422, form=form)
    chosen = None if form.sede.data == TODAS else sede_or_404(int(form.sede.data))
    return Filtros(
        sedes=[chosen] if chosen else granted,
        sede=chosen,
        desde=form.desde.data,
        hasta=form.hasta.data,
    ), form


@bp.get("/reporte")
@require(Action.USE_CONVENIOS)
def reporte():
    """ "Generar Reporte de Convenio": the filters, the totals, the uses per month and the downloads."""
    checked = _filters()
    if isinstance(checked, Response):
        return checked
    filtros, form = checked
    per_month = convenios.uses_per_month(filtros.sede_ids, filtros.desde, filtros.hasta)
    bars = svg_chart.month_bars(per_month)
    chart = svg_chart.bar_chart(
        bars, title="Usos reportados por mes", ident="grafica-usos", unit=("uso", "usos")
    )
    return _page(
        form=form,
        filtros=filtros,
        totales=convenios.totals(filtros.sede_ids, filtros.desde, filtros.hasta),
        grafica=chart,
        meses=bars,
        csv_url=url_for("convenios.reporte_csv", **filtros.args()),
        xlsx_url=url_for("convenios.reporte_xlsx", **filtros.args()),
    )


def _download(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _report_cells(filtros: Filtros):
    rows = convenios.report_rows(filtros.sede_ids, filtros.desde, filtros.hasta)
    return map(export.convenio_cells, rows)


@bp.get("/reporte.csv")
@require(Action.USE_CONVENIOS)
def reporte_csv():
    """Download the report as CSV for Excel in Spanish, written as the rows are read."""
    checked = _filters()
    if isinstance(checked, Response):
        return checked
    filtros, _form = checked
    body = stream_with_context(export.csv_chunks(export.CONVENIO_COLUMNS, _report_cells(filtros)))
    # No Content-Length (unknown until the end): chunked, and left alone by compression.py.
    response = current_app.response_class(body, content_type=f"{export.CSV_MIME}; charset=utf-8")
    return _download(response, filtros.filename("csv"))


@bp.get("/reporte.xlsx")
@require(Action.USE_CONVENIOS)
def reporte_xlsx():
    """Download the report as an Excel workbook, built on disk row by row and sent from there."""
    checked = _filters()
    if isinstance(checked, Response):
        return checked
    filtros, _form = checked
    # An unnamed temporary file: nothing to delete after sending, or if the client leaves
    # half-way; the disk space comes back when the response closes it.
    target = tempfile.TemporaryFile(prefix="reporte-", suffix=".xlsx")
    try:
        export.write_xlsx(
            target,
            export.CONVENIO_COLUMNS,
            _report_cells(filtros),
            overflow_note="El reporte tiene más filas de las que caben en Excel: descargue el CSV.",
        )
        size = target.tell()
        target.seek(0)
    except BaseException:
        target.close()
        raise
    response = current_app.response_class(
        wrap_file(request.environ, target), mimetype=export.XLSX_MIME, direct_passthrough=True
    )
    response.content_length = size
    return _download(response, filtros.filename("xlsx"))
