"""Application requests (H4): a Hanna user asks, staff with role convenios decide.

Functions take plain arguments and own their transaction; outcomes other than
success are small exceptions the views turn into Spanish words.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from peewee import JOIN, IntegrityError, fn

from core import audit, clock, decisions, files, notify, uploads
from core.db import is_sqlite
from core.permissions import Action, Application
from core.prepared import prepared
from models import (
    Acceso,
    AccesoSede,
    Account,
    Attachment,
    Entidad,
    HannaUser,
    Sede,
    SolicitudAplicacion,
    db,
)

# "Documento soporte (PDF)": a letter or certificate of the entity, never a photo album.
SOPORTE = uploads.Policy(frozenset({uploads.Kind.PDF}), 5 * uploads.MB)
# Room for the text fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024
MAX_BODY = SOPORTE.max_bytes + FORM_OVERHEAD

OWNER_TYPE = "solicitud_aplicacion"  # Attachment.owner_type of the supporting PDF
AUDIT_TARGET = "solicitud"

# The permission that lets a user into each application once it is granted.
USE_ACTION: dict[Application, Action] = {Application.CONVENIOS: Action.USE_CONVENIOS}

ESTADOS = (
    SolicitudAplicacion.PENDIENTE,
    SolicitudAplicacion.APROBADA,
    SolicitudAplicacion.RECHAZADA,
)
MOTIVO_MIN = 10
MOTIVO_MAX = 1000


# --- outcomes ---------------------------------------------------------------------


class SolicitudError(Exception):
    """A request could not go ahead; the subclass says why."""


class _AboutRequest(SolicitudError):
    """An outcome that names the request it is about (the view shows or links it)."""

    def __init__(self, solicitud: SolicitudAplicacion) -> None:
        super().__init__(type(self).__name__)
        self.solicitud = solicitud


class AlreadyPending(_AboutRequest):
    """The user already has a request for this application waiting for a decision."""


class DuplicateSubmit(_AboutRequest):
    """This form was already sent (a double click, a retried POST): here is its request."""


class StaleForm(SolicitudError):
    """The form's key belongs to another account's request: the form must be shown again."""


class AlreadyDecided(_AboutRequest):
    """Someone decided this request first."""


class InvalidChoice(SolicitudError):
    """An approval named an entity or sedes that cannot be granted (field: entidad|sedes)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True)
class RequestData:
    """What the user typed, already validated and normalised by the form."""

    nit: str
    entidad_nombre: str
    sedes: str
    telefono: str


# --- the user's side ----------------------------------------------------------------


def pending_request(account: Account, aplicacion: Application) -> SolicitudAplicacion | None:
    """Return the account's request for aplicacion that waits for a decision, if any."""
    return (
        SolicitudAplicacion.select()
        .where(
            (SolicitudAplicacion.account == account.id)
            & (SolicitudAplicacion.aplicacion == aplicacion.value)
            & (SolicitudAplicacion.estado == SolicitudAplicacion.PENDIENTE)
        )
        .order_by(SolicitudAplicacion.id)
        .first()
    )


def _by_form_key(form_key: str) -> SolicitudAplicacion | None:
    return SolicitudAplicacion.get_or_none(SolicitudAplicacion.form_key == form_key)


def _check_new(account: Account, aplicacion: Application, form_key: str) -> None:
    """Raise DuplicateSubmit, StaleForm or AlreadyPending when a new request must not be made."""
    sent = _by_form_key(form_key)
    if sent is not None:
        if sent.account_id == account.id:
            raise DuplicateSubmit(sent)
        raise StaleForm()  # never show, or even confirm, another person's request
    pending = pending_request(account, aplicacion)
    if pending is not None:
        raise AlreadyPending(pending)


def _lock_account(account: Account) -> None:
    """Serialise this account's request writers (PostgreSQL; SQLite's IMMEDIATE already does)."""
    if not is_sqlite(db):
        Account.select(Account.id).where(Account.id == account.id).for_update().execute()


