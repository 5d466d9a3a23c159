"""Génesis account workflows (SPEC G1, G2): registration, first login, forgotten password.

No Flask request state here: views pass plain values in and get an outcome
(an enum) back; the words on screen are the templates' and the views'. Slow
hashing happens before any transaction opens; SMS are outbox rows written in
the same transaction as the change that causes them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from peewee import IntegrityError

from core import auth as core_auth
from core import genesis, notify, passwords, throttle, tokens
from core.clock import utcnow
from core.colombia import mask_phone
from models import Account, CambioDatosEps, EpsAfiliado, EpsUser, OneTimeCode, UserSession, db

# The step-2 form carries the validated document in a token of its own purpose.
REGISTRO_PURPOSE = "genesis-registro"
REGISTRO_MAX_AGE = 20 * 60
# "¿Olvidó su contraseña?": the code page names its document the same way.
RESET_PURPOSE = "genesis-olvide"
RESET_MAX_AGE = 30 * 60

TEMP_PASSWORD_TTL = timedelta(hours=24)
TEMP_PASSWORD_LENGTH = 10
# No 0/O, 1/I/l: read off a phone's screen and typed on another.
TEMP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

PROOF_TRIES = 5  # mobile + fecha de expedición checks per document and window
PROOF_WINDOW = 24 * 3600
# A mobile another account typed in for this member proves nothing for this long.
MOBILE_SETTLES = timedelta(days=30)

CODE_PURPOSE = "genesis_reset"
CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 5
CODE_RESEND_AFTER = 60
CODE_DAILY_CAP = 5  # codes a day per document and per phone
DAY = 24 * 3600


class TicketExpired(Exception):
    """A genuine step token that is too old."""


class TicketInvalid(Exception):
    """A tampered step token, or one of another purpose."""


def _make_ticket(purpose: str, tipo: str, numero: str, *, secret: str) -> str:
    return tokens.make_token(secret, purpose, {"t": tipo, "n": numero})


def _read_ticket(purpose: str, ticket: str, max_age: int, *, secret: str) -> tuple[str, str]:
    try:
        payload = tokens.read_token(secret, purpose, ticket or "", max_age)
    except tokens.TokenExpired as exc:
        raise TicketExpired from exc
    except tokens.TokenInvalid as exc:
        raise TicketInvalid from exc
    if not isinstance(payload, dict):
        raise TicketInvalid
    tipo, numero = payload.get("t"), payload.get("n")
    if not isinstance(tipo, str) or not isinstance(numero, str):
        raise TicketInvalid
    return tipo, numero


# --- G1: registration ----------------------------------------------------------


class Documento(StrEnum):
    """What "Validar" found for a document."""

    ACTIVO = "activo"  # an active affiliate without an account: may go on
    NO_ACTIVO = "no_activo"  # unknown, or not active: one answer for both
    REGISTRADO = "registrado"  # "El usuario ya se encuentra registrado"


class Registro(StrEnum):
    """What "FINALIZAR" came to."""

    HECHO = "hecho"
    NO_ACTIVO = "no_activo"
    REGISTRADO = "registrado"
    DATOS = "datos"  # the mobile or the date does not match (one answer for both)
    AGOTADO = "agotado"  # too many wrong proofs for this document


@dataclass(frozen=True)
class RegistroResult:
    outcome: Registro
    masked_phone: str = ""
    wait: int = 0  # seconds until AGOTADO ends


def _registered(afiliado: EpsAfiliado) -> bool:
    login = genesis.login_of(afiliado.tipo_documento, afiliado.numero_documento)
    return (
        EpsUser.select().where(EpsUser.afiliado == afiliado).exists()
        or Account.by_login(Account.EPS, login) is not None
    )


def check_document(tipo: str, numero: str) -> Documento:
    """Tell whether a document may register: active in the EPS data and without an account."""
    afiliado = EpsAfiliado.find(tipo, numero)
    if afiliado is None or afiliado.estado != EpsAfiliado.ACTIVO:
        return Documento.NO_ACTIVO
    return Documento.REGISTRADO if _registered(afiliado) else Documento.ACTIVO


def registration_ticket(tipo: str, numero: str, *, secret: str) -> str:
    """Sign the validated document for the step-2 form."""
    return _make_ticket(REGISTRO_PURPOSE, tipo, numero, secret=secret)


def document_of_ticket(ticket: str, *, secret: str) -> tuple[str, str]:
    """Return (tipo, número) of a genuine, fresh step-2 ticket, or raise TicketExpired/Invalid."""
    return _read_ticket(REGISTRO_PURPOSE, ticket, REGISTRO_MAX_AGE, secret=secret)


def temporary_password() -> str:
    """Draw a 10-character password from an alphabet without look-alike characters."""
    return "".join(secrets.choice(TEMP_ALPHABET) for _ in range(TEMP_PASSWORD_LENGTH))


def _mobile_set_by_another(afiliado: EpsAfiliado, now: datetime) -> bool:
    """Tell whether someone else's account changed this member's mobile in the office lately.

    A cotizante may update a beneficiary's contact data (G3); the mobile is also
    the proof of identity here, so a mobile typed in by another person is no
    proof until MOBILE_SETTLES has passed (the old number was told of the change).
    """
    return (
        CambioDatosEps.select()
        .where(
            (CambioDatosEps.afiliado == afiliado.id)
            & (CambioDatosEps.campo == "celular")
            & CambioDatosEps.account.is_null(False)
            & (CambioDatosEps.created_at > now - MOBILE_SETTLES)
        )
        .exists()
    )


def _proof_matches(afiliado: EpsAfiliado, celular: str, fecha_expedicion: date) -> bool:
    """Compare both proofs in full (no short cut that times which one failed)."""
    phone_ok = tokens.same(afiliado.celular or "-", celular or "")
    date_ok = (
        afiliado.fecha_expedicion is not None and afiliado.fecha_expedicion == fecha_expedicion
    )
    settled = not _mobile_set_by_another(afiliado, utcnow())
    return bool(afiliado.celular) and phone_ok and date_ok and settled


def register(tipo: str, numero: str, celular: str, fecha_expedicion: date) -> RegistroResult:
    """Create the account once the mobile and the date prove who it is; SMS a 24-hour password.

    Every proof checked spends one of the document's PROOF_TRIES first, so the
    last one is refused even when right (no oracle past the limit). Two
    concurrent FINALIZAR make one account: the unique (kind, login) and
    EpsUser.afiliado constraints refuse the second.
    """
    afiliado = EpsAfiliado.find(tipo, numero)
    if afiliado is None or afiliado.estado != EpsAfiliado.ACTIVO:
        return RegistroResult(Registro.NO_ACTIVO)
    if _registered(afiliado):
        return RegistroResult(Registro.REGISTRADO)
    login = genesis.login_of(tipo, numero)
    wait = throttle.spend(throttle.Purpose.GENESIS_REGISTRO, login, PROOF_TRIES, PROOF_WINDOW)
    if wait:
        return RegistroResult(Registro.AGOTADO, wait=wait)
    if not _proof_matches(afiliado, celular, fecha_expedicion):
        return RegistroResult(Registro.DATOS)
    password = temporary_password()
    password_hash = passwords.hash_password(password)  # slow: before the transaction
    now = utcnow()
    try:
        with db.atomic():
            EpsUser.create_account(
                afiliado,
                login,
                password_hash=password_hash,
                status=Account.ACTIVE,
                must_change_password=True,
                celular=afiliado.celular,
                email=afiliado.email or "",
                temp_password_expires_at=now + TEMP_PASSWORD_TTL,
                privacy_accepted_at=now,
                privacy_version=genesis.PRIVACY_VERSION,
            )
            notify.queue_sms(
                afiliado.celular,
                "Cajacopi EPS: su registro en el Portal Génesis fue exitoso. Contraseña "
                f"temporal: {password} (vale 24 horas; debe cambiarla al ingresar). No la "
                "comparta con nadie.",
            )
    except IntegrityError:
        return RegistroResult(Registro.REGISTRADO)
    return RegistroResult(Registro.HECHO, masked_phone=mask_phone(afiliado.celular))


# --- G2: login and the first-login gates ------------------------------------------


class Ingreso(StrEnum):
    """Whether an account whose password was right may have a session."""

    SI = "si"
    CLAVE_VENCIDA = "clave_vencida"  # the SMS password is older than 24 hours
    AFILIADO_INACTIVO = "afiliado_inactivo"  # no longer ACTIVO in the EPS data
    CUENTA_INACTIVA = "cuenta_inactiva"  # the account itself is not active


def may_sign_in(account: Account) -> Ingreso:
    """Tell whether an EPS account whose password was right may sign in now."""
    if not account.is_active:
        return Ingreso.CUENTA_INACTIVA
    profile = account.eps
    if profile is None or profile.afiliado.estado != EpsAfiliado.ACTIVO:
        return Ingreso.AFILIADO_INACTIVO
    expires = profile.temp_password_expires_at
    if account.must_change_password and expires is not None and expires <= utcnow():
        return Ingreso.CLAVE_VENCIDA
    return Ingreso.SI


def _clear_temporary(account: Account) -> None:
    with db.atomic():
        Account.update(must_change_password=False).where(Account.id == account.id).execute()
        EpsUser.update(temp_password_expires_at=None).where(EpsUser.account == account.id).execute()
    account.must_change_password = False
    if account.eps is not None:
        account.eps.temp_password_expires_at = None


def same_as_current(account: Account, password: str) -> bool:
    """Tell whether password is the one the account has now (the SMS one may not stay)."""
    return passwords.verify_password(account.password_hash, password)


def change_temporary_password(account: Account, password: str, *, keep_session: str) -> str:
    """Replace the SMS password (H1 rules checked by the caller); return the new login id.

    Other sessions end; this one (keep_session) stays.
    """
    new_id = core_auth.set_password(account, password, keep_session=keep_session)
    _clear_temporary(account)
    return new_id


def accept_carta(account: Account) -> None:
    """Record, once, when and which "carta de derechos y deberes" the member accepted."""
    now = utcnow()
    EpsUser.update(carta_accepted_at=now, carta_version=genesis.CARTA_VERSION).where(
        (EpsUser.account == account.id) & EpsUser.carta_accepted_at.is_null()
    ).execute()
    if account.eps is not None and account.eps.carta_accepted_at is None:
        account.eps.carta_accepted_at, account.eps.carta_version = now, genesis.CARTA_VERSION


# --- forgotten password: a code to the mobile on file ------------------------------


class Envio(StrEnum):
    """What asking for a reset code came to; the same for a document with or without account."""

    ENVIADO = "enviado"  # sent if the account exists (the page never says which)
    ESPERE = "espere"  # one was asked for this document less than a minute ago
    TOPE = "tope"  # the document's daily cap is spent


class Restablecer(StrEnum):
    """What a code and a new password came to."""

    HECHO = "hecho"
    CODIGO = "codigo"  # wrong, used, expired, or no such account: one answer
    CLAVE = "clave"  # the code is right; the password breaks a rule (see problems)


@dataclass(frozen=True)
class RestablecerResult:
    outcome: Restablecer
    problems: list[str] = field(default_factory=list)


def reset_ticket(tipo: str, numero: str, *, secret: str) -> str:
    """Sign the document a code was asked for (whether or not it has an account)."""
    return _make_ticket(RESET_PURPOSE, tipo, numero, secret=secret)


def document_of_reset_ticket(ticket: str, *, secret: str) -> tuple[str, str]:
    """Return (tipo, número) of a genuine, fresh reset ticket, or raise TicketExpired/Invalid."""
    return _read_ticket(RESET_PURPOSE, ticket, RESET_MAX_AGE, secret=secret)


def _mobile_on_file(account: Account) -> str:
    profile = account.eps
    return (profile.afiliado.celular if profile is not None else "") or account.celular


def send_reset_code(tipo: str, numero: str) -> tuple[Envio, int]:
    """SMS a 6-digit code to the account's mobile on file; return the outcome and seconds to wait.

    The cool-down and the daily cap count per document typed, account or not,
    so neither answer tells whether the document is registered.
    """
    login = genesis.login_of(tipo, numero)
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    with db.atomic():
        wait = throttle.cooldown(
            throttle.Purpose.GENESIS_RESET, f"espera:{login}", CODE_RESEND_AFTER
        )
        if wait:
            return Envio.ESPERE, wait
        if not throttle.quota(throttle.Purpose.GENESIS_RESET, f"dia:{login}", CODE_DAILY_CAP, DAY):
            return Envio.TOPE, 0
        account = Account.by_login(Account.EPS, login)
        mobile = _mobile_on_file(account) if account is not None else ""
        if account is None or not account.is_active or not mobile:
            return Envio.ENVIADO, 0
        phone_hash = tokens.digest(f"celular:{mobile}")
        purpose = OneTimeCode.purpose == CODE_PURPOSE
        to_phone = (
            OneTimeCode.select()
            .where(
                purpose
                & (OneTimeCode.recipient_hash == phone_hash)
                & (OneTimeCode.created_at > now - timedelta(seconds=DAY))
            )
            .count()
        )
        if to_phone >= CODE_DAILY_CAP:  # a phone shared by several documents
            return Envio.ENVIADO, 0
        OneTimeCode.update(used_at=now).where(
            (OneTimeCode.account == account) & purpose & OneTimeCode.used_at.is_null()
        ).execute()
        OneTimeCode.create(
            account=account,
            purpose=CODE_PURPOSE,
            code_hash=tokens.digest(code),
            recipient_hash=phone_hash,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        notify.queue_sms(
            mobile,
            f"Cajacopi EPS: su código para restablecer la contraseña del Portal Génesis es "
            f"{code}. Vence en 10 minutos. No lo comparta con nadie.",
        )
    return Envio.ENVIADO, 0


def _live_code(account: Account) -> OneTimeCode | None:
    return (
        OneTimeCode.select()
        .where(
            (OneTimeCode.account == account)
            & (OneTimeCode.purpose == CODE_PURPOSE)
            & OneTimeCode.used_at.is_null()
            & (OneTimeCode.expires_at > utcnow())
        )
        .order_by(OneTimeCode.id.desc())
        .first()
    )


def _take_try(row: OneTimeCode) -> bool:
    """Spend one of the code's tries before comparing (concurrent guesses cannot pass CODE_TRIES)."""
    taken = (
        OneTimeCode.update(attempts=OneTimeCode.attempts + 1)
        .where(
            (OneTimeCode.id == row.id)
            & OneTimeCode.used_at.is_null()
            & (OneTimeCode.attempts < CODE_TRIES)
        )
        .execute()
    )
    return taken == 1


