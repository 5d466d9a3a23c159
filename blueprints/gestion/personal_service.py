"""Staff accounts managed by an admin: invitations, roles, disabling, second-factor resets (S1).

Plain arguments in, values out; each workflow owns its transaction and writes
its audit row inside it. Every state change is one conditional UPDATE, so a
double click (or two admins at once) acts once and the second is told so.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from peewee import IntegrityError, fn

from core import audit, notify, second_factor, tokens
from core import auth as core_auth
from core.db import is_sqlite
from core.permissions import ROLE_NAMES, Role
from models import Account, StaffMember, StaffRole, UserSession, db, new_token

INVITE_MAX_AGE = 72 * 3600
INVITE_LASTS = "72 horas"
INVITE_SUBJECT = "Su cuenta de funcionario en Gestión Hanna"
FACTOR_RESET_SUBJECT = "Se reinició su segundo factor de Gestión Hanna"
# Why the sessions of a reset second factor ended (UserSession.end_reason, max 20).
FACTOR_RESET_REASON = UserSession.SECOND_FACTOR

TARGET = "funcionario"  # the audit rows' target_type, as the lead's staff rows use


class State(enum.StrEnum):
    """A staff account's state, as the list filters and shows it."""

    ACTIVE = Account.ACTIVE
    INVITED = Account.PENDING
    DISABLED = Account.DISABLED


class Problem(enum.Enum):
    """Why a staff workflow did not go on; the views put it into words."""

    EMAIL_TAKEN = "email_taken"  # another staff account has this e-mail
    NO_ROLES = "no_roles"  # a staff member needs at least one role
    OWN_ADMIN = "own_admin"  # an admin may not drop their own admin role
    OWN_ACCOUNT = "own_account"  # nor disable, or reset the second factor of, themselves
    ALREADY_DISABLED = "already_disabled"
    NOT_DISABLED = "not_disabled"
    NOT_ENROLLED = "not_enrolled"  # no second factor to reset
    NOT_INVITED = "not_invited"  # only a pending account gets a new invitation
    LINK_USED = "link_used"  # the password was set since the link was signed
    WITHDRAWN = "withdrawn"  # the account is no longer a pending invitation


class StaffProblem(Exception):
    """A staff workflow that cannot go on, with the reason."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


# --- the list -----------------------------------------------------------------


def staff_query(correo: str = "", rol: str = "", estado: str = ""):
    """The staff accounts, filtered; the caller orders and pages it (newest first)."""
    query = (
        Account.select(
            Account.id,
            Account.email,
            Account.status,
            Account.totp_enrolled_at,
            Account.created_at,
            StaffMember.nombre,
        )
        .join(StaffMember, on=(StaffMember.account == Account.id))
        .where(Account.kind == Account.STAFF)
    )
    if correo:
        query = query.where(Account.email.contains(correo.strip().lower()))
    if rol:
        holders = StaffRole.select(StaffRole.account).where(StaffRole.role == rol)
        query = query.where(Account.id.in_(holders))
    if estado:
        query = query.where(Account.status == estado)
    return query


def add_roles_and_last_sign_in(rows: list[dict]) -> list[dict]:
    """Give each listed row its roles (sorted) and its last sign-in: two queries per page."""
    ids = [row["id"] for row in rows]
    if not ids:
        return rows
    roles: dict[int, list[str]] = {}
    for account_id, role in (
        StaffRole.select(StaffRole.account, StaffRole.role)
        .where(StaffRole.account.in_(ids))
        .tuples()
    ):
        roles.setdefault(account_id, []).append(role)
    last = dict(
        UserSession.select(UserSession.account, fn.MAX(UserSession.created_at))
        .where(UserSession.account.in_(ids))
        .group_by(UserSession.account)
        .tuples()
    )
    for row in rows:
        row["roles"] = [r.value for r in ROLE_NAMES if r in roles.get(row["id"], ())]
        row["last_sign_in"] = last.get(row["id"])
    return rows


def staff_account(account_id: int) -> Account | None:
    """Return the staff account with this id, or None (any other kind is None too)."""
    return Account.get_or_none((Account.id == account_id) & (Account.kind == Account.STAFF))


def roles_of(account: Account) -> list[str]:
    """Return account's roles read now (not the per-object cache), in ROLE_NAMES order."""
    held = {
        r
        for (r,) in StaffRole.select(StaffRole.role).where(StaffRole.account == account.id).tuples()
    }
    return [role.value for role in ROLE_NAMES if role in held]


