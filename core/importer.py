"""Load the Caja's affiliate CSV (SPEC S2): validate every row, then write all or nothing.

``read_rows`` and ``ImportReport`` serve every master-data CSV (a ``Layout``
each); core.convenios_data loads the convenio entities with them. The report
names the line and column of each problem but never a person's data, and
nothing here logs a row.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from peewee import chunked

import models
from core.clock import utcnow
from core.colombia import (
    DATE_ERROR,
    DOCUMENT_TYPES,
    normalize_document,
    normalize_mobile,
    normalize_phone,
    parse_date,
)
from models import Afiliado

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "tipo_documento",
    "numero_documento",
    "primer_nombre",
    "segundo_nombre",
    "primer_apellido",
    "segundo_apellido",
    "fecha_nacimiento",
    "email",
    "celular",
    "telefono",
    "estado",
    "categoria",
    "empresa_nit",
    "empresa_nombre",
    "empresa_estado",
    "fecha_ingreso_empresa",
    "profesion",
    "conyuge_celular",
    "conyuge_profesion",
    "conyuge_cargo",
)
ESTADOS: tuple[str, ...] = ("ACTIVO", "INACTIVO", "RETIRADO", "SUSPENDIDO", "MORA")
CATEGORIAS: tuple[str, ...] = ("A", "B", "C")

# Free text columns: whitespace collapsed, length checked against the schema
# (PostgreSQL enforces varchar lengths, SQLite does not).
_TEXT_COLUMNS = (
    "primer_nombre",
    "segundo_nombre",
    "primer_apellido",
    "segundo_apellido",
    "empresa_nombre",
    "profesion",
    "conyuge_profesion",
    "conyuge_cargo",
)
_REQUIRED = ("primer_nombre", "primer_apellido")
_DATE_COLUMNS = ("fecha_nacimiento", "fecha_ingreso_empresa")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_NIT_SEPARATORS = re.compile(r"[\s.\-]+")
_OLDEST = date(1900, 1, 1)
_DATE_FORMAT = "no es una fecha válida; use AAAA-MM-DD o dd/mm/aaaa."
# 21 columns a row: 40 rows stay under SQLite's historical 999-variable limit.
_INSERT_BATCH = 40
_SELECT_BATCH = 500
_MAX_LISTED = 50


@dataclass
class ImportReport:
    """What an import did: rows accepted, created and updated, and rows rejected."""

    accepted: int = 0
    created: int = 0
    updated: int = 0
    # (line in the file, Spanish reason naming the column); line 1 is the header.
    rejected: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary_lines(self, limit: int = _MAX_LISTED) -> list[str]:
        """Describe the result in Spanish, one line each, listing at most `limit` rejections."""
        lines: list[str] = []
        if self.ok:
            if self.accepted == 0:
                lines.append("El archivo no tiene filas de datos; no se guardó nada.")
            else:
                lines.append(
                    f"Importación completa: {self.accepted} filas aceptadas "
                    f"({self.created} nuevas, {self.updated} actualizadas)."
                )
        else:
            lines.append("Archivo rechazado: no se guardó ningún dato.")
            lines.append(
                f"Filas válidas: {self.accepted}. Filas con errores: {len(self.rejected)}."
            )
            for line, reason in self.rejected[:limit]:
                lines.append(f"Línea {line}: {reason}")
            if len(self.rejected) > limit:
                lines.append(f"… y {len(self.rejected) - limit} errores más.")
        if self.ignored_columns:
            lines.append("Columnas ignoradas: " + ", ".join(self.ignored_columns) + ".")
        return lines


def import_afiliados(path: str | Path) -> ImportReport:
    """Validate a Caja affiliate CSV and upsert every row, or write nothing if any row is bad.

    Raises OSError if the file cannot be read; every problem with its content
    ends up in the report.
    """
    report = ImportReport()
    rows = [row for _, row in read_rows(path, AFILIADOS, report)]
    if report.ok and rows:
        with models.db.atomic():
            report.created, report.updated = upsert_afiliados(rows)
    log.info(
        "import afiliados: %d accepted, %d created, %d updated, %d rejected",
        report.accepted,
        report.created,
        report.updated,
        len(report.rejected),
    )
    return report


@dataclass(frozen=True)
class Layout:
    """What one kind of master-data CSV holds: its columns, how a row is cleaned, its key."""

    columns: tuple[str, ...]
    # values by column -> (clean row, problems as "columna X: …")
    clean: Callable[[dict[str, str]], tuple[dict, list[str]]]
    # A second row with the same key is rejected with duplicate(first line).
    key: Callable[[dict], Hashable]
    duplicate: Callable[[int], str]


def read_rows(path: str | Path, layout: Layout, report: ImportReport) -> list[tuple[int, dict]]:
    """Decode a UTF-8 CSV (BOM or not), check its header and clean each row.

    Returns the good rows with their line numbers and fills report.accepted and
    report.rejected. Raises OSError if the file cannot be read.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        report.rejected.append((line, "el archivo no está en UTF-8; guárdelo como «CSV UTF-8»."))
        return []
    return _parse(text, layout, report)


