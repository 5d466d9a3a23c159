"""PQRSF (G7) from staff's side (S1): the queue by due date, and answering, asking, extending, closing.

Functions take plain arguments and own their transaction; outcomes other than
success are small exceptions the views turn into Spanish words. Each change is
one conditional UPDATE on the state (and, for an extension, on the due date it
read), so two clicks at once change the case once; the audit row, the message
the citizen reads and the citizen's SMS and e-mail (outbox) commit with it.

Terms (Ley 1755 de 2015, core.workdays): the term is counted in working days
from receipt; an extension (art. 14, parágrafo) is given before due_on passes,
with a reason, and adds at most the initial term again. A request for more
information (art. 17) is made within the first 10 working days and suspends the
term: when the citizen completes it (``resume``), due_on moves by the working
days waited.
"""

from __future__ import annotations

import calendar
import enum
import re
from datetime import date

from peewee import fn

from blueprints import queue
from blueprints.gestion import service as gestion  # the one unblock there is (H2)
from core import audit, clock, notify, workdays
from core import pqrs as pqrs_core
from core.colombia import DOCUMENT_TYPES, format_date
from core.pqrs import (  # noqa: F401 (the views catch them here)
    CaseError,
    InvalidText,
    WrongState,
    add_message,
    clean_text,
    current_case,
    move_if_unchanged,
)
from models import Account, Attachment, HannaUser, Pqrs, PqrsMensaje, db

OWNER_TYPE = pqrs_core.OWNER  # Attachment.owner_type of a PQRSF's file (G7 stores it)
AUDIT_TARGET = "pqrs"
OPEN = (Pqrs.RADICADA, Pqrs.INFORMACION)
ABIERTAS = "abiertas"  # the queue's default filter: every open state
ESTADOS = (Pqrs.RADICADA, Pqrs.INFORMACION, Pqrs.RESPONDIDA, Pqrs.CERRADA)
TIPO_NOMBRES = {code: tipo.nombre for code, tipo in pqrs_core.TIPOS.items()}
# "Por vencer" on the due day and the working day before it (the citizen sees 3: core.pqrs).
NEAR_DAYS = 1
TEXTO_MIN, TEXTO_MAX = 10, pqrs_core.TEXTO_MAX  # an answer, a request for information
MOTIVO_MIN, MOTIVO_MAX = 10, 1000  # the reason of an extension or of a closing
INFORMATION_WITHIN = 10  # working days after receipt to ask for more (Ley 1755, art. 17)
MESSAGES_SHOWN = 100
QUEUE_ORDER = (Pqrs.due_on, Pqrs.id)
BUSCAR_MAX = 20
_SEARCH_CHARS = re.compile(r"\A[A-Za-z0-9.\- ]*\Z")
_CODE = re.compile(rf"\A[{pqrs_core.RECEIPT_ALPHABET}]{{6}}\Z")  # a radicado's last part


# --- outcomes ---------------------------------------------------------------------


class Refusal(enum.StrEnum):
    """Why an extension or a request for information is refused."""

    DIAS = "dias"  # not 1..term_days
    VENCIDO = "vencido"  # due_on has passed (Bogotá)
    TOPE = "tope"  # extended_days + dias would exceed term_days
    FUERA_DE_PLAZO = "fuera_de_plazo"  # information asked after the first 10 working days


class Refused(CaseError):
    """A legal limit refuses the action; reason says which."""

    def __init__(self, reason: Refusal, pqrs: Pqrs) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.pqrs = pqrs


# --- the queue ----------------------------------------------------------------------


def compact(value: str) -> str:
    """Return a typed radicado or document without dots, dashes or spaces, upper case."""
    return re.sub(r"[\s.\-]", "", value or "").upper()


def clean_search(value: str) -> str:
    """Return the queue's search text stripped, or raise a Spanish ValueError."""
    value = (value or "").strip()
    if len(value) > BUSCAR_MAX or not _SEARCH_CHARS.match(value) or not value.isascii():
        raise ValueError("Escriba solo las letras, números y guiones del radicado o documento.")
    return value


