"""Authorization requests (G3) from staff's side (S1): the queue by due date, and the decision.

Functions take plain arguments and own their transaction; outcomes other than
success are small exceptions the views turn into Spanish words. The member is
told of a decision by SMS and e-mail through the outbox, in the transaction
that decides: a decision never commits without its notice, nor the other way.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

from peewee import IntegrityError

from blueprints import queue
from core import audit, clock, decisions, notify, workdays
from core.convenios import RECEIPT_ALPHABET
from core.genesis import DOCUMENT_TYPES
from models import (
    Account,
    Attachment,
    Autorizacion,
    EpsAfiliado,
    Ips,
    SolicitudAutorizacion,
    db,
)

OWNER_TYPE = "solicitud_autorizacion"  # Attachment.owner_type of a request's support
AUDIT_TARGET = "solicitud_autorizacion"
ESTADOS = (
    SolicitudAutorizacion.PENDIENTE,
    SolicitudAutorizacion.APROBADA,
    SolicitudAutorizacion.RECHAZADA,
)
APROBADA = "APROBADA"  # Autorizacion.estado of one staff issue (core.eps_data.ESTADOS_AUTORIZACION)
# "Por vencer" on the due day and the working day before it.
NEAR_DAYS = 1
MOTIVO_MIN, MOTIVO_MAX = 10, 1000
CODIGO_MAX = 20  # Autorizacion.codigo_servicio
NOMBRE_MAX = 200  # Autorizacion.nombre_servicio
# A CUPS code as EPS systems write it: letters and digits, groups joined by dashes.
CODIGO_RE = re.compile(r"\A[A-Z0-9]+(?:-[A-Z0-9]+)*\Z")
HISTORY = 5  # earlier authorizations shown next to a request
IPS_LIST_CAP = 2000

QUEUE_ORDER = (SolicitudAutorizacion.due_on, SolicitudAutorizacion.id)


# --- outcomes ---------------------------------------------------------------------


class DecisionError(Exception):
    """A decision could not go ahead; the subclass says why."""


class AlreadyDecided(DecisionError):
    """Someone decided this request first (or this is a second click)."""

    def __init__(self, solicitud: SolicitudAutorizacion) -> None:
        super().__init__("AlreadyDecided")
        self.solicitud = solicitud


class InvalidChoice(DecisionError):
    """A field the form should have refused (codigo|nombre|ips|motivo)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True)
class Approval:
    """What staff typed to approve: the service (CUPS code and name) and the IPS."""

    codigo_servicio: str
    nombre_servicio: str
    ips_id: int


# --- the queue ----------------------------------------------------------------------


def compact_document(value: str) -> str:
    """Return a typed document number without dots, dashes or spaces, upper case."""
    return re.sub(r"[\s.\-]", "", value or "").upper()


def _members_with_document(numero: str):
    """Select the ids of the members with this number, and of the beneficiaries of those."""
    wanted = {numero, numero.lstrip("0") or numero}
    # tipo IN (…) keeps the (tipo_documento, numero_documento) index usable.
    found = EpsAfiliado.select(EpsAfiliado.id).where(
        EpsAfiliado.tipo_documento.in_(DOCUMENT_TYPES)
        & EpsAfiliado.numero_documento.in_(sorted(wanted))
    )
    beneficiaries = EpsAfiliado.select(EpsAfiliado.id).where(EpsAfiliado.cabeza.in_(found))
    return found | beneficiaries


def queue_query(estado: str = SolicitudAutorizacion.PENDIENTE, documento: str = ""):
    """Build the queue's filtered select (no order, no limit: blueprints.queue pages it).

    documento matches the member's number or their cotizante's (the whole
    núcleo). The (estado, due_on, id) index serves the order. The member's
    document and names come from with_members, for one page: joined here, the
    count of a state would read every matching request's member.
    """
    sa = SolicitudAutorizacion
    query = sa.select(
        sa.id, sa.numero, sa.created_at, sa.due_on, sa.estado, sa.municipio, sa.afiliado
    ).where(sa.estado == estado)
    numero = compact_document(documento)
    if numero:
        query = query.where(sa.afiliado.in_(_members_with_document(numero)))
    return query


