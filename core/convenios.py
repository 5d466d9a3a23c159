"""Convenios (H6): a partner's front desk looks a worker up, and reports a use of the convenio.

Flask-free, so the views, the CLI, the demo data and the benchmarks share it.
Every look-up is logged (models.ConsultaConvenio) with the operator, the sede,
the document and what the desk saw; a quota per operator and per entity stops
a partner from reading the Caja's affiliate base one cédula at a time.

The partner sees only what the manual shows: the worker's names, their state
and tarifa, and their employer's name and state (``Trabajador``). Nothing else
of the affiliate's row leaves this module.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC as _UTC
from datetime import date, datetime, timedelta

from peewee import JOIN, SQL, Case, fn

from core import throttle
from core.clock import utcnow
from core.colombia import BOGOTA
from core.db import is_sqlite
from core.prepared import prepared
from models import (
    Acceso,
    AccesoSede,
    Account,
    Afiliado,
    ConsultaConvenio,
    Entidad,
    Sede,
    UserSession,
    UsoConvenio,
    db,
)

APLICACION = "convenios"  # core.permissions.Application.CONVENIOS (no import cycle)
DOCUMENT_TYPES = ("CC", "CE")  # what a desk calls "cédula": de ciudadanía or de extranjería
DOCUMENT_RE = re.compile(r"^[0-9]{3,15}$")
NO_TARIFA = "D"  # the tarifa of whoever gets no benefit (SPEC H6)
EMPRESA_OK = ("", "ACTIVA", "ACTIVO")  # an employer in any other state takes the benefit away
# A "Reportar Uso" must follow its look-up: an old page's button asks for a new look-up.
USE_WINDOW = timedelta(hours=2)
RECEIPT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud at a desk


@dataclass(frozen=True)
class Limits:
    """How many look-ups an operator and an entity may make (configurable, see README)."""

    user_burst: int = 10  # per operator, per minute
    user_day: int = 300  # per operator, per 24 hours
    entity_burst: int = 40  # per entity, all its desks, per minute
    entity_day: int = 3000  # per entity, per 24 hours

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(
            user_burst=int(config.get("CONVENIOS_LOOKUPS_USER_MINUTE", cls.user_burst)),
            user_day=int(config.get("CONVENIOS_LOOKUPS_USER_DAY", cls.user_day)),
            entity_burst=int(config.get("CONVENIOS_LOOKUPS_ENTITY_MINUTE", cls.entity_burst)),
            entity_day=int(config.get("CONVENIOS_LOOKUPS_ENTITY_DAY", cls.entity_day)),
        )


MINUTE, DAY = 60, 24 * 3600


class ConveniosError(Exception):
    """Something the desk asked for that cannot be done; the message is for the desk."""


class LimitReached(ConveniosError):
    """A look-up quota is spent; wait_seconds until it can try again."""

    def __init__(self, wait_seconds: int, *, at: datetime) -> None:
        self.wait_seconds = wait_seconds
        self.until = at + timedelta(seconds=wait_seconds)
        super().__init__(limit_message(wait_seconds, self.until))


class UseRefused(ConveniosError):
    """A "Reportar Uso" that records nothing (no benefit, an old look-up)."""


def limit_message(wait_seconds: int, until: datetime) -> str:
    """Tell the desk, in Spanish, when it may look up again."""
    local = until.replace(tzinfo=_UTC).astimezone(BOGOTA)
    if wait_seconds < 90:
        span = f"{wait_seconds} segundos" if wait_seconds != 1 else "1 segundo"
    elif wait_seconds < 2 * 3600:
        span = f"{-(-wait_seconds // 60)} minutos"
    else:
        span = f"{round(wait_seconds / 3600)} horas"
    when = local.strftime("%H:%M")
    if local.date() != utcnow().replace(tzinfo=_UTC).astimezone(BOGOTA).date():
        when = local.strftime("%d/%m/%Y %H:%M")
    return (
        "Se alcanzó el límite de consultas permitidas para proteger los datos de los "
        f"afiliados. Podrá consultar de nuevo a las {when} (en {span})."
    )


@dataclass(frozen=True)
class Trabajador:
    """What a desk sees of a worker: the manual's fields, in its order, and nothing more."""

    cedula: str
    nombre: str
    primer_apellido: str
    segundo_apellido: str
    primer_nombre: str
    segundo_nombre: str
    estado_afiliado: str
    tarifa: str
    nombre_empresa: str
    estado_empresa: str
    resultado: str

    @property
    def beneficio(self) -> bool:
        return self.resultado == ConsultaConvenio.ACTIVO

    @property
    def afiliado(self) -> bool:
        return self.resultado != ConsultaConvenio.NO_AFILIADO

    @property
    def motivo(self) -> str:
        """Why there is no benefit (the alert), or "" when there is."""
        return REASONS.get(self.resultado, "").format(t=self)