def reset_password(tipo: str, numero: str, code: str, password: str) -> RestablecerResult:
    """Set a new password when the code is right; a temporary password then stops being one.

    The password rules are checked only after the code is right (they use the
    account's own data, which a stranger must not probe), and a right code
    whose password breaks a rule gives its try back.
    """
    account = Account.by_login(Account.EPS, genesis.login_of(tipo, numero))
    row = _live_code(account) if account is not None and account.is_active else None
    if row is None or not _take_try(row):
        return RestablecerResult(Restablecer.CODIGO)
    if not tokens.same(row.code_hash, tokens.digest((code or "").strip())):
        return RestablecerResult(Restablecer.CODIGO)
    problems = core_auth.password_problems_for(account, password)
    if problems:
        OneTimeCode.update(attempts=OneTimeCode.attempts - 1).where(
            (OneTimeCode.id == row.id) & (OneTimeCode.attempts > 0)
        ).execute()
        return RestablecerResult(Restablecer.CLAVE, problems)
    spent = (
        OneTimeCode.update(used_at=utcnow())
        .where((OneTimeCode.id == row.id) & OneTimeCode.used_at.is_null())
        .execute()
    )
    if spent != 1:
        return RestablecerResult(Restablecer.CODIGO)
    try:
        core_auth.set_password(account, password, reason=UserSession.RESET)
    except core_auth.AccountError:  # changed at the same moment by another request
        return RestablecerResult(Restablecer.CODIGO)
    _clear_temporary(account)
    return RestablecerResult(Restablecer.HECHO)