def with_members(rows: list[dict]) -> list[dict]:
    """Return the queue's rows with their member's document and names (one query)."""
    ids = {row["afiliado"] for row in rows}
    if not ids:
        return rows
    members = EpsAfiliado.select(
        EpsAfiliado.id,
        EpsAfiliado.tipo_documento,
        EpsAfiliado.numero_documento,
        EpsAfiliado.primer_nombre,
        EpsAfiliado.segundo_nombre,
        EpsAfiliado.primer_apellido,
        EpsAfiliado.segundo_apellido,
    ).where(EpsAfiliado.id.in_(sorted(ids)))
    found = {}
    for member in members.dicts():
        found[member.pop("id")] = member  # the row's id is the request's
    return [{**row, **found[row["afiliado"]]} for row in rows]


def counts() -> dict[str, int]:
    """Return how many requests there are in each state (each stops past queue.COUNT_CAP)."""
    return queue.state_counts(SolicitudAutorizacion.estado, ESTADOS)


def due_of(due_on: date) -> workdays.DueState:
    """Tell where a pending request's term stands today (Colombian working days)."""
    return workdays.due_state(due_on, near=NEAR_DAYS)


# --- one request --------------------------------------------------------------------


def get(solicitud_id: int) -> SolicitudAutorizacion | None:
    """Return a request by id, or None."""
    return SolicitudAutorizacion.get_or_none(SolicitudAutorizacion.id == solicitud_id)


def attachment_of(solicitud: SolicitudAutorizacion) -> Attachment | None:
    """Return the request's supporting PDF row."""
    found = Attachment.of(OWNER_TYPE, solicitud.id)
    return found[0] if found else None


def history_of(solicitud: SolicitudAutorizacion, limit: int = HISTORY) -> list[Autorizacion]:
    """Return the member's latest authorizations, newest first (this request's own included)."""
    return list(
        Autorizacion.select(Autorizacion, Ips)
        .left_outer_join(Ips, on=(Autorizacion.ips == Ips.id))
        .where(Autorizacion.afiliado == solicitud.afiliado_id)
        .order_by(Autorizacion.fecha.desc(), Autorizacion.id.desc())
        .limit(limit)
    )


def ips_choices(limit: int = IPS_LIST_CAP) -> list[Ips]:
    """Return the IPS an authorization may send the member to, by name."""
    return list(
        Ips.select(Ips.id, Ips.nombre, Ips.nit, Ips.municipio)
        .order_by(Ips.nombre, Ips.id)
        .limit(limit)
    )


def record_file_view(
    actor: Account, solicitud: SolicitudAutorizacion, attachment: Attachment, ip: str | None = None
) -> None:
    """Audit that a staff member opened a member's support (health data), before it is sent."""
    with db.atomic():
        audit.record(
            actor,
            audit.Action.AUTORIZACION_SOPORTE_VER,
            AUDIT_TARGET,
            solicitud.id,
            after={"archivo_id": attachment.id, "numero": solicitud.numero},
            ip=ip,
        )


# --- deciding -------------------------------------------------------------------------


def clean_codigo(value: str) -> str:
    """Return a CUPS code in upper case without spaces, or raise a Spanish ValueError."""
    codigo = re.sub(r"\s", "", value or "").upper()
    if not codigo:
        raise ValueError("Escriba el código del servicio.")
    if len(codigo) > CODIGO_MAX or not CODIGO_RE.match(codigo) or not codigo.isascii():
        raise ValueError(
            f"Escriba el código CUPS con letras, números y guiones (hasta {CODIGO_MAX})."
        )
    return codigo


def _claim(solicitud_id: int, **changes) -> SolicitudAutorizacion:
    """Mark a pending request decided, or raise AlreadyDecided (one UPDATE decides)."""
    won, solicitud = decisions.claim_pending(SolicitudAutorizacion, solicitud_id, **changes)
    if not won:
        raise AlreadyDecided(solicitud)
    return solicitud


