"""Mesa de Ayuda IPS from staff's side (S1): the queue, a case's actions, motivos and saved replies.

Functions take plain arguments and own their transaction; outcomes other than
success are small exceptions the views turn into Spanish words. The case's
writes are core.mesa's; what this module adds is the check that the case is
still as the staff member's page showed it (a double click or a colleague's
change meanwhile is refused, never done twice) and the audit row, which
commits with the change it describes. Audit rows carry states, numbers and
counts: never a message's text nor the IPS's data.
"""

from __future__ import annotations

import re
from datetime import datetime

from peewee import JOIN, IntegrityError, fn

from blueprints import queue
from core import audit, mesa, uploads, workdays
from core.db import is_sqlite
from core.mesa import MesaError, Outdated, Upload, WrongState  # noqa: F401 (the views catch them here)
from core.permissions import Role
from models import (
    Account,
    AsuntoMesa,
    Attachment,
    CasoMesa,
    Ips,
    IpsOperador,
    MensajeMesa,
    MotivoMesa,
    RespuestaGuardada,
    StaffMember,
    StaffRole,
    db,
)

TARGET_CASO = "caso_mesa"
TARGET_MOTIVO = "motivo_mesa"
TARGET_RESPUESTA = "respuesta_guardada"
POR_RESPONDER = "por_responder"  # the queue's default: the open cases where staff owe an answer
OWED = (CasoMesa.NUEVO, CasoMesa.ESPERA_MESA)
QUEUE_ORDER = (CasoMesa.due_at, CasoMesa.id)  # the (estado, due_at, id) index
REPLY_STATES = (CasoMesa.ESPERA_IPS, CasoMesa.CERRADO)  # the state a reply leaves
TEXTO_MIN, TEXTO_MAX = 5, mesa.MENSAJE_MAX  # a reply or a note
MAX_FILES = mesa.MAX_FILES
FORM_OVERHEAD = uploads.MB
MAX_BODY = MAX_FILES * mesa.POLICY.max_bytes + FORM_OVERHEAD
BUSCAR_MAX = 60
NOMBRE_MIN, NOMBRE_MAX = 3, 80  # a motivo's or an asunto's name
HORAS_MIN, HORAS_MAX = 1, 240
TITULO_MIN, TITULO_MAX = 3, 80  # a saved reply
GUARDADA_MIN, GUARDADA_MAX = 10, 2000
_SEARCH_CHARS = re.compile(r"\A[^\W_]*(?:[ .,&\-][^\W_]*)*\Z")  # no % _ \ (LIKE's own)
_COMPACT = re.compile(r"[\s.\-]")


# --- outcomes ----------------------------------------------------------------------


class NotFound(MesaError):
    """No such case, motivo, asunto or saved reply."""


class Taken(MesaError):
    """Another motivo, asunto or saved reply already has that name."""


class InvalidValue(MesaError):
    """A value out of its range (the views validate first; the service checks again)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


# --- the queue ---------------------------------------------------------------------


def clean_search(value: str) -> str:
    """Return the queue's search text with single spaces, or raise a Spanish ValueError."""
    value = " ".join((value or "").split())
    if len(value) > BUSCAR_MAX or not _SEARCH_CHARS.match(value):
        raise ValueError(
            "Escriba un número de caso, un NIT o parte del nombre de la IPS "
            f"(letras, números, puntos y guiones; hasta {BUSCAR_MAX} caracteres)."
        )
    return value


def _search(text: str):
    """Match a case number, an IPS's NIT (with or without its check digit), or its name."""
    digits = _COMPACT.sub("", text)
    if digits.isascii() and digits.isdigit():
        found = Ips.nit == digits
        found |= Ips.nit.startswith(digits) & (fn.LENGTH(Ips.nit) == len(digits) + 1)
        if len(digits) <= 9:
            found |= CasoMesa.numero == int(digits)
        return found
    return Ips.nombre.contains(text)


