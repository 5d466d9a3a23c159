"""The staff back office's second factor: TOTP codes (RFC 6238) and recovery codes.

Time comes from ``core.clock`` (the ``clock`` fixture moves it), cut into 30 s
steps. A code is taken within one step either side of now, and only for a
step later than the last one accepted (``Account.totp_last_step``), so a code
seen over someone's shoulder cannot be used again. Every "take it once"
decision is a single conditional UPDATE: the database, not a read before the
write, decides which of two concurrent requests wins.

Recovery codes are stored as their sha256 (``core.tokens.digest``) only; the
plain codes exist once, in the return value of ``new_recovery_codes``.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC

import pyotp
import segno
from markupsafe import Markup

from core import clock
from core.tokens import digest
from models import Account, RecoveryCode, db

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps either side of now: tolerates a phone clock ~30 s off
ISSUER = "Gestión Hanna"

# No 0/O, 1/I/L: the codes are read off paper and typed by hand.
RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RECOVERY_LENGTH = 10
RECOVERY_COUNT = 10

# [0-9], not \d: \d also matches other scripts' digits, which are not a code.
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
_RECOVERY = re.compile(rf"[{RECOVERY_ALPHABET}]{{{RECOVERY_LENGTH}}}")


def new_secret() -> str:
    """Return a fresh base32 TOTP secret (32 characters, 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    """Return the otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=issuer
    )


def qr_svg(uri: str) -> Markup:
    """Draw uri as an inline SVG QR code (no script, no image request)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=2, title="Código QR para la aplicación de autenticación"
    )
    return Markup(svg)  # noqa: S704 - segno's own markup; the URI inside is escaped by it


def current_step() -> int:
    """Return the TOTP time step of core.clock's now."""
    # pyotp reads a naive datetime as local time; utcnow() is naive UTC, so the
    # step is computed here from an explicit UTC timestamp instead.
    return int(clock.utcnow().replace(tzinfo=UTC).timestamp()) // STEP_SECONDS


def check_code(secret: str, code: str, last_step: int | None) -> int | None:
    """Return the step a 6-digit code matches near now and after last_step, else None."""
    code = re.sub(r"\s+", "", code or "")
    if not secret or not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = current_step()
    for step in range(now - WINDOW, now + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def accept_code(account: Account, code: str) -> bool:
    """Take a TOTP code for account once: True only for the request that records its step."""
    # A secret without totp_enrolled_at is a candidate still being enrolled
    # (gestion.enrolment_secret keeps it there): not yet a second factor.
    if account.totp_enrolled_at is None:
        return False
    secret = account.totp_secret
    step = check_code(secret, code, account.totp_last_step)
    if step is None:
        return False
    updated = (
        Account.update(totp_last_step=step)
        .where(
            (Account.id == account.id)
            # A reset or re-enrolment in between makes the old secret's code worthless.
            & (Account.totp_secret == secret)
            & Account.totp_enrolled_at.is_null(False)
            & (Account.totp_last_step.is_null() | (Account.totp_last_step < step))
        )
        .execute()
    )
    if updated != 1:
        return False
    account.totp_last_step = step
    return True


def enroll(account: Account, secret: str, code: str) -> bool:
    """Store secret as account's second factor if code proves the app has it; False otherwise."""
    if account.totp_enrolled_at is not None:
        return False
    step = check_code(secret, code, None)
    if step is None:
        return False
    now = clock.utcnow()
    # The step is recorded too, so the code typed to enrol cannot also sign in.
    updated = (
        Account.update(totp_secret=secret, totp_enrolled_at=now, totp_last_step=step)
        .where((Account.id == account.id) & Account.totp_enrolled_at.is_null())
        .execute()
    )
    if updated != 1:
        return False
    account.totp_secret, account.totp_enrolled_at, account.totp_last_step = secret, now, step
    return True


def normalise_recovery_code(code: str) -> str:
    """Return code upper-cased without spaces or dashes (how it is hashed)."""
    return re.sub(r"[\s\-]+", "", code or "").upper()


def _format_recovery_code(raw: str) -> str:
    half = RECOVERY_LENGTH // 2
    return f"{raw[:half]}-{raw[half:]}"


def new_recovery_codes(account: Account, n: int = RECOVERY_COUNT) -> list[str]:
    """Replace account's recovery codes with n new ones; return them as "XXXXX-XXXXX"."""
    raw: set[str] = set()
    while len(raw) < n:
        raw.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)))
    plain = sorted(raw)
    hashes = [digest(code) for code in plain]
    with db.atomic():
        RecoveryCode.delete().where(RecoveryCode.account == account.id).execute()
        RecoveryCode.insert_many(
            [{"account": account.id, "code_hash": h} for h in hashes]
        ).execute()
    return [_format_recovery_code(code) for code in plain]


def use_recovery_code(account: Account, code: str) -> bool:
    """Spend one of account's unused recovery codes; True only for the request that spends it."""
    normal = normalise_recovery_code(code)
    if not _RECOVERY.fullmatch(normal):
        return False
    updated = (
        RecoveryCode.update(used_at=clock.utcnow())
        .where(
            (RecoveryCode.account == account.id)
            & (RecoveryCode.code_hash == digest(normal))
            & RecoveryCode.used_at.is_null()
        )
        .execute()
    )
    return updated == 1


def remaining_recovery_codes(account: Account) -> int:
    """Count account's recovery codes not used yet."""
    return (
        RecoveryCode.select()
        .where((RecoveryCode.account == account.id) & RecoveryCode.used_at.is_null())
        .count()
    )


def reset(account: Account) -> None:
    """Remove account's second factor and recovery codes, so it enrols again at next sign-in."""
    with db.atomic():
        Account.update(totp_secret="", totp_last_step=None, totp_enrolled_at=None).where(
            Account.id == account.id
        ).execute()
        RecoveryCode.delete().where(RecoveryCode.account == account.id).execute()
    account.totp_secret, account.totp_last_step, account.totp_enrolled_at = "", None, None
