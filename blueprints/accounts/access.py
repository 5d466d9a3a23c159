"""Signing in and staying safe: login back-off, sessions, password reset,
e-mail change and QR sign-in (SPEC H3, H5, X).

No Flask request state here: views pass plain values in and get values or a
domain error back.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import Case, IntegrityError, Value

from blueprints.accounts.service import AccountError, LinkInvalid, read_link
from core import notify, passwords, throttle, tokens
from core.clock import utcnow
from core.colombia import mask_email
from models import LoginDevice, QrLogin, User, UserSession, db, new_token

# Untrusted clients (no device cookie for the account) share one budget per
# account: back-off from the 5th failure, never a lock a stranger could cause.
BACKOFF_FROM = 5
BACKOFF_CAP = timedelta(minutes=15)
# A browser that signed in before keeps its own budget (OWASP device cookies).
DEVICE_PURPOSE = "equipo"
DEVICE_COOKIE = "hanna_equipo"
DEVICE_TTL = timedelta(days=365)
DEVICE_MAX_FAILURES = 10  # then the device cookie is revoked: an untrusted client again
DEVICES_PER_USER = 10
DEVICES_PER_COOKIE = 5  # accounts one browser remembers (shared front-desk PCs)
SESSION_TOUCH = timedelta(seconds=30)  # last_seen is written at most this often
RESET_MAX_AGE = 3600
RESET_COOLDOWN_SECONDS = 120
RESET_SUBJECT = "Restablecimiento de Contraseña"
EMAIL_CHANGE_MAX_AGE = 24 * 3600
QR_TTL = timedelta(minutes=2)


# --- login and sessions ----------------------------------------------------


def backoff(failures: int) -> timedelta:
    """Return the wait after `failures` consecutive failures: 1, 2, 4 … s from the 5th."""
    if failures < BACKOFF_FROM:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - BACKOFF_FROM)), BACKOFF_CAP)


class LoginOutcome(enum.Enum):
    """What became of one sign-in attempt (the page says the same for both failures)."""

    SIGNED_IN = "signed_in"  # the password was right
    WRONG = "wrong"  # checked and wrong, or no such account
    WAIT = "wait"  # not checked: this client's budget for the account is backing off


@dataclass(frozen=True)
class LoginResult:
    """The outcome, the account when the password was right, and its device cookie."""

    outcome: LoginOutcome
    user: User | None = None
    device_token: str | None = None  # for an active account: what this browser keeps


def authenticate(
    email: str, password: str, *, device_tokens: Sequence[str] = (), secret: str
) -> LoginResult:
    """Check a password against the budget of this client: its device's, or the untrusted one.

    The attempt is counted, and allowed or refused, by one conditional UPDATE
    before the slow hash, so concurrent guesses cannot all pass a check made on
    a stale count. Every attempt costs one hash, whatever the outcome.
    """
    user = User.by_email(email)
    if user is None:
        passwords.burn_hash_time(password)
        return LoginResult(LoginOutcome.WRONG)
    now = utcnow()
    device = _known_device(user, device_tokens, secret=secret)
    if device is not None and not _reserve_device(device[0]):
        device = None  # spent or revoked meanwhile: an untrusted client like any other
    if device is None and not _reserve_untrusted(user, now):
        passwords.burn_hash_time(password)
        return LoginResult(LoginOutcome.WAIT)
    if not passwords.verify_password(user.password_hash, password):
        if device is not None:
            LoginDevice.update(revoked_at=now).where(
                (LoginDevice.id == device[0].id)
                & (LoginDevice.failed_logins >= DEVICE_MAX_FAILURES)
                & LoginDevice.revoked_at.is_null()
            ).execute()
        return LoginResult(LoginOutcome.WRONG)
    if device is not None:
        # A stranger's failures stay on the untrusted budget: the owner's
        # sign-in from a known browser does not reopen it for them.
        LoginDevice.update(failed_logins=0, last_used_at=now).where(
            LoginDevice.id == device[0].id
        ).execute()
        nonce = device[1]
    else:
        User.update(failed_logins=0, login_blocked_until=None).where(User.id == user.id).execute()
        nonce = _new_device(user, now) if user.is_active else None
    if passwords.needs_rehash(user.password_hash):
        new_hash = passwords.hash_password(password)
        User.update(password_hash=new_hash).where(User.id == user.id).execute()
        user.password_hash = new_hash
    token = tokens.make_token(secret, DEVICE_PURPOSE, {"u": user.id, "n": nonce}) if nonce else None
    return LoginResult(LoginOutcome.SIGNED_IN, user, token)


def _deadline(failures, now: datetime) -> Case:
    """SQL for the back-off deadline after `failures` (an expression): backoff() as a CASE."""
    stamp = User.login_blocked_until.db_value
    steps = [(failures < BACKOFF_FROM, None)]
    n = BACKOFF_FROM
    while backoff(n) < BACKOFF_CAP:
        steps.append((failures == n, Value(now + backoff(n), converter=stamp)))
        n += 1
    return Case(None, steps, Value(now + BACKOFF_CAP, converter=stamp))


def _reserve_untrusted(user: User, now: datetime) -> bool:
    """Count one untrusted attempt; tell whether it may be tried (not backing off).

    Refused attempts are counted too, so the count is every attempt made.
    """
    failures = User.failed_logins + 1
    free = User.login_blocked_until.is_null() | (User.login_blocked_until <= now)
    reserved = (
        User.update(failed_logins=failures, login_blocked_until=_deadline(failures, now))
        .where((User.id == user.id) & free)
        .execute()
    )
    if reserved:
        return True
    User.update(failed_logins=failures).where(User.id == user.id).execute()
    return False


def _reserve_device(device: LoginDevice) -> bool:
    """Count one attempt on a device's budget; False when it is spent or revoked."""
    return (
        LoginDevice.update(failed_logins=LoginDevice.failed_logins + 1)
        .where(
            (LoginDevice.id == device.id)
            & LoginDevice.revoked_at.is_null()
            & (LoginDevice.failed_logins < DEVICE_MAX_FAILURES)
        )
        .execute()
        == 1
    )


