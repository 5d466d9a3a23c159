"""Portal Génesis (SPEC G1–G5): who an EPS account is, and which family group it may act for.

The rule every office page and object check goes through (core.permissions):

- a cotizante (cabeza de familia) acts for everyone in the núcleo: themselves
  and each beneficiary pointing at them;
- a beneficiary who registered acts for themselves and for the núcleo's minors
  (under 18: the children a spouse takes to the doctor), never for the
  cotizante or another adult of the group.

Health data: nothing here reads more than the rows of that group.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from peewee import JOIN, IntegrityError

from core import clock, files, notify, uploads, workdays
from core.convenios import RECEIPT_ALPHABET
from core.db import is_sqlite
from models import (
    Account,
    Attachment,
    Autorizacion,
    CambioDatosEps,
    EpsAfiliado,
    EpsUser,
    Ips,
    SolicitudAutorizacion,
    db,
)

ADULT_AGE = 18
# Document types an EPS affiliate signs in with (SPEC D; NIT is for IPS).
DOCUMENT_TYPES = ("CC", "TI", "CE", "RC", "PA", "PE", "PT", "CN", "CD", "SC", "AS", "MS")
# The texts a member accepts; a new text gets a new version (the consent row keeps which).
PRIVACY_VERSION = "2022-11"
CARTA_VERSION = "2022-11"


def login_of(tipo: str, numero: str) -> str:
    """Return the Account.login of an EPS affiliate: "TIPO:NUMERO" (already normalised)."""
    return f"{tipo}:{numero}"


def age_on(born: date, today: date) -> int:
    """Return the age in whole years on today."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def afiliado_of(account: Account | None) -> EpsAfiliado | None:
    """Return the EPS affiliate an account is (None for another kind), read once per object."""
    if account is None or account.kind != Account.EPS:
        return None
    profile: EpsUser | None = account.eps
    return profile.afiliado if profile is not None else None


def family_of(afiliado: EpsAfiliado) -> list[EpsAfiliado]:
    """Return the members afiliado may act for: themselves first, then by parentesco and age."""
    today = clock.now().date()
    head_id = afiliado.cabeza_id or afiliado.id
    rows = list(
        EpsAfiliado.select()
        .where((EpsAfiliado.id == head_id) | (EpsAfiliado.cabeza == head_id))
        .order_by(EpsAfiliado.fecha_nacimiento, EpsAfiliado.id)
    )
    if afiliado.cabeza_id is not None:  # a beneficiary: themselves and the group's minors
        rows = [
            r
            for r in rows
            if r.id == afiliado.id
            or (r.cabeza_id is not None and age_on(r.fecha_nacimiento, today) < ADULT_AGE)
        ]
    rows.sort(key=lambda r: (r.id != afiliado.id, r.cabeza_id is not None, r.fecha_nacimiento))
    return rows


def family_ids(account: Account) -> frozenset[int]:
    """Return the ids of the members account may act for (empty for another kind), once per object."""
    cached = account.__dict__.get("_family_ids")
    if cached is None:
        me = afiliado_of(account)
        cached = frozenset(m.id for m in family_of(me)) if me is not None else frozenset()
        account.__dict__["_family_ids"] = cached
    return cached


def member_of(account: Account, member_id: int) -> EpsAfiliado | None:
    """Return one member of account's family group by id, or None (the caller answers 404)."""
    if member_id not in family_ids(account):
        return None
    return EpsAfiliado.get_or_none(EpsAfiliado.id == member_id)


# === G3: the contact data a member confirms or updates before a request =================

CONTACT_FIELDS = ("celular", "email", "direccion", "municipio")
# A confirmation this recent lets the member's request page open without asking again.
CONTACT_FRESH = timedelta(hours=12)
DIRECCION_MIN = 5


class ContactLocked(Exception):
    """The mobile or e-mail of an adult with their own Génesis account: only they may change it.

    They are that account's way back in (the reset code goes to the mobile on
    file, G2) and the proof of identity at registration (G1).
    """


