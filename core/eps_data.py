"""Load the EPS's master data (SPEC S2): its IPS, its affiliates with their núcleo familiar,
and their authorizations, each CSV all or nothing.

Load order matters: ``import ips`` first (affiliates and authorizations name
an IPS by NIT), then ``import eps``, then ``import autorizaciones`` (each one
names an affiliate already loaded).

The núcleo familiar is one level deep. A row with parentesco COTIZANTE (or
CABEZA) is the head of a family and has empty cabeza columns; every other row
is a beneficiary and names its head by cabeza_tipo_documento +
cabeza_numero_documento. That head must be a cotizante in the same file or, if
the file leaves it out, in the database; a beneficiary's head is never another
beneficiary, and nobody is their own head. A cotizante the file turns into a
beneficiary must not keep beneficiaries in the database that the file does not
move.

As in core.importer, a rejection names the line and the column, never the
person's data, and nothing here logs a row.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
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
from core.convenios_data import normalize_municipio, normalize_nit
from core.importer import ImportReport, Layout, collapse, read_rows
from models import Autorizacion, EpsAfiliado, Ips

log = logging.getLogger(__name__)

IPS_COLUMNS: tuple[str, ...] = ("nit", "nombre", "email", "telefono", "direccion", "municipio")
EPS_COLUMNS: tuple[str, ...] = (
    "tipo_documento",
    "numero_documento",
    "primer_nombre",
    "segundo_nombre",
    "primer_apellido",
    "segundo_apellido",
    "fecha_nacimiento",
    "fecha_expedicion",
    "sexo",
    "regimen",
    "estado",
    "celular",
    "email",
    "direccion",
    "municipio",
    "ips_nit",
    "cabeza_tipo_documento",
    "cabeza_numero_documento",
    "parentesco",
)
AUTORIZACION_COLUMNS: tuple[str, ...] = (
    "numero",
    "tipo_documento",
    "numero_documento",
    "codigo_servicio",
    "nombre_servicio",
    "fecha",
    "estado",
    "ips_nit",
)

# The values each coded column takes (the stored code first, then its name).
ESTADOS: dict[str, str] = {
    "ACTIVO": "Activo",
    "INACTIVO": "Inactivo",
    "SUSPENDIDO": "Suspendido",
    "RETIRADO": "Retirado",
    "FALLECIDO": "Fallecido",
}
REGIMENES: dict[str, str] = {"CONTRIBUTIVO": "Contributivo", "SUBSIDIADO": "Subsidiado"}
SEXOS: dict[str, str] = {"F": "Femenino", "M": "Masculino"}
PARENTESCOS: dict[str, str] = {
    "COTIZANTE": "Cotizante (cabeza de familia)",
    "CONYUGE": "Cónyuge o compañero(a) permanente",
    "HIJO": "Hijo(a)",
    "HIJASTRO": "Hijastro(a)",
    "PADRE": "Padre",
    "MADRE": "Madre",
    "NIETO": "Nieto(a)",
    "HERMANO": "Hermano(a)",
}
ESTADOS_AUTORIZACION: dict[str, str] = {
    "PENDIENTE": "Pendiente",
    "APROBADA": "Aprobada",
    "NEGADA": "Negada",
    "ANULADA": "Anulada",
    "VENCIDA": "Vencida",
}
# Other ways an export writes a value (compared without accents, in capitals).
_PARENTESCO_ALIASES = {
    "CABEZA": "COTIZANTE",
    "CABEZA DE FAMILIA": "COTIZANTE",
    "TITULAR": "COTIZANTE",
    "ESPOSO": "CONYUGE",
    "ESPOSA": "CONYUGE",
    "COMPANERO": "CONYUGE",
    "COMPANERA": "CONYUGE",
    "COMPANERO PERMANENTE": "CONYUGE",
    "COMPANERA PERMANENTE": "CONYUGE",
    "HIJA": "HIJO",
    "HIJASTRA": "HIJASTRO",
    "NIETA": "NIETO",
    "HERMANA": "HERMANO",
}
_SEXO_ALIASES = {"FEMENINO": "F", "MASCULINO": "M"}
_REGIMEN_ALIASES = {"C": "CONTRIBUTIVO", "S": "SUBSIDIADO"}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]*")
_OLDEST = date(1900, 1, 1)
_DATE_FORMAT = "no es una fecha válida; use AAAA-MM-DD o dd/mm/aaaa."
# Rows a statement: under SQLite's historical limit of 999 variables (about 20 values a row).
_INSERT_BATCH = 45
_SELECT_BATCH = 500

Key = tuple[str, str]


# --- cleaning one row ---------------------------------------------------------


def _plain(value: str) -> str:
    """Capitals without accents or inner runs of spaces, to compare a coded value."""
    decomposed = unicodedata.normalize("NFKD", collapse(value).upper())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _Row:
    """Collect one row's clean values and its problems ("columna X: …")."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.row: dict = {}
        self.problems: list[str] = []

    def problem(self, column: str, message: str) -> None:
        self.problems.append(f"columna {column}: {message}")

    def text(self, column: str, limit: int, required: bool = False, key: str = "") -> str:
        value = collapse(self.values.get(column, ""))
        if required and not value:
            self.problem(column, "es obligatorio.")
        elif len(value) > limit:
            self.problem(column, f"tiene más de {limit} caracteres.")
        self.row[key or column] = value
        return value

    def code(self, column: str, allowed: dict[str, str], aliases: dict[str, str]) -> str:
        """A value of a closed list (its aliases accepted), or a problem naming the list."""
        raw = _plain(self.values.get(column, ""))
        value = aliases.get(raw, raw)
        if value not in allowed:
            listed = ", ".join(allowed)
            if raw:
                self.problem(column, f"«{raw[:20]}» no es un valor válido ({listed}).")
            else:
                self.problem(column, f"es obligatorio ({listed}).")
        self.row[column] = value
        return value

    def document(self, tipo_column: str, numero_column: str, required: bool = True) -> Key | None:
        tipo = collapse(self.values.get(tipo_column, "")).upper()
        numero = self.values.get(numero_column, "").strip()
        if not required and not tipo and not numero:
            return None
        if tipo not in DOCUMENT_TYPES:
            if tipo:
                self.problem(
                    tipo_column,
                    f"«{tipo[:4]}» no es un tipo de documento válido ({', '.join(DOCUMENT_TYPES)}).",
                )
            else:
                self.problem(tipo_column, "es obligatorio.")
            return None
        try:
            return tipo, normalize_document(tipo, numero)
        except ValueError as exc:
            self.problem(numero_column, str(exc))
            return None

    def day(self, column: str, required: bool, earliest: date | None = None) -> date | None:
        value = self.values.get(column, "").strip()
        self.row[column] = None
        if not value:
            if required:
                self.problem(column, "es obligatorio (AAAA-MM-DD o dd/mm/aaaa).")
            return None
        try:
            parsed = parse_date(value)
        except ValueError as exc:
            self.problem(column, _DATE_FORMAT if str(exc) == DATE_ERROR else str(exc))
            return None
        if not _OLDEST <= parsed <= utcnow().date():
            self.problem(column, "la fecha no puede ser futura ni anterior a 1900.")
            return None
        if earliest and parsed < earliest:
            self.problem(column, "la fecha es anterior a la fecha de nacimiento.")
            return None
        self.row[column] = parsed
        return parsed

    def normalized(self, column: str, normalize, key: str = "") -> str:
        """An optional value through a core.colombia-style normalizer (Spanish ValueError)."""
        value = self.values.get(column, "").strip()
        result = ""
        if value:
            try:
                result = normalize(value)
            except ValueError as exc:
                self.problem(column, str(exc))
        self.row[key or column] = result
        return result

    def email(self, limit: int) -> None:
        email = self.values.get("email", "").strip().lower()
        if email and (len(email) > limit or not _EMAIL.fullmatch(email)):
            self.problem("email", "no es un correo electrónico válido.")
        self.row["email"] = email

    def done(self) -> tuple[dict, list[str]]:
        return self.row, self.problems