REASONS = {
    ConsultaConvenio.NO_AFILIADO: (
        "La cédula {t.cedula} no se encuentra afiliada a la Caja de Compensación Familiar: "
        "no tiene tarifa preferencial (Tarifa D) y no se puede reportar uso del convenio."
    ),
    ConsultaConvenio.AFILIADO_INACTIVO: (
        "El afiliado se encuentra en estado {t.estado_afiliado}. El único estado que da "
        "acceso a los servicios y tarifas preferenciales es ACTIVO: se le cobra Tarifa D."
    ),
    ConsultaConvenio.EMPRESA_INACTIVA: (
        "La empresa del trabajador se encuentra en estado {t.estado_empresa} (inactiva o en "
        "mora con la Caja): el trabajador no puede recibir tarifas preferenciales (Tarifa D)."
    ),
}


def normalize_document(value: str) -> str:
    """Return the digits of a cédula as typed (dots, spaces and dashes dropped)."""
    return re.sub(r"[\s.\-]", "", value or "")


def document_problem(value: str) -> str | None:
    """Return why a typed cédula cannot be looked up, or None."""
    digits = normalize_document(value)
    if not digits:
        return "Escriba el número de cédula del trabajador."
    if not DOCUMENT_RE.match(digits):
        return "La cédula debe tener solo números, entre 3 y 15 dígitos."
    return None


@prepared
def _afiliados_with(numero):
    return (
        Afiliado.select()
        .where(Afiliado.tipo_documento.in_(DOCUMENT_TYPES) & (Afiliado.numero_documento == numero))
        .limit(len(DOCUMENT_TYPES))
    )


def _find_afiliado(numero: str) -> Afiliado | None:
    rows = list(_afiliados_with(str(numero)))
    rows.sort(key=lambda a: DOCUMENT_TYPES.index(a.tipo_documento))
    return rows[0] if rows else None


def trabajador_of(numero: str, afiliado: Afiliado | None) -> Trabajador:
    """Return what the desk sees of the person with this cédula (the benefit decided here)."""
    if afiliado is None:
        return Trabajador(
            cedula=numero,
            nombre="",
            primer_apellido="",
            segundo_apellido="",
            primer_nombre="",
            segundo_nombre="",
            estado_afiliado="NO AFILIADO",
            tarifa=NO_TARIFA,
            nombre_empresa="",
            estado_empresa="",
            resultado=ConsultaConvenio.NO_AFILIADO,
        )
    estado = (afiliado.estado or "").upper()
    empresa_estado = (afiliado.empresa_estado or "").upper()
    if estado != "ACTIVO":
        resultado = ConsultaConvenio.AFILIADO_INACTIVO
    elif empresa_estado not in EMPRESA_OK:
        resultado = ConsultaConvenio.EMPRESA_INACTIVA
    else:
        resultado = ConsultaConvenio.ACTIVO
    categoria = (afiliado.categoria or "").upper()
    # An ACTIVO affiliate whose category the Caja has not recorded keeps the
    # benefit (the manual's one rule is the state) and is charged Tarifa D.
    tarifa = (
        categoria if resultado == ConsultaConvenio.ACTIVO and categoria in ("A", "B", "C") else ""
    )
    return Trabajador(
        cedula=numero,
        nombre=afiliado.nombre_completo,
        primer_apellido=afiliado.primer_apellido,
        segundo_apellido=afiliado.segundo_apellido,
        primer_nombre=afiliado.primer_nombre,
        segundo_nombre=afiliado.segundo_nombre,
        estado_afiliado=estado,
        tarifa=tarifa or NO_TARIFA,
        nombre_empresa=afiliado.empresa_nombre,
        estado_empresa=empresa_estado,
        resultado=resultado,
    )


def trabajador_from_log(consulta: ConsultaConvenio) -> Trabajador | None:
    """Rebuild the result a look-up showed, from its log row (the receipt page, a replay)."""
    if consulta.resultado == ConsultaConvenio.LIMITE:
        return None
    afiliado = None
    if consulta.resultado != ConsultaConvenio.NO_AFILIADO:
        afiliado = _find_afiliado(consulta.numero_documento)
    return trabajador_of(consulta.numero_documento, afiliado)


