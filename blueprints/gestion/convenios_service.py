"""Convenios from staff's side (H6, point 6): who is granted, revoking a grant, the look-up log.

Plain arguments in, values out; the workflows own their transaction and write
their audit row inside it. No Flask request state here, so the views, tests
and the CLI share it.

The look-up log answers the habeas-data question "who consulted this cédula";
a staff search that names a cédula is itself recorded in the audit log, since
who looked at whose look-ups is personal data too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from peewee import JOIN

from core import audit, convenios, notify
from models import (
    Acceso,
    AccesoSede,
    Account,
    AuditEvent,
    ConsultaConvenio,
    Entidad,
    HannaUser,
    Sede,
    UserSession,
    UsoConvenio,
    db,
)

APLICACION = convenios.APLICACION
ACCESO_TARGET = "acceso"  # audit target of a revocation: the grant's id
CEDULA_TARGET = "cedula"  # audit target of a log search: the cédula's number
BROWSE_TARGET = "consultas_convenio"  # a page of the log found without a cédula (id 0)
# The audit log's target_id is a 32-bit integer on PostgreSQL; a longer document
# number (15 digits are allowed) is stored as 0 there, and always in full in "after".
MAX_TARGET_ID = 2**31 - 1
MOTIVO_MIN, MOTIVO_MAX = 10, 500
ENTITY_CHOICES_CAP = 2000
NOBODY = 0  # no account has id 0: an e-mail that is nobody's matches no row


class AccessGone(Exception):
    """The grant is no longer there (revoked by someone, maybe by this same form before)."""


class InvalidMotivo(Exception):
    """The reason of a revocation is missing, too short or too long."""


# --- choices the filters offer --------------------------------------------------


def entity_choices(limit: int = ENTITY_CHOICES_CAP) -> list[Entidad]:
    """Return the entities a filter lists, by name (inactive ones too: the log outlives them)."""
    return list(
        Entidad.select(Entidad.id, Entidad.nombre, Entidad.estado)
        .order_by(Entidad.nombre, Entidad.id)
        .limit(limit)
    )


def entity(entidad_id: int) -> Entidad | None:
    """Return the entity with this id, or None."""
    return Entidad.get_or_none(Entidad.id == entidad_id)


def operator_id(email: str) -> int | None:
    """Return the id of the Hanna account with that e-mail (NOBODY if none; None if blank)."""
    if not email:
        return None
    found = Account.by_email(email)
    return found.id if found else NOBODY


# --- the grants -----------------------------------------------------------------


def _of_entity(entidad_id: int):
    """The condition "this grant is for entidad_id": its entity, or one of its sedes there.

    A later approval for another entity adds its sedes to the same grant
    (aplicaciones.service.approve), so the sedes count as well.
    """
    with_sede = AccesoSede.select(AccesoSede.acceso).join(Sede).where(Sede.entidad == entidad_id)
    return (Acceso.entidad == entidad_id) | Acceso.id.in_(with_sede)


def grants_query(entidad_id: int | None = None, q: str = ""):
    """Build the CONVENIOS grants list, filters only (blueprints.queue orders and pages it).

    q: every word must be part of the user's e-mail or of one of their names.
    """
    query = (
        Acceso.select(
            Acceso.id,
            Acceso.created_at,
            Entidad.id.alias("entidad_id"),
            Entidad.nombre.alias("entidad_nombre"),
            Account.id.alias("account_id"),
            Account.email,
            HannaUser.primer_nombre,
            HannaUser.primer_apellido,
        )
        .join(Account, on=(Acceso.account == Account.id))
        .join(HannaUser, JOIN.LEFT_OUTER, on=(HannaUser.account == Account.id))
        .switch(Acceso)
        .join(Entidad, JOIN.LEFT_OUTER, on=(Acceso.entidad == Entidad.id))
        .where(Acceso.aplicacion == APLICACION)
    )
    if entidad_id is not None:
        query = query.where(_of_entity(entidad_id))
    for word in (q or "").split()[:5]:
        word = word[:100]
        query = query.where(
            Account.email.contains(word)
            | HannaUser.primer_nombre.contains(word)
            | HannaUser.segundo_nombre.contains(word)
            | HannaUser.primer_apellido.contains(word)
            | HannaUser.segundo_apellido.contains(word)
        )
    return query


GRANTS_ORDER = (Acceso.created_at, Acceso.id)


@dataclass(frozen=True)
class GrantedSede:
    """A sede of a grant, as the lists show it."""

    id: int
    nombre: str
    activa: bool
    entidad_id: int
    entidad_nombre: str


def sedes_of(acceso_ids: list[int]) -> dict[int, list[GrantedSede]]:
    """Return each grant's sedes by name, in one query for a whole page of grants."""
    found: dict[int, list[GrantedSede]] = {i: [] for i in acceso_ids}
    if not acceso_ids:
        return found
    rows = (
        AccesoSede.select(
            AccesoSede.acceso,
            Sede.id,
            Sede.nombre,
            Sede.activa,
            Entidad.id.alias("entidad_id"),
            Entidad.nombre.alias("entidad_nombre"),
        )
        .join(Sede)
        .join(Entidad)
        .where(AccesoSede.acceso.in_(acceso_ids))
        .order_by(Entidad.nombre, Sede.nombre, Sede.id)
        .dicts()
    )
    for row in rows:
        found[row["acceso"]].append(
            GrantedSede(
                row["id"], row["nombre"], row["activa"], row["entidad_id"], row["entidad_nombre"]
            )
        )
    return found