def queue_query(estado: str = ABIERTAS, tipo: str = "", buscar: str = ""):
    """Build the queue's filtered select (no order, no limit: blueprints.queue pages it).

    buscar matches the radicado as typed or the citizen's document number; the
    (estado, due_on, id) index serves the order of one state.
    """
    query = Pqrs.select(
        Pqrs.id,
        Pqrs.radicado,
        Pqrs.tipo,
        Pqrs.created_at,
        Pqrs.tipo_documento,
        Pqrs.numero_documento,
        Pqrs.nombre,
        Pqrs.due_on,
        Pqrs.estado,
    )
    estados = OPEN if estado == ABIERTAS else (estado,)
    query = query.where(Pqrs.estado.in_(estados))
    if tipo:
        query = query.where(Pqrs.tipo == tipo)
    text = (buscar or "").strip()
    if text:
        numero = compact(text)
        numbers = sorted({numero, numero.lstrip("0") or numero})
        by_document = Pqrs.tipo_documento.in_(sorted(DOCUMENT_TYPES)) & Pqrs.numero_documento.in_(
            numbers
        )
        radicados = {text.upper(), pqrs_core.clean_radicado(text) or text.upper()}
        found = Pqrs.radicado.in_(sorted(radicados)) | by_document
        if _CODE.match(text.upper()):  # the code alone, as a citizen reads it out: any year
            found |= Pqrs.radicado.in_(_every_year(text.upper()))
        query = query.where(found)
    return query


_YEAR = re.compile(rf"\A{pqrs_core.RADICADO_PREFIX}-(\d{{4}})-")


def _every_year(code: str) -> list[str]:
    """Return the radicados that code would be in each year some radicado was filed.

    An IN list the radicado's unique index answers; LIKE '%-CODE' could not use
    it and would read every row of the chosen states. The first and the last
    year are MIN and MAX of that index: two reads of one entry each.
    """
    years = []
    for edge in (fn.MIN, fn.MAX):
        found = _YEAR.match(Pqrs.select(edge(Pqrs.radicado)).scalar() or "")
        if found:
            years.append(int(found.group(1)))
    if not years:
        return []
    span = range(min(years), max(years) + 1)
    return [f"{pqrs_core.RADICADO_PREFIX}-{year:04d}-{code}" for year in span]


def ascending(estado: str) -> bool:
    """Tell whether a state's list runs most urgent first (open ones) or newest first."""
    return estado in (ABIERTAS, *OPEN)


def counts() -> dict[str, int]:
    """Return how many PQRSF there are in each state, and the open ones under ABIERTAS.

    Each count stops past queue.COUNT_CAP (the closed ones grow for years): over it means "más de".
    """
    found = queue.state_counts(Pqrs.estado, ESTADOS)
    found[ABIERTAS] = sum(found[e] for e in OPEN)
    return found


def due_of(due_on: date) -> workdays.DueState:
    """Tell where an open PQRSF's term stands today (Colombian working days)."""
    return workdays.due_state(due_on, near=NEAR_DAYS)


# --- one case -----------------------------------------------------------------------


def get(pqrs_id: int) -> Pqrs | None:
    """Return a PQRSF by id, or None."""
    return Pqrs.get_or_none(Pqrs.id == pqrs_id)


def messages_of(pqrs: Pqrs, limit: int = MESSAGES_SHOWN) -> list[PqrsMensaje]:
    """Return the case's steps, oldest first."""
    return list(
        PqrsMensaje.select(PqrsMensaje, Account)
        .left_outer_join(Account, on=(PqrsMensaje.account == Account.id))
        .where(PqrsMensaje.pqrs == pqrs.id)
        .order_by(PqrsMensaje.created_at, PqrsMensaje.id)
        .limit(limit)
    )


def blocked_account_of(pqrs: Pqrs) -> Account | None:
    """Return the Hanna account a "desbloqueo de cuenta" PQRSF names (blocked or not now)."""
    if pqrs.tipo != Pqrs.DESBLOQUEO or pqrs.cuenta_bloqueada_id is None:
        return None
    return (
        Account.select(Account, HannaUser)
        .join(HannaUser)
        .where((Account.id == pqrs.cuenta_bloqueada_id) & (Account.kind == Account.HANNA))
        .first()
    )


def same_person(pqrs: Pqrs, account: Account) -> bool:
    """Tell whether the filer's document is the blocked account's (staff are warned when not)."""
    profile = account.hanna
    return (profile.tipo_documento, compact(profile.numero_documento)) == (
        pqrs.tipo_documento,
        compact(pqrs.numero_documento),
    )


def information_allowed(pqrs: Pqrs) -> bool:
    """Tell whether more information may still be asked: within 10 working days of receipt."""
    try:
        elapsed = workdays.working_days_between(pqrs.created_at, clock.now())
    except ValueError:  # filed "after" now: a clock set back; still day 0
        return True
    return elapsed <= INFORMATION_WITHIN


extension_left = pqrs_core.extension_left
attachment_of = pqrs_core.attachment_of
information_asked_on = pqrs_core.information_asked_on


def can_extend(pqrs: Pqrs) -> bool:
    """Tell whether an extension may be given now: radicada, before due_on, days left."""
    return (
        pqrs.estado == Pqrs.RADICADA and clock.today() <= pqrs.due_on and extension_left(pqrs) > 0
    )


