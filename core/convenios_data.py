"""Convenio entities and their sedes (SPEC S1, S2, H6): import, demo set, back office, DIVIPOLA.

One CSV row is one sede; the entity's columns repeat on each of its sedes.
Entities are upserted by NIT and sedes by (entity, código). A sede that a
later file leaves out stays as it is (neither deleted nor deactivated): the
Caja turns a sede off with ``sede_activa = NO`` or in the back office, so a
partial file never takes a front desk away from its users.

The back office changes one entity or sede at a time through the services
below, each one transaction with its audit row (before → after).
"""

from __future__ import annotations

import csv
import enum
import functools
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peewee import IntegrityError, Select, chunked, fn
from stdnum.co import nit as stdnum_nit

import models
from core import audit
from core.clock import utcnow
from core.colombia import normalize_document
from core.importer import ImportReport, Layout, collapse, read_rows
from models import Entidad, Sede

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "entidad_nit",
    "entidad_nombre",
    "entidad_estado",
    "sede_codigo",
    "sede_nombre",
    "municipio",
    "direccion",
    "sede_activa",
)
ESTADOS: tuple[str, ...] = (Entidad.ACTIVA, Entidad.INACTIVA)
_YES, _NO = frozenset({"SI", "SÍ"}), frozenset({"NO"})
_CODIGO = re.compile(r"[A-Z0-9][A-Z0-9_-]*")
# Six values a sede row: 150 rows stay under SQLite's historical 999-variable limit.
_INSERT_BATCH = 150
_SELECT_BATCH = 500

DIVIPOLA_PATH = Path(__file__).parent / "data" / "divipola.csv"


# --- DIVIPOLA ---------------------------------------------------------------


@dataclass(frozen=True)
class Municipio:
    """One DIVIPOLA municipality (or island, or non-municipalised area)."""

    codigo: str  # 5 digits, the first two the department's
    nombre: str
    departamento_codigo: str
    departamento: str

    @property
    def label(self) -> str:
        return f"{self.nombre} ({self.departamento})"


def _dane_name(name: str) -> str:
    """Undo DANE's export, which wrote each comma in a name as a period."""
    return collapse(name).replace(". ", ", ")


def _sort_key(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@functools.cache
def municipios() -> dict[str, Municipio]:
    """Return every DIVIPOLA municipality by its 5-digit code, read once from core/data."""
    with DIVIPOLA_PATH.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)  # header
        found = {}
        for dep_code, code, dep_name, name, _kind in reader:
            found[code] = Municipio(code, _dane_name(name), dep_code, _dane_name(dep_name))
    return found


@functools.cache
def departamentos() -> tuple[tuple[str, tuple[Municipio, ...]], ...]:
    """Return (department name, its municipalities) pairs, both sorted by name.

    Grouped by the code, not by the row order: the file lists one Cauca town
    among Boyacá's.
    """
    groups: dict[str, list[Municipio]] = {}
    for m in municipios().values():
        groups.setdefault(m.departamento_codigo, []).append(m)
    ordered = sorted(groups.values(), key=lambda ms: _sort_key(ms[0].departamento))
    return tuple(
        (ms[0].departamento, tuple(sorted(ms, key=lambda m: _sort_key(m.nombre)))) for ms in ordered
    )


def municipio_label(codigo: str) -> str:
    """Show a municipality code as "NAME (DEPARTMENT)", or the code if unknown."""
    found = municipios().get(codigo)
    return found.label if found else codigo


# --- Values shared by the import and the back-office forms --------------------


def normalize_nit(value: str) -> str:
    """Return a NIT's digits with its DIAN check digit, or raise a Spanish ValueError.

    The check digit may come after a "-" or stuck to the number; dots and
    spaces are ignored (``890.102.044-1``, ``8901020441``).
    """
    if not (value or "").strip():
        raise ValueError("Escriba el NIT con su dígito de verificación.")
    nit = normalize_document("NI", value)
    if len(nit) > Entidad.nit.max_length:
        raise ValueError(
            f"El NIT debe tener como máximo {Entidad.nit.max_length} dígitos, "
            "incluido el dígito de verificación."
        )
    return nit


