"""Mesa de Ayuda IPS (SPEC I2, I3, S1): cases, their numbers, the thread, and who may see what.

No Flask here: the views pass the upload folder and the links.

- **Numbers** are sequential from FIRST_NUMBER (the manual's case 40912): one
  counter row (Secuencia) is incremented as the first statement of the
  creating transaction, so concurrent creations queue on its row lock
  (PostgreSQL) or on the write lock (SQLite's IMMEDIATE transactions), and a
  rolled-back creation never leaves a number taken by two cases.
- **States**: nuevo (nobody answered yet) → en espera de la IPS (staff
  answered) ⇄ en espera de la mesa (the IPS wrote back); cerrado by either
  side, reopened by the IPS (back to en espera de la mesa).
- **The target**: each motivo has hours to answer, counted in office hours
  (core.workdays.add_working_hours) from creation; due_at is its end.
- **Internal notes** (interna) are staff's: every query for the IPS's side
  (thread_for_ips, poll) leaves them out, and they send no e-mail.
- **Files**: up to MAX_FILES per message, each checked by content
  (uploads.HELP_DESK: PDF, Excel, Word, PowerPoint, JPG, PNG; 10 MB). They are
  stored before the transaction and removed again if it fails (core.files).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from peewee import IntegrityError, fn

from core import clock, files, notify, uploads, workdays
from core.prepared import prepared
from models import (
    Account,
    AsuntoMesa,
    Attachment,
    CasoMesa,
    Ips,
    IpsOperador,
    MensajeMesa,
    MotivoMesa,
    Secuencia,
    db,
)

FIRST_NUMBER = 40912
SEQUENCE = "caso_mesa"
OWNER_MESSAGE = "mesa_mensaje"  # Attachment.owner_type of a message's files
DESCRIPCION_MAX = 1000  # SPEC I2: the manual's 30 is too short for a real case
MENSAJE_MAX = 2000
MAX_FILES = 5
POLICY = uploads.HELP_DESK
NEAR = timedelta(hours=2)  # office hours before due_at that mark a case "por vencer"

ESTADOS = {
    CasoMesa.NUEVO: "Nuevo",
    CasoMesa.ESPERA_MESA: "En espera de la mesa",
    CasoMesa.ESPERA_IPS: "En espera de la IPS",
    CasoMesa.CERRADO: "Cerrado",
}
OPEN = (CasoMesa.NUEVO, CasoMesa.ESPERA_MESA, CasoMesa.ESPERA_IPS)

# The six motivos of the manual's list, each with its asuntos and target (office hours).
DEFAULT_MOTIVOS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("CAPACITACION", 24, ("CARGUE RESOLUCION 2463", "USO DEL PORTAL GENESIS", "FACTURACION ELECTRONICA")),
    ("AUTORIZACIONES", 8, ("AUTORIZACION NO APARECE", "ERROR AL GENERAR AUTORIZACION", "ANULACION")),
    ("FACTURACION", 16, ("RADICACION DE CUENTAS", "GLOSAS", "ESTADO DE PAGOS")),
    ("AFILIACIONES", 16, ("VALIDACION DE DERECHOS", "NOVEDADES DE AFILIADOS", "PORTABILIDAD")),
    ("ACCESO AL PORTAL", 4, ("RESTABLECER CONTRASEÑA", "CREAR OPERADOR", "ERROR DE INGRESO")),
    ("REPORTES", 24, ("CARGUE DE RIPS", "REPORTE DE EVENTOS", "INFORMES DE GESTION")),
)  # fmt: skip


# === outcomes ==============================================================================


class MesaError(Exception):
    """A help-desk action could not go ahead; the subclass says why."""


class WrongState(MesaError):
    """The case is not (or no longer) in a state that allows the action."""

    def __init__(self, caso: CasoMesa) -> None:
        super().__init__(caso.estado)
        self.caso = caso


class DuplicateSubmit(MesaError):
    """This form was already sent by the same IPS: here is its case."""

    def __init__(self, caso: CasoMesa) -> None:
        super().__init__("DuplicateSubmit")
        self.caso = caso


class StaleForm(MesaError):
    """The form's key belongs to a case of someone else: never name it."""