def clean_ips(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Normalize one IPS row; return it and its problems."""
    r = _Row(values)
    try:
        r.row["nit"] = normalize_nit(values.get("nit", ""))
    except ValueError as exc:
        r.problem("nit", str(exc))
        r.row["nit"] = ""
    r.text("nombre", Ips.nombre.max_length, required=True)
    r.email(Ips.email.max_length)
    r.normalized("telefono", normalize_phone)
    r.text("direccion", Ips.direccion.max_length)
    r.normalized("municipio", normalize_municipio)
    return r.done()


def clean_eps(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Normalize one EPS affiliate row and check its own núcleo columns; return it and its problems.

    What needs other rows or the database (the cabeza exists and is a
    cotizante, the IPS is loaded) is checked by load_eps.
    """
    r = _Row(values)
    key = r.document("tipo_documento", "numero_documento")
    r.row["tipo_documento"], r.row["numero_documento"] = key or ("", "")
    for column in ("primer_nombre", "segundo_nombre", "primer_apellido", "segundo_apellido"):
        limit = EpsAfiliado._meta.fields[column].max_length
        r.text(column, limit, required=column in ("primer_nombre", "primer_apellido"))
    born = r.day("fecha_nacimiento", required=True)
    r.day("fecha_expedicion", required=False, earliest=born)
    r.code("sexo", SEXOS, _SEXO_ALIASES)
    r.code("regimen", REGIMENES, _REGIMEN_ALIASES)
    r.code("estado", ESTADOS, {})
    r.normalized("celular", normalize_mobile)
    r.email(EpsAfiliado.email.max_length)
    r.text("direccion", EpsAfiliado.direccion.max_length)
    r.normalized("municipio", normalize_municipio)
    r.normalized("ips_nit", normalize_nit)

    parentesco = r.code("parentesco", PARENTESCOS, _PARENTESCO_ALIASES)
    cabeza = r.document("cabeza_tipo_documento", "cabeza_numero_documento", required=False)
    r.row["cabeza"] = cabeza
    raw_cabeza = (
        values.get("cabeza_tipo_documento", "").strip()
        or values.get("cabeza_numero_documento", "").strip()
    )
    if parentesco == EpsAfiliado.COTIZANTE:
        if cabeza is not None and cabeza == key:
            # The head repeating its own document: the same as leaving it empty.
            r.row["cabeza"] = None
        elif raw_cabeza:
            r.problem(
                "cabeza_numero_documento",
                "un cotizante es la cabeza de su núcleo familiar: deje vacías las columnas "
                "de la cabeza o use el parentesco del beneficiario.",
            )
    elif parentesco in PARENTESCOS:
        if not raw_cabeza:
            r.problem(
                "cabeza_numero_documento",
                "un beneficiario debe indicar el documento de su cotizante (cabeza de familia).",
            )
        elif cabeza is not None and cabeza == key:
            r.problem(
                "cabeza_numero_documento", "una persona no puede ser su propia cabeza de familia."
            )
    return r.done()


def clean_autorizacion(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Normalize one authorization row; return it and its problems."""
    r = _Row(values)
    for column, limit in (
        ("numero", Autorizacion.numero.max_length),
        ("codigo_servicio", Autorizacion.codigo_servicio.max_length),
    ):
        value = _plain(values.get(column, "")).replace(" ", "")
        if not value:
            r.problem(column, "es obligatorio.")
        elif len(value) > limit or not _CODE.fullmatch(value):
            r.problem(column, f"lleva letras, números o guiones, sin espacios (hasta {limit}).")
        r.row[column] = value
    r.row["afiliado"] = r.document("tipo_documento", "numero_documento")
    r.text("nombre_servicio", Autorizacion.nombre_servicio.max_length, required=True)
    r.day("fecha", required=True)
    r.code("estado", ESTADOS_AUTORIZACION, {})
    r.normalized("ips_nit", normalize_nit)
    return r.done()


IPS = Layout(
    IPS_COLUMNS,
    clean_ips,
    key=lambda row: row["nit"],
    duplicate=lambda line: f"columna nit: la IPS ya aparece en la línea {line}.",
)
EPS = Layout(
    EPS_COLUMNS,
    clean_eps,
    key=lambda row: (row["tipo_documento"], row["numero_documento"]),
    duplicate=lambda line: f"columna numero_documento: el documento ya aparece en la línea {line}.",
)
AUTORIZACIONES = Layout(
    AUTORIZACION_COLUMNS,
    clean_autorizacion,
    key=lambda row: row["numero"],
    duplicate=lambda line: f"columna numero: la autorización ya aparece en la línea {line}.",
)


# --- the imports -----------------------------------------------------------------


def import_ips(path: str | Path) -> ImportReport:
    """Validate an IPS CSV and upsert it by NIT, or write nothing if a row is bad."""
    return _run("ips", path, IPS, load_ips)


def import_eps(path: str | Path) -> ImportReport:
    """Validate an EPS affiliate CSV with its núcleos familiares and upsert it, or write nothing."""
    return _run("eps", path, EPS, load_eps)


def import_autorizaciones(path: str | Path) -> ImportReport:
    """Validate an authorization CSV and upsert it by número, or write nothing if a row is bad."""
    return _run("autorizaciones", path, AUTORIZACIONES, load_autorizaciones)


def _run(name: str, path, layout: Layout, load) -> ImportReport:
    report = ImportReport()
    load(read_rows(path, layout, report), report)
    log.info(
        "import %s: %d accepted, %d created, %d updated, %d rejected",
        name,
        report.accepted,
        report.created,
        report.updated,
        len(report.rejected),
    )
    return report


def _finish(rows: list[dict], report: ImportReport, upsert) -> None:
    """Count what passed the cross-row checks and write it all, only if nothing was rejected."""
    report.rejected.sort()
    report.accepted = len(rows)
    if report.ok and rows:
        with models.db.atomic():
            report.created, report.updated = upsert(rows)


def _ips_ids(nits: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for batch in chunked(sorted(set(nits)), _SELECT_BATCH):
        found.update(Ips.select(Ips.nit, Ips.id).where(Ips.nit.in_(batch)).tuples())
    return found


def _people(keys: Iterable[Key]) -> dict[Key, tuple[int, int | None]]:
    """Return (id, cabeza id) of the EPS affiliates with these documents."""
    by_tipo: dict[str, set[str]] = defaultdict(set)
    for tipo, numero in keys:
        by_tipo[tipo].add(numero)
    found: dict[Key, tuple[int, int | None]] = {}
    for tipo, numeros in by_tipo.items():
        for batch in chunked(sorted(numeros), _SELECT_BATCH):
            query = (
                EpsAfiliado.select(EpsAfiliado.numero_documento, EpsAfiliado.id, EpsAfiliado.cabeza)
                .where(
                    (EpsAfiliado.tipo_documento == tipo) & EpsAfiliado.numero_documento.in_(batch)
                )
                .tuples()
            )
            found.update(((tipo, numero), (pk, cabeza)) for numero, pk, cabeza in query)
    return found


def _missing_ips(row: dict, known: dict[str, int]) -> list[str]:
    if row["ips_nit"] and row["ips_nit"] not in known:
        return ["columna ips_nit: no hay una IPS con ese NIT; cárguela antes con «import ips»."]
    return []


def _keep(line: int, row: dict, problems: list[str], rows: list[dict], report) -> None:
    """Keep a row that passed the cross-row checks, or reject its line with every reason."""
    if problems:
        report.rejected.append((line, "; ".join(problems)))
    else:
        rows.append(row)


def load_ips(lines_rows: list[tuple[int, dict]], report: ImportReport) -> None:
    """Write clean IPS rows (clean_ips), all or nothing."""
    _finish([row for _, row in lines_rows], report, upsert_ips)


def upsert_ips(rows: list[dict]) -> tuple[int, int]:
    """Insert or update IPS by NIT; return (created, updated). The caller owns the transaction."""
    known = _ips_ids(row["nit"] for row in rows)
    now = utcnow()
    preserve = [Ips._meta.fields[c] for c in IPS_COLUMNS[1:]] + [Ips.updated_at]
    for batch in chunked(rows, _INSERT_BATCH):
        data = [{c: row[c] for c in IPS_COLUMNS} | {"updated_at": now} for row in batch]
        Ips.insert_many(data).on_conflict(conflict_target=[Ips.nit], preserve=preserve).execute()
    return len(rows) - len(known), len(known)


def load_eps(lines_rows: list[tuple[int, dict]], report: ImportReport) -> None:
    """Check the núcleos familiares and the IPS against the file and the database, then write.

    lines_rows are clean_eps rows, unique by document.
    """
    in_file = {(row["tipo_documento"], row["numero_documento"]): row for _, row in lines_rows}
    outside = {row["cabeza"] for _, row in lines_rows if row["cabeza"]} - set(in_file)
    stored = _people(outside)
    ips = _ips_ids(row["ips_nit"] for _, row in lines_rows if row["ips_nit"])
    # Cotizantes in the database that this file makes beneficiaries: their own
    # beneficiaries left out of the file would hang from a beneficiary.
    demoted = _people(
        key for key, row in in_file.items() if row["parentesco"] != EpsAfiliado.COTIZANTE
    )
    orphans = _dependents_outside({pk for pk, _ in demoted.values()}, set(in_file))

    rows: list[dict] = []
    for line, row in lines_rows:
        key = (row["tipo_documento"], row["numero_documento"])
        problems = _missing_ips(row, ips)
        cabeza = row["cabeza"]
        column = "columna cabeza_numero_documento: "
        if cabeza in in_file:
            if in_file[cabeza]["parentesco"] != EpsAfiliado.COTIZANTE:
                problems.append(
                    column + "la cabeza indicada es beneficiaria en este archivo; "
                    "la cabeza de familia debe ser un cotizante."
                )
        elif cabeza is not None:
            if cabeza not in stored:
                problems.append(
                    column + "la cabeza de familia no está en el archivo ni en los datos "
                    "ya cargados."
                )
            elif stored[cabeza][1] is not None:
                problems.append(
                    column + "la cabeza indicada es beneficiaria en los datos ya cargados; "
                    "la cabeza de familia debe ser un cotizante."
                )
        if key in demoted and demoted[key][0] in orphans:
            problems.append(
                "columna parentesco: esta persona es cabeza de un núcleo familiar con "
                "beneficiarios que el archivo no incluye; asígneles antes otra cabeza."
            )
        _keep(line, row, problems, rows, report)
    _finish(rows, report, upsert_eps)


def _dependents_outside(cabeza_ids: set[int], in_file: set[Key]) -> set[int]:
    """Return which of these affiliates have beneficiaries stored that the file leaves out."""
    found: set[int] = set()
    for batch in chunked(sorted(cabeza_ids), _SELECT_BATCH):
        query = (
            EpsAfiliado.select(
                EpsAfiliado.tipo_documento, EpsAfiliado.numero_documento, EpsAfiliado.cabeza
            )
            .where(EpsAfiliado.cabeza.in_(batch))
            .tuples()
        )
        found.update(cabeza for tipo, numero, cabeza in query if (tipo, numero) not in in_file)
    return found


_EPS_FIELDS = tuple(c for c in EPS_COLUMNS if c not in ("ips_nit",) and "cabeza" not in c)


def upsert_eps(rows: list[dict]) -> tuple[int, int]:
    """Insert or update affiliates by document, then link each núcleo; return (created, updated).

    Rows must have passed load_eps's checks; the caller owns the transaction.
    Written in two steps because a beneficiary may come before its cotizante.
    """
    keys = [(row["tipo_documento"], row["numero_documento"]) for row in rows]
    existing = set(_people(keys))
    ips = _ips_ids(row["ips_nit"] for row in rows if row["ips_nit"])
    now = utcnow()
    preserve = [EpsAfiliado._meta.fields[c] for c in _EPS_FIELDS[2:]] + [
        EpsAfiliado.ips,
        EpsAfiliado.updated_at,
    ]
    for batch in chunked(rows, _INSERT_BATCH):
        data = [
            {c: row[c] for c in _EPS_FIELDS} | {"ips": ips.get(row["ips_nit"]), "updated_at": now}
            for row in batch
        ]
        EpsAfiliado.insert_many(data).on_conflict(
            conflict_target=[EpsAfiliado.tipo_documento, EpsAfiliado.numero_documento],
            preserve=preserve,
        ).execute()

    ids = {
        k: pk
        for k, (pk, _) in _people(set(keys) | {r["cabeza"] for r in rows if r["cabeza"]}).items()
    }
    by_cabeza: dict[int | None, list[int]] = defaultdict(list)
    for key, row in zip(keys, rows, strict=True):
        by_cabeza[ids[row["cabeza"]] if row["cabeza"] else None].append(ids[key])
    for cabeza, members in by_cabeza.items():
        for batch in chunked(members, _SELECT_BATCH):
            EpsAfiliado.update(cabeza=cabeza).where(EpsAfiliado.id.in_(batch)).execute()
    updated = sum(1 for key in keys if key in existing)
    return len(rows) - updated, updated


def load_autorizaciones(lines_rows: list[tuple[int, dict]], report: ImportReport) -> None:
    """Check that each authorization's affiliate and IPS are loaded, then write all or nothing."""
    people = _people(row["afiliado"] for _, row in lines_rows)
    ips = _ips_ids(row["ips_nit"] for _, row in lines_rows if row["ips_nit"])
    rows: list[dict] = []
    for line, row in lines_rows:
        problems = _missing_ips(row, ips)
        if row["afiliado"] not in people:
            problems.append(
                "columna numero_documento: no hay un afiliado de la EPS con ese documento; "
                "cárguelo antes con «import eps»."
            )
        else:
            row = row | {
                "afiliado_id": people[row["afiliado"]][0],
                "ips_id": ips.get(row["ips_nit"]),
            }
        _keep(line, row, problems, rows, report)
    _finish(rows, report, upsert_autorizaciones)


def upsert_autorizaciones(rows: list[dict]) -> tuple[int, int]:
    """Insert or update authorizations by número; return (created, updated).

    Rows carry afiliado_id and ips_id (load_autorizaciones); the caller owns the transaction.
    """
    numeros = [row["numero"] for row in rows]
    existing: set[str] = set()
    for batch in chunked(numeros, _SELECT_BATCH):
        query = Autorizacion.select(Autorizacion.numero).where(Autorizacion.numero.in_(batch))
        existing.update(query.scalars())
    now = utcnow()
    fields = ("numero", "codigo_servicio", "nombre_servicio", "fecha", "estado")
    for batch in chunked(rows, _INSERT_BATCH):
        data = [
            {c: row[c] for c in fields}
            | {"afiliado": row["afiliado_id"], "ips": row["ips_id"]}
            | {"created_at": now, "updated_at": now}
            for row in batch
        ]
        Autorizacion.insert_many(data).on_conflict(
            conflict_target=[Autorizacion.numero],
            preserve=[
                Autorizacion.afiliado,
                Autorizacion.codigo_servicio,
                Autorizacion.nombre_servicio,
                Autorizacion.fecha,
                Autorizacion.estado,
                Autorizacion.ips,
                Autorizacion.updated_at,
            ],
        ).execute()
    return len(rows) - len(existing), len(existing)
