"""Hanna account changes and QR sign-in (SPEC H5): what only Hanna users do.

Signing in, sessions and passwords are the platform's (core/auth.py).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from peewee import IntegrityError

from core import notify, tokens
from core.auth import (
    AccountError,
    LinkInvalid,
    password_fingerprint,
    read_link,
    user_with_same_password,
)
from core.clock import utcnow
from core.colombia import mask_email
from models import Account, QrLogin, db, new_token

EMAIL_CHANGE_MAX_AGE = 24 * 3600
QR_TTL = timedelta(minutes=2)


def request_email_change(user: Account, new_email: str, *, secret: str, base_url: str) -> None:
    """Mail a confirmation link to the new address and a notice to the old one.

    Each request rotates the account's e-mail nonce, which the link carries:
    only the newest link works, and only once.
    """
    new_email = new_email.strip().lower()
    nonce = new_token()
    token = tokens.make_token(
        secret,
        tokens.EMAIL_CHANGE,
        {"u": user.id, "e": new_email, "p": password_fingerprint(user), "n": nonce},
    )
    with db.atomic():
        Account.update(email_nonce=nonce).where(Account.id == user.id).execute()
        user.email_nonce = nonce
        if Account.by_email(new_email) is not None:
            # Tell the owner of that address, not the person asking.
            notify.queue_template_email(
                new_email, "Intento de cambio de correo", "email_taken", base_url=base_url
            )
            return
        notify.queue_template_email(
            new_email,
            "Confirme su nuevo correo",
            "email_change",
            user=user,
            link=f"{base_url}/cuenta/correo/{token}",
        )
        notify.queue_template_email(
            user.email,
            "Se solicitó cambiar su correo",
            "email_change_notice",
            user=user,
            masked=mask_email(new_email),
        )


def email_change_for(token: str, *, secret: str) -> tuple[Account, str]:
    """Return the account and the new address a live, unused e-mail-change link names.

    Reads only: opening the link (a mail scanner does) changes nothing.
    """
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.EMAIL_CHANGE,
        max_age=EMAIL_CHANGE_MAX_AGE,
        what="para confirmar el correo",
        lasts="24 horas",
    )
    user = user_with_same_password(payload)
    if user is None or not tokens.same(user.email_nonce, str(payload.get("n"))):
        raise LinkInvalid(
            "Este enlace ya fue usado o se pidió otro cambio después. Solicite el cambio de nuevo."
        )
    return user, str(payload.get("e"))


def confirm_email_change(token: str, *, secret: str) -> Account:
    """Apply a confirmed e-mail change once: use, a newer request or a new password kill it."""
    user, new_email = email_change_for(token, secret=secret)
    taken = AccountError("Ese correo ya está registrado en otra cuenta.")
    try:
        with db.atomic():
            if Account.by_email(new_email) is not None:
                raise taken
            changed = (
                Account.update(email=new_email, login=new_email, email_nonce=new_token())
                .where((Account.id == user.id) & (Account.email_nonce == user.email_nonce))
                .execute()
            )
            if changed != 1:
                raise LinkInvalid("Este enlace ya fue usado. Solicite el cambio de nuevo.")
    except IntegrityError as exc:  # the address was taken at the same moment
        raise taken from exc
    user.email = user.login = new_email
    return user


# --- QR sign-in (H5) ---------------------------------------------------------


def start_qr_login(user_agent: str) -> tuple[QrLogin, str]:
    """Open a sign-in request for this PC; return it and the secret its browser keeps."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    if secrets.randbelow(20) == 0:  # now and then, forget old requests
        QrLogin.delete().where(QrLogin.expires_at < now - timedelta(hours=1)).execute()
    request = QrLogin.create(
        secret_hash=tokens.digest(secret),
        match_code=f"{secrets.randbelow(90) + 10}",
        user_agent=user_agent[:200],
        created_at=now,
        expires_at=now + QR_TTL,
    )
    return request, secret


def qr_for_phone(key: str) -> QrLogin | None:
    """Return the pending, unexpired request behind a scanned code."""
    return QrLogin.get_or_none(
        (QrLogin.key == key) & (QrLogin.status == QrLogin.PENDING) & (QrLogin.expires_at > utcnow())
    )


def qr_match_options(request: QrLogin) -> list[str]:
    """Return three numbers for the phone: the PC's and two others, in order."""
    options = {request.match_code}
    rng = secrets.SystemRandom()
    while len(options) < 3:
        options.add(f"{rng.randrange(10, 100)}")
    return sorted(options)


def decide_qr(key: str, user: Account, picked: str | None) -> bool:
    """Approve the request when the phone's user picked the PC's number; refuse otherwise."""
    request = qr_for_phone(key)
    if request is None:
        return False
    approve = picked is not None and tokens.same(request.match_code, picked)
    changed = (
        QrLogin.update(status=QrLogin.APPROVED if approve else QrLogin.REFUSED, account=user)
        .where(
            (QrLogin.id == request.id)
            & (QrLogin.status == QrLogin.PENDING)
            & (QrLogin.expires_at > utcnow())
        )
        .execute()
    )
    return approve and changed == 1


def claim_qr_login(key: str, secret: str) -> tuple[str, Account | None]:
    """For the PC that opened it: return ("esperando"|"listo"|"vencido"|"rechazado", user).

    "listo" happens once: the request is spent in the same conditional UPDATE.
    """
    request = QrLogin.get_or_none(QrLogin.key == key)
    if request is None or not tokens.same(request.secret_hash, tokens.digest(secret)):
        return "vencido", None  # a foreign browser learns nothing
    if request.status == QrLogin.REFUSED:
        return "rechazado", None
    if request.status == QrLogin.APPROVED and utcnow() < request.expires_at + QR_TTL:
        spent = (
            QrLogin.update(status=QrLogin.USED)
            .where((QrLogin.id == request.id) & (QrLogin.status == QrLogin.APPROVED))
            .execute()
        )
        user = Account.get_or_none(Account.id == request.account_id)
        if spent == 1 and user is not None and user.is_active:
            return "listo", user
        return "vencido", None
    if request.status == QrLogin.PENDING and request.expires_at > utcnow():
        return "esperando", None
    return "vencido", None