def submit_request(
    account: Account,
    aplicacion: Application,
    data: RequestData,
    form_key: str,
    stream: BinaryIO,
    filename: str | None,
    upload_dir: str | os.PathLike,
) -> SolicitudAplicacion:
    """Store the supporting PDF and create the pending request with it, all or nothing.

    Raises uploads.UploadError for a refused file (nothing kept), DuplicateSubmit
    when this form_key already made the account's request, StaleForm when it is
    someone else's, and AlreadyPending while another request waits.
    """
    # Cheap checks first: a double click should not write a second file to disk.
    _check_new(account, aplicacion, form_key)
    try:
        with files.upload(stream, filename, SOPORTE, upload_dir) as stored, db.atomic():
            _lock_account(account)
            _check_new(account, aplicacion, form_key)  # again, now that writers queue
            solicitud = SolicitudAplicacion.create(
                account=account.id,
                aplicacion=aplicacion.value,
                nit=data.nit,
                entidad_nombre=data.entidad_nombre,
                sedes=data.sedes,
                telefono=data.telefono,
                form_key=form_key,
                created_at=clock.utcnow(),
            )
            files.record(stored, OWNER_TYPE, solicitud.id, created_by=account.id)
    except IntegrityError:
        # The unique form_key decides between two submits that raced past the checks.
        sent = _by_form_key(form_key)
        if sent is None:
            raise
        if sent.account_id != account.id:
            raise StaleForm() from None
        raise DuplicateSubmit(sent) from None
    return solicitud


def requests_of(account: Account, limit: int = 100) -> list[SolicitudAplicacion]:
    """Return the account's requests, newest first ("Mis solicitudes")."""
    return list(
        SolicitudAplicacion.select()
        .where(SolicitudAplicacion.account == account.id)
        .order_by(SolicitudAplicacion.created_at.desc(), SolicitudAplicacion.id.desc())
        .limit(limit)
    )


def attachment_of(solicitud: SolicitudAplicacion) -> Attachment | None:
    """Return the request's supporting PDF row."""
    found = Attachment.of(OWNER_TYPE, solicitud.id)
    return found[0] if found else None


# --- the home page tiles ---------------------------------------------------------------


class TileState(enum.StrEnum):
    GRANTED = "concedida"  # "Acceder"
    PENDING = "pendiente"  # a request waits for staff
    AVAILABLE = "disponible"  # "Solicitar"


@dataclass(frozen=True)
class Tile:
    """One application on the Hanna home page, and what the user can do about it."""

    aplicacion: Application
    state: TileState
    solicitud_id: int | None = None  # the pending request, or the last rejected one
    requested_at: datetime | None = None
    rejected: bool = False  # AVAILABLE after a rejection: the motivo is shown
    motivo: str = ""


@prepared
def _granted_of(account_id):
    return Acceso.select(Acceso.aplicacion).where(Acceso.account == account_id)


@prepared
def _latest_of(account_id):
    return (
        SolicitudAplicacion.select()
        .where(SolicitudAplicacion.account == account_id)
        .order_by(SolicitudAplicacion.created_at.desc(), SolicitudAplicacion.id.desc())
        .limit(50)
    )


def tiles_for(account: Account | None) -> list[Tile]:
    """Return a tile per application for a Hanna account (granted ones first); [] otherwise."""
    if account is None or account.kind != Account.HANNA:
        return []
    granted = {row.aplicacion for row in _granted_of(int(account.id))}
    latest: dict[str, SolicitudAplicacion] = {}
    for solicitud in _latest_of(int(account.id)):
        latest.setdefault(solicitud.aplicacion, solicitud)
    tiles = []
    for aplicacion in Application:
        last = latest.get(aplicacion.value)
        if aplicacion.value in granted:
            tiles.append(Tile(aplicacion, TileState.GRANTED))
        elif last is not None and last.estado == SolicitudAplicacion.PENDIENTE:
            tiles.append(Tile(aplicacion, TileState.PENDING, last.id, last.created_at))
        elif last is not None and last.estado == SolicitudAplicacion.RECHAZADA:
            tiles.append(
                Tile(
                    aplicacion,
                    TileState.AVAILABLE,
                    last.id,
                    last.created_at,
                    rejected=True,
                    motivo=last.motivo,
                )
            )
        else:
            tiles.append(Tile(aplicacion, TileState.AVAILABLE))
    tiles.sort(key=lambda t: t.state is not TileState.GRANTED)
    return tiles


