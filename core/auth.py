"""Signing in, for every kind of account: back-off, device cookies, sessions,
password rules, changes and reset links (SPEC H1, H3, X).

Written once for Hanna users, EPS affiliates, IPS and staff; each area's
views pass plain values in and get values or a domain error back. No Flask
request state here.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import Case, Value

from core import notify, passwords, throttle, tokens
from core.clock import utcnow
from core.prepared import prepared
from models import Account, LoginDevice, UserSession, db, new_token

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


class AccountError(Exception):
    """A workflow step that cannot go on; the message is for the user."""


class LinkExpired(AccountError):
    pass


class LinkInvalid(AccountError):
    pass


def read_link(
    token: str, *, secret: str, purpose: str, max_age: int, what: str, lasts: str
) -> dict:
    """Read a signed link, telling "expired" from "invalid" in the user's words."""
    try:
        return tokens.read_token(secret, purpose, token, max_age)
    except tokens.TokenExpired as exc:
        raise LinkExpired(f"El enlace {what} venció (es válido por {lasts}).") from exc
    except tokens.TokenInvalid as exc:
        raise LinkInvalid(f"El enlace {what} no es válido.") from exc


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
    user: Account | None = None
    device_token: str | None = None  # for an active account: what this browser keeps


def authenticate(
    kind: str,
    login: str,
    password: str,
    *,
    device_tokens: Sequence[str] = (),
    secret: str,
) -> LoginResult:
    """Check a password against the budget of this client: its device's, or the untrusted one.

    The attempt is counted, and allowed or refused, by one conditional UPDATE
    before the slow hash, so concurrent guesses cannot all pass a check made on
    a stale count. Every attempt costs one hash, whatever the outcome.
    """
    user = Account.by_login(kind, login)
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
        Account.update(failed_logins=0, login_blocked_until=None).where(
            Account.id == user.id
        ).execute()
        nonce = _new_device(user, now) if user.is_active else None
    if passwords.needs_rehash(user.password_hash):
        new_hash = passwords.hash_password(password)
        Account.update(password_hash=new_hash).where(Account.id == user.id).execute()
        user.password_hash = new_hash
    token = tokens.make_token(secret, DEVICE_PURPOSE, {"u": user.id, "n": nonce}) if nonce else None
    return LoginResult(LoginOutcome.SIGNED_IN, user, token)


def _deadline(failures, now: datetime) -> Case:
    """SQL for the back-off deadline after `failures` (an expression): backoff() as a CASE."""
    stamp = Account.login_blocked_until.db_value
    steps = [(failures < BACKOFF_FROM, None)]
    n = BACKOFF_FROM
    while backoff(n) < BACKOFF_CAP:
        steps.append((failures == n, Value(now + backoff(n), converter=stamp)))
        n += 1
    return Case(None, steps, Value(now + BACKOFF_CAP, converter=stamp))