def queue_query(
    estado: str = POR_RESPONDER,
    motivo_id: int | None = None,
    asignado_a: int | None = None,
    buscar: str = "",
):
    """Build the queue's filtered select (no order, no limit: blueprints.queue pages it).

    It reads caso_mesa alone (the IPS too when buscar needs it); with_names adds
    what the rows show of the IPS, motivo, asunto and staff member, for one page.
    Joined here, every matching case would be joined before the LIMIT: the sort
    of the owed cases and the count of the closed ones would read all their names.
    """
    query = CasoMesa.select(
        CasoMesa.id,
        CasoMesa.numero,
        CasoMesa.created_at,
        CasoMesa.due_at,
        CasoMesa.estado,
        CasoMesa.asignado,
    )
    estados = OWED if estado == POR_RESPONDER else (estado,)
    query = query.where(CasoMesa.estado.in_(estados))
    if motivo_id:
        query = query.where(CasoMesa.motivo == motivo_id)
    if asignado_a:
        query = query.where(CasoMesa.asignado == asignado_a)
    if buscar:
        query = query.join(Ips, on=(CasoMesa.ips == Ips.id)).where(_search(buscar))
    return query


def with_names(rows: list[dict]) -> list[dict]:
    """Return the queue's rows with their IPS (NIT, name), motivo, asunto and assignee's name."""
    if not rows:
        return rows
    names = (
        CasoMesa.select(
            CasoMesa.id,
            Ips.nit.alias("ips_nit"),
            Ips.nombre.alias("ips_nombre"),
            MotivoMesa.nombre.alias("motivo"),
            AsuntoMesa.nombre.alias("asunto"),
            StaffMember.nombre.alias("asignado_nombre"),
        )
        .join(Ips, on=(CasoMesa.ips == Ips.id))
        .switch(CasoMesa)
        .join(MotivoMesa, on=(CasoMesa.motivo == MotivoMesa.id))
        .switch(CasoMesa)
        .join(AsuntoMesa, on=(CasoMesa.asunto == AsuntoMesa.id))
        .switch(CasoMesa)
        .join(StaffMember, JOIN.LEFT_OUTER, on=(CasoMesa.asignado == StaffMember.account))
        .where(CasoMesa.id.in_([row["id"] for row in rows]))
    )
    found = {row["id"]: row for row in names.dicts()}
    return [{**row, **found[row["id"]]} for row in rows]


def ascending(estado: str) -> bool:
    """Tell whether a list runs by the nearest target first (open cases) or newest first."""
    return estado != CasoMesa.CERRADO


def counts() -> dict[str, int]:
    """Return how many cases there are in each state, and the owed ones under POR_RESPONDER.

    Each count stops past queue.COUNT_CAP (the closed ones grow for years): over it means "más de".
    """
    found = queue.state_counts(CasoMesa.estado, tuple(mesa.ESTADOS))
    found[POR_RESPONDER] = sum(found[e] for e in OWED)
    return found


def mark(estado: str, due_at: datetime) -> workdays.DueState | None:
    """Tell where a case stands against its target (None when staff owe nothing)."""
    return mesa.due_state(CasoMesa(estado=estado, due_at=due_at))


# --- one case ----------------------------------------------------------------------


def get(caso_id: int) -> CasoMesa | None:
    """Return a case by id with its IPS, motivo and asunto, or None."""
    return (
        CasoMesa.select(CasoMesa, Ips, MotivoMesa, AsuntoMesa)
        .join(Ips, on=(CasoMesa.ips == Ips.id))
        .switch(CasoMesa)
        .join(MotivoMesa, on=(CasoMesa.motivo == MotivoMesa.id))
        .switch(CasoMesa)
        .join(AsuntoMesa, on=(CasoMesa.asunto == AsuntoMesa.id))
        .where(CasoMesa.id == caso_id)
        .first()
    )