def add_month(day: date) -> date:
    """Return the same day a calendar month later (the last of the month when it is shorter)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def record_file_view(
    actor: Account, pqrs: Pqrs, attachment: Attachment, ip: str | None = None
) -> None:
    """Audit that a staff member opened the citizen's file, before it is sent."""
    with db.atomic():
        audit.record(
            actor,
            audit.Action.PQRS_ADJUNTO_VER,
            AUDIT_TARGET,
            pqrs.id,
            after={"archivo_id": attachment.id, "radicado": pqrs.radicado},
            ip=ip,
        )


# --- acting -------------------------------------------------------------------------


def _notify(pqrs: Pqrs, sms: str, subject: str, template: str, link: str, **context) -> None:
    """Queue the SMS and e-mail the citizen gave, in the caller's transaction.

    The SMS says only what happened and where to read it, in GSM-7 characters
    (no "°" nor á, í, ó, ú: one 160-character part, not 70). The e-mail is the
    notice itself (Ley 1755, art. 14): it carries staff's text.
    """
    if pqrs.celular:
        notify.queue_sms(pqrs.celular, f"Cajacopi EPS: {sms} en Consulta PQRDS del Portal Génesis.")
    if pqrs.email:
        notify.queue_template_email(
            pqrs.email,
            subject,
            template,
            nombre=pqrs.nombre.split(" ")[0].title() if pqrs.nombre else "",
            radicado=pqrs.radicado,
            tipo=TIPO_NOMBRES.get(pqrs.tipo, pqrs.tipo),
            link=link,
            **context,
        )


def answer(pqrs_id: int, actor: Account, texto: str, link: str, ip: str | None = None) -> Pqrs:
    """Answer an open PQRSF once: the answer, its message, audit, and the citizen's notice.

    link is where the citizen reads it (Consulta PQRDS). Raises InvalidText and WrongState.
    """
    texto = clean_text(texto, "texto", TEXTO_MIN, TEXTO_MAX)
    with db.atomic():
        pqrs = current_case(pqrs_id, OPEN)
        before = {"estado": pqrs.estado, "respuesta": ""}
        a_tiempo = clock.today() <= pqrs.due_on
        move_if_unchanged(
            pqrs,
            estado=Pqrs.RESPONDIDA,
            respuesta=texto,
            answered_at=clock.utcnow(),
            answered_by=actor.id,
        )
        add_message(pqrs, PqrsMensaje.RESPUESTA, texto, actor)
        audit.record(
            actor,
            audit.Action.PQRS_RESPONDER,
            AUDIT_TARGET,
            pqrs.id,
            before=before,
            after={"estado": Pqrs.RESPONDIDA, "respuesta": texto, "a_tiempo": a_tiempo},
            ip=ip,
        )
        _notify(
            pqrs,
            f"su PQRSF No. {pqrs.radicado} fue respondida. Lea la respuesta",
            f"Respuesta a su PQRSF N° {pqrs.radicado}",
            "pqrs_respuesta",
            link,
            texto=texto,
        )
    return pqrs


def ask_information(
    pqrs_id: int, actor: Account, texto: str, link: str, ip: str | None = None
) -> Pqrs:
    """Ask the citizen to complete a radicada PQRSF, which suspends its term (art. 17).

    Only within the first 10 working days after receipt (Refused FUERA_DE_PLAZO).
    Raises InvalidText, WrongState and Refused.
    """
    texto = clean_text(texto, "texto", TEXTO_MIN, TEXTO_MAX)
    with db.atomic():
        pqrs = current_case(pqrs_id, (Pqrs.RADICADA,))
        if not information_allowed(pqrs):
            raise Refused(Refusal.FUERA_DE_PLAZO, pqrs)
        move_if_unchanged(pqrs, estado=Pqrs.INFORMACION)
        add_message(pqrs, PqrsMensaje.INFORMACION, texto, actor)
        audit.record(
            actor,
            audit.Action.PQRS_PEDIR_INFORMACION,
            AUDIT_TARGET,
            pqrs.id,
            before={"estado": Pqrs.RADICADA},
            after={"estado": Pqrs.INFORMACION, "informacion_pedida": texto},
            ip=ip,
        )
        _notify(
            pqrs,
            f"para responder su PQRSF No. {pqrs.radicado} necesitamos datos adicionales."
            " Vea el detalle",
            f"Su PQRSF N° {pqrs.radicado} necesita información adicional",
            "pqrs_informacion",
            link,
            texto=texto,
            hasta=add_month(clock.today()),
        )
    return pqrs


