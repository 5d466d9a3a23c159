"""PQRSF (SPEC G6, G7): filing with its legal term, the radicado, following it by three fields.

Terms are Colombian working days (core.workdays) from the day of receipt, per
Ley 1755 de 2015, art. 14 (which Ley 1437 de 2011 carries):

- 15 días hábiles, the general term for "toda petición": petición, queja,
  reclamo and denuncia. Sugerencia and felicitación have no term of their own
  in the law; both are peticiones in the general interest, so they take the
  general 15 (nothing shorter is promised that the law does not ask for).
- 10 días hábiles for "peticiones de documentos y de información".
- 30 días hábiles for "consultas a las autoridades en relación con las materias
  a su cargo".
- Desbloqueo de cuenta: a petición in the person's own interest (access to
  their own account), neither a request for documents nor a consulta, so the
  general 15. Staff usually answer it much sooner; the term is the legal ceiling.

The due day is the last day of the term (workdays.add_working_days: a filing
after 18:00 or on a non-working day counts from the next working day). An
extension (staff, S1) may add at most the initial term once more.

A radicado is random (RECEIPT_ALPHABET, 31^6 values) and is never enough alone:
G6 answers only when the document type, the number and the radicado all
match, and counts the tries per radicado before comparing.

No Flask here: the views pass the secret, the links and the upload folder.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import BinaryIO

from peewee import IntegrityError

from core import clock, colombia, files, notify, throttle, tokens, uploads, workdays
from core.convenios import RECEIPT_ALPHABET
from core.workdays import DueState
from models import Account, Attachment, HannaUser, Pqrs, PqrsMensaje, db

# === the types and their terms ===========================================================


@dataclass(frozen=True)
class Tipo:
    """One kind of PQRSF: its stored code, its name on screen, its term in working days."""

    code: str
    nombre: str
    term_days: int


TIPOS: dict[str, Tipo] = {
    t.code: t
    for t in (
        Tipo(Pqrs.PETICION, "Petición", 15),
        Tipo(Pqrs.QUEJA, "Queja", 15),
        Tipo(Pqrs.RECLAMO, "Reclamo", 15),
        Tipo(Pqrs.DENUNCIA, "Denuncia", 15),
        Tipo(Pqrs.SUGERENCIA, "Sugerencia", 15),
        Tipo(Pqrs.FELICITACION, "Felicitación", 15),
        Tipo(Pqrs.DOCUMENTOS, "Solicitud de documentos o información", 10),
        Tipo(Pqrs.CONSULTA, "Consulta", 30),
        Tipo(Pqrs.DESBLOQUEO, "Desbloqueo de cuenta", 15),
    )
}

ESTADOS: dict[str, str] = {
    Pqrs.RADICADA: "Radicada, en trámite",
    Pqrs.INFORMACION: "En espera de información del ciudadano",
    Pqrs.RESPONDIDA: "Respondida",
    Pqrs.CERRADA: "Cerrada",
}

# The steps of a case the citizen reads in G6 (their own messages are not echoed back).
PUBLIC_MESSAGES = (
    PqrsMensaje.RESPUESTA,
    PqrsMensaje.INFORMACION,
    PqrsMensaje.PRORROGA,
    PqrsMensaje.CIERRE,
)
MENSAJE_TITULOS: dict[str, str] = {
    PqrsMensaje.RESPUESTA: "Respuesta",
    PqrsMensaje.INFORMACION: "Solicitud de información",
    PqrsMensaje.PRORROGA: "Prórroga del plazo",
    PqrsMensaje.CIERRE: "Cierre",
    PqrsMensaje.CIUDADANO: "Mensaje del ciudadano",
}

NEAR_DAYS = 3  # working days before due_on that a case shows as "por vencer"
DESCRIPCION_MAX = 2000
NOMBRE_MAX = 160
OWNER = "pqrs"  # Attachment.owner_type of a PQRSF's file
FORM_OVERHEAD = uploads.MB
MAX_BODY = uploads.HELP_DESK.max_bytes + FORM_OVERHEAD
DAY = 24 * 3600
FILINGS_PER_CONTACT = 5  # per e-mail and per mobile per day: nobody's phone becomes a spam target
FOLLOW_TRIES = 10  # G6 tries per radicado per day, right or wrong, counted before comparing

# The signed link of the blocked page (H2): which blocked account a desbloqueo is about.
DESBLOQUEO_PURPOSE = "pqrs-desbloqueo"
DESBLOQUEO_MAX_AGE = 7 * DAY
# The citizen's answer to "Pedir información" is sent from the Consulta PQRDS page that
# matched all three fields: the form carries this proof, not the radicado alone.
REPLY_PURPOSE = "pqrs-informacion-ciudadano"
REPLY_MAX_AGE = 30 * 60
TEXTO_MAX = 5000  # a message of the case: staff's answer, the citizen's reply

RADICADO_PREFIX = "PQR"
RADICADO_CHARS = 6
RADICADO_RE = re.compile(rf"\A{RADICADO_PREFIX}-\d{{4}}-[{RECEIPT_ALPHABET}]{{{RADICADO_CHARS}}}\Z")
_RADICADO_LOOSE = re.compile(
    rf"\A{RADICADO_PREFIX}(\d{{4}})([{RECEIPT_ALPHABET}]{{{RADICADO_CHARS}}})\Z"
)

# GSM 03.38's basic set: only these keep an SMS at 160 characters a part (one "ó" makes it 70).
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SMS_PART = 160


def tipo_of(code: str) -> Tipo | None:
    """Return the type with that code, or None."""
    return TIPOS.get(code or "")


def tipo_name(code: str) -> str:
    """Return the name on screen of a type code (the code itself if unknown)."""
    found = tipo_of(code)
    return found.nombre if found else code


def due_on_for(received: date | datetime, tipo: str) -> date:
    """Return the last day of a type's term for a PQRSF received then (naive = UTC)."""
    return workdays.add_working_days(received, TIPOS[tipo].term_days)