# --- who may act where -------------------------------------------------------


def _granted(account_id):
    return (
        Sede.select(Sede, Entidad)
        .join(Entidad)
        .switch(Sede)
        .join(AccesoSede)
        .join(Acceso)
        .where(
            (Acceso.account == account_id)
            & (Acceso.aplicacion == APLICACION)
            & Sede.activa
            & (Entidad.estado == Entidad.ACTIVA)
        )
    )


@prepared
def _granted_sedes(account_id):
    return _granted(account_id).order_by(Entidad.nombre, Sede.nombre, Sede.id)


@prepared
def _granted_sede(account_id, sede_id):
    return _granted(account_id).where(Sede.id == sede_id).limit(1)


def granted_sedes(account: Account) -> list[Sede]:
    """Return the sedes the account may work for: granted, active, of an active entity."""
    return list(_granted_sedes(int(account.id)))


def granted_sede(account: Account, sede_id: int | None) -> Sede | None:
    """Return the sede with this id when the account may work for it, else None.

    (Every Convenios request asks it for the session's sede: one row, not the list.)
    """
    if sede_id is None:
        return None
    return _granted_sede.first(int(account.id), int(sede_id))


def choose_sede(session_id: int, sede: Sede | None, idle_seconds: int | None = None) -> None:
    """Remember the sede a session works for (None: forget it).

    idle_seconds: the shared-PC idle limit, which a session signed in before
    the grant did not get at sign-in; it only ever shortens the session's.
    """
    changes: dict = {UserSession.convenio_sede: sede.id if sede else None}
    if idle_seconds is not None:
        longer = UserSession.idle_seconds > idle_seconds
        changes[UserSession.idle_seconds] = Case(
            None, [(longer, idle_seconds)], UserSession.idle_seconds
        )
    UserSession.update(changes).where(UserSession.id == session_id).execute()


# --- the look-up and the use -------------------------------------------------


def _spend_quotas(account: Account, sede: Sede, limits: Limits) -> int:
    """Spend one look-up of each budget, or none; return 0, or the seconds until all have room."""
    return throttle.spend_all(
        [
            (throttle.Purpose.CONVENIO_USER_BURST, f"u:{account.id}", limits.user_burst, MINUTE),
            (throttle.Purpose.CONVENIO_USER_DAY, f"u:{account.id}", limits.user_day, DAY),
            (
                throttle.Purpose.CONVENIO_ENTITY_BURST,
                f"e:{sede.entidad_id}",
                limits.entity_burst,
                MINUTE,
            ),
            (throttle.Purpose.CONVENIO_ENTITY_DAY, f"e:{sede.entidad_id}", limits.entity_day, DAY),
        ]
    )


@prepared
def _log_consulta(
    account,
    entidad,
    sede,
    numero_documento,
    resultado,
    nombre,
    estado_afiliado,
    tarifa,
    empresa_estado,
    clave,
    created_at,
):
    """The look-up's log row (every look-up writes one: its SQL is built once)."""
    return ConsultaConvenio.insert(
        account=account,
        entidad=entidad,
        sede=sede,
        numero_documento=numero_documento,
        resultado=resultado,
        nombre=nombre,
        estado_afiliado=estado_afiliado,
        tarifa=tarifa,
        empresa_estado=empresa_estado,
        clave=clave,
        created_at=created_at,
    )


def lookup(
    account: Account, sede: Sede, documento: str, limits: Limits
) -> tuple[ConsultaConvenio, Trabajador]:
    """Look a worker up for a desk: spend the quotas, log it, return the log row and what to show.

    Raises LimitReached (logged as such, nothing looked up) when a quota is spent.
    The caller has checked that the account may work for sede.
    """
    numero = normalize_document(documento)
    now = utcnow()
    # One transaction: the quotas, the look-up and its log row commit together
    # (one write on SQLite, not five), and a refused look-up is logged as such.
    with db.atomic():
        wait = _spend_quotas(account, sede, limits)
        if wait:
            shown = None
            fields = dict(
                numero_documento=numero[:20],
                resultado=ConsultaConvenio.LIMITE,
                nombre="",
                estado_afiliado="",
                tarifa="",
                empresa_estado="",
            )
        else:
            shown = trabajador_of(numero, _find_afiliado(numero))
            fields = dict(
                numero_documento=numero,
                resultado=shown.resultado,
                nombre=shown.nombre[:250],
                estado_afiliado=shown.estado_afiliado[:20],
                tarifa=shown.tarifa,
                empresa_estado=shown.estado_empresa[:20],
            )
        fields.update(
            account=account.id,
            entidad=sede.entidad_id,
            sede=sede.id,
            clave=secrets.token_urlsafe(16),
            created_at=now,
        )
        consulta = ConsultaConvenio(id=_log_consulta.insert(**fields), **fields)
        consulta._dirty.clear()
    if shown is None:
        raise LimitReached(wait, at=now)
    return consulta, shown