def contact_is_fresh(member: EpsAfiliado) -> bool:
    """Tell whether member's contact data was confirmed or updated within CONTACT_FRESH."""
    confirmed = member.contacto_confirmado_at
    return confirmed is not None and clock.utcnow() - confirmed < CONTACT_FRESH


def channels_locked(account: Account, member: EpsAfiliado) -> bool:
    """Tell whether account may not change member's mobile and e-mail (see ContactLocked)."""
    if member.id == getattr(afiliado_of(account), "id", None):
        return False
    if age_on(member.fecha_nacimiento, clock.now().date()) < ADULT_AGE:
        return False
    return EpsUser.select().where(EpsUser.afiliado == member.id).exists()


def confirm_contact(member: EpsAfiliado) -> None:
    """Record that member's contact data was checked and is right ("Mis datos son correctos")."""
    now = clock.utcnow()
    EpsAfiliado.update(contacto_confirmado_at=now).where(EpsAfiliado.id == member.id).execute()
    member.contacto_confirmado_at = now


def update_contact(
    account: Account, member: EpsAfiliado, values: dict[str, str]
) -> list[CambioDatosEps]:
    """Save member's new contact data: one history row per changed field, the old channels told.

    values holds CONTACT_FIELDS already validated and normalised. The old mobile
    and e-mail hear of a change to them (someone else of the family group may
    have made it). Raises ContactLocked (see there).
    """
    return _save_fields(account, member, values, CONTACT_FIELDS, ("contacto_confirmado_at",))


def _save_fields(
    account: Account,
    member: EpsAfiliado,
    values: dict[str, str],
    fields: Sequence[str],
    stamps: Sequence[str],
) -> list[CambioDatosEps]:
    """Save the changed ones of fields with their history rows, and set the stamps to now."""
    now = clock.utcnow()
    with db.atomic():
        current = EpsAfiliado.get_by_id(member.id)  # as it is now, not as the form showed it
        changed = {f: values[f] for f in fields if (getattr(current, f) or "") != values[f]}
        if {"celular", "email"} & changed.keys() and channels_locked(account, current):
            raise ContactLocked()
        history = [
            CambioDatosEps.create(
                afiliado=current.id,
                account=account.id,
                campo=field,
                antes=getattr(current, field) or "",
                despues=value,
                created_at=now,
            )
            for field, value in changed.items()
        ]
        extra = {"updated_at": now} if changed else {}
        EpsAfiliado.update(**dict.fromkeys(stamps, now), **changed, **extra).where(
            EpsAfiliado.id == current.id
        ).execute()
        if "celular" in changed and current.celular:
            notify.queue_sms(current.celular, CELULAR_CHANGED_SMS)
        if "email" in changed and current.email:
            notify.queue_email(current.email, EMAIL_CHANGED_SUBJECT, EMAIL_CHANGED_TEXT)
    for field, value in changed.items():
        setattr(member, field, value)
    for stamp in stamps:
        setattr(member, stamp, now)
    return history


CELULAR_CHANGED_SMS = (
    "Cajacopi EPS: se cambio el celular de contacto registrado en el Portal Genesis. "
    "Si usted no lo pidio, comuniquese con nuestra linea gratuita."
)
EMAIL_CHANGED_SUBJECT = "Se cambió su correo de contacto en el Portal Génesis"
EMAIL_CHANGED_TEXT = (
    "Cajacopi EPS le informa que el correo electrónico de contacto registrado en la "
    "Oficina Virtual del Portal Génesis se cambió por otro. Desde ahora las respuestas "
    "llegarán a la nueva dirección.\n\nSi usted no lo pidió, comuníquese con nuestra "
    "línea gratuita nacional.\n"
)


# === G5: Actualización Datos Básicos, and the IPS de atención ===========================

# What "Actualizar Información" edits: the contact data of G3 and the fixed line.
BASIC_FIELDS = ("celular", "telefono", "email", "direccion", "municipio")
BASIC_STAMPS = ("contacto_confirmado_at", "datos_confirmados_at")