def _known_device(
    user: User, device_tokens: Sequence[str], *, secret: str
) -> tuple[LoginDevice, str] | None:
    """Return the live device row (and its nonce) behind this browser's cookie for user."""
    for token in device_tokens[:DEVICES_PER_COOKIE]:
        payload = _device_payload(token, secret=secret)
        if payload is None or payload["u"] != user.id:
            continue
        row = LoginDevice.get_or_none(
            (LoginDevice.nonce_hash == tokens.digest(payload["n"]))
            & (LoginDevice.user == user)
            & LoginDevice.revoked_at.is_null()
        )
        return (row, payload["n"]) if row is not None else None
    return None


def _device_payload(token: str, *, secret: str) -> dict | None:
    """Return {"u": user id, "n": nonce} of a genuine, fresh device token."""
    try:
        payload = tokens.read_token(secret, DEVICE_PURPOSE, token, int(DEVICE_TTL.total_seconds()))
    except (tokens.TokenExpired, tokens.TokenInvalid):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        return None
    return payload


def _new_device(user: User, now: datetime) -> str:
    """Trust this browser for user from now on; return the nonce for its cookie."""
    nonce = secrets.token_urlsafe(24)
    with db.atomic():
        LoginDevice.create(user=user, nonce_hash=tokens.digest(nonce), created_at=now)
        newest = (
            LoginDevice.select(LoginDevice.id)
            .where((LoginDevice.user == user) & LoginDevice.revoked_at.is_null())
            .order_by(LoginDevice.last_used_at.desc(), LoginDevice.id.desc())
            .limit(DEVICES_PER_USER)
        )
        LoginDevice.delete().where(
            (LoginDevice.user == user)
            & (
                LoginDevice.revoked_at.is_null(False)
                | (LoginDevice.last_used_at < now - DEVICE_TTL)
                | LoginDevice.id.not_in(newest)
            )
        ).execute()
    return nonce