def consulta_for(account: Account, sede: Sede, clave: str) -> ConsultaConvenio | None:
    """Return this operator's look-up at this sede with this key, or None (a 404)."""
    if not clave or len(clave) > 32:
        return None
    return ConsultaConvenio.get_or_none(
        (ConsultaConvenio.clave == clave)
        & (ConsultaConvenio.account == account.id)
        & (ConsultaConvenio.sede == sede.id)
    )


def _receipt_number() -> str:
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def use_of(consulta: ConsultaConvenio) -> UsoConvenio | None:
    return UsoConvenio.get_or_none(UsoConvenio.consulta == consulta.id)


def report_use(consulta: ConsultaConvenio) -> tuple[UsoConvenio, bool]:
    """Record the one use a look-up allows; return it and whether this call created it.

    Idempotent: the look-up's key is the use's unique key, so a double click, a
    retry or a resubmit after the back button find the first use and record
    nothing (the INSERT ... ON CONFLICT DO NOTHING and the read run in one
    transaction). Raises UseRefused when the look-up gave no benefit or is old.
    """
    if not consulta.beneficio:
        raise UseRefused(
            "Este trabajador no tiene tarifa preferencial: no se puede reportar uso del convenio."
        )
    with db.atomic():
        existing = use_of(consulta)
        if existing is not None:
            return existing, False
        if utcnow() - consulta.created_at > USE_WINDOW:
            raise UseRefused(
                "La consulta de este trabajador es de hace más de 2 horas. Consulte de nuevo "
                "al trabajador y reporte el uso desde el resultado nuevo."
            )
        for _ in range(5):  # a receipt number already taken: draw another
            inserted = db.execute(
                UsoConvenio.insert(
                    consulta=consulta.id,
                    numero=_receipt_number(),
                    account=consulta.account_id,
                    entidad=consulta.entidad_id,
                    sede=consulta.sede_id,
                    created_at=utcnow(),
                ).on_conflict_ignore()
            ).rowcount
            found = use_of(consulta)
            if found is not None:
                return found, inserted == 1
    raise RuntimeError("no receipt number could be drawn")


# --- the partner's report ----------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One consulted worker in the report, with the use reported from that look-up."""

    consultado: datetime  # UTC
    sede: str
    operador: str
    cedula: str
    nombre: str
    estado_afiliado: str
    tarifa: str
    resultado: str
    recibo: str
    usado: datetime | None  # UTC


RESULT_LABELS = {
    ConsultaConvenio.ACTIVO: "Con beneficio",
    ConsultaConvenio.NO_AFILIADO: "No afiliado",
    ConsultaConvenio.AFILIADO_INACTIVO: "Afiliado no activo",
    ConsultaConvenio.EMPRESA_INACTIVA: "Empresa inactiva o en mora",
    ConsultaConvenio.LIMITE: "Límite de consultas",
}


def utc_bounds(desde: date, hasta: date) -> tuple[datetime, datetime]:
    """Return the UTC instants of Bogotá's midnight on desde and after hasta."""
    start = datetime.combine(desde, datetime.min.time(), BOGOTA).astimezone(_UTC)
    end = datetime.combine(hasta + timedelta(days=1), datetime.min.time(), BOGOTA).astimezone(_UTC)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)