def new_numero() -> str:
    """Return a fresh authorization number: the year and 8 characters read aloud easily."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"{clock.today().year}-{raw[:4]}-{raw[4:]}"


def _issue(solicitud: SolicitudAutorizacion, approval: Approval, ips: Ips) -> Autorizacion:
    """Create the authorization, drawing another number on the (unlikely) clash."""
    for _ in range(5):
        try:
            with db.atomic():  # a savepoint: a clash leaves the decision's transaction usable
                return Autorizacion.create(
                    numero=new_numero(),
                    afiliado=solicitud.afiliado_id,
                    codigo_servicio=approval.codigo_servicio,
                    nombre_servicio=approval.nombre_servicio,
                    fecha=clock.today(),
                    estado=APROBADA,
                    ips=ips.id,
                    created_at=clock.utcnow(),
                    updated_at=clock.utcnow(),
                )
        except IntegrityError:
            continue
    raise RuntimeError("no free authorization number after 5 draws")


def _contact(solicitud: SolicitudAutorizacion) -> tuple[str, str]:
    """Return the mobile and e-mail to tell: the member's (confirmed at filing), else the filer's."""
    member, filer = solicitud.afiliado, solicitud.account
    return (member.celular or filer.celular), (member.email or filer.email)


def _notify(solicitud: SolicitudAutorizacion, aprobada: bool, link: str, **context) -> None:
    """Queue the SMS and (with an address) the e-mail of a decision, in the caller's transaction."""
    celular, email = _contact(solicitud)
    word = "aprobada" if aprobada else "negada"
    if celular:
        # No health data in an SMS: the number and where to look, nothing more. Only
        # GSM-7 characters ("No." rather than "N°"): one 160-character part, not 70.
        notify.queue_sms(
            celular,
            f"Cajacopi EPS: su solicitud No. {solicitud.numero} fue {word}. "
            "Consulte el detalle en el Portal Génesis.",
        )
    if email:
        member = solicitud.afiliado
        notify.queue_template_email(
            email,
            f"Su solicitud de autorización N° {solicitud.numero} fue {word}",
            "autorizacion_aprobada" if aprobada else "autorizacion_rechazada",
            nombre=member.primer_nombre.title(),
            numero=solicitud.numero,
            link=link,
            **context,
        )


def approve(
    solicitud_id: int,
    actor: Account,
    approval: Approval,
    link: str,
    ip: str | None = None,
) -> SolicitudAutorizacion:
    """Approve a pending request once: issue its authorization, audit, tell the member.

    link is where the member reads it (the Portal Génesis). Raises
    InvalidChoice("codigo"|"nombre"|"ips") and AlreadyDecided.
    """
    try:
        codigo = clean_codigo(approval.codigo_servicio)
    except ValueError:
        raise InvalidChoice("codigo") from None
    nombre = " ".join((approval.nombre_servicio or "").split())
    if not nombre or len(nombre) > NOMBRE_MAX:
        raise InvalidChoice("nombre")
    approval = Approval(codigo, nombre, approval.ips_id)
    with db.atomic():
        ips = Ips.get_or_none(Ips.id == approval.ips_id)
        if ips is None:
            raise InvalidChoice("ips")
        solicitud = _claim(solicitud_id, estado=SolicitudAutorizacion.APROBADA, decided_by=actor.id)
        autorizacion = _issue(solicitud, approval, ips)
        SolicitudAutorizacion.update(autorizacion=autorizacion.id).where(
            SolicitudAutorizacion.id == solicitud.id
        ).execute()
        solicitud.autorizacion = autorizacion
        audit.record(
            actor,
            audit.Action.AUTORIZACION_APROBAR,
            AUDIT_TARGET,
            solicitud.id,
            before={"estado": SolicitudAutorizacion.PENDIENTE, "autorizacion": None},
            after={
                "estado": SolicitudAutorizacion.APROBADA,
                "autorizacion": autorizacion.numero,
                "cups": codigo,  # not "codigo_…": audit drops keys that look like secrets
                "ips_id": ips.id,
            },
            ip=ip,
        )
        _notify(
            solicitud,
            True,
            link,
            autorizacion=autorizacion.numero,
            ips=ips.nombre,
            ips_direccion=ips.direccion,
            ips_telefono=ips.telefono,
        )
    return solicitud


def reject(
    solicitud_id: int,
    actor: Account,
    motivo: str,
    link: str,
    ip: str | None = None,
) -> SolicitudAutorizacion:
    """Reject a pending request once with a reason the member will read; audit, tell them.

    Raises InvalidChoice("motivo") for a reason outside 10–1000 characters, and AlreadyDecided.
    """
    motivo = (motivo or "").strip()
    if not MOTIVO_MIN <= len(motivo) <= MOTIVO_MAX:
        raise InvalidChoice("motivo")
    with db.atomic():
        solicitud = _claim(
            solicitud_id,
            estado=SolicitudAutorizacion.RECHAZADA,
            motivo_rechazo=motivo,
            decided_by=actor.id,
        )
        audit.record(
            actor,
            audit.Action.AUTORIZACION_RECHAZAR,
            AUDIT_TARGET,
            solicitud.id,
            before={"estado": SolicitudAutorizacion.PENDIENTE, "motivo_rechazo": ""},
            after={"estado": SolicitudAutorizacion.RECHAZADA, "motivo_rechazo": motivo},
            ip=ip,
        )
        _notify(solicitud, False, link)
    return solicitud