def names_of(account_ids) -> dict[int, str]:
    """Return the names of staff members and IPS operators by account id (two queries)."""
    ids = sorted({i for i in account_ids if i})
    if not ids:
        return {}
    found = {
        a: n
        for a, n in StaffMember.select(StaffMember.account, StaffMember.nombre)
        .where(StaffMember.account.in_(ids))
        .tuples()
    }
    found.update(
        IpsOperador.select(IpsOperador.account, IpsOperador.nombre)
        .where(IpsOperador.account.in_(ids))
        .tuples()
    )
    return found


def last_message_id(messages: list[MensajeMesa]) -> int:
    """Return the id of the last message a page shows (0 for none): what its forms were written after."""
    return messages[-1].id if messages else 0


def soporte_staff() -> list[tuple[int, str]]:
    """Return the active staff of role soporte (who a case may be given to), by name."""
    return list(
        StaffMember.select(StaffMember.account, StaffMember.nombre)
        .join(Account, on=(StaffMember.account == Account.id))
        .switch(StaffMember)
        .join(StaffRole, on=(StaffRole.account == StaffMember.account))
        .where((StaffRole.role == Role.SOPORTE.value) & (Account.status == Account.ACTIVE))
        .order_by(StaffMember.nombre, StaffMember.account)
        .tuples()
    )


def _locked(caso_id: int) -> CasoMesa:
    """Read the case inside the action's transaction, its row locked (SQLite: IMMEDIATE does it)."""
    query = CasoMesa.select().where(CasoMesa.id == caso_id)
    if not is_sqlite(db):
        query = query.for_update()
    found = query.first()
    if found is None:
        raise NotFound(str(caso_id))
    return found


def record_file_view(actor: Account, caso: CasoMesa, attachment: Attachment, ip=None) -> None:
    """Audit that a staff member opened a file of the case, before it is sent."""
    with db.atomic():
        audit.record(
            actor,
            audit.Action.MESA_ADJUNTO_VER,
            TARGET_CASO,
            caso.id,
            after={"numero": caso.numero, "archivo_id": attachment.id},
            ip=ip,
        )


def reply(
    caso: CasoMesa,
    actor: Account,
    texto: str,
    parts: list[Upload],
    upload_dir,
    *,
    estado: str,
    seen_estado: str,
    seen_message: int,
    link: str,
    ip: str | None = None,
) -> MensajeMesa:
    """Answer the IPS: the message and its files, the state after, the opener's e-mail, the audit.

    Raises InvalidValue, WrongState (the state changed since the page), Outdated
    (a message came meanwhile) and uploads.UploadError (nothing kept).
    """
    texto = _text(texto)
    if estado not in REPLY_STATES:
        raise InvalidValue("estado")

    def audited(message: MensajeMesa, stored: list[uploads.Stored]) -> None:
        audit.record(
            actor,
            audit.Action.MESA_RESPONDER,
            TARGET_CASO,
            caso.id,
            before={"estado": seen_estado},
            after={
                "estado": estado,
                "numero": caso.numero,
                "mensaje_id": message.id,
                "adjuntos": len(stored),
            },
            ip=ip,
        )

    return mesa.staff_writes(
        caso, actor, texto, parts, upload_dir, seen_estado=seen_estado,
        seen_message=seen_message, estado=estado, link=link, then=audited,
    )  # fmt: skip


def note(
    caso: CasoMesa,
    actor: Account,
    texto: str,
    parts: list[Upload],
    upload_dir,
    *,
    seen_message: int,
    ip: str | None = None,
) -> MensajeMesa:
    """Add an internal note (staff's only: no e-mail, no state change) and audit it.

    Raises InvalidValue, Outdated and uploads.UploadError.
    """
    texto = _text(texto)

    def audited(message: MensajeMesa, stored: list[uploads.Stored]) -> None:
        audit.record(
            actor,
            audit.Action.MESA_NOTA,
            TARGET_CASO,
            caso.id,
            after={"numero": caso.numero, "mensaje_id": message.id, "adjuntos": len(stored)},
            ip=ip,
        )

    return mesa.staff_writes(
        caso, actor, texto, parts, upload_dir, seen_estado=caso.estado,
        seen_message=seen_message, interna=True, then=audited,
    )  # fmt: skip