def update_basic_data(
    account: Account, member: EpsAfiliado, values: dict[str, str]
) -> list[CambioDatosEps]:
    """Save member's basic data like update_contact (history, old channels told); all of it is checked now.

    values holds BASIC_FIELDS already validated and normalised; an empty list
    back means nothing changed (no history, but the check is recorded).
    Raises ContactLocked.
    """
    return _save_fields(account, member, values, BASIC_FIELDS, BASIC_STAMPS)


def confirm_data(member: EpsAfiliado) -> None:
    """Record "mis datos están actualizados": every basic datum (the contact data too) was checked."""
    now = clock.utcnow()
    EpsAfiliado.update(**dict.fromkeys(BASIC_STAMPS, now)).where(
        EpsAfiliado.id == member.id
    ).execute()
    for stamp in BASIC_STAMPS:
        setattr(member, stamp, now)


def ips_of(member: EpsAfiliado) -> Ips | None:
    """Return member's IPS de atención primaria, or None when the EPS's data names none."""
    if member.ips_id is None:
        return None
    return Ips.get_or_none(Ips.id == member.ips_id)


# === G3: requests for an authorization, with their supporting PDF ======================

REQUEST_OWNER = "solicitud_autorizacion"  # Attachment.owner_type of a request's PDF
OBSERVACION_MAX = 1000
ANSWER_DAYS = 5  # "entre 2 y 5 días hábiles": the term ends on the fifth working day
# The whole request: the 15 MB the PDF (or all the photos together) may take, and the
# text fields and multipart framing around it.
FORM_OVERHEAD = uploads.MB
MAX_BODY = uploads.AUTHORIZATION.max_bytes + FORM_OVERHEAD
REQUESTS_PER_HOUR = 10  # per account: a family files a few, never dozens
LIST_LIMIT = 50  # rows a tab shows, newest first
NUMERO_RE = re.compile(r"\A[2-9A-Z]{4}-[2-9A-Z]{4}\Z")
REQUEST_SMS = (
    "Cajacopi EPS: recibimos su solicitud de autorizacion {numero}. Le enviaremos la "
    "respuesta por SMS y/o correo entre 2 y 5 dias habiles."
)


@dataclass(frozen=True)
class Upload:
    """One file part of the form: its stream and the name the browser gave."""

    stream: BinaryIO
    filename: str | None


class RequestError(Exception):
    """A request could not be made; the subclass says why."""


class MemberNotActive(RequestError):
    """The member is not ACTIVO in the EPS's data: no authorization can be asked for them."""


class TooManyRequests(RequestError):
    """The account made REQUESTS_PER_HOUR requests in the last hour."""


class StaleForm(RequestError):
    """The form's key made another account's request: the form must be shown again."""


class DuplicateSubmit(RequestError):
    """This form was already sent (a double click, a retried POST): here is its request."""

    def __init__(self, solicitud: SolicitudAutorizacion) -> None:
        super().__init__("DuplicateSubmit")
        self.solicitud = solicitud


class NoSupport(uploads.UploadError):
    code = "no_support"
    default = "Adjunte el soporte: la orden médica en PDF, o fotos de ella (JPG o PNG)."


class MixedSupport(uploads.UploadError):
    code = "mixed_support"
    default = "Adjunte un solo PDF, o solo fotos (JPG o PNG), pero no ambos."


def new_numero() -> str:
    """Return a request number that reads aloud well: 8 random characters, like "7K3M-Q9TX"."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def clean_numero(value: str) -> str | None:
    """Return a request number as stored (capitals, the dash), or None if it cannot be one."""
    value = (value or "").strip().upper()[:12]
    if len(value) == 8:
        value = f"{value[:4]}-{value[4:]}"
    return value if NUMERO_RE.match(value) else None


def request_by_numero(numero: str) -> SolicitudAutorizacion | None:
    """Return the request with that number (the caller checks the family group)."""
    numero = clean_numero(numero)
    if numero is None:
        return None
    return SolicitudAutorizacion.get_or_none(SolicitudAutorizacion.numero == numero)


def attachment_of(solicitud: SolicitudAutorizacion) -> Attachment | None:
    """Return the request's supporting PDF row."""
    found = Attachment.of(REQUEST_OWNER, solicitud.id)
    return found[0] if found else None