def last_sign_in(account: Account):
    """Return when account last signed in (a session began), or None."""
    return (
        UserSession.select(fn.MAX(UserSession.created_at))
        .where(UserSession.account == account.id)
        .scalar()
    )


# --- invitations ----------------------------------------------------------------


def _roles(roles: Iterable[str]) -> list[str]:
    """Return the roles asked for as plain strings, once each, in ROLE_NAMES order (ValueError: unknown)."""
    asked = {Role(r) for r in roles}
    return [role.value for role in ROLE_NAMES if role in asked]


def _lock(account_id: int) -> None:
    """Serialise writers of one account (PostgreSQL; SQLite's IMMEDIATE already does)."""
    if not is_sqlite(db):
        Account.select(Account.id).where(Account.id == account_id).for_update().execute()


def _queue_invitation(account: Account, nombre: str, *, secret: str, base_url: str) -> None:
    """Queue the mail with a link that sets the first password (dies once it is set)."""
    token = tokens.make_token(
        secret,
        tokens.STAFF_INVITE,
        {"u": account.id, "p": core_auth.password_fingerprint(account)},
    )
    notify.queue_template_email(
        account.email,
        INVITE_SUBJECT,
        "staff_invite",
        nombre=nombre,
        link=f"{base_url}/gestion/invitacion/{token}",
        lasts=INVITE_LASTS,
        base_url=base_url,
    )


def invite(
    actor: Account,
    email: str,
    nombre: str,
    roles: Iterable[str],
    *,
    secret: str,
    base_url: str,
    ip: str | None,
) -> Account:
    """Create a pending staff account with its roles and mail it the invitation, all at once."""
    email = email.strip().lower()
    nombre = nombre.strip()
    wanted = _roles(roles)
    if not wanted:
        raise StaffProblem(Problem.NO_ROLES)
    if Account.by_login(Account.STAFF, email) is not None:
        raise StaffProblem(Problem.EMAIL_TAKEN)
    try:
        with db.atomic():
            account = StaffMember.create_account(
                email, nombre, wanted, invited_by=actor.id, password_hash="", status=Account.PENDING
            )
            audit.record(
                actor,
                audit.Action.STAFF_CREAR,
                TARGET,
                account.id,
                after={"email": email, "nombre": nombre, "roles": list(wanted)},
                ip=ip,
            )
            _queue_invitation(account, nombre, secret=secret, base_url=base_url)
    except IntegrityError as exc:  # the same address invited at the same moment
        raise StaffProblem(Problem.EMAIL_TAKEN) from exc
    return account


def reinvite(account: Account, *, secret: str, base_url: str) -> None:
    """Mail a pending account a new invitation link (the old ones keep working until used)."""
    with db.atomic():
        _lock(account.id)
        fresh = staff_account(account.id)
        if fresh is None or fresh.status != Account.PENDING or fresh.password_hash:
            raise StaffProblem(Problem.NOT_INVITED)
        _queue_invitation(fresh, fresh.nombre, secret=secret, base_url=base_url)


def invited_account(token: str, *, secret: str) -> Account:
    """Return the pending staff account a genuine, fresh, unused invitation link names.

    Raises core.auth.LinkExpired / LinkInvalid (their messages are for the
    person) or StaffProblem (LINK_USED, WITHDRAWN). Reads only.
    """
    payload = core_auth.read_link(
        token,
        secret=secret,
        purpose=tokens.STAFF_INVITE,
        max_age=INVITE_MAX_AGE,
        what="de invitación",
        lasts=INVITE_LASTS,
    )
    account_id = payload.get("u") if isinstance(payload, dict) else None
    account = staff_account(account_id) if isinstance(account_id, int) else None
    if account is None:
        raise core_auth.LinkInvalid("El enlace de invitación no es válido.")
    if core_auth.user_with_same_password(payload) is None:
        raise StaffProblem(Problem.LINK_USED)
    if account.status != Account.PENDING:
        raise StaffProblem(Problem.WITHDRAWN)
    return account


def accept_invitation(account: Account, password: str) -> Account:
    """Set the first password of an invited account and make it active.

    core.auth.set_password refuses a second use of the link (the fingerprint
    changes with the password). If an admin disabled the account meanwhile, it
    keeps its password but stays disabled.
    """
    try:
        return core_auth.accept_invitation(account, password)
    except core_auth.LinkInvalid as exc:  # a second POST of the same form lost the race
        raise StaffProblem(Problem.LINK_USED) from exc
    except core_auth.InvitationWithdrawn as exc:
        raise StaffProblem(Problem.WITHDRAWN) from exc