def _text(texto: str) -> str:
    texto = (texto or "").strip()
    if not TEXTO_MIN <= len(texto) <= TEXTO_MAX or "\x00" in texto:
        raise InvalidValue("texto")
    return texto


def change_state(
    caso_id: int, actor: Account, estado: str, seen_estado: str, ip: str | None = None
) -> CasoMesa:
    """Set the case's state by hand, once: refused (WrongState) when it is no longer seen_estado."""
    if estado not in mesa.ESTADOS:
        raise InvalidValue("estado")
    with db.atomic():
        caso = _locked(caso_id)
        if caso.estado != seen_estado or caso.estado == estado:
            raise WrongState(caso)
        mesa.set_state(caso, estado)
        audit.record(
            actor,
            audit.Action.MESA_ESTADO,
            TARGET_CASO,
            caso.id,
            before={"estado": seen_estado},
            after={"estado": estado, "numero": caso.numero},
            ip=ip,
        )
    return caso


def assign(
    caso_id: int,
    actor: Account,
    to: int | None,
    seen_asignado: int | None,
    ip: str | None = None,
) -> CasoMesa:
    """Give the case to a soporte staff member (to: an account id) or to nobody (None), once.

    Raises NotFound (to is no active soporte staff member) and WrongState (someone
    else assigned it since the page was shown, or it already is so).
    """
    staff = None
    if to is not None:
        if to not in {i for i, _ in soporte_staff()}:
            raise NotFound("asignado")
        staff = Account.get_by_id(to)
    with db.atomic():
        caso = _locked(caso_id)
        if caso.asignado_id != seen_asignado or caso.asignado_id == to:
            raise WrongState(caso)
        mesa.assign(caso, staff)
        audit.record(
            actor,
            audit.Action.MESA_ASIGNAR,
            TARGET_CASO,
            caso.id,
            before={"asignado": seen_asignado},
            after={"asignado": to, "numero": caso.numero},
            ip=ip,
        )
    return caso


# --- motivos and asuntos (admin) ------------------------------------------------------


def clean_name(value: str) -> str:
    """Return a motivo's or asunto's name as the lists show it: single spaces, upper case."""
    value = " ".join((value or "").split()).upper()
    if not NOMBRE_MIN <= len(value) <= NOMBRE_MAX:
        raise ValueError(f"Escriba entre {NOMBRE_MIN} y {NOMBRE_MAX} caracteres.")
    return value


def motivos_with_asuntos() -> list[tuple[MotivoMesa, list[AsuntoMesa]]]:
    """Return every motivo (the manual's six made first when there are none) with its asuntos."""
    mesa.ensure_default_motivos()
    return [(m, mesa.asuntos_of(m.id, include_inactive=True)) for m in mesa.motivos(True)]


def _motivo_fields(motivo: MotivoMesa) -> dict:
    return {
        "nombre": motivo.nombre,
        "horas_objetivo": motivo.horas_objetivo,
        "activo": motivo.activo,
    }


def _name_taken(model, name: str, *, exclude: int | None = None, **scope) -> bool:
    query = model.select(model.id).where(model.nombre == name)  # stored as clean_name made it
    for field, value in scope.items():
        query = query.where(getattr(model, field) == value)
    if exclude is not None:
        query = query.where(model.id != exclude)
    return query.exists()


def _check_hours(horas: int) -> None:
    if not isinstance(horas, int) or not HORAS_MIN <= horas <= HORAS_MAX:
        raise InvalidValue("horas")


def add_motivo(actor: Account, nombre: str, horas: int, ip: str | None = None) -> MotivoMesa:
    """Create a motivo (last in the list) with its target hours. Raises Taken and InvalidValue."""
    _check_hours(horas)
    try:
        with db.atomic():
            if _name_taken(MotivoMesa, nombre):
                raise Taken(nombre)
            orden = (MotivoMesa.select(fn.MAX(MotivoMesa.orden)).scalar() or 0) + 1
            motivo = MotivoMesa.create(nombre=nombre, horas_objetivo=horas, orden=orden)
            audit.record(
                actor, audit.Action.MESA_MOTIVO, TARGET_MOTIVO, motivo.id,
                after=_motivo_fields(motivo), ip=ip,
            )  # fmt: skip
    except IntegrityError:  # a colleague created the same name at once
        raise Taken(nombre) from None
    return motivo