def revoke_devices(user: User) -> None:
    """Stop trusting every browser of user (password reset, "all devices" logout)."""
    LoginDevice.update(revoked_at=utcnow()).where(
        (LoginDevice.user == user) & LoginDevice.revoked_at.is_null()
    ).execute()


def device_tokens(cookie: str | None) -> list[str]:
    """Split this browser's device cookie into its tokens (one per account)."""
    return [t for t in (cookie or "").split("~") if t][:DEVICES_PER_COOKIE]


def remember_device(cookie: str | None, token: str, *, secret: str) -> str:
    """Return the device cookie with token first, dropping older tokens of the same account."""
    mine = _device_payload(token, secret=secret)
    kept = [token]
    for other in device_tokens(cookie):
        payload = _device_payload(other, secret=secret)
        if payload is not None and mine is not None and payload["u"] != mine["u"]:
            kept.append(other)
    return "~".join(kept[:DEVICES_PER_COOKIE])


def start_session(user: User, user_agent: str) -> str:
    """Open a server-side session for user; return the token for the cookie."""
    token = secrets.token_urlsafe(32)
    UserSession.create(token_hash=tokens.digest(token), user=user, user_agent=user_agent[:200])
    return token


def end_session(token: str, reason: str = UserSession.LOGOUT) -> None:
    """End the session behind token (logout): a copied cookie stops working."""
    UserSession.update(ended_at=utcnow(), end_reason=reason).where(
        (UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null()
    ).execute()


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session may sit idle, and live at most, for one kind of user."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class SessionCheck:
    """A cookie's session: its user while live, or why it ended (None: never known).

    stale: the row lives but the login id rotated (a password change kept this
    session): a request that crossed the change, whose cookie must be left alone.
    """

    user: User | None = None
    end_reason: str | None = None
    stale: bool = False


def resolve_session(
    user_token: str, token: str, *, policies: dict[str, SessionPolicy]
) -> SessionCheck:
    """Return the active user of a live session, ending it when idle or too old.

    policies maps a user's role to its timeouts; "afiliado" is the fallback.
    """
    row = (
        UserSession.select(UserSession, User)
        .join(User)
        .where(UserSession.token_hash == tokens.digest(token))
        .first()
    )
    if row is None:
        return SessionCheck()
    if row.ended_at is not None:
        return SessionCheck(end_reason=row.end_reason)
    if not tokens.same(row.user.session_token, user_token):
        return SessionCheck(stale=True)
    policy = policies.get(row.user.role, policies[User.AFFILIATE_ROLE])
    now = utcnow()
    if not row.user.is_active:
        reason = UserSession.ACCOUNT
    elif now - row.created_at > policy.absolute:
        reason = UserSession.EXPIRED
    elif now - row.last_seen > policy.idle:
        reason = UserSession.IDLE
    else:
        if now - row.last_seen > SESSION_TOUCH:
            UserSession.update(last_seen=now).where(UserSession.id == row.id).execute()
        return SessionCheck(user=row.user)
    end_session(token, reason)
    return SessionCheck(end_reason=reason)


def end_all_sessions(user: User, keep: str | None = None, *, reason: str) -> None:
    """End every session of user (all but the one whose token is `keep`)."""
    query = UserSession.update(ended_at=utcnow(), end_reason=reason).where(
        (UserSession.user == user) & UserSession.ended_at.is_null()
    )
    if keep:
        query = query.where(UserSession.token_hash != tokens.digest(keep))
    query.execute()


def session_user(token: str) -> User | None:
    """Return the active user of a live session without ending, touching or checking its login id.

    For side requests (the live password check) that may cross the form's own
    POST: one that rotates the login id must not sign this browser out.
    """
    row = (
        UserSession.select(UserSession, User)
        .join(User)
        .where((UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null())
        .first()
    )
    return row.user if row is not None and row.user.is_active else None


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


def end_own_session(user: User, session_id: int, *, current: str) -> UserSession | None:
    """End one of user's sessions (from the list); None when it is not theirs.

    current is this browser's token: closing it is a logout, any other is
    "closed from another device".
    """
    row = UserSession.get_or_none((UserSession.id == session_id) & (UserSession.user == user))
    if row is not None:
        mine = tokens.same(row.token_hash, tokens.digest(current))
        UserSession.update(
            ended_at=utcnow(), end_reason=UserSession.LOGOUT if mine else UserSession.ELSEWHERE
        ).where((UserSession.id == row.id) & UserSession.ended_at.is_null()).execute()
    return row


def logout_everywhere(user: User) -> None:
    """End every session and rotate the login id, so no old cookie works again."""
    with db.atomic():
        User.update(session_token=new_token()).where(User.id == user.id).execute()
        end_all_sessions(user, reason=UserSession.ALL)
        revoke_devices(user)


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
        # Keyed by the address typed, account or not: one mail per address
        # every two minutes (no mail bombing), and the same work either way.
        if throttle.cooldown(throttle.Purpose.RESET_MAIL, email, RESET_COOLDOWN_SECONDS):
            return
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


def set_password(
    user: User,
    password: str,
    *,
    keep_session: str | None = None,
    reason: str = UserSession.PASSWORD,
) -> str:
    """Change the password, end other sessions, clear the back-off; return the new login id.

    Refuses (LinkInvalid) when the password changed meanwhile, so a link or a
    form can change it only once. reason is what the ended sessions are told
    (UserSession.RESET for a reset link).
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
        end_all_sessions(user, keep=keep_session, reason=reason)
        # Whoever knew the old password may have signed in and got a device
        # cookie: no browser keeps a budget of its own past a new password.
        revoke_devices(user)
        notify.queue_template_email(
            user.email, "Su contraseña fue actualizada", "password_changed", user=user
        )
    user.password_hash, user.session_token = new_hash, new_id
    user.failed_logins, user.login_blocked_until = 0, None
    return new_id


def check_password(user: User, password: str) -> bool:
    """Verify the current password of a signed-in user; a miss counts on the untrusted budget."""
    if passwords.verify_password(user.password_hash, password):
        return True
    User.update(failed_logins=User.failed_logins + 1).where(User.id == user.id).execute()
    return False


def request_email_change(user: User, new_email: str, *, secret: str, base_url: str) -> None:
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
        User.update(email_nonce=nonce).where(User.id == user.id).execute()
        user.email_nonce = nonce
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


def email_change_for(token: str, *, secret: str) -> tuple[User, str]:
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
    user = _user_with_same_password(payload)
    if user is None or not tokens.same(user.email_nonce, str(payload.get("n"))):
        raise LinkInvalid(
            "Este enlace ya fue usado o se pidió otro cambio después. Solicite el cambio de nuevo."
        )
    return user, str(payload.get("e"))


def confirm_email_change(token: str, *, secret: str) -> User:
    """Apply a confirmed e-mail change once: use, a newer request or a new password kill it."""
    user, new_email = email_change_for(token, secret=secret)
    taken = AccountError("Ese correo ya está registrado en otra cuenta.")
    try:
        with db.atomic():
            if User.by_email(new_email) is not None:
                raise taken
            changed = (
                User.update(email=new_email, email_nonce=new_token())
                .where((User.id == user.id) & (User.email_nonce == user.email_nonce))
                .execute()
            )
            if changed != 1:
                raise LinkInvalid("Este enlace ya fue usado. Solicite el cambio de nuevo.")
    except IntegrityError as exc:  # the address was taken at the same moment
        raise taken from exc
    user.email = new_email
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