def with_sedes(rows: list[dict]) -> list[dict]:
    """Add "sedes" (a list of GrantedSede) to each grant row of a page."""
    sedes = sedes_of([r["id"] for r in rows])
    for row in rows:
        row["sedes"] = sedes[row["id"]]
    return rows


def grant(acceso_id: int) -> Acceso | None:
    """Return the CONVENIOS grant with this id, or None."""
    return Acceso.get_or_none((Acceso.id == acceso_id) & (Acceso.aplicacion == APLICACION))


def open_convenio_sessions(account_id: int) -> int:
    """Count the account's live sessions that work for a sede in Convenios."""
    return (
        UserSession.select()
        .where(
            (UserSession.account == account_id)
            & UserSession.ended_at.is_null()
            & UserSession.convenio_sede.is_null(False)
        )
        .count()
    )


def grants_of_entity(entidad_id: int, limit: int = 20) -> tuple[list[dict], int]:
    """Return the first grants of an entity by the user's e-mail, and how many there are."""
    query = grants_query(entidad_id)
    total = query.count()
    rows = list(query.order_by(Account.email, Acceso.id).limit(limit).dicts())
    return with_sedes(rows), total


@dataclass(frozen=True)
class Revocation:
    """A grant that was revoked: when, by whom, and what it was (from its audit row)."""

    at: datetime  # naive UTC
    by: str
    usuario: str
    entidad: str
    sedes: list[str]
    motivo: str