def _reserve_untrusted(user: Account, now: datetime) -> bool:
    """Count one untrusted attempt; tell whether it may be tried (not backing off).

    Refused attempts are counted too, so the count is every attempt made.
    """
    failures = Account.failed_logins + 1
    free = Account.login_blocked_until.is_null() | (Account.login_blocked_until <= now)
    reserved = (
        Account.update(failed_logins=failures, login_blocked_until=_deadline(failures, now))
        .where((Account.id == user.id) & free)
        .execute()
    )
    if reserved:
        return True
    Account.update(failed_logins=failures).where(Account.id == user.id).execute()
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
    user: Account, device_tokens: Sequence[str], *, secret: str
) -> tuple[LoginDevice, str] | None:
    """Return the live device row (and its nonce) behind this browser's cookie for user."""
    for token in device_tokens[:DEVICES_PER_COOKIE]:
        payload = _device_payload(token, secret=secret)
        if payload is None or payload["u"] != user.id:
            continue
        row = LoginDevice.get_or_none(
            (LoginDevice.nonce_hash == tokens.digest(payload["n"]))
            & (LoginDevice.account == user)
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


def _new_device(user: Account, now: datetime) -> str:
    """Trust this browser for user from now on; return the nonce for its cookie."""
    nonce = secrets.token_urlsafe(24)
    with db.atomic():
        LoginDevice.create(account=user, nonce_hash=tokens.digest(nonce), created_at=now)
        newest = (
            LoginDevice.select(LoginDevice.id)
            .where((LoginDevice.account == user) & LoginDevice.revoked_at.is_null())
            .order_by(LoginDevice.last_used_at.desc(), LoginDevice.id.desc())
            .limit(DEVICES_PER_USER)
        )
        LoginDevice.delete().where(
            (LoginDevice.account == user)
            & (
                LoginDevice.revoked_at.is_null(False)
                | (LoginDevice.last_used_at < now - DEVICE_TTL)
                | LoginDevice.id.not_in(newest)
            )
        ).execute()
    return nonce


def revoke_devices(user: Account) -> None:
    """Stop trusting every browser of user (password reset, "all devices" logout)."""
    LoginDevice.update(revoked_at=utcnow()).where(
        (LoginDevice.account == user) & LoginDevice.revoked_at.is_null()
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


def start_session(
    user: Account, user_agent: str, *, idle: timedelta, second_factor: bool = False
) -> str:
    """Open a server-side session for user; return the token for the cookie.

    idle is how long it may sit unused; second_factor says it already passed one.
    """
    token = secrets.token_urlsafe(32)
    UserSession.create(
        token_hash=tokens.digest(token),
        account=user,
        # Shown in "Mis sesiones" only; a NUL byte would not even fit a PostgreSQL text.
        user_agent="".join(c for c in user_agent if c.isprintable())[:200],
        idle_seconds=int(idle.total_seconds()),
        second_factor_at=utcnow() if second_factor else None,
    )
    return token


def pass_second_factor(token: str) -> None:
    """Record that the session behind token passed the second factor."""
    UserSession.update(second_factor_at=utcnow()).where(
        (UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null()
    ).execute()


def end_session(token: str, reason: str = UserSession.LOGOUT) -> None:
    """End the session behind token (logout): a copied cookie stops working."""
    UserSession.update(ended_at=utcnow(), end_reason=reason).where(
        (UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null()
    ).execute()


@dataclass(frozen=True)
class SessionCheck:
    """A cookie's session: its user while live, or why it ended (None: never known).

    stale: the row lives but the login id rotated (a password change kept this
    session): a request that crossed the change, whose cookie must be left alone.
    """

    user: Account | None = None
    end_reason: str | None = None
    stale: bool = False
    second_factor: bool = False  # the live session passed the second factor
    session_id: int | None = None  # the live session's row
    convenio_sede_id: int | None = None  # the sede it works for in Convenios


@prepared
def _session_by_hash(token_hash):
    """The session row behind a cookie, with its account (every signed-in request)."""
    return (
        UserSession.select(UserSession, Account)
        .join(Account)
        .where(UserSession.token_hash == token_hash)
        .limit(1)
    )


def resolve_session(
    user_token: str, token: str, *, absolute: timedelta, touch: bool = True
) -> SessionCheck:
    """Return the active user of a live session, ending it when idle or older than absolute.

    touch=False reads the session without counting the request as activity (a
    page's poll): the idle time runs on as if the request had not come.
    """
    row = _session_by_hash.first(tokens.digest(token))
    if row is None:
        return SessionCheck()
    if row.ended_at is not None:
        return SessionCheck(end_reason=row.end_reason)
    if not tokens.same(row.account.session_token, user_token):
        return SessionCheck(stale=True)
    now = utcnow()
    if not row.account.is_active:
        reason = UserSession.ACCOUNT
    elif now - row.created_at > absolute:
        reason = UserSession.EXPIRED
    elif now - row.last_seen > timedelta(seconds=row.idle_seconds):
        reason = UserSession.IDLE
    else:
        if touch and now - row.last_seen > SESSION_TOUCH:
            UserSession.update(last_seen=now).where(UserSession.id == row.id).execute()
        return SessionCheck(
            user=row.account,
            second_factor=row.second_factor_at is not None,
            session_id=row.id,
            convenio_sede_id=row.convenio_sede_id,
        )
    end_session(token, reason)
    return SessionCheck(end_reason=reason)


def end_all_sessions(user: Account, keep: str | None = None, *, reason: str) -> None:
    """End every session of user (all but the one whose token is `keep`)."""
    query = UserSession.update(ended_at=utcnow(), end_reason=reason).where(
        (UserSession.account == user) & UserSession.ended_at.is_null()
    )
    if keep:
        query = query.where(UserSession.token_hash != tokens.digest(keep))
    query.execute()


def session_user(token: str) -> Account | None:
    """Return the active user of a live session without ending, touching or checking its login id.

    For side requests (the live password check) that may cross the form's own
    POST: one that rotates the login id must not sign this browser out.
    """
    row = (
        UserSession.select(UserSession, Account)
        .join(Account)
        .where((UserSession.token_hash == tokens.digest(token)) & UserSession.ended_at.is_null())
        .first()
    )
    return row.account if row is not None and row.account.is_active else None


def session_id(token: str) -> int | None:
    """Return the row id of the session behind a cookie token."""
    row = UserSession.get_or_none(UserSession.token_hash == tokens.digest(token))
    return row.id if row else None


def active_sessions(user: Account) -> list[UserSession]:
    """Return the user's live sessions, most recently seen first."""
    return list(
        UserSession.select()
        .where((UserSession.account == user) & UserSession.ended_at.is_null())
        .order_by(UserSession.last_seen.desc())
        .limit(50)
    )


def end_own_session(user: Account, session_id: int, *, current: str) -> UserSession | None:
    """End one of user's sessions (from the list); None when it is not theirs.

    current is this browser's token: closing it is a logout, any other is
    "closed from another device".
    """
    row = UserSession.get_or_none((UserSession.id == session_id) & (UserSession.account == user))
    if row is not None:
        mine = tokens.same(row.token_hash, tokens.digest(current))
        UserSession.update(
            ended_at=utcnow(), end_reason=UserSession.LOGOUT if mine else UserSession.ELSEWHERE
        ).where((UserSession.id == row.id) & UserSession.ended_at.is_null()).execute()
    return row


def logout_everywhere(user: Account) -> None:
    """End every session and rotate the login id, so no old cookie works again."""
    with db.atomic():
        Account.update(session_token=new_token()).where(Account.id == user.id).execute()
        end_all_sessions(user, reason=UserSession.ALL)
        revoke_devices(user)


# --- password reset (H3) and account changes -------------------------------


def password_fingerprint(user: Account) -> str:
    """Return a value that changes whenever the password does (kills old links)."""
    return tokens.digest(user.password_hash)[:16]


def user_with_same_password(payload: dict) -> Account | None:
    """Return the link's account if the password has not changed since it was signed."""
    user = Account.get_or_none(Account.id == payload.get("u"))
    if user is None or not tokens.same(password_fingerprint(user), str(payload.get("p"))):
        return None
    return user


def password_problems_for(user: Account, password: str) -> list[str]:
    """Apply the H1 password rules with this account's own data (its profile's too)."""
    profile = user.hanna or (user.eps.afiliado if user.eps is not None else None)
    phones = [user.celular, getattr(profile, "telefono", ""), getattr(profile, "celular", "")]
    return passwords.password_problems(
        password,
        document=profile.numero_documento if profile else None,
        phones=[p for p in phones if p],
        birth_date=profile.fecha_nacimiento if profile else None,
        email=user.email or getattr(profile, "email", "") or None,
    )


def request_reset(email: str, *, secret: str, base_url: str) -> None:
    """Queue the reset mail; an unknown address gets a short note instead.

    Both branches read the same rows and write one outbox row, so the answer,
    and the work behind it, do not tell whether an account exists.
    """
    email = email.strip().lower()
    with db.atomic():
        user = Account.by_email(email)
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


def user_for_reset(token: str, *, secret: str) -> Account:
    """Return the account a genuine, fresh, unused reset link names."""
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.RESET,
        max_age=RESET_MAX_AGE,
        what="para restablecer la contraseña",
        lasts="1 hora",
    )
    user = user_with_same_password(payload)
    if user is None:
        raise LinkInvalid(
            "Este enlace ya fue usado o su contraseña cambió después de pedirlo. "
            "Solicite uno nuevo."
        )
    return user


def set_password(
    user: Account,
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
            Account.update(
                password_hash=new_hash,
                session_token=new_id,
                failed_logins=0,
                login_blocked_until=None,
            )
            .where((Account.id == user.id) & (Account.password_hash == user.password_hash))
            .execute()
        )
        if changed != 1:
            raise LinkInvalid("La contraseña ya fue cambiada. Solicite un enlace nuevo.")
        end_all_sessions(user, keep=keep_session, reason=reason)
        # Whoever knew the old password may have signed in and got a device
        # cookie: no browser keeps a budget of its own past a new password.
        revoke_devices(user)
        if user.email:  # an EPS affiliate may have none: their notices go by SMS
            notify.queue_template_email(
                user.email, "Su contraseña fue actualizada", "password_changed", user=user
            )
    user.password_hash, user.session_token = new_hash, new_id
    user.failed_logins, user.login_blocked_until = 0, None
    return new_id


def check_password(user: Account, password: str) -> bool:
    """Verify the current password of a signed-in user; a miss counts on the untrusted budget."""
    if passwords.verify_password(user.password_hash, password):
        return True
    Account.update(failed_logins=Account.failed_logins + 1).where(Account.id == user.id).execute()
    return False


class InvitationWithdrawn(AccountError):
    """The invited account was disabled before its first password was set."""


def accept_invitation(account: Account, password: str) -> Account:
    """Set the first password of an invited (pending) account and make it active.

    set_password refuses a second use of the link (LinkInvalid: the fingerprint
    changes with the password). An account disabled meanwhile keeps the
    password but stays disabled (InvitationWithdrawn). Staff and IPS
    invitations share it.
    """
    set_password(account, password)
    with db.atomic():
        activated = (
            Account.update(status=Account.ACTIVE)
            .where((Account.id == account.id) & (Account.status == Account.PENDING))
            .execute()
        )
    if activated != 1:
        raise InvitationWithdrawn("withdrawn")
    account.status = Account.ACTIVE
    return account