def due_state(pqrs: Pqrs, now: date | datetime | None = None) -> DueState | None:
    """Tell whether an open case is on time, near due (NEAR_DAYS) or past due; None once answered."""
    if pqrs.estado in (Pqrs.RESPONDIDA, Pqrs.CERRADA):
        return None
    return workdays.due_state(pqrs.due_on, now, near=NEAR_DAYS)


def extension_left(pqrs: Pqrs) -> int:
    """Return the working days the term may still be extended by (at most once the term)."""
    return max(pqrs.term_days - pqrs.extended_days, 0)


def extended_due_on(pqrs: Pqrs, days: int) -> date:
    """Return the due day after extending the current one by days working days."""
    return workdays.add_working_days(pqrs.due_on, days)


def is_gsm7_single(text: str) -> bool:
    """Tell whether an SMS goes as one GSM-7 part (basic set only, 160 characters)."""
    return len(text) <= SMS_PART and all(c in GSM7 for c in text)


# === the radicado ========================================================================


def new_radicado(year: int) -> str:
    """Return a fresh random radicado such as "PQR-2026-7K3M9Q" (uniqueness checked by the caller)."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RADICADO_CHARS))
    return f"{RADICADO_PREFIX}-{year:04d}-{raw}"


def clean_radicado(value: str) -> str | None:
    """Return a radicado as stored (capitals, dashes) from what a person typed, or None."""
    compact = re.sub(r"[\s\-_.]+", "", (value or "")[:40]).upper()
    found = _RADICADO_LOOSE.match(compact)
    if found is None:
        return None
    return f"{RADICADO_PREFIX}-{found.group(1)}-{found.group(2)}"


def by_radicado(radicado: str) -> Pqrs | None:
    """Return the PQRSF with that radicado (no identity check: the caller decides who sees it)."""
    radicado = clean_radicado(radicado)
    return Pqrs.get_or_none(Pqrs.radicado == radicado) if radicado else None


def attachment_of(pqrs: Pqrs) -> Attachment | None:
    """Return the file filed with the PQRSF, if any."""
    found = Attachment.of(OWNER, pqrs.id)
    return found[0] if found else None


# === filing (G7) ===========================================================================


@dataclass(frozen=True)
class Filing:
    """What the citizen typed, validated and normalised by the form."""

    tipo: str
    tipo_documento: str
    numero_documento: str
    nombre: str
    email: str
    celular: str
    descripcion: str


@dataclass(frozen=True)
class Upload:
    """The optional file part: its stream and the name the browser gave."""

    stream: BinaryIO
    filename: str | None


class FilingError(Exception):
    """A PQRSF could not be filed; the subclass says why."""


class DuplicateSubmit(FilingError):
    """This form was already sent (a double click, a retried POST): here is its PQRSF."""

    def __init__(self, pqrs: Pqrs) -> None:
        super().__init__("DuplicateSubmit")
        self.pqrs = pqrs


class StaleForm(FilingError):
    """The form's key filed someone else's PQRSF: the form must be shown again."""


class TooManyFilings(FilingError):
    """A contact (e-mail or mobile) took FILINGS_PER_CONTACT filings today."""

    def __init__(self, wait_seconds: int) -> None:
        super().__init__("TooManyFilings")
        self.wait_seconds = wait_seconds


def _check_new(form_key: str, filing: Filing, account: Account | None) -> None:
    """Raise DuplicateSubmit for the same filer's second submit, StaleForm for anyone else's."""
    sent = Pqrs.get_or_none(Pqrs.form_key == form_key)
    if sent is None:
        return
    same_filer = (
        sent.tipo_documento == filing.tipo_documento
        and sent.numero_documento == filing.numero_documento
        and sent.account_id == (account.id if account else None)
    )
    if same_filer:
        raise DuplicateSubmit(sent)
    raise StaleForm()  # never show, or even confirm, another person's radicado


def _blank(part: Upload | None) -> bool:
    """Tell whether the file input came empty (no file chosen)."""
    if part is None:
        return True
    head = part.stream.read(1)
    part.stream.seek(0)
    return not head and not part.filename


@contextmanager
def _maybe_upload(part: Upload | None, upload_dir: str | os.PathLike) -> Iterator:
    """Store the file (removed again if the block fails), or yield None without one."""
    if _blank(part):
        yield None
        return
    with files.upload(part.stream, part.filename, uploads.HELP_DESK, upload_dir) as stored:
        yield stored


def _spend_contacts(filing: Filing) -> None:
    """Spend one filing of each contact's daily budget; raise TooManyFilings when one is out."""
    keys = [f"email:{filing.email}"] if filing.email else []
    keys += [f"cel:{filing.celular}"] if filing.celular else []
    for key in keys:
        wait = throttle.spend(throttle.Purpose.PQRS_RADICAR, key, FILINGS_PER_CONTACT, DAY)
        if wait:
            raise TooManyFilings(wait)