def revocation_of(acceso_id: int) -> Revocation | None:
    """Return how the grant with this id was revoked, or None if it never was."""
    event = (
        audit.search_query(
            action=audit.Action.CONVENIO_ACCESO_RETIRAR, target=(ACCESO_TARGET, acceso_id)
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .first()
    )
    if event is None:
        return None
    before, after = json.loads(event.before or "{}"), json.loads(event.after or "{}")
    return Revocation(
        at=event.at,
        by=event.actor_label,
        usuario=before.get("usuario", ""),
        entidad=before.get("entidad", ""),
        sedes=list(before.get("sedes", [])),
        motivo=after.get("motivo", ""),
    )


def _greeting(account: Account) -> str:
    return account.first_name.title()


def revoke(
    actor: Account,
    acceso_id: int,
    motivo: str,
    *,
    base_url: str,
    account_id: int | None = None,
    ip: str | None = None,
) -> Account:
    """Take a user's CONVENIOS grant away, once: their Convenios work ends at the next click.

    In one transaction: the grant goes (its sedes cascade), every session of
    the account forgets its Convenios sede, the audit row is written and the
    user's e-mail is queued. account_id, when given, is the account the form
    was shown for: a replayed form never revokes a newer grant that took the
    same id. Raises InvalidMotivo, and AccessGone when there is nothing to revoke.
    """
    motivo = (motivo or "").strip()
    if not MOTIVO_MIN <= len(motivo) <= MOTIVO_MAX:
        raise InvalidMotivo()
    with db.atomic():
        found = grant(acceso_id)
        if found is None or (account_id is not None and found.account_id != account_id):
            raise AccessGone()
        user = Account.get_by_id(found.account_id)
        sedes = sedes_of([found.id])[found.id]
        entidad = Entidad.get_or_none(Entidad.id == found.entidad_id)
        # The DELETE decides between two revokes at once: the second deletes nothing.
        deleted = Acceso.delete().where(Acceso.id == found.id).execute()
        if deleted != 1:
            raise AccessGone()
        cleared = (
            UserSession.update(convenio_sede=None)
            .where((UserSession.account == user.id) & UserSession.convenio_sede.is_null(False))
            .execute()
        )
        entidad_nombre = entidad.nombre if entidad is not None else ""
        audit.record(
            actor,
            audit.Action.CONVENIO_ACCESO_RETIRAR,
            ACCESO_TARGET,
            found.id,
            before={
                "usuario_id": user.id,
                "usuario": user.email,
                "entidad_id": found.entidad_id,
                "entidad": entidad_nombre,
                "sede_ids": [s.id for s in sedes],
                "sedes": [s.nombre for s in sedes],
                "otorgado": found.created_at,
            },
            after={"motivo": motivo, "sesiones_en_convenios": cleared},
            ip=ip,
        )
        if user.email:
            notify.queue_template_email(
                user.email,
                "Su acceso a la aplicación CONVENIOS fue retirado",
                "convenio_acceso_retirado",
                nombre=_greeting(user),
                aplicacion="CONVENIOS",
                entidad=entidad_nombre,
                motivo=motivo,
                link=f"{base_url.rstrip('/')}/",
            )
    return user


# --- the look-up log ------------------------------------------------------------


def lookups_query(
    cedula: str = "",
    entidad_id: int | None = None,
    operador_id: int | None = None,
    resultado: str = "",
    desde: date | None = None,
    hasta: date | None = None,
):
    """Build the look-up log search, filters only (blueprints.queue pages it on (created_at, id)).

    Each filter is the front of an index of consulta_convenio that ends in
    (created_at, id): a cédula reads (numero_documento, created_at, id), an
    entity (entidad, …), an operator (account, …), and none at all (created_at, id).
    No joins: the count of matches reads index entries only; ``with_names``
    fills in the names of one page afterwards.
    """
    c = ConsultaConvenio
    query = c.select(
        c.id, c.created_at, c.numero_documento, c.resultado, c.entidad, c.sede, c.account
    )
    if cedula:
        query = query.where(c.numero_documento == cedula)
    if entidad_id is not None:
        query = query.where(c.entidad == entidad_id)
    if operador_id is not None:
        query = query.where(c.account == operador_id)
    if resultado:
        query = query.where(c.resultado == resultado)
    if desde is not None:
        query = query.where(c.created_at >= convenios.utc_bounds(desde, desde)[0])
    if hasta is not None:
        query = query.where(c.created_at < convenios.utc_bounds(hasta, hasta)[1])
    return query


LOOKUPS_ORDER = (ConsultaConvenio.created_at, ConsultaConvenio.id)


def _names(column, ids: set[int]) -> dict[int, str]:
    """Return {id: column} for these ids of column's table."""
    model = column.model
    return dict(model.select(model.id, column).where(model.id.in_(sorted(ids))).tuples())


def with_names(rows: list[dict]) -> list[dict]:
    """Add the entity, sede, operator e-mail and receipt number to a page of look-ups.

    A query per kind for the whole page, each by primary key (or the unique
    consulta of a use), whatever the log holds.
    """
    if not rows:
        return rows
    entidades = _names(Entidad.nombre, {r["entidad"] for r in rows})
    sedes = _names(Sede.nombre, {r["sede"] for r in rows})
    operadores = _names(Account.email, {r["account"] for r in rows})
    uses = UsoConvenio.select(UsoConvenio.consulta, UsoConvenio.numero).where(
        UsoConvenio.consulta.in_([r["id"] for r in rows])
    )
    recibos = dict(uses.tuples())
    for row in rows:
        row["entidad_nombre"] = entidades.get(row["entidad"], "")
        row["sede_nombre"] = sedes.get(row["sede"], "")
        row["operador"] = operadores.get(row["account"], "")
        row["recibo"] = recibos.get(row["id"], "")
    return rows


def cedula_target(cedula: str) -> int:
    """Return the audit target_id of a cédula: its number, or 0 when it does not fit."""
    number = int(cedula)
    return number if number <= MAX_TARGET_ID else 0


def record_search(
    actor: Account, filters: dict, shown: int, *, ip: str | None = None, cedulas=()
) -> AuditEvent:
    """Audit a page of the look-up log: who, for which filters, how many rows.

    A search that names a cédula targets that cédula. Any other page that shows
    rows names the cédulas it showed (cedulas), so "who saw this cédula's
    look-ups" has an answer even when it was found by browsing, not searching.
    filters are the search's values; blank ones are left out.
    """
    cedula = filters.get("cedula") or ""
    used = {k: v for k, v in filters.items() if v not in (None, "")}
    after = {**used, "filas_mostradas": shown}
    if cedula:
        target_type, target_id = CEDULA_TARGET, cedula_target(cedula)
    else:
        target_type, target_id = BROWSE_TARGET, 0
        after["cedulas_mostradas"] = sorted(set(cedulas))
    with db.atomic():
        return audit.record(
            actor,
            audit.Action.CONVENIO_CONSULTAS_BUSCAR,
            target_type,
            target_id,
            after=after,
            ip=ip,
        )