def report_rows(
    sede_ids: list[int], desde: date, hasta: date, chunk: int = 2000
) -> Iterator[ReportRow]:
    """Yield the report's rows, oldest first, a chunk of rows from the database at a time.

    Keyset pages on (created_at, id) of the sede index: memory stays at one chunk
    whatever the range holds (100 k rows and more). Refused look-ups (quota) are
    not consulted workers and are left out.
    """
    start, end = utc_bounds(desde, hasta)
    after: tuple[datetime, int] | None = None
    Operador = Account.alias()
    while True:
        query = (
            ConsultaConvenio.select(
                ConsultaConvenio.id,
                ConsultaConvenio.created_at,
                ConsultaConvenio.numero_documento,
                ConsultaConvenio.nombre,
                ConsultaConvenio.estado_afiliado,
                ConsultaConvenio.tarifa,
                ConsultaConvenio.resultado,
                Sede.nombre.alias("sede_nombre"),
                Operador.login.alias("operador"),
                UsoConvenio.numero.alias("recibo"),
                UsoConvenio.created_at.alias("usado"),
            )
            .join(Sede, on=(ConsultaConvenio.sede == Sede.id))
            .switch(ConsultaConvenio)
            .join(Operador, on=(ConsultaConvenio.account == Operador.id))
            .switch(ConsultaConvenio)
            .join(UsoConvenio, JOIN.LEFT_OUTER, on=(UsoConvenio.consulta == ConsultaConvenio.id))
            .where(
                ConsultaConvenio.sede.in_(sede_ids)
                & (ConsultaConvenio.created_at >= start)
                & (ConsultaConvenio.created_at < end)
                & (ConsultaConvenio.resultado != ConsultaConvenio.LIMITE)
            )
            .order_by(ConsultaConvenio.created_at, ConsultaConvenio.id)
            .limit(chunk)
        )
        if after is not None:
            at, last_id = after
            query = query.where(
                (ConsultaConvenio.created_at > at)
                | ((ConsultaConvenio.created_at == at) & (ConsultaConvenio.id > last_id))
            )
        rows = list(query.dicts())
        for r in rows:
            yield ReportRow(
                consultado=r["created_at"],
                sede=r["sede_nombre"],
                operador=r["operador"],
                cedula=r["numero_documento"],
                nombre=r["nombre"],
                estado_afiliado=r["estado_afiliado"],
                tarifa=r["tarifa"],
                resultado=RESULT_LABELS.get(r["resultado"], r["resultado"]),
                recibo=r["recibo"] or "",
                usado=r["usado"],
            )
        if len(rows) < chunk:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _month_expr(column):
    """SQL for the Bogotá month (AAAA-MM) of a UTC timestamp column; Colombia has no DST."""
    if is_sqlite(db):
        return fn.strftime("%Y-%m", column, "-5 hours")
    # The format as a literal: a bound parameter would make the SELECT's and the
    # GROUP BY's expressions differ ($1 and $2), which PostgreSQL refuses.
    return fn.to_char(column - SQL("interval '5 hours'"), SQL("'YYYY-MM'"))


@dataclass(frozen=True)
class Totals:
    consultas: int
    con_beneficio: int
    usos: int
    trabajadores: int  # distinct cédulas consulted


def totals(sede_ids: list[int], desde: date, hasta: date) -> Totals:
    """Count the range's look-ups, those with benefit, the uses, and distinct workers."""
    start, end = utc_bounds(desde, hasta)
    base = ConsultaConvenio.select().where(
        ConsultaConvenio.sede.in_(sede_ids)
        & (ConsultaConvenio.created_at >= start)
        & (ConsultaConvenio.created_at < end)
        & (ConsultaConvenio.resultado != ConsultaConvenio.LIMITE)
    )
    row = (
        base.select(
            fn.COUNT(ConsultaConvenio.id),
            fn.COUNT(fn.DISTINCT(ConsultaConvenio.numero_documento)),
        )
        .tuples()
        .get()
    )
    con_beneficio = base.where(ConsultaConvenio.resultado == ConsultaConvenio.ACTIVO).count()
    usos = (
        UsoConvenio.select()
        .where(
            UsoConvenio.sede.in_(sede_ids)
            & (UsoConvenio.created_at >= start)
            & (UsoConvenio.created_at < end)
        )
        .count()
    )
    return Totals(consultas=row[0], con_beneficio=con_beneficio, usos=usos, trabajadores=row[1])


def months_between(desde: date, hasta: date) -> list[str]:
    """Return every month (AAAA-MM) from desde's to hasta's, both included."""
    months, year, month = [], desde.year, desde.month
    while (year, month) <= (hasta.year, hasta.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def uses_per_month(sede_ids: list[int], desde: date, hasta: date) -> list[tuple[str, int]]:
    """Return (AAAA-MM, uses) for every month of the range, zeros included, in Bogotá time."""
    start, end = utc_bounds(desde, hasta)
    month = _month_expr(UsoConvenio.created_at)
    counted = dict(
        UsoConvenio.select(month, fn.COUNT(UsoConvenio.id))
        .where(
            UsoConvenio.sede.in_(sede_ids)
            & (UsoConvenio.created_at >= start)
            & (UsoConvenio.created_at < end)
        )
        .group_by(month)
        .tuples()
    )
    return [(m, int(counted.get(m, 0))) for m in months_between(desde, hasta)]