def _sniff_delimiter(header_line: str) -> str:
    """Pick ';' or ',' by which one the header line uses more."""
    return ";" if header_line.count(";") >= header_line.count(",") and ";" in header_line else ","


def _parse(text: str, layout: Layout, report: ImportReport) -> list[tuple[int, dict]]:
    """Read and validate every row; fill report.accepted and report.rejected."""
    header_line = text.split("\n", 1)[0]
    if not header_line.strip():
        report.rejected.append((1, "el archivo está vacío o no tiene fila de encabezado."))
        return []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(header_line))
    try:
        header = [h.strip().lower() for h in next(reader)]
        index = _check_header(header, layout.columns, report)
        if index is None:
            return []
        rows: list[tuple[int, dict]] = []
        seen: dict[Hashable, int] = {}
        last_line = reader.line_num
        for values in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                report.rejected.append(
                    (
                        line,
                        (
                            f"la fila tiene {len(values)} campos y el encabezado {len(header)}; "
                            "revise el separador y las comillas."
                        ),
                    )
                )
                continue
            row, problems = layout.clean({c: values[i] for c, i in index.items()})
            key = None if problems else layout.key(row)
            if not problems and key in seen:
                problems.append(layout.duplicate(seen[key]))
            if problems:
                report.rejected.append((line, "; ".join(problems)))
                continue
            seen[key] = line
            rows.append((line, row))
    except csv.Error as exc:
        report.rejected.append((reader.line_num, f"el archivo CSV no se puede leer ({exc})."))
        return []
    report.accepted = len(rows)
    return rows


def _check_header(
    header: list[str], columns: tuple[str, ...], report: ImportReport
) -> dict[str, int] | None:
    """Map each column to its position, or reject the file if the header is wrong."""
    missing = [c for c in columns if c not in header]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if missing:
        report.rejected.append((1, f"faltan columnas en el encabezado: {', '.join(missing)}."))
    if repeated:
        report.rejected.append((1, f"columnas repetidas en el encabezado: {', '.join(repeated)}."))
    if missing or repeated:
        return None
    report.ignored_columns = [h or "(sin nombre)" for h in header if h not in columns]
    return {c: header.index(c) for c in columns}


def collapse(value: str) -> str:
    """Trim a text value and collapse its inner whitespace to single spaces."""
    return " ".join((value or "").split())


def _max_length(column: str) -> int:
    return Afiliado._meta.fields[column].max_length