def _by_form_key(form_key: str) -> SolicitudAutorizacion | None:
    return SolicitudAutorizacion.get_or_none(SolicitudAutorizacion.form_key == form_key)


def _made_last_hour(account: Account) -> int:
    since = clock.utcnow() - timedelta(hours=1)
    return (
        SolicitudAutorizacion.select()
        .where(
            (SolicitudAutorizacion.account == account.id)
            & (SolicitudAutorizacion.created_at > since)
        )
        .count()
    )


def _check_new(account: Account, member_id: int, form_key: str) -> None:
    """Raise DuplicateSubmit, StaleForm, MemberNotActive or TooManyRequests when no request may be made."""
    sent = _by_form_key(form_key)
    if sent is not None:
        if sent.account_id == account.id:
            raise DuplicateSubmit(sent)
        raise StaleForm()  # never show, or even confirm, another person's request
    estado = EpsAfiliado.select(EpsAfiliado.estado).where(EpsAfiliado.id == member_id).scalar()
    if estado != EpsAfiliado.ACTIVO:
        raise MemberNotActive()
    if _made_last_hour(account) >= REQUESTS_PER_HOUR:
        raise TooManyRequests()


def _lock_account(account: Account) -> None:
    """Serialise this account's request writers (PostgreSQL; SQLite's IMMEDIATE already does)."""
    if not is_sqlite(db):
        Account.select(Account.id).where(Account.id == account.id).for_update().execute()


def _blank(part: Upload) -> bool:
    """Tell whether a part is an empty file input (no file chosen)."""
    head = part.stream.read(1)
    part.stream.seek(0)
    return not head and not part.filename


def _starts_as_pdf(part: Upload) -> bool:
    head = part.stream.read(5)
    part.stream.seek(0)
    return head == b"%PDF-"


def _spool_photo(part: Upload, upload_dir: str | os.PathLike) -> Path:
    """Copy one photo to a temporary file under upload_dir (size capped) if it is a JPEG or PNG."""
    uploads.check_name(part.filename)
    incoming = Path(upload_dir) / "tmp"
    try:
        incoming.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=incoming, prefix="foto-")
    except OSError as e:
        raise uploads.StorageError() from e
    path = Path(name)
    try:
        limit = uploads.AUTHORIZATION.max_bytes
        size, head = 0, b""
        # A temporary copy: no fsync; a full or read-only disk is StorageError, not a 500.
        with uploads.spool(fd, durable=False) as write:
            while chunk := part.stream.read(min(uploads.CHUNK, limit + 1 - size)):
                size += len(chunk)
                if size > limit:
                    raise uploads.TooLarge(limit)
                if len(head) < uploads.HEAD:
                    head += chunk[: uploads.HEAD - len(head)]
                write(chunk)
        if size == 0:
            raise uploads.EmptyFile()
        if uploads.sniff(head, path) not in (uploads.Kind.JPEG, uploads.Kind.PNG):
            raise uploads.NotAllowed(uploads.AUTHORIZATION.kinds)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def _support(parts: Sequence[Upload], upload_dir: str | os.PathLike) -> Iterator[Upload]:
    """Yield the one file to store: the PDF sent, or the photos joined into one PDF.

    The kind is proved later, by uploads.store(); here the first bytes only tell
    which of the two ways the member chose.
    """
    parts = [p for p in parts if not _blank(p)]
    if not parts:
        raise NoSupport()
    if any(_starts_as_pdf(p) for p in parts):
        if len(parts) > 1:
            raise MixedSupport()
        yield parts[0]
        return
    if len(parts) > uploads.MAX_PAGES:
        raise uploads.TooManyPages()
    spooled: list[Path] = []
    try:
        for part in parts:
            spooled.append(_spool_photo(part, upload_dir))
        joined = uploads.images_to_pdf(spooled)
    finally:
        for path in spooled:
            path.unlink(missing_ok=True)
    yield Upload(BytesIO(joined), parts[0].filename)