def _new_unique_radicado(year: int) -> str:
    radicado = new_radicado(year)
    while Pqrs.select().where(Pqrs.radicado == radicado).exists():
        radicado = new_radicado(year)
    return radicado


def sms_text(pqrs: Pqrs, consulta_url: str) -> str:
    """Return the filing SMS: GSM-7 only, one part (the link is left out if it would not fit)."""
    base = (
        f"Cajacopi: radicamos su PQRSF con el codigo {pqrs.radicado}. Respuesta a mas tardar "
        f"el {colombia.format_date(pqrs.due_on)}."
    )
    with_link = f"{base} Consultela en {consulta_url}"
    return with_link if is_gsm7_single(with_link) else base


def file(
    filing: Filing,
    form_key: str,
    part: Upload | None,
    upload_dir: str | os.PathLike,
    consulta_url: str,
    account: Account | None = None,
    cuenta_bloqueada: Account | None = None,
) -> Pqrs:
    """File a PQRSF with its optional file, its due day and the e-mail and SMS, all or nothing.

    cuenta_bloqueada comes only from a verified desbloqueo link (blocked_account()).
    Raises uploads.UploadError for a refused file (nothing kept), DuplicateSubmit
    for the same filer's second submit of one form, StaleForm for a form that
    filed someone else's, and TooManyFilings.
    """
    _check_new(form_key, filing, account)  # cheap first: a double click writes no file
    tipo = TIPOS[filing.tipo]
    try:
        with _maybe_upload(part, upload_dir) as stored, db.atomic():
            _check_new(form_key, filing, account)
            _spend_contacts(filing)  # inside: a refused filing gives its slots back (database)
            now = clock.utcnow()
            pqrs = Pqrs.create(
                radicado=_new_unique_radicado(clock.now().year),
                tipo=tipo.code,
                tipo_documento=filing.tipo_documento,
                numero_documento=filing.numero_documento,
                nombre=filing.nombre,
                email=filing.email,
                celular=filing.celular,
                descripcion=filing.descripcion,
                account=account.id if account else None,
                cuenta_bloqueada=(
                    cuenta_bloqueada.id
                    if cuenta_bloqueada is not None and tipo.code == Pqrs.DESBLOQUEO
                    else None
                ),
                term_days=tipo.term_days,
                due_on=workdays.add_working_days(now, tipo.term_days),
                form_key=form_key,
                created_at=now,
            )
            if stored is not None:
                files.record(stored, OWNER, pqrs.id, created_by=account.id if account else None)
            if filing.email:
                notify.queue_template_email(
                    filing.email,
                    f"PQRSF radicada: {pqrs.radicado}",
                    "pqrs_radicada",
                    nombre=filing.nombre,
                    radicado=pqrs.radicado,
                    tipo=tipo.nombre,
                    term_days=tipo.term_days,
                    radicada=colombia.format_datetime(now),
                    vence=colombia.format_date(pqrs.due_on),
                    consulta_url=consulta_url,
                )
            if filing.celular:
                notify.queue_sms(filing.celular, sms_text(pqrs, consulta_url))
    except IntegrityError:
        # The unique form_key decides between two submits that raced past the checks;
        # the file of this one is gone already (files.upload).
        if not Pqrs.select().where(Pqrs.form_key == form_key).exists():
            raise
        _check_new(form_key, filing, account)  # raises DuplicateSubmit or StaleForm
        raise
    return pqrs