# --- the staff side: the queue -----------------------------------------------------------


def _search(query, q: str):
    q = (q or "").strip()
    if not q:
        return query
    digits = q.replace(".", "").replace("-", "").replace(" ", "")
    if digits.isascii() and digits.isdigit():
        return query.where(SolicitudAplicacion.nit.startswith(digits))
    return query.where(SolicitudAplicacion.entidad_nombre.contains(q[:100]))


def queue_query(estado: str = SolicitudAplicacion.PENDIENTE, q: str = ""):
    """Build the queue's filtered select (no order, no limit: blueprints.queue pages it).

    q matches the start of the NIT (digits, dots and dashes) or part of the
    entity's name. The (estado, created_at, id) index serves the order.
    """
    sa = SolicitudAplicacion
    query = (
        sa.select(
            sa.id,
            sa.created_at,
            sa.decided_at,
            sa.aplicacion,
            sa.nit,
            sa.entidad_nombre,
            sa.estado,
            Account.email,
            HannaUser.primer_nombre,
            HannaUser.primer_apellido,
        )
        .join(Account, on=(sa.account == Account.id))
        .join(HannaUser, join_type=JOIN.LEFT_OUTER, on=(HannaUser.account == Account.id))
        .where(sa.estado == estado)
    )
    return _search(query, q)


QUEUE_ORDER = (SolicitudAplicacion.created_at, SolicitudAplicacion.id)


def counts() -> dict[str, int]:
    """Return how many requests there are in each state."""
    found = dict.fromkeys(ESTADOS, 0)
    rows = (
        SolicitudAplicacion.select(SolicitudAplicacion.estado, fn.COUNT(SolicitudAplicacion.id))
        .group_by(SolicitudAplicacion.estado)
        .tuples()
    )
    for estado, n in rows:
        found[estado] = n
    return found


def active_entities(limit: int = 2000) -> list[Entidad]:
    """Return the active entities staff may grant, by name."""
    return list(
        Entidad.select(Entidad.id, Entidad.nit, Entidad.nombre)
        .where(Entidad.estado == Entidad.ACTIVA)
        .order_by(Entidad.nombre, Entidad.id)
        .limit(limit)
    )


def active_entity(entidad_id: int) -> Entidad | None:
    """Return the entity if it is active."""
    return Entidad.get_or_none((Entidad.id == entidad_id) & (Entidad.estado == Entidad.ACTIVA))


def entity_for_nit(nit: str) -> Entidad | None:
    """Return the active entity whose NIT is the one the user gave."""
    return Entidad.get_or_none((Entidad.nit == nit) & (Entidad.estado == Entidad.ACTIVA))


def active_sedes(entidad_id: int | None) -> list[Sede]:
    """Return the entity's active sedes, by name."""
    if entidad_id is None:
        return []
    return list(
        Sede.select()
        .join(Entidad)
        .where((Sede.entidad == entidad_id) & Sede.activa & (Entidad.estado == Entidad.ACTIVA))
        .order_by(Sede.nombre, Sede.id)
    )


def sedes_granted(solicitud: SolicitudAplicacion) -> list[Sede]:
    """Return the sedes the account holds under the request's application."""
    return list(
        Sede.select()
        .join(AccesoSede)
        .join(Acceso)
        .where(
            (Acceso.account == solicitud.account_id) & (Acceso.aplicacion == solicitud.aplicacion)
        )
        .order_by(Sede.nombre, Sede.id)
    )


# --- the staff side: deciding ------------------------------------------------------------


def _claim(solicitud_id: int, **changes) -> SolicitudAplicacion:
    """Mark a pending request decided, or raise AlreadyDecided (one UPDATE decides)."""
    won, solicitud = decisions.claim_pending(SolicitudAplicacion, solicitud_id, **changes)
    if not won:
        raise AlreadyDecided(solicitud)
    return solicitud