def edit_motivo(
    actor: Account, motivo_id: int, nombre: str, horas: int, activo: bool, ip: str | None = None
) -> MotivoMesa:
    """Rename a motivo, change its target hours, (de)activate it; cases keep theirs.

    A new target counts for cases opened (or written to again) from now on.
    Raises NotFound, Taken and InvalidValue.
    """
    _check_hours(horas)
    try:
        with db.atomic():
            motivo = MotivoMesa.get_or_none(MotivoMesa.id == motivo_id)
            if motivo is None:
                raise NotFound(str(motivo_id))
            if _name_taken(MotivoMesa, nombre, exclude=motivo.id):
                raise Taken(nombre)
            before = _motivo_fields(motivo)
            motivo.nombre, motivo.horas_objetivo, motivo.activo = nombre, horas, bool(activo)
            motivo.save()
            audit.record(
                actor, audit.Action.MESA_MOTIVO, TARGET_MOTIVO, motivo.id,
                before=before, after=_motivo_fields(motivo), ip=ip,
            )  # fmt: skip
    except IntegrityError:
        raise Taken(nombre) from None
    return motivo


def add_asunto(actor: Account, motivo_id: int, nombre: str, ip: str | None = None) -> AsuntoMesa:
    """Add an asunto at the end of a motivo's list. Raises NotFound and Taken."""
    try:
        with db.atomic():
            motivo = MotivoMesa.get_or_none(MotivoMesa.id == motivo_id)
            if motivo is None:
                raise NotFound(str(motivo_id))
            if _name_taken(AsuntoMesa, nombre, motivo=motivo.id):
                raise Taken(nombre)
            orden = (
                AsuntoMesa.select(fn.MAX(AsuntoMesa.orden))
                .where(AsuntoMesa.motivo == motivo.id)
                .scalar()
            )
            asunto = AsuntoMesa.create(
                motivo=motivo.id, nombre=nombre, orden=(orden or 0) + 1, activo=True
            )
            audit.record(
                actor, audit.Action.MESA_MOTIVO, TARGET_MOTIVO, motivo.id,
                after={"asunto_id": asunto.id, "asunto": nombre, "asunto_activo": True}, ip=ip,
            )  # fmt: skip
    except IntegrityError:
        raise Taken(nombre) from None
    return asunto


def edit_asunto(
    actor: Account, asunto_id: int, nombre: str, activo: bool, ip: str | None = None
) -> AsuntoMesa:
    """Rename an asunto or (de)activate it (never deleted: cases name it). Raises NotFound, Taken."""
    try:
        with db.atomic():
            asunto = AsuntoMesa.get_or_none(AsuntoMesa.id == asunto_id)
            if asunto is None:
                raise NotFound(str(asunto_id))
            if _name_taken(AsuntoMesa, nombre, exclude=asunto.id, motivo=asunto.motivo_id):
                raise Taken(nombre)
            before = {"asunto": asunto.nombre, "asunto_activo": asunto.activo}
            asunto.nombre, asunto.activo = nombre, bool(activo)
            asunto.save()
            audit.record(
                actor, audit.Action.MESA_MOTIVO, TARGET_MOTIVO, asunto.motivo_id,
                before={"asunto_id": asunto.id, **before},
                after={"asunto_id": asunto.id, "asunto": nombre, "asunto_activo": asunto.activo},
                ip=ip,
            )  # fmt: skip
    except IntegrityError:
        raise Taken(nombre) from None
    return asunto


# --- saved replies ---------------------------------------------------------------------


def clean_title(value: str) -> str:
    """Return a saved reply's title with single spaces, or raise a Spanish ValueError."""
    value = " ".join((value or "").split())
    if not TITULO_MIN <= len(value) <= TITULO_MAX:
        raise ValueError(f"Escriba un título de entre {TITULO_MIN} y {TITULO_MAX} caracteres.")
    return value