# === the blocked page's link (H2) ============================================================


def _unblock_stamp(account_id: int) -> str:
    """Return when staff last unblocked the account: it changes when this block ends."""
    when = HannaUser.select(HannaUser.unblocked_at).where(HannaUser.account == account_id).scalar()
    return when.isoformat() if when else ""


def desbloqueo_token(secret: str, account: Account) -> str:
    """Sign the link of the blocked page: this account, until staff unblock it."""
    return tokens.make_token(
        secret, DESBLOQUEO_PURPOSE, {"a": account.id, "u": _unblock_stamp(account.id)}
    )


def blocked_account(secret: str, token: str) -> Account | None:
    """Return the Hanna account a genuine, fresh blocked-page link names, while its block lasts.

    PENDING too: the page shows when the last quiz try ran out of time, and the
    block itself is written at that account's next POST.
    """
    if not token or len(token) > 400:
        return None
    try:
        payload = tokens.read_token(secret, DESBLOQUEO_PURPOSE, token, DESBLOQUEO_MAX_AGE)
    except (tokens.TokenExpired, tokens.TokenInvalid):
        return None
    account_id = payload.get("a") if isinstance(payload, dict) else None
    if not isinstance(account_id, int) or isinstance(account_id, bool):
        return None
    account = Account.get_or_none(Account.id == account_id)
    if account is None or account.kind != Account.HANNA or account.hanna is None:
        return None
    if account.status not in (Account.BLOCKED, Account.PENDING):
        return None
    if _unblock_stamp(account.id) != payload.get("u"):
        return None  # staff unblocked it since: that link has done its job
    return account


def identity_of(account: Account | None) -> dict[str, str]:
    """Return the form's identity fields for a Hanna or Génesis account (empty for others)."""
    if account is None:
        return {}
    if account.hanna is not None:
        h = account.hanna
        nombre = " ".join(
            p
            for p in (h.primer_nombre, h.segundo_nombre, h.primer_apellido, h.segundo_apellido)
            if p
        )
        return {
            "tipo_documento": h.tipo_documento,
            "numero_documento": h.numero_documento,
            "nombre": nombre.title(),
            "email": account.email,
            "celular": account.celular,
        }
    if account.eps is not None:
        a = account.eps.afiliado
        return {
            "tipo_documento": a.tipo_documento,
            "numero_documento": a.numero_documento,
            "nombre": a.nombre_completo.title(),
            # The EPS's data first: what the member last updated (G5) or confirmed.
            "email": a.email or account.email,
            "celular": a.celular or account.celular,
        }
    return {}