@dataclass(frozen=True)
class Upload:
    """One file part of a form: its stream and the name the browser gave."""

    stream: BinaryIO
    filename: str


# === motivos and asuntos ====================================================================


def motivos(include_inactive: bool = False) -> list[MotivoMesa]:
    """Return the motivos in their order (the active ones unless asked)."""
    query = MotivoMesa.select().order_by(MotivoMesa.orden, MotivoMesa.nombre)
    if not include_inactive:
        query = query.where(MotivoMesa.activo == True)  # noqa: E712 (peewee expression)
    return list(query)


def asuntos_of(motivo_id: int | None, include_inactive: bool = False) -> list[AsuntoMesa]:
    """Return one motivo's asuntos in their order (none for no motivo)."""
    if not motivo_id:
        return []
    query = (
        AsuntoMesa.select()
        .join(MotivoMesa)
        .where(AsuntoMesa.motivo == motivo_id)
        .order_by(AsuntoMesa.orden, AsuntoMesa.nombre)
    )
    if not include_inactive:
        query = query.where((AsuntoMesa.activo == True) & (MotivoMesa.activo == True))  # noqa: E712
    return list(query)


def ensure_default_motivos() -> int:
    """Create the manual's six motivos and their asuntos when there are none; return how many."""
    if MotivoMesa.select().exists():
        return 0
    with db.atomic():
        for orden, (nombre, horas, asuntos) in enumerate(DEFAULT_MOTIVOS):
            motivo = MotivoMesa.create(nombre=nombre, horas_objetivo=horas, orden=orden)
            for i, asunto in enumerate(asuntos):
                AsuntoMesa.create(motivo=motivo, nombre=asunto, orden=i)
    return len(DEFAULT_MOTIVOS)


# === numbers, targets and states =============================================================


def next_number() -> int:
    """Take the next case number inside the caller's transaction (its first write)."""
    if not db.in_transaction():
        raise RuntimeError("next_number() must run inside the creating transaction")
    for _ in range(2):
        row = (
            Secuencia.update(valor=Secuencia.valor + 1)
            .where(Secuencia.nombre == SEQUENCE)
            .returning(Secuencia.valor)
            .execute()
        )
        taken = [r.valor for r in row]
        if taken:
            return taken[0]
        # The first case ever: the counter starts at the number before the first.
        biggest = CasoMesa.select(CasoMesa.numero).order_by(CasoMesa.numero.desc()).scalar()
        start = max(FIRST_NUMBER - 1, biggest or 0)
        Secuencia.insert(nombre=SEQUENCE, valor=start).on_conflict_ignore().execute()
    raise RuntimeError("the case counter could not be read")


def due_at_for(motivo: MotivoMesa, created: datetime) -> datetime:
    """Return the end of the motivo's target, in office hours from created, as naive UTC."""
    end = workdays.add_working_hours(created, motivo.horas_objetivo)
    return end.astimezone(UTC).replace(tzinfo=None)


def due_state(caso: CasoMesa, now: datetime | None = None) -> workdays.DueState | None:
    """Where the case stands against its target while staff owe an answer (else None)."""
    if caso.estado not in (CasoMesa.NUEVO, CasoMesa.ESPERA_MESA):
        return None
    due = caso.due_at.replace(tzinfo=UTC)
    return workdays.due_state(due, now, near=NEAR)


def estado_name(estado: str) -> str:
    return ESTADOS.get(estado, estado)


# === creating a case (I2) =====================================================================


def _check_new(form_key: str, ips: Ips) -> None:
    sent = CasoMesa.get_or_none(CasoMesa.form_key == form_key)
    if sent is None:
        return
    if sent.ips_id == ips.id:
        raise DuplicateSubmit(sent)
    raise StaleForm()