def saved_replies() -> list[RespuestaGuardada]:
    """Return the saved replies by title."""
    return list(RespuestaGuardada.select().order_by(RespuestaGuardada.titulo, RespuestaGuardada.id))


def saved_reply(reply_id) -> RespuestaGuardada | None:
    """Return one saved reply, or None (a bad id too)."""
    text = reply_id if isinstance(reply_id, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 15):  # ids below 2**53
        return None
    return RespuestaGuardada.get_or_none(RespuestaGuardada.id == int(text))


def _title_taken(titulo: str, exclude: int | None = None) -> bool:
    query = RespuestaGuardada.select(RespuestaGuardada.id).where(
        fn.LOWER(RespuestaGuardada.titulo) == titulo.lower()
    )
    if exclude is not None:
        query = query.where(RespuestaGuardada.id != exclude)
    return query.exists()


def _reply_fields(saved: RespuestaGuardada) -> dict:
    # The title says which; the text is a template, but it stays out of the log all the same.
    return {"titulo": saved.titulo, "caracteres": len(saved.texto)}


def _check_saved_text(texto: str) -> str:
    texto = (texto or "").strip()
    if not GUARDADA_MIN <= len(texto) <= GUARDADA_MAX:
        raise InvalidValue("texto")
    return texto


def add_saved_reply(actor: Account, titulo: str, texto: str, ip=None) -> RespuestaGuardada:
    """Save a reply staff can insert in any case. Raises Taken and InvalidValue."""
    texto = _check_saved_text(texto)
    try:
        with db.atomic():
            if _title_taken(titulo):
                raise Taken(titulo)
            saved = RespuestaGuardada.create(titulo=titulo, texto=texto, created_by=actor.id)
            audit.record(
                actor, audit.Action.MESA_RESPUESTA_GUARDADA, TARGET_RESPUESTA, saved.id,
                after=_reply_fields(saved), ip=ip,
            )  # fmt: skip
    except IntegrityError:
        raise Taken(titulo) from None
    return saved


def edit_saved_reply(
    actor: Account, reply_id: int, titulo: str, texto: str, ip=None
) -> RespuestaGuardada:
    """Change a saved reply's title or text. Raises NotFound, Taken and InvalidValue."""
    texto = _check_saved_text(texto)
    try:
        with db.atomic():
            saved = RespuestaGuardada.get_or_none(RespuestaGuardada.id == reply_id)
            if saved is None:
                raise NotFound(str(reply_id))
            if _title_taken(titulo, exclude=saved.id):
                raise Taken(titulo)
            before = _reply_fields(saved)
            changed = saved.texto != texto
            saved.titulo, saved.texto = titulo, texto
            saved.save()
            after = _reply_fields(saved)
            if changed:
                before["texto_cambiado"], after["texto_cambiado"] = False, True
            audit.record(
                actor, audit.Action.MESA_RESPUESTA_GUARDADA, TARGET_RESPUESTA, saved.id,
                before=before, after=after, ip=ip,
            )  # fmt: skip
    except IntegrityError:
        raise Taken(titulo) from None
    return saved


def delete_saved_reply(actor: Account, reply_id: int, ip=None) -> RespuestaGuardada:
    """Remove a saved reply (cases keep the text already sent). Raises NotFound."""
    with db.atomic():
        saved = RespuestaGuardada.get_or_none(RespuestaGuardada.id == reply_id)
        if saved is None:
            raise NotFound(str(reply_id))
        before = _reply_fields(saved)
        if RespuestaGuardada.delete().where(RespuestaGuardada.id == saved.id).execute() != 1:
            raise NotFound(str(reply_id))
        audit.record(
            actor, audit.Action.MESA_RESPUESTA_GUARDADA, TARGET_RESPUESTA, saved.id,
            before=before, after={"borrada": True}, ip=ip,
        )  # fmt: skip
    return saved
