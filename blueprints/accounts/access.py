"""Signing in and staying safe: login back-off, sessions, password reset,
e-mail change and QR sign-in (SPEC H3, H5, X).

No Flask request state here: views pass plain values in and get values or a
domain error back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from blueprints.accounts.service import AccountError, LinkInvalid, read_link
from core import notify, passwords, tokens
from core.clock import utcnow
from core.colombia import mask_email
from models import Message, QrLogin, User, UserSession, db, new_token

BACKOFF_FROM = 5  # failures before the back-off starts
BACKOFF_CAP = timedelta(minutes=15)
LOCK_AT = 20  # consecutive failures: locked until a password reset
SESSION_TOUCH = timedelta(seconds=30)  # last_seen is written at most this often
RESET_MAX_AGE = 3600
RESET_COOLDOWN = timedelta(minutes=2)
RESET_SUBJECT = "Restablecimiento de Contraseña"
EMAIL_CHANGE_MAX_AGE = 24 * 3600
QR_TTL = timedelta(minutes=2)


# --- login and sessions ----------------------------------------------------


def backoff(failures: int) -> timedelta:
    """Return the wait after `failures` consecutive failures: 1, 2, 4 … s from the 5th."""
    if failures < BACKOFF_FROM:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - BACKOFF_FROM)), BACKOFF_CAP)


def authenticate(email: str, password: str) -> User | None:
    """Return the account when the password is right and not in back-off.

    Every failure looks the same to the caller, and costs one hash either way.
    """
    user = User.by_email(email)
    now = utcnow()
    if user is None:
        passwords.burn_hash_time(password)
        return None
    locked = user.failed_logins >= LOCK_AT
    if locked or (user.login_blocked_until and user.login_blocked_until > now):
        passwords.burn_hash_time(password)
        return None
    if not passwords.verify_password(user.password_hash, password):
        failures = user.failed_logins + 1
        User.update(
            failed_logins=User.failed_logins + 1,
            login_blocked_until=now + backoff(failures) if backoff(failures) else None,
        ).where(User.id == user.id).execute()
        return None
    changes = {User.failed_logins: 0, User.login_blocked_until: None}
    if passwords.needs_rehash(user.password_hash):
        changes[User.password_hash] = passwords.hash_password(password)
    User.update(changes).where(User.id == user.id).execute()
    return user


def start_session(user: User, user_agent: str) -> str:
    """Open a server-side session for user; return the token for the cookie."""
    token = secrets.token_urlsafe(32)
    UserSession.create(token_hash=tokens.digest(token), user=user, user_agent=user_agent[:200])
    return token


def end_session(token: str) -> None:
    """End the session behind token (logout): a copied cookie stops working."""
    UserSession.update(ended_at=utcnow()).where(
        (UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null()
    ).execute()


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session may sit idle, and live at most, for one kind of user."""

    idle: timedelta
    absolute: timedelta


def resolve_session(
    user_token: str, token: str, *, policies: dict[str, SessionPolicy]
) -> User | None:
    """Return the active user of a live session, ending it when idle or too old.

    policies maps a user's role to its timeouts; "afiliado" is the fallback.
    """
    row = (
        UserSession.select(UserSession, User)
        .join(User)
        .where((UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null())
        .first()
    )
    if row is None or not tokens.same(row.user.session_token, user_token):
        return None
    policy = policies.get(row.user.role, policies[User.AFFILIATE_ROLE])
    now = utcnow()
    if (
        now - row.last_seen > policy.idle
        or now - row.created_at > policy.absolute
        or not row.user.is_active
    ):
        end_session(token)
        return None
    if now - row.last_seen > SESSION_TOUCH:
        UserSession.update(last_seen=now).where(UserSession.id == row.id).execute()
    return row.user


def end_all_sessions(user: User, keep: str | None = None) -> None:
    """End every session of user (all but the one whose token is `keep`)."""
    query = UserSession.update(ended_at=utcnow()).where(
        (UserSession.user == user) & UserSession.ended_at.is_null()
    )
    if keep:
        query = query.where(UserSession.token_hash != tokens.digest(keep))
    query.execute()


def session_id(token: str) -> int | None:
    """Return the row id of the session behind a cookie token."""
    row = UserSession.get_or_none(UserSession.token_hash == tokens.digest(token))
    return row.id if row else None


def active_sessions(user: User) -> list[UserSession]:
    """Return the user's live sessions, most recently seen first."""
    return list(
        UserSession.select()
        .where((UserSession.user == user) & UserSession.ended_at.is_null())
        .order_by(UserSession.last_seen.desc())
        .limit(50)
    )


def end_own_session(user: User, session_id: int) -> UserSession | None:
    """End one of user's sessions (from the list); None when it is not theirs."""
    row = UserSession.get_or_none((UserSession.id == session_id) & (UserSession.user == user))
    if row is not None:
        UserSession.update(ended_at=utcnow()).where(UserSession.id == row.id).execute()
    return row


def logout_everywhere(user: User) -> None:
    """End every session and rotate the login id, so no old cookie works again."""
    with db.atomic():
        User.update(session_token=new_token()).where(User.id == user.id).execute()
        end_all_sessions(user)


# --- password reset (H3) and account changes -------------------------------


def password_fingerprint(user: User) -> str:
    """Return a value that changes whenever the password does (kills old links)."""
    return tokens.digest(user.password_hash)[:16]


def _user_with_same_password(payload: dict) -> User | None:
    """Return the link's user if the password has not changed since it was signed."""
    user = User.get_or_none(User.id == payload.get("u"))
    if user is None or not tokens.same(password_fingerprint(user), str(payload.get("p"))):
        return None
    return user


def password_problems_for(user: User, password: str) -> list[str]:
    """Apply the H1 password rules with this user's own data."""
    return passwords.password_problems(
        password,
        document=user.numero_documento,
        phones=[p for p in (user.celular, user.telefono) if p],
        birth_date=user.fecha_nacimiento,
        email=user.email,
    )


def request_reset(email: str, *, secret: str, base_url: str) -> None:
    """Queue the reset mail; an unknown address gets a short note instead.

    Both branches read the same rows and write one outbox row, so the answer,
    and the work behind it, do not tell whether an account exists.
    """
    email = email.strip().lower()
    with db.atomic():
        user = User.by_email(email)
        recent = (
            Message.select()
            .where(
                (Message.recipient == email)
                & (Message.subject == RESET_SUBJECT)
                & (Message.created_at > utcnow() - RESET_COOLDOWN)
            )
            .exists()
        )
        if recent:
            return  # one mail per address every two minutes: no mail bombing
        if user is None:
            notify.queue_template_email(email, RESET_SUBJECT, "reset_unknown", base_url=base_url)
            return
        token = tokens.make_token(
            secret, tokens.RESET, {"u": user.id, "p": password_fingerprint(user)}
        )
        notify.queue_template_email(
            email, RESET_SUBJECT, "reset", user=user, link=f"{base_url}/restablecer/{token}"
        )


def user_for_reset(token: str, *, secret: str) -> User:
    """Return the account a genuine, fresh, unused reset link names."""
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.RESET,
        max_age=RESET_MAX_AGE,
        what="para restablecer la contraseña",
        lasts="1 hora",
    )
    user = _user_with_same_password(payload)
    if user is None:
        raise LinkInvalid(
            "Este enlace ya fue usado o su contraseña cambió después de pedirlo. "
            "Solicite uno nuevo."
        )
    return user