def extend(
    pqrs_id: int, actor: Account, dias: int, motivo: str, link: str, ip: str | None = None
) -> Pqrs:
    """Extend a radicada PQRSF's term by dias working days, before it ends, with a reason.

    due_on moves from the current due_on; the extensions add up to term_days at
    most (twice the term in all). Raises InvalidText, WrongState and Refused.
    """
    motivo = clean_text(motivo, "motivo", MOTIVO_MIN, MOTIVO_MAX)
    with db.atomic():
        pqrs = current_case(pqrs_id, (Pqrs.RADICADA,))
        if not isinstance(dias, int) or not 1 <= dias <= pqrs.term_days:
            raise Refused(Refusal.DIAS, pqrs)
        if clock.today() > pqrs.due_on:
            raise Refused(Refusal.VENCIDO, pqrs)
        if pqrs.extended_days + dias > pqrs.term_days:
            raise Refused(Refusal.TOPE, pqrs)
        before = {
            "due_on": pqrs.due_on,
            "extended_days": pqrs.extended_days,
            "extension_reason": pqrs.extension_reason,
        }
        new_due = pqrs_core.extended_due_on(pqrs, dias)
        move_if_unchanged(
            pqrs,
            "due_on",
            "extended_days",
            due_on=new_due,
            extended_days=pqrs.extended_days + dias,
            extension_reason=motivo,
        )
        add_message(
            pqrs,
            PqrsMensaje.PRORROGA,
            f"Nueva fecha de respuesta: {format_date(new_due)} ({dias} días hábiles más). "
            f"Motivo: {motivo}",
            actor,
        )
        audit.record(
            actor,
            audit.Action.PQRS_PRORROGAR,
            AUDIT_TARGET,
            pqrs.id,
            before=before,
            after={
                "due_on": new_due,
                "extended_days": pqrs.extended_days,
                "extension_reason": motivo,
            },
            ip=ip,
        )
        _notify(
            pqrs,
            f"la nueva fecha de respuesta de su PQRSF No. {pqrs.radicado} es el"
            f" {format_date(new_due)}. Vea el motivo",
            f"Nueva fecha de respuesta de su PQRSF N° {pqrs.radicado}",
            "pqrs_prorroga",
            link,
            motivo=motivo,
            dias=dias,
            vence=new_due,
        )
    return pqrs


def close(pqrs_id: int, actor: Account, motivo: str, link: str, ip: str | None = None) -> Pqrs:
    """Close a PQRSF once: an answered one (reason optional), or an open one by desistimiento.

    Closing without an answer (the citizen withdrew, art. 18, or did not complete
    the request within the month, art. 17) needs the reason and tells the
    citizen. Raises InvalidText("motivo") and WrongState.
    """
    motivo = (motivo or "").strip()
    with db.atomic():
        pqrs = current_case(pqrs_id, (*OPEN, Pqrs.RESPONDIDA))
        desistimiento = pqrs.estado != Pqrs.RESPONDIDA
        if desistimiento or motivo:
            motivo = clean_text(motivo, "motivo", MOTIVO_MIN, MOTIVO_MAX)
        before = {"estado": pqrs.estado, "closed_at": None}
        move_if_unchanged(pqrs, estado=Pqrs.CERRADA, closed_at=clock.utcnow())
        add_message(pqrs, PqrsMensaje.CIERRE, motivo, actor)
        audit.record(
            actor,
            audit.Action.PQRS_CERRAR,
            AUDIT_TARGET,
            pqrs.id,
            before=before,
            after={
                "estado": Pqrs.CERRADA,
                "closed_at": pqrs.closed_at,
                "desistimiento": desistimiento,
                "motivo": motivo,
            },
            ip=ip,
        )
        if desistimiento:
            _notify(
                pqrs,
                f"su PQRSF No. {pqrs.radicado} fue cerrada por desistimiento. Vea el motivo",
                f"Su PQRSF N° {pqrs.radicado} fue cerrada por desistimiento",
                "pqrs_respuesta_desistimiento",
                link,
                motivo=motivo,
            )
    return pqrs


def unblock_from_case(
    pqrs_id: int,
    actor: Account,
    decision: gestion.Unblock,
    reason: str,
    *,
    verified_by: str = "",
    secret: str,
    base_url: str,
    ip: str | None,
) -> Account:
    """Unblock the Hanna account a "desbloqueo de cuenta" PQRSF names, with the H2 unblock.

    The audit row is the unblock's own (usuario.desbloquear / usuario.activar);
    its reason names the case's radicado, which links the two. Raises
    WrongState (closed case, or not a desbloqueo) and gestion.StaffError.
    """
    pqrs = Pqrs.get_by_id(pqrs_id)
    if pqrs.estado == Pqrs.CERRADA or blocked_account_of(pqrs) is None:
        raise WrongState(pqrs)
    return gestion.unblock(
        actor,
        pqrs.cuenta_bloqueada_id,
        decision,
        f"PQRSF {pqrs.radicado}: {reason.strip()}",
        verified_by=verified_by,
        secret=secret,
        base_url=base_url,
        ip=ip,
    )