# --- a staff member's roles and state ---------------------------------------------


def set_roles(actor: Account, account: Account, roles: Iterable[str], *, ip: str | None) -> bool:
    """Replace account's roles; return False when they were already these (nothing audited)."""
    wanted = _roles(roles)
    if not wanted:
        raise StaffProblem(Problem.NO_ROLES)
    if actor.id == account.id and Role.ADMIN not in wanted:
        raise StaffProblem(Problem.OWN_ADMIN)
    with db.atomic():
        _lock(account.id)
        before = roles_of(account)
        if before == wanted:
            return False
        StaffRole.delete().where(
            (StaffRole.account == account.id) & StaffRole.role.not_in(wanted)
        ).execute()
        added = [r for r in wanted if r not in before]
        if added:
            StaffRole.insert_many([{"account": account.id, "role": r} for r in added]).execute()
        audit.record(
            actor,
            audit.Action.STAFF_EDITAR,
            TARGET,
            account.id,
            before={"roles": list(before)},
            after={"roles": list(wanted)},
            ip=ip,
        )
    account.__dict__.pop("_roles", None)
    return True


def disable(actor: Account, account: Account, *, ip: str | None) -> None:
    """Disable a staff account: its sessions end, its cookies and trusted browsers stop working."""
    if actor.id == account.id:
        raise StaffProblem(Problem.OWN_ACCOUNT)
    with db.atomic():
        before = Account.select(Account.status).where(Account.id == account.id).scalar()
        changed = (
            Account.update(status=Account.DISABLED, session_token=new_token())
            .where((Account.id == account.id) & (Account.status != Account.DISABLED))
            .execute()
        )
        if changed != 1:
            raise StaffProblem(Problem.ALREADY_DISABLED)
        core_auth.end_all_sessions(account, reason=UserSession.ACCOUNT)
        core_auth.revoke_devices(account)
        audit.record(
            actor,
            audit.Action.STAFF_DESHABILITAR,
            TARGET,
            account.id,
            before={"estado": before},
            after={"estado": Account.DISABLED},
            ip=ip,
        )
    account.status = Account.DISABLED


def enable(actor: Account, account: Account, *, ip: str | None) -> str:
    """Enable a disabled staff account again; return its new status.

    One who never set a password goes back to a pending invitation, not to an
    active account nobody can sign in to.
    """
    with db.atomic():
        fresh = staff_account(account.id)
        status = Account.ACTIVE if fresh and fresh.password_hash else Account.PENDING
        changed = (
            Account.update(status=status)
            .where((Account.id == account.id) & (Account.status == Account.DISABLED))
            .execute()
        )
        if changed != 1:
            raise StaffProblem(Problem.NOT_DISABLED)
        audit.record(
            actor,
            audit.Action.STAFF_HABILITAR,
            TARGET,
            account.id,
            before={"estado": Account.DISABLED},
            after={"estado": status},
            ip=ip,
        )
    account.status = status
    return status


def reset_second_factor(actor: Account, account: Account, *, base_url: str, ip: str | None) -> None:
    """Remove account's second factor and recovery codes, end its sessions, and tell the person.

    The next sign-in asks to enrol an app again.
    """
    if actor.id == account.id:
        raise StaffProblem(Problem.OWN_ACCOUNT)
    with db.atomic():
        # The claim: of two clicks, only one finds an enrolled factor to remove.
        claimed = (
            Account.update(totp_enrolled_at=None)
            .where((Account.id == account.id) & Account.totp_enrolled_at.is_null(False))
            .execute()
        )
        if claimed != 1:
            raise StaffProblem(Problem.NOT_ENROLLED)
        second_factor.reset(account)
        core_auth.end_all_sessions(account, reason=FACTOR_RESET_REASON)
        notify.queue_template_email(
            account.email,
            FACTOR_RESET_SUBJECT,
            "staff_factor_reset",
            nombre=account.nombre,
            base_url=base_url,
        )
        audit.record(
            actor,
            audit.Action.STAFF_SEGUNDO_FACTOR_REINICIAR,
            TARGET,
            account.id,
            before={"segundo_factor": "activo"},
            after={"segundo_factor": "sin inscribir"},
            ip=ip,
        )