def normalize_codigo(value: str) -> str:
    """Return a sede code in upper case, or raise a Spanish ValueError."""
    codigo = collapse(value).upper()
    if not codigo:
        raise ValueError("Escriba el código de la sede.")
    limit = Sede.codigo.max_length
    if len(codigo) > limit or not _CODIGO.fullmatch(codigo):
        raise ValueError(
            f"El código de la sede lleva letras, números, guiones o guiones bajos, "
            f"sin espacios (hasta {limit})."
        )
    return codigo


def normalize_municipio(value: str) -> str:
    """Return a DIVIPOLA municipality code, or raise a Spanish ValueError."""
    code = (value or "").strip()
    # A spreadsheet that took the column for a number dropped the leading zero
    # of departments 05 and 08 (Antioquia, Atlántico): 8001 is Barranquilla.
    if len(code) == 4 and code.isascii() and code.isdigit():
        code = "0" + code
    if not code:
        raise ValueError("Indique el municipio (código DIVIPOLA de 5 dígitos).")
    if not (len(code) == 5 and code.isascii() and code.isdigit()):
        raise ValueError(f"«{code[:12]}» no es un código DIVIPOLA de municipio (5 dígitos).")
    if code not in municipios():
        raise ValueError(f"El código {code} no es un municipio de la DIVIPOLA.")
    return code


# --- The CSV import -------------------------------------------------------------


@dataclass
class ConveniosReport(ImportReport):
    """An ImportReport whose rows are sedes, with the entities' counts beside them."""

    entidades_created: int = 0
    entidades_updated: int = 0

    def summary_lines(self, limit: int = 50) -> list[str]:
        """Describe the result in Spanish: sedes as rows, then the entities written."""
        lines = super().summary_lines(limit)
        if self.ok and self.accepted:
            lines.insert(
                1,
                f"Entidades: {self.entidades_created} nuevas, "
                f"{self.entidades_updated} actualizadas.",
            )
        return lines


def _text(values: dict[str, str], column: str, limit: int, problems: list[str]) -> str:
    value = collapse(values.get(column, ""))
    if len(value) > limit:
        problems.append(f"columna {column}: tiene más de {limit} caracteres.")
    return value