def clean_row(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Normalize one row's values; return the row and its problems ("columna X: …")."""
    problems: list[str] = []
    row: dict = {}

    def problem(column: str, message: str) -> None:
        problems.append(f"columna {column}: {message}")

    tipo = collapse(values.get("tipo_documento", "")).upper()
    if tipo not in DOCUMENT_TYPES:
        if tipo:
            problem(
                "tipo_documento",
                f"«{tipo}» no es un tipo de documento válido ({', '.join(DOCUMENT_TYPES)}).",
            )
        else:
            problem("tipo_documento", "es obligatorio.")
    else:
        try:
            row["numero_documento"] = normalize_document(tipo, values.get("numero_documento", ""))
        except ValueError as exc:
            problem("numero_documento", str(exc))
    row["tipo_documento"] = tipo

    for column in _TEXT_COLUMNS:
        value = collapse(values.get(column, ""))
        if column in _REQUIRED and not value:
            problem(column, "es obligatorio.")
        elif len(value) > _max_length(column):
            problem(column, f"tiene más de {_max_length(column)} caracteres.")
        row[column] = value

    today = utcnow().date()
    for column in _DATE_COLUMNS:
        value = values.get(column, "").strip()
        row[column] = None
        if not value:
            continue
        try:
            parsed = parse_date(value)
        except ValueError as exc:
            problem(column, _DATE_FORMAT if str(exc) == DATE_ERROR else str(exc))
            continue
        if not _OLDEST <= parsed <= today:
            problem(column, "la fecha no puede ser futura ni anterior a 1900.")
            continue
        row[column] = parsed

    email = values.get("email", "").strip().lower()
    if email and (len(email) > _max_length("email") or not _EMAIL.fullmatch(email)):
        problem("email", "no es un correo electrónico válido.")
    row["email"] = email

    for column, normalize in (
        ("celular", normalize_mobile),
        ("conyuge_celular", normalize_mobile),
        ("telefono", normalize_phone),
    ):
        value = values.get(column, "").strip()
        row[column] = ""
        if value:
            try:
                row[column] = normalize(value)
            except ValueError as exc:
                problem(column, str(exc))

    estado = collapse(values.get("estado", "")).upper()
    if not estado:
        problem("estado", f"es obligatorio ({', '.join(ESTADOS)}).")
    elif estado not in ESTADOS:
        problem("estado", f"«{estado[:20]}» no es un estado conocido ({', '.join(ESTADOS)}).")
    row["estado"] = estado

    categoria = collapse(values.get("categoria", "")).upper()
    if categoria and categoria not in CATEGORIAS:
        problem("categoria", "debe ser A, B, C o vacía.")
    row["categoria"] = categoria

    nit = _NIT_SEPARATORS.sub("", values.get("empresa_nit", ""))
    if nit and not (nit.isascii() and nit.isdigit() and 6 <= len(nit) <= 15):
        problem("empresa_nit", "escriba solo números (entre 6 y 15 dígitos).")
    row["empresa_nit"] = nit

    empresa_estado = collapse(values.get("empresa_estado", "")).upper()
    if len(empresa_estado) > _max_length("empresa_estado"):
        problem("empresa_estado", f"tiene más de {_max_length('empresa_estado')} caracteres.")
    row["empresa_estado"] = empresa_estado
    return row, problems


AFILIADOS = Layout(
    COLUMNS,
    clean_row,
    key=lambda row: (row["tipo_documento"], row["numero_documento"]),
    duplicate=lambda line: f"columna numero_documento: el documento ya aparece en la línea {line}.",
)


def upsert_afiliados(rows: Iterable[dict]) -> tuple[int, int]:
    """Insert or update affiliates by (tipo, numero); return (created, updated).

    Rows must be clean (see clean_row) and unique by document; the caller owns
    the transaction. ON CONFLICT … DO UPDATE works on SQLite and PostgreSQL.
    """
    rows = list(rows)
    by_tipo: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_tipo[row["tipo_documento"]].append(row["numero_documento"])
    existing: set[tuple[str, str]] = set()
    for tipo, numeros in by_tipo.items():
        for batch in chunked(numeros, _SELECT_BATCH):
            query = (
                Afiliado.select(Afiliado.numero_documento)
                .where((Afiliado.tipo_documento == tipo) & Afiliado.numero_documento.in_(batch))
                .tuples()
            )
            existing.update((tipo, numero) for (numero,) in query)

    now = utcnow()
    key = [Afiliado.tipo_documento, Afiliado.numero_documento]
    preserve = [Afiliado._meta.fields[c] for c in COLUMNS[2:]] + [Afiliado.updated_at]
    for batch in chunked(rows, _INSERT_BATCH):
        data = [{**{c: row[c] for c in COLUMNS}, "updated_at": now} for row in batch]
        Afiliado.insert_many(data).on_conflict(conflict_target=key, preserve=preserve).execute()
    updated = sum(1 for row in rows if (row["tipo_documento"], row["numero_documento"]) in existing)
    return len(rows) - updated, updated