def _greeting(account: Account) -> str:
    profile = account.hanna
    return profile.primer_nombre.title() if profile is not None else ""


def approve(
    solicitud_id: int,
    actor: Account,
    entidad_id: int,
    sede_ids: Iterable[int],
    base_url: str,
    ip: str | None = None,
) -> SolicitudAplicacion:
    """Grant the application for the entity's chosen sedes, once, with audit row and e-mail.

    Raises InvalidChoice("entidad"|"sedes") and AlreadyDecided.
    """
    wanted = set(sede_ids)
    with db.atomic():
        entidad = Entidad.get_or_none(
            (Entidad.id == entidad_id) & (Entidad.estado == Entidad.ACTIVA)
        )
        if entidad is None:
            raise InvalidChoice("entidad")
        sedes = [s for s in active_sedes(entidad.id) if s.id in wanted]
        if not wanted or len(sedes) != len(wanted):
            raise InvalidChoice("sedes")
        solicitud = _claim(
            solicitud_id,
            estado=SolicitudAplicacion.APROBADA,
            entidad=entidad.id,
            decided_by=actor.id,
        )
        # One Acceso per account and application (models.py): a later approval
        # for the same application adds its sedes to it.
        Acceso.insert(
            account=solicitud.account_id,
            aplicacion=solicitud.aplicacion,
            entidad=entidad.id,
            solicitud=solicitud.id,
            created_at=clock.utcnow(),
        ).on_conflict_ignore().execute()
        acceso = Acceso.get(
            (Acceso.account == solicitud.account_id) & (Acceso.aplicacion == solicitud.aplicacion)
        )
        AccesoSede.insert_many(
            [{"acceso": acceso.id, "sede": s.id} for s in sedes]
        ).on_conflict_ignore().execute()
        audit.record(
            actor,
            audit.Action.SOLICITUD_APROBAR,
            AUDIT_TARGET,
            solicitud.id,
            before={"estado": SolicitudAplicacion.PENDIENTE},
            after={
                "estado": SolicitudAplicacion.APROBADA,
                "entidad_id": entidad.id,
                "sede_ids": sorted(s.id for s in sedes),
            },
            ip=ip,
        )
        user = solicitud.account
        notify.queue_template_email(
            user.email,
            f"Su solicitud de la aplicación {solicitud.aplicacion.upper()} fue aprobada",
            "solicitud_aprobada",
            nombre=_greeting(user),
            aplicacion=solicitud.aplicacion.upper(),
            entidad=entidad.nombre,
            sedes=[s.nombre for s in sedes],
            link=f"{base_url.rstrip('/')}/",
        )
    return solicitud


def reject(
    solicitud_id: int,
    actor: Account,
    motivo: str,
    base_url: str,
    ip: str | None = None,
) -> SolicitudAplicacion:
    """Reject a pending request with a reason the user will read, once, with audit and e-mail.

    Raises InvalidChoice("motivo") for a reason under 10 characters, and AlreadyDecided.
    """
    motivo = (motivo or "").strip()
    if not MOTIVO_MIN <= len(motivo) <= MOTIVO_MAX:
        raise InvalidChoice("motivo")
    with db.atomic():
        solicitud = _claim(
            solicitud_id,
            estado=SolicitudAplicacion.RECHAZADA,
            motivo=motivo,
            decided_by=actor.id,
        )
        audit.record(
            actor,
            audit.Action.SOLICITUD_RECHAZAR,
            AUDIT_TARGET,
            solicitud.id,
            before={"estado": SolicitudAplicacion.PENDIENTE, "motivo": ""},
            after={"estado": SolicitudAplicacion.RECHAZADA, "motivo": motivo},
            ip=ip,
        )
        user = solicitud.account
        notify.queue_template_email(
            user.email,
            f"Su solicitud de la aplicación {solicitud.aplicacion.upper()} no fue aprobada",
            "solicitud_rechazada",
            nombre=_greeting(user),
            aplicacion=solicitud.aplicacion.upper(),
            entidad=solicitud.entidad_nombre,
            motivo=motivo,
            link=f"{base_url.rstrip('/')}/",
        )
    return solicitud