# === following (G6) ==========================================================================


def follow_allowed(radicado: str) -> int:
    """Spend one G6 try of this code's daily budget; 0 when allowed, else the seconds to wait.

    Keyed by the code as typed (cleaned), known or not, so the answer to a
    spent budget tells nothing about whether the radicado exists.
    """
    key = clean_radicado(radicado) or (radicado or "")[:40].strip().upper()
    return throttle.spend(throttle.Purpose.PQRS_CONSULTA, key, FOLLOW_TRIES, DAY)


def follow(tipo_documento: str, numero_documento: str, radicado: str) -> Pqrs | None:
    """Return the PQRSF only when the document type, its number and the radicado all match."""
    try:
        numero = colombia.normalize_document(tipo_documento, numero_documento)
    except ValueError:
        return None
    pqrs = by_radicado(radicado)
    if pqrs is None:
        return None
    if pqrs.tipo_documento != tipo_documento.strip().upper() or pqrs.numero_documento != numero:
        return None
    return pqrs


def last_request_id(pqrs: Pqrs) -> int | None:
    """Return the id of the latest "Pedir información" message of the case, or None."""
    return (
        PqrsMensaje.select(PqrsMensaje.id)
        .where((PqrsMensaje.pqrs == pqrs.id) & (PqrsMensaje.tipo == PqrsMensaje.INFORMACION))
        .order_by(PqrsMensaje.created_at.desc(), PqrsMensaje.id.desc())
        .scalar()
    )


def reply_token(pqrs: Pqrs, *, secret: str) -> str:
    """Sign that this browser matched the three fields of a PQRSF waiting for this request.

    It names the request for information it answers: replayed after staff ask
    again, it is refused instead of answering the new request too.
    """
    payload = {"p": pqrs.id, "r": pqrs.radicado, "m": last_request_id(pqrs)}
    return tokens.make_token(secret, REPLY_PURPOSE, payload)


@dataclass(frozen=True)
class ReplyForm:
    """What a genuine reply token names: the PQRSF, and the request for information it answers."""

    pqrs: Pqrs
    request_id: int | None


def pqrs_for_reply(token: str, *, secret: str) -> ReplyForm | None:
    """Return the PQRSF (and request) a fresh, genuine reply token names, or None."""
    try:
        payload = tokens.read_token(secret, REPLY_PURPOSE, token or "", REPLY_MAX_AGE)
    except (tokens.TokenExpired, tokens.TokenInvalid):
        return None
    if not isinstance(payload, dict):
        return None
    found = Pqrs.get_or_none(Pqrs.id == payload.get("p"))
    if found is None or found.radicado != payload.get("r"):
        return None
    return ReplyForm(found, payload.get("m"))


@dataclass(frozen=True)
class Paso:
    """One step of the case as the citizen reads it."""

    tipo: str
    titulo: str
    texto: str
    fecha: datetime


def public_steps(pqrs: Pqrs) -> list[Paso]:
    """Return the answers, requests for information, extensions and closing, oldest first."""
    rows = list(
        PqrsMensaje.select()
        .where((PqrsMensaje.pqrs == pqrs.id) & PqrsMensaje.tipo.in_(PUBLIC_MESSAGES))
        .order_by(PqrsMensaje.created_at, PqrsMensaje.id)
        .limit(50)
    )
    steps = [Paso(m.tipo, MENSAJE_TITULOS[m.tipo], m.texto, m.created_at) for m in rows]
    if pqrs.respuesta and not any(m.tipo == PqrsMensaje.RESPUESTA for m in rows):
        when = pqrs.answered_at or pqrs.created_at
        steps.append(Paso(PqrsMensaje.RESPUESTA, "Respuesta", pqrs.respuesta, when))
        steps.sort(key=lambda p: p.fecha)
    return steps