def clean_row(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Normalize one CSV row (a sede and its entity); return it and its problems."""
    problems: list[str] = []
    row: dict = {}

    for column, key, normalize in (
        ("entidad_nit", "nit", normalize_nit),
        ("sede_codigo", "codigo", normalize_codigo),
        ("municipio", "municipio", normalize_municipio),
    ):
        try:
            row[key] = normalize(values.get(column, ""))
        except ValueError as exc:
            problems.append(f"columna {column}: {exc}")
            row[key] = ""

    for column, key, limit in (
        ("entidad_nombre", "nombre", Entidad.nombre.max_length),
        ("sede_nombre", "sede_nombre", Sede.nombre.max_length),
    ):
        row[key] = _text(values, column, limit, problems)
        if not row[key]:
            problems.append(f"columna {column}: es obligatorio.")
    row["direccion"] = _text(values, "direccion", Sede.direccion.max_length, problems)

    estado = collapse(values.get("entidad_estado", "")).upper()
    if estado not in ESTADOS:
        shown = f"«{estado[:20]}» no es un estado conocido" if estado else "es obligatorio"
        problems.append(f"columna entidad_estado: {shown} ({', '.join(ESTADOS)}).")
    row["estado"] = estado

    activa = collapse(values.get("sede_activa", "")).upper()
    if activa not in _YES | _NO:
        problems.append("columna sede_activa: escriba SI o NO.")
    row["activa"] = activa in _YES
    return row, problems


LAYOUT = Layout(
    COLUMNS,
    clean_row,
    key=lambda row: (row["nit"], row["codigo"]),
    duplicate=lambda line: (
        f"columna sede_codigo: la sede ya aparece en la línea {line} con el mismo NIT."
    ),
)


def import_convenios(path: str | Path) -> ConveniosReport:
    """Validate a convenio entities-and-sedes CSV and upsert it, or write nothing if a row is bad.

    Entities by NIT, sedes by (entity, código); a sede missing from the file is
    left as it is. Raises OSError if the file cannot be read.
    """
    report = ConveniosReport()
    _load(read_rows(path, LAYOUT, report), report)
    log.info(
        "import convenios: %d accepted, %d created, %d updated, %d rejected",
        report.accepted,
        report.created,
        report.updated,
        len(report.rejected),
    )
    return report


def _load(lines_rows: list[tuple[int, dict]], report: ConveniosReport) -> None:
    """Check that an entity reads the same on all its rows, then write all or nothing."""
    first: dict[str, tuple[int, dict]] = {}
    rows: list[dict] = []
    for line, row in lines_rows:
        seen_line, seen = first.setdefault(row["nit"], (line, row))
        differ = [
            column
            for column, key in (("entidad_nombre", "nombre"), ("entidad_estado", "estado"))
            if row[key] != seen[key]
        ]
        if differ:
            report.rejected.append(
                (
                    line,
                    f"columna {differ[0]}: la entidad de este NIT dice otra cosa en la "
                    f"línea {seen_line}; cada fila de una entidad debe repetir sus datos.",
                )
            )
            continue
        rows.append(row)
    report.rejected.sort()
    report.accepted = len(rows)
    if report.ok and rows:
        with models.db.atomic():
            counts = upsert_convenios(rows)
        report.entidades_created, report.entidades_updated, report.created, report.updated = counts


def upsert_convenios(rows: Iterable[dict]) -> tuple[int, int, int, int]:
    """Insert or update entities by NIT and sedes by (entity, código).

    Rows must be clean (clean_row) and consistent per NIT; the caller owns the
    transaction. Returns (entities created, updated, sedes created, updated).
    """
    rows = list(rows)
    entities = {row["nit"]: row for row in rows}
    nits = list(entities)
    known: dict[str, int] = {}
    for batch in chunked(nits, _SELECT_BATCH):
        query = Entidad.select(Entidad.nit, Entidad.id).where(Entidad.nit.in_(batch)).tuples()
        known.update(query)

    now = utcnow()
    for batch in chunked(nits, _INSERT_BATCH):
        data = [
            {"nit": n, "nombre": entities[n]["nombre"], "estado": entities[n]["estado"]}
            | {"updated_at": now}
            for n in batch
        ]
        Entidad.insert_many(data).on_conflict(
            conflict_target=[Entidad.nit],
            preserve=[Entidad.nombre, Entidad.estado, Entidad.updated_at],
        ).execute()
    ids = dict(known)
    new_nits = [n for n in nits if n not in known]
    for batch in chunked(new_nits, _SELECT_BATCH):
        ids.update(Entidad.select(Entidad.nit, Entidad.id).where(Entidad.nit.in_(batch)).tuples())

    existing: set[tuple[int, str]] = set()
    for batch in chunked(list(known.values()), _SELECT_BATCH):
        query = Sede.select(Sede.entidad, Sede.codigo).where(Sede.entidad.in_(batch)).tuples()
        existing.update(query)
    for batch in chunked(rows, _INSERT_BATCH):
        data = [
            {
                "entidad": ids[row["nit"]],
                "codigo": row["codigo"],
                "nombre": row["sede_nombre"],
                "municipio": row["municipio"],
                "direccion": row["direccion"],
                "activa": row["activa"],
            }
            for row in batch
        ]
        Sede.insert_many(data).on_conflict(
            conflict_target=[Sede.entidad, Sede.codigo],
            preserve=[Sede.nombre, Sede.municipio, Sede.direccion, Sede.activa],
        ).execute()
    sedes_updated = sum(1 for row in rows if (ids[row["nit"]], row["codigo"]) in existing)
    return (
        len(nits) - len(known),
        len(known),
        len(rows) - sedes_updated,
        sedes_updated,
    )


# --- Demo data --------------------------------------------------------------------


def _demo_nit(base: str) -> str:
    """Write a fictitious NIT as a person would, with its DIAN check digit after a dash."""
    return f"{base}-{stdnum_nit.calc_check_digit(base)}"


# (NIT base, name, estado, [(código, sede, municipio, dirección, activa)]). Made-up
# businesses in the Caja's region; the NIT bases are not real companies'.
_DEMO_ENTIDADES: tuple[tuple[str, str, str, tuple[tuple[str, str, str, str, str], ...]], ...] = (
    (
        "901234567",
        "Gimnasio Brío Caribe S.A.S.",
        "ACTIVA",
        (
            ("BRIO-01", "Sede Norte", "08001", "Carrera 53 # 82-110", "SI"),
            ("BRIO-02", "Sede Soledad", "08758", "Calle 30 # 19-45", "SI"),
            ("BRIO-03", "Sede Rodadero", "47001", "Carrera 2 # 11-20", "SI"),
        ),
    ),
    (
        "900876543",
        "Colegio Los Almendros del Caribe",
        "ACTIVA",
        (
            ("ALM-CTG", "Sede Manga", "13001", "Avenida Jiménez # 24-15", "SI"),
            ("ALM-TUR", "Sede Turbaco", "13836", "Calle Real # 14-60", "SI"),
        ),
    ),
    (
        "901555210",
        "Almacenes El Trébol Costeño Ltda.",
        "ACTIVA",
        (
            ("TR-MON", "Almacén Montería Centro", "23001", "Calle 32 # 4-27", "SI"),
            ("TR-SIN", "Almacén Sincelejo", "70001", "Carrera 19 # 22-08", "SI"),
            ("TR-VAL", "Almacén Valledupar", "20001", "Calle 16 # 9-40", "SI"),
            ("TR-LOR", "Almacén Lorica", "23417", "Carrera 20 # 3-15", "NO"),
        ),
    ),
    (
        "900432198",
        "Centro Recreacional Las Palmeras de la Costa",
        "ACTIVA",
        (
            ("PALM-MAL", "Parque Malambo", "08433", "Kilómetro 3 vía Caracolí", "SI"),
            ("PALM-RIO", "Club Riohacha", "44001", "Calle 1 # 15-30, Malecón", "SI"),
        ),
    ),
    (
        "800765432",
        "Piscinas y Spa El Manantial S.A.S.",
        "INACTIVA",
        (("MAN-01", "Sede Ciénaga", "47189", "Carrera 17 # 8-42", "NO"),),
    ),
)


def demo_convenios() -> list[dict]:
    """Return the demo entities and sedes as CSV rows (column -> text), one a sede."""
    return [
        dict(
            zip(
                COLUMNS,
                (_demo_nit(base), nombre, estado, codigo, sede, municipio, direccion, activa),
                strict=True,
            )
        )
        for base, nombre, estado, sedes in _DEMO_ENTIDADES
        for codigo, sede, municipio, direccion, activa in sedes
    ]


def load_demo_convenios() -> int:
    """Upsert the demo entities and sedes through the importer's checks; return the sedes loaded."""
    report = ConveniosReport()
    lines_rows = []
    for line, values in enumerate(demo_convenios(), start=2):
        row, problems = clean_row(values)
        if problems:
            raise ValueError(f"demo convenio row {line}: {problems}")
        lines_rows.append((line, row))
    _load(lines_rows, report)
    if not report.ok:
        raise ValueError(f"demo convenios rejected: {report.rejected}")
    return report.accepted


# --- Back office: one audited change at a time ------------------------------------


class Problem(enum.StrEnum):
    """Why the data refused a back-office change (the view words it)."""

    NIT_TAKEN = "nit_registrado"
    CODIGO_TAKEN = "codigo_registrado"


class ConvenioError(Exception):
    """A change refused by the data: the form field it concerns, and why."""

    def __init__(self, field: str, problem: Problem) -> None:
        super().__init__(problem.value)
        self.field = field
        self.problem = problem


def _entidad_fields(entidad: Entidad) -> dict:
    return {"nit": entidad.nit, "nombre": entidad.nombre, "estado": entidad.estado}


def _sede_fields(sede: Sede) -> dict:
    # "sede", not "codigo": the audit drops any key with the word "codigo" (a
    # one-time code's name); a sede's code is no secret and must be kept.
    return {
        "entidad": sede.entidad_id,
        "sede": sede.codigo,
        "nombre": sede.nombre,
        "municipio": sede.municipio,
        "direccion": sede.direccion,
        "activa": sede.activa,
    }


def _estado(value: str) -> str:
    estado = collapse(value).upper()
    if estado not in ESTADOS:
        raise ValueError(f"estado must be one of {ESTADOS}")
    return estado


def _required_text(value: str, limit: int) -> str:
    text = collapse(value)
    if not text or len(text) > limit:
        raise ValueError(f"a text of 1 to {limit} characters is required")
    return text


def create_entidad(
    actor: Any, nit: str, nombre: str, estado: str = Entidad.ACTIVA, ip: str | None = None
) -> Entidad:
    """Create a convenio entity and audit it; ConvenioError("nit", NIT_TAKEN) if the NIT exists."""
    values = {
        "nit": normalize_nit(nit),
        "nombre": _required_text(nombre, Entidad.nombre.max_length),
        "estado": _estado(estado),
    }
    try:
        with models.db.atomic():
            if Entidad.select().where(Entidad.nit == values["nit"]).exists():
                raise ConvenioError("nit", Problem.NIT_TAKEN)
            entidad = Entidad.create(**values, updated_at=utcnow())
            audit.record(
                actor,
                audit.Action.ENTIDAD_CREAR,
                "entidad",
                entidad.id,
                after=_entidad_fields(entidad),
                ip=ip,
            )
    except IntegrityError:  # the same NIT created at the same moment by someone else
        raise ConvenioError("nit", Problem.NIT_TAKEN) from None
    return entidad


def update_entidad(
    actor: Any, entidad_id: int, nombre: str, estado: str, ip: str | None = None
) -> Entidad:
    """Change an entity's name and state, audited before → after; the NIT never changes."""
    nombre = _required_text(nombre, Entidad.nombre.max_length)
    estado = _estado(estado)
    with models.db.atomic():
        entidad = Entidad.get_by_id(entidad_id)
        before = _entidad_fields(entidad)
        entidad.nombre, entidad.estado = nombre, estado
        if _entidad_fields(entidad) != before:
            entidad.updated_at = utcnow()
            entidad.save()
            audit.record(
                actor,
                audit.Action.ENTIDAD_EDITAR,
                "entidad",
                entidad.id,
                before=before,
                after=_entidad_fields(entidad),
                ip=ip,
            )
    return entidad


def _sede_values(codigo: str, nombre: str, municipio: str, direccion: str) -> dict:
    direccion = collapse(direccion)
    if len(direccion) > Sede.direccion.max_length:
        raise ValueError("direccion is too long")
    return {
        "codigo": normalize_codigo(codigo),
        "nombre": _required_text(nombre, Sede.nombre.max_length),
        "municipio": normalize_municipio(municipio),
        "direccion": direccion,
    }


def _codigo_taken(entidad_id: int, codigo: str, other_than: int | None = None) -> bool:
    query = Sede.select().where((Sede.entidad == entidad_id) & (Sede.codigo == codigo))
    if other_than is not None:
        query = query.where(Sede.id != other_than)
    return query.exists()


def create_sede(
    actor: Any,
    entidad_id: int,
    codigo: str,
    nombre: str,
    municipio: str,
    direccion: str = "",
    activa: bool = True,
    ip: str | None = None,
) -> Sede:
    """Add a sede to an entity and audit it; ConvenioError("codigo", …) if the code is taken."""
    values = _sede_values(codigo, nombre, municipio, direccion)
    try:
        with models.db.atomic():
            entidad = Entidad.get_by_id(entidad_id)
            if _codigo_taken(entidad.id, values["codigo"]):
                raise ConvenioError("codigo", Problem.CODIGO_TAKEN)
            sede = Sede.create(entidad=entidad.id, activa=bool(activa), **values)
            audit.record(
                actor, audit.Action.SEDE_CREAR, "sede", sede.id, after=_sede_fields(sede), ip=ip
            )
    except IntegrityError:
        raise ConvenioError("codigo", Problem.CODIGO_TAKEN) from None
    return sede


def update_sede(
    actor: Any,
    sede_id: int,
    codigo: str,
    nombre: str,
    municipio: str,
    direccion: str,
    activa: bool,
    ip: str | None = None,
) -> Sede:
    """Change a sede, audited before → after; ConvenioError("codigo", …) if the code is taken."""
    values = _sede_values(codigo, nombre, municipio, direccion) | {"activa": bool(activa)}
    return _change_sede(actor, sede_id, values, ip)


def set_sede_activa(actor: Any, sede_id: int, activa: bool, ip: str | None = None) -> Sede:
    """Switch a sede on or off (its users stop reporting uses there), audited."""
    return _change_sede(actor, sede_id, {"activa": bool(activa)}, ip)


def _change_sede(actor: Any, sede_id: int, values: dict, ip: str | None) -> Sede:
    """Apply values to a sede inside one transaction; audit only what changed."""
    try:
        with models.db.atomic():
            sede = Sede.get_by_id(sede_id)
            before = _sede_fields(sede)
            if "codigo" in values and _codigo_taken(sede.entidad_id, values["codigo"], sede.id):
                raise ConvenioError("codigo", Problem.CODIGO_TAKEN)
            for name, value in values.items():
                setattr(sede, name, value)
            if _sede_fields(sede) != before:
                sede.save()
                audit.record(
                    actor,
                    audit.Action.SEDE_EDITAR,
                    "sede",
                    sede.id,
                    before=before,
                    after=_sede_fields(sede),
                    ip=ip,
                )
    except IntegrityError:
        raise ConvenioError("codigo", Problem.CODIGO_TAKEN) from None
    return sede


def entidades_query(q: str = "", estado: str = "") -> Select:
    """Select entities (with their active sedes counted) by NIT start or name part, and state.

    Digits (with dots, spaces or a dash) look up the NIT's start; anything else
    a part of the name. Filters only: the list orders and pages it
    (blueprints.queue, on Entidad.nombre and Entidad.id).
    """
    activas = Sede.select(fn.COUNT(Sede.id)).where(
        (Sede.entidad == Entidad.id) & (Sede.activa == True)  # noqa: E712
    )
    query = Entidad.select(
        Entidad.id, Entidad.nit, Entidad.nombre, Entidad.estado, activas.alias("sedes_activas")
    )
    q = collapse(q)[:100]
    digits = re.sub(r"[\s.\-]", "", q)
    if digits.isascii() and digits.isdigit():
        query = query.where(Entidad.nit.startswith(digits))
    elif q:
        query = query.where(Entidad.nombre.contains(q))
    if estado in ESTADOS:
        query = query.where(Entidad.estado == estado)
    return query