def _blank(part: Upload | None) -> bool:
    return part is None or not part.filename


def _store_all(stack: ExitStack, parts: Iterable[Upload], upload_dir) -> list[uploads.Stored]:
    """Store every chosen file before the transaction; each is removed if the block fails."""
    return [
        stack.enter_context(files.upload(p.stream, p.filename, POLICY, upload_dir))
        for p in parts
        if not _blank(p)
    ]


def open_case(
    account: Account,
    motivo: MotivoMesa,
    asunto: AsuntoMesa,
    descripcion: str,
    form_key: str,
    parts: Iterable[Upload],
    upload_dir: str | os.PathLike,
) -> CasoMesa:
    """Open a case for the account's IPS with its files, all or nothing ("Generar Servicio").

    The first message of the thread is the description itself, with the files.
    Raises uploads.UploadError (nothing kept), DuplicateSubmit (the same IPS's
    second submit of one form) and StaleForm.
    """
    ips = account.ips.ips
    _check_new(form_key, ips)  # cheap first: a double click writes no file
    try:
        with ExitStack() as stack:
            stored = _store_all(stack, parts, upload_dir)
            with db.atomic():
                numero = next_number()  # the first write: the lock that orders creations
                _check_new(form_key, ips)
                now = clock.utcnow()
                caso = CasoMesa.create(
                    numero=numero,
                    ips=ips.id,
                    account=account.id,
                    motivo=motivo.id,
                    asunto=asunto.id,
                    descripcion=descripcion,
                    due_at=due_at_for(motivo, now),
                    form_key=form_key,
                    created_at=now,
                    updated_at=now,
                )
                message = MensajeMesa.create(
                    caso=caso.id, account=account.id, de_mesa=False, texto=descripcion,
                    created_at=now,
                )  # fmt: skip
                for s in stored:
                    files.record(s, OWNER_MESSAGE, message.id, created_by=account.id)
    except IntegrityError:
        # Two submits of one form raced past the checks: the unique form_key decided.
        _check_new(form_key, ips)
        raise
    return caso


# === what each side may read ====================================================================


@prepared
def _case_of_ips(ips_id, numero):
    return (
        CasoMesa.select(CasoMesa, MotivoMesa, AsuntoMesa)
        .join(MotivoMesa, on=(CasoMesa.motivo == MotivoMesa.id))
        .switch(CasoMesa)
        .join(AsuntoMesa, on=(CasoMesa.asunto == AsuntoMesa.id))
        .where((CasoMesa.ips == ips_id) & (CasoMesa.numero == numero))
        .limit(1)
    )


def case_of_ips(ips_id: int, numero: int) -> CasoMesa | None:
    """Return the IPS's case by number, or None (another IPS's case is None too: a 404)."""
    return _case_of_ips.first(int(ips_id), int(numero))


def cases_of_ips(ips_id: int, estado: str = "", numero: int | None = None):
    """Return the IPS's cases query ("Mis Solicitudes"), newest first; the caller pages it."""
    query = (
        CasoMesa.select(CasoMesa, AsuntoMesa)
        .join(AsuntoMesa, on=(CasoMesa.asunto == AsuntoMesa.id))
        .where(CasoMesa.ips == ips_id)
    )
    if estado:
        query = query.where(CasoMesa.estado == estado)
    if numero is not None:
        query = query.where(CasoMesa.numero == numero)
    return query


def _thread(caso: CasoMesa, *, internal: bool, after: int = 0) -> list[MensajeMesa]:
    query = (
        MensajeMesa.select(MensajeMesa, Account)
        .left_outer_join(Account, on=(MensajeMesa.account == Account.id))
        .where((MensajeMesa.caso == caso.id) & (MensajeMesa.id > after))
        .order_by(MensajeMesa.id)
    )
    if not internal:
        query = query.where(MensajeMesa.interna == False)  # noqa: E712
    return list(query)


def thread_for_ips(caso: CasoMesa, after: int = 0) -> list[MensajeMesa]:
    """Return the messages the IPS reads, oldest first: never an internal note."""
    return _thread(caso, internal=False, after=after)