def set_password(user: User, password: str, *, keep_session: str | None = None) -> str:
    """Change the password, end other sessions, clear the back-off; return the new login id.

    Refuses (LinkInvalid) when the password changed meanwhile, so a link or a
    form can change it only once.
    """
    new_hash = passwords.hash_password(password)  # slow: outside the transaction
    new_id = new_token()
    with db.atomic():
        changed = (
            User.update(
                password_hash=new_hash,
                session_token=new_id,
                failed_logins=0,
                login_blocked_until=None,
            )
            .where((User.id == user.id) & (User.password_hash == user.password_hash))
            .execute()
        )
        if changed != 1:
            raise LinkInvalid("La contraseña ya fue cambiada. Solicite un enlace nuevo.")
        end_all_sessions(user, keep=keep_session)
        notify.queue_template_email(
            user.email, "Su contraseña fue actualizada", "password_changed", user=user
        )
    user.password_hash, user.session_token = new_hash, new_id
    user.failed_logins, user.login_blocked_until = 0, None
    return new_id


def check_password(user: User, password: str) -> bool:
    """Verify the current password of a signed-in user; a miss counts toward the lock."""
    if passwords.verify_password(user.password_hash, password):
        return True
    User.update(failed_logins=User.failed_logins + 1).where(User.id == user.id).execute()
    return False


def request_email_change(user: User, new_email: str, *, secret: str, base_url: str) -> None:
    """Mail a confirmation link to the new address and a notice to the old one."""
    new_email = new_email.strip().lower()
    token = tokens.make_token(
        secret, tokens.EMAIL_CHANGE, {"u": user.id, "e": new_email, "p": password_fingerprint(user)}
    )
    with db.atomic():
        if User.by_email(new_email) is not None:
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


def confirm_email_change(token: str, *, secret: str) -> User:
    """Apply a confirmed e-mail change; the link dies with any password change."""
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.EMAIL_CHANGE,
        max_age=EMAIL_CHANGE_MAX_AGE,
        what="para confirmar el correo",
        lasts="24 horas",
    )
    with db.atomic():
        user = _user_with_same_password(payload)
        if user is None:
            raise LinkInvalid("Este enlace ya no es válido. Solicite el cambio de nuevo.")
        new_email = str(payload.get("e"))
        if user.email == new_email:
            return user
        if User.by_email(new_email) is not None:
            raise AccountError("Ese correo ya está registrado en otra cuenta.")
        user.email = new_email
        user.save()
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


def decide_qr(key: str, user: User, picked: str | None) -> bool:
    """Approve the request when the phone's user picked the PC's number; refuse otherwise."""
    request = qr_for_phone(key)
    if request is None:
        return False
    approve = picked is not None and tokens.same(request.match_code, picked)
    changed = (
        QrLogin.update(status=QrLogin.APPROVED if approve else QrLogin.REFUSED, user=user)
        .where(
            (QrLogin.id == request.id)
            & (QrLogin.status == QrLogin.PENDING)
            & (QrLogin.expires_at > utcnow())
        )
        .execute()
    )
    return approve and changed == 1


def claim_qr_login(key: str, secret: str) -> tuple[str, User | None]:
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
        user = User.get_or_none(User.id == request.user_id)
        if spent == 1 and user is not None and user.is_active:
            return "listo", user
        return "vencido", None
    if request.status == QrLogin.PENDING and request.expires_at > utcnow():
        return "esperando", None
    return "vencido", None