def submit_request(
    account: Account,
    member: EpsAfiliado,
    municipio: str,
    observacion: str,
    form_key: str,
    parts: Sequence[Upload],
    upload_dir: str | os.PathLike,
) -> SolicitudAutorizacion:
    """Store the support (one PDF, or the photos joined) and create the pending request, all or nothing.

    Raises uploads.UploadError for a refused file (nothing kept), DuplicateSubmit
    when this form_key already made the account's request, StaleForm when it
    made someone else's, MemberNotActive and TooManyRequests.
    """
    _check_new(account, member.id, form_key)  # cheap first: a double click writes no file
    try:
        with (
            _support(parts, upload_dir) as support,
            files.upload(
                support.stream, support.filename, uploads.AUTHORIZATION, upload_dir
            ) as stored,
            db.atomic(),
        ):
            _lock_account(account)
            _check_new(account, member.id, form_key)  # again, now that writers queue
            now = clock.utcnow()
            numero = new_numero()
            while (
                SolicitudAutorizacion.select()
                .where(SolicitudAutorizacion.numero == numero)
                .exists()
            ):
                numero = new_numero()
            solicitud = SolicitudAutorizacion.create(
                numero=numero,
                afiliado=member.id,
                account=account.id,
                municipio=municipio,
                observacion=observacion,
                form_key=form_key,
                created_at=now,
                due_on=workdays.add_working_days(now, ANSWER_DAYS),
            )
            files.record(stored, REQUEST_OWNER, solicitud.id, created_by=account.id)
            mobile = member.celular or account.celular
            if mobile:
                notify.queue_sms(mobile, REQUEST_SMS.format(numero=numero))
    except IntegrityError:
        # The unique form_key decides between two submits that raced past the checks;
        # files.upload() has removed this one's file.
        sent = _by_form_key(form_key)
        if sent is None:
            raise
        if sent.account_id != account.id:
            raise StaleForm() from None
        raise DuplicateSubmit(sent) from None
    return solicitud


# === G4: what a member's authorizations and requests look like ========================


def _fold(text: str) -> str:
    """Lower-case text without accents: "Resonancia MAGNÉTICA" → "resonancia magnetica"."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _like_pattern(folded: str) -> str:
    """Build a LIKE pattern that also finds the accented spellings of folded (checked after)."""
    # Each vowel or n may be written á, É, ñ… in the data: let any one character stand
    # there. LIKE's own wildcards and escape in the words become that too.
    loose = "".join("_" if c in "aeioun%_\\" else c for c in folded)
    return f"%{loose}%"


def authorizations_of(member: EpsAfiliado, q: str = "", limit: int = LIST_LIMIT) -> list[dict]:
    """Return member's authorizations, newest first, filtered by service code or name (q).

    The filter ignores case and accents on both databases: a loose LIKE finds the
    candidates through the (afiliado, fecha) index, and the exact check runs here.
    """
    a = Autorizacion
    query = (
        a.select(
            a.numero,
            a.fecha,
            a.codigo_servicio,
            a.nombre_servicio,
            a.estado,
            Ips.nombre.alias("ips"),
        )
        .join(Ips, JOIN.LEFT_OUTER, on=(a.ips == Ips.id))
        .where(a.afiliado == member.id)
        .order_by(a.fecha.desc(), a.id.desc())
    )
    words = _fold(" ".join((q or "").split())[:100])
    if not words:
        return list(query.limit(limit).dicts())
    pattern = _like_pattern(words)
    candidates = query.where((a.codigo_servicio**pattern) | (a.nombre_servicio**pattern))
    found = [
        row
        for row in candidates.limit(limit * 10).dicts()
        if words in _fold(row["codigo_servicio"]) or words in _fold(row["nombre_servicio"])
    ]
    return found[:limit]


def requests_of(
    member: EpsAfiliado, estado: str | None = None, limit: int = LIST_LIMIT
) -> list[SolicitudAutorizacion]:
    """Return member's requests, newest first (only those in estado, when given)."""
    s = SolicitudAutorizacion
    query = s.select().where(s.afiliado == member.id)
    if estado:
        query = query.where(s.estado == estado)
    return list(query.order_by(s.created_at.desc(), s.id.desc()).limit(limit))