def thread_for_staff(caso: CasoMesa) -> list[MensajeMesa]:
    """Return every message, internal notes included, oldest first."""
    return _thread(caso, internal=True)


@prepared
def _poll(account_id, numero, after):
    newer = MensajeMesa.select(MensajeMesa.id).where(
        (MensajeMesa.caso == CasoMesa.id)
        & (MensajeMesa.id > after)
        & (MensajeMesa.interna == False)  # noqa: E712
    )
    return (
        CasoMesa.select(CasoMesa.id, fn.EXISTS(newer))
        .join(IpsOperador, on=(IpsOperador.ips == CasoMesa.ips))
        .where((IpsOperador.account == account_id) & (CasoMesa.numero == numero))
        .limit(1)
        .tuples()
    )


def poll(account_id: int, numero: int, after: int) -> bool | None:
    """The thread's poll in one query: None unless the operator's IPS has case numero, else
    whether that case has a message for the IPS (not an internal note) after id `after`."""
    row = _poll.first(int(account_id), int(numero), int(after))
    return None if row is None else bool(row[1])


def files_of(messages: Iterable[MensajeMesa]) -> dict[int, list[Attachment]]:
    """Return each message's files, by message id (one query)."""
    ids = [m.id for m in messages]
    found: dict[int, list[Attachment]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = (
        Attachment.select()
        .where((Attachment.owner_type == OWNER_MESSAGE) & Attachment.owner_id.in_(ids))
        .order_by(Attachment.id)
    )
    for row in rows:
        found[row.owner_id].append(row)
    return found


def attachment_for_ips(ips_id: int, numero: int, attachment_id: int) -> Attachment | None:
    """Return a file of a message the IPS may read (its own case, not an internal note)."""
    return (
        Attachment.select(Attachment)
        .join(MensajeMesa, on=(Attachment.owner_id == MensajeMesa.id))
        .join(CasoMesa, on=(MensajeMesa.caso == CasoMesa.id))
        .where(
            (Attachment.id == attachment_id)
            & (Attachment.owner_type == OWNER_MESSAGE)
            & (CasoMesa.ips == ips_id)
            & (CasoMesa.numero == numero)
            & (MensajeMesa.interna == False)  # noqa: E712
        )
        .first()
    )


def attachment_for_staff(caso_id: int, attachment_id: int) -> Attachment | None:
    """Return a file of one of the case's messages (staff read every one)."""
    return (
        Attachment.select(Attachment)
        .join(MensajeMesa, on=(Attachment.owner_id == MensajeMesa.id))
        .where(
            (Attachment.id == attachment_id)
            & (Attachment.owner_type == OWNER_MESSAGE)
            & (MensajeMesa.caso == caso_id)
        )
        .first()
    )


# === writing in the thread =======================================================================


def _move(caso: CasoMesa, allowed: tuple[str, ...], **changes) -> None:
    """Change the case only if its state is still one of allowed (a second click changes nothing)."""
    changes.setdefault("updated_at", clock.utcnow())
    done = (
        CasoMesa.update(**changes)
        .where((CasoMesa.id == caso.id) & CasoMesa.estado.in_(allowed))
        .execute()
    )
    if done != 1:
        raise WrongState(CasoMesa.get_by_id(caso.id))
    for name, value in changes.items():
        setattr(caso, name, value)


def _post(
    caso: CasoMesa,
    account: Account,
    texto: str,
    parts: Iterable[Upload],
    upload_dir,
    *,
    de_mesa: bool,
    interna: bool = False,
    estado: str | None = None,
    allowed: tuple[str, ...] = OPEN,
    after_write=None,
    changes: dict | None = None,
) -> MensajeMesa:
    with ExitStack() as stack:
        stored = _store_all(stack, parts, upload_dir)
        with db.atomic():
            now = clock.utcnow()
            changes = {**(changes or {}), **({"estado": estado} if estado else {})}
            _move(caso, allowed, updated_at=now, **changes)
            message = MensajeMesa.create(
                caso=caso.id, account=account.id, de_mesa=de_mesa, interna=interna,
                texto=texto, created_at=now,
            )  # fmt: skip
            for s in stored:
                files.record(s, OWNER_MESSAGE, message.id, created_by=account.id)
            if after_write is not None:
                after_write(message, stored)
    return message


def ips_writes(
    caso: CasoMesa, account: Account, texto: str, parts: Iterable[Upload], upload_dir
) -> MensajeMesa:
    """The IPS writes in its open case: the case waits for the desk again ("ENVIAR").

    A case the desk had answered gets the motivo's target again, from now.
    """
    changes = {}
    if caso.estado == CasoMesa.ESPERA_IPS:
        changes["due_at"] = due_at_for(MotivoMesa.get_by_id(caso.motivo_id), clock.utcnow())
    estado = CasoMesa.NUEVO if caso.estado == CasoMesa.NUEVO else CasoMesa.ESPERA_MESA
    return _post(
        caso, account, texto, parts, upload_dir, de_mesa=False, estado=estado, changes=changes
    )


def staff_replies(
    caso: CasoMesa,
    account: Account,
    texto: str,
    parts: Iterable[Upload],
    upload_dir,
    *,
    link: str,
    estado: str = CasoMesa.ESPERA_IPS,
) -> MensajeMesa:
    """Staff answer the IPS: the message, the new state, and the e-mail to who opened the case."""

    def notify_ips(message: MensajeMesa, stored: list[uploads.Stored]) -> None:
        _email_opener(caso, message, stored, estado, link)

    allowed = (*OPEN, CasoMesa.CERRADO) if estado == CasoMesa.CERRADO else OPEN
    changes = {"closed_at": clock.utcnow()} if estado == CasoMesa.CERRADO else {}
    return _post(
        caso, account, texto, parts, upload_dir, de_mesa=True, estado=estado,
        allowed=allowed, after_write=notify_ips, changes=changes,
    )  # fmt: skip


def staff_note(
    caso: CasoMesa, account: Account, texto: str, parts: Iterable[Upload], upload_dir
) -> MensajeMesa:
    """Add an internal note: staff's only; no state change, no e-mail."""
    return _post(
        caso, account, texto, parts, upload_dir, de_mesa=True, interna=True,
        allowed=(*OPEN, CasoMesa.CERRADO),
    )  # fmt: skip


def close(caso: CasoMesa) -> None:
    """Close an open case (the IPS, or staff)."""
    now = clock.utcnow()
    _move(caso, OPEN, estado=CasoMesa.CERRADO, closed_at=now, updated_at=now)


def reopen(caso: CasoMesa) -> None:
    """Reopen a closed case (the IPS): it waits for the desk, with a new target from now."""
    now = clock.utcnow()
    motivo = MotivoMesa.get_by_id(caso.motivo_id)
    _move(
        caso, (CasoMesa.CERRADO,), estado=CasoMesa.ESPERA_MESA, closed_at=None,
        due_at=due_at_for(motivo, now), updated_at=now,
    )  # fmt: skip


def set_state(caso: CasoMesa, estado: str) -> None:
    """Staff set the case's state by hand (any state to any other).

    A case that comes back to the desk (nuevo or en espera de la mesa, from
    waiting for the IPS or closed) gets the motivo's target again, from now.
    """
    if estado not in ESTADOS:
        raise ValueError(estado)
    now = clock.utcnow()
    others = tuple(e for e in ESTADOS if e != estado)
    changes = {"estado": estado, "updated_at": now}
    changes["closed_at"] = now if estado == CasoMesa.CERRADO else None
    owed = (CasoMesa.NUEVO, CasoMesa.ESPERA_MESA)
    if estado in owed and caso.estado not in owed:
        changes["due_at"] = due_at_for(MotivoMesa.get_by_id(caso.motivo_id), now)
    _move(caso, others, **changes)


def assign(caso: CasoMesa, staff: Account | None) -> None:
    """Give the case to a staff member (None: to nobody)."""
    CasoMesa.update(asignado=staff.id if staff else None, updated_at=clock.utcnow()).where(
        CasoMesa.id == caso.id
    ).execute()
    caso.asignado = staff.id if staff else None


# === staff writing against the page they read (S1; added for blueprints.gestion.mesa_service) ==


class Outdated(WrongState):
    """The case has a message the staff member's page did not show (a colleague's, the IPS's,
    or their own first click): nothing was written."""


def _recipients(caso: CasoMesa) -> list[Account]:
    """Who at the IPS reads the desk's reply by e-mail: who opened the case, while they still
    work there (active, same IPS); else the IPS's active admins, so the notice is not lost."""
    active = (
        Account.select(Account)
        .join(IpsOperador, on=(IpsOperador.account == Account.id))
        .where((IpsOperador.ips == caso.ips_id) & (Account.status == Account.ACTIVE))
    )
    opener = active.where(Account.id == caso.account_id).first() if caso.account_id else None
    if opener is not None:
        return [opener]
    return list(active.where(IpsOperador.es_admin == True).order_by(Account.id))  # noqa: E712


def _email_opener(caso: CasoMesa, message: MensajeMesa, stored, estado: str, link: str) -> None:
    """Queue the reply's e-mail to the IPS (_recipients), in the caller's transaction."""
    for reader in _recipients(caso):
        if not reader.email:
            continue
        notify.queue_template_email(
            reader.email,
            f"Mesa de Ayuda: respuesta en el caso {caso.numero}",
            "mesa_respuesta",
            nombre=reader.first_name,
            numero=caso.numero,
            texto=message.texto,
            adjuntos=[s.name for s in stored],
            estado=estado_name(estado),
            link=link,
        )


def staff_writes(
    caso: CasoMesa,
    account: Account,
    texto: str,
    parts: Iterable[Upload],
    upload_dir,
    *,
    seen_estado: str,
    seen_message: int,
    interna: bool = False,
    estado: str = CasoMesa.ESPERA_IPS,
    link: str = "",
    then=None,
) -> MensajeMesa:
    """Write staff's reply (or, with interna, an internal note) only if the case is as its page showed.

    As staff_replies / staff_note, plus two checks in the same transaction: a
    reply needs the state still to be seen_estado (its audit's "before"), and
    neither is written when the case has a message after seen_message (the last
    one the page showed): a double click, or a colleague who answered meanwhile,
    raises Outdated instead of a second message and e-mail. then(message,
    stored), when given, runs last inside the transaction (the caller's audit
    row). A reply to a closed case only closes it again (estado cerrado).
    """
    if interna:
        allowed = (*OPEN, CasoMesa.CERRADO)
    else:
        if estado not in ESTADOS:
            raise ValueError(estado)
        replyable = (*OPEN, CasoMesa.CERRADO) if estado == CasoMesa.CERRADO else OPEN
        if seen_estado not in replyable:
            raise WrongState(caso)
        allowed = (seen_estado,)

    def checked(message: MensajeMesa, stored: list[uploads.Stored]) -> None:
        # After _move's UPDATE: this case's row is locked, so a concurrent writer waits here.
        newer = MensajeMesa.select(MensajeMesa.id).where(
            (MensajeMesa.caso == caso.id)
            & (MensajeMesa.id > seen_message)
            & (MensajeMesa.id != message.id)
        )
        if newer.exists():
            raise Outdated(caso)
        if not interna:
            _email_opener(caso, message, stored, estado, link)
        if then is not None:
            then(message, stored)

    changes = {}
    if not interna and estado == CasoMesa.CERRADO:
        changes["closed_at"] = clock.utcnow()
    return _post(
        caso, account, texto, parts, upload_dir, de_mesa=True, interna=interna,
        estado=None if interna else estado, allowed=allowed, after_write=checked,
        changes=changes,
    )  # fmt: skip