# === acting on a case (staff: blueprints.gestion.pqrs_service; the citizen: resume) =========


class CaseError(Exception):
    """An action on a PQRSF could not go ahead; the subclass says why."""


class WrongState(CaseError):
    """The case is not (or no longer) in a state that allows the action: a colleague, or a second click."""

    def __init__(self, pqrs: Pqrs) -> None:
        super().__init__(pqrs.estado)
        self.pqrs = pqrs


class InvalidText(CaseError):
    """A text outside its length (field: texto|motivo), that the form should have refused."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def clean_text(text: str, field: str, low: int, high: int) -> str:
    text = (text or "").strip()
    if not low <= len(text) <= high:
        raise InvalidText(field)
    return text


def current_case(pqrs_id: int, allowed: tuple[str, ...]) -> Pqrs:
    """Read the case inside the action's transaction; refuse a state that does not allow it."""
    pqrs = Pqrs.get_by_id(pqrs_id)  # a wrong id: DoesNotExist (the views answer 404 before)
    if pqrs.estado not in allowed:
        raise WrongState(pqrs)
    return pqrs


def move_if_unchanged(pqrs: Pqrs, *same, **changes) -> None:
    """Apply changes only if the row is still as read (its state, and the fields in same)."""
    where = (Pqrs.id == pqrs.id) & (Pqrs.estado == pqrs.estado)
    for field in same:
        where &= getattr(Pqrs, field) == getattr(pqrs, field)
    if Pqrs.update(**changes).where(where).execute() != 1:
        raise WrongState(Pqrs.get_by_id(pqrs.id))
    for name, value in changes.items():
        setattr(pqrs, name, value)


def add_message(pqrs: Pqrs, tipo: str, texto: str, actor: Account | None) -> PqrsMensaje:
    return PqrsMensaje.create(
        pqrs=pqrs.id, tipo=tipo, texto=texto, account=actor.id if actor else None,
        created_at=clock.utcnow(),
    )  # fmt: skip


def information_asked_on(pqrs: Pqrs) -> date | None:
    """Return the Bogotá day more information was last asked, or None."""
    asked = (
        PqrsMensaje.select(PqrsMensaje.created_at)
        .where((PqrsMensaje.pqrs == pqrs.id) & (PqrsMensaje.tipo == PqrsMensaje.INFORMACION))
        .order_by(PqrsMensaje.created_at.desc(), PqrsMensaje.id.desc())
        .scalar()
    )
    return workdays.to_local(asked).date() if asked else None


def working_days_waited(asked: date, answered: date) -> int:
    """Count the working days d with asked < d <= answered: the days the term stood still."""
    count, day = 0, asked + timedelta(days=1)
    while day <= answered:
        count += workdays.is_working_day(day)
        day += timedelta(days=1)
    return count


def resume(
    pqrs_id: int, texto: str, account: Account | None = None, *, request_id: int | None
) -> Pqrs:
    """Record that the citizen completed the request, and restart its suspended term (art. 17).

    The term runs again from the day after (Ley 1755, art. 17): due_on moves by
    the working days from the day information was asked to today. request_id
    is the request for information the citizen's form answers (ReplyForm): a
    form shown before staff asked again answers nothing. The citizen side (G6)
    calls it; raises InvalidText and WrongState.
    """
    texto = clean_text(texto, "texto", 1, TEXTO_MAX)
    with db.atomic():
        pqrs = current_case(pqrs_id, (Pqrs.INFORMACION,))
        if last_request_id(pqrs) != request_id:
            raise WrongState(pqrs)
        asked = information_asked_on(pqrs) or clock.today()
        waited = working_days_waited(asked, clock.today())
        new_due = workdays.add_working_days(pqrs.due_on, waited) if waited else pqrs.due_on
        move_if_unchanged(pqrs, "due_on", estado=Pqrs.RADICADA, due_on=new_due)
        add_message(pqrs, PqrsMensaje.CIUDADANO, texto, account)
    return pqrs
