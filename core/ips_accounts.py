"""IPS accounts (SPEC I1): named operators under one IPS, their e-mailed links, reset, disabling.

Each operator is an account of kind ips whose login is "NIT:email" (the IPS's
NIT with its check digit, the operator's own e-mail in lower case), so every
message of a case says who wrote it. Staff give an IPS its first operator, the
IPS admin; the admin adds the others. A new operator is a pending account
without a password: the e-mailed link sets it (single use: the link carries a
fingerprint of the password, which changes when it is set) and activates it.

Plain arguments in, values out; each workflow owns its transaction and queues
its mail (and, where staff or an IPS admin act, its audit row) inside it.
"""

from __future__ import annotations

import enum

from peewee import IntegrityError, fn

from core import audit, notify, passwords, throttle, tokens
from core import auth as core_auth
from core.db import is_sqlite
from models import Account, Ips, IpsOperador, UserSession, db, new_token

# One serializer per purpose (core.tokens salts by it): an IPS link opens no other page.
INVITE_PURPOSE = "invitacion-ips"
RESET_PURPOSE = "restablecer-ips"
INVITE_MAX_AGE = 72 * 3600
INVITE_LASTS = "72 horas"
RESET_MAX_AGE = 3600
RESET_LASTS = "1 hora"
# A reset mail per address every two minutes (no mail bombing), and a few a day per
# NIT + e-mail: both spent whether or not the account exists (the same work either way).
RESET_COOLDOWN_SECONDS = 120
RESET_DAILY = 5
INVITE_SUBJECT = "Su acceso a la Mesa de Ayuda IPS de Cajacopi EPS"
RESET_SUBJECT = "Restablecimiento de Contraseña – Mesa de Ayuda IPS"

TARGET = "ips"  # the audit rows' target_type (blueprints/gestion/auditoria.py names it)


class Problem(enum.Enum):
    """Why an IPS account workflow did not go on; the views put it into words."""

    EMAIL_TAKEN = "email_taken"  # this IPS already has an operator with this e-mail
    NOT_INVITED = "not_invited"  # only a pending operator gets a new link
    LINK_USED = "link_used"  # the password was set since the link was signed
    WITHDRAWN = "withdrawn"  # the operator is no longer a pending invitation
    OWN_ACCOUNT = "own_account"  # an admin may not disable themselves
    ALREADY_DISABLED = "already_disabled"
    NOT_DISABLED = "not_disabled"


class IpsProblem(Exception):
    """An IPS account workflow that cannot go on, with the reason."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class Ingreso(enum.Enum):
    """Whether an account whose password was right may sign in to the Mesa de Ayuda."""

    SI = "si"
    INACTIVA = "inactiva"  # disabled (or still pending) operator
    SIN_IPS = "sin_ips"  # not an operator of an IPS of the EPS's data with this NIT


def login_of(nit: str, email: str) -> str:
    """Return the login of an operator: the normalised NIT and the e-mail in lower case."""
    return f"{nit}:{email.strip().lower()}"


def format_nit(nit: str) -> str:
    """Show a stored NIT with its check digit apart: 9001112223 → 900111222-3."""
    return f"{nit[:-1]}-{nit[-1]}" if nit and len(nit) > 1 else nit


def may_sign_in(account: Account, nit: str) -> Ingreso:
    """Tell whether account, whose password was right, may sign in with this NIT."""
    profile = account.ips
    if profile is None or Ips.get_or_none(Ips.id == profile.ips_id) is None:
        return Ingreso.SIN_IPS
    if profile.ips.nit != nit:
        return Ingreso.SIN_IPS
    if account.status != Account.ACTIVE:
        return Ingreso.INACTIVA
    return Ingreso.SI


def _lock(account_id: int) -> None:
    """Serialise writers of one account (PostgreSQL; SQLite's IMMEDIATE already does)."""
    if not is_sqlite(db):
        Account.select(Account.id).where(Account.id == account_id).for_update().execute()


# --- the staff list ---------------------------------------------------------------


def ips_query(buscar: str = ""):
    """The IPS of the EPS's data, filtered by NIT (its start) or name (a part)."""
    query = Ips.select(Ips.id, Ips.nit, Ips.nombre, Ips.email, Ips.municipio)
    text = (buscar or "").strip()
    if text:
        digits = "".join(c for c in text if c.isdigit())
        is_nit = digits and all(c.isdigit() or c in ".- " for c in text)
        if is_nit:
            query = query.where(Ips.nit.startswith(digits))
        else:
            query = query.where(Ips.nombre.contains(text))
    return query


def add_operator_counts(rows: list[dict]) -> list[dict]:
    """Give each listed IPS how many operators it has and whether one is its admin (one query)."""
    ids = [row["id"] for row in rows]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        is_admin = fn.SUM(IpsOperador.es_admin.cast("integer"))
        counts = {
            ips_id: (total, admins or 0)
            for ips_id, total, admins in IpsOperador.select(
                IpsOperador.ips, fn.COUNT(IpsOperador.account), is_admin
            )
            .join(Account, on=(IpsOperador.account == Account.id))
            .where(IpsOperador.ips.in_(ids) & (Account.status != Account.DISABLED))
            .group_by(IpsOperador.ips)
            .tuples()
        }
    for row in rows:
        total, admins = counts.get(row["id"], (0, 0))
        row["operadores"], row["tiene_admin"] = total, admins > 0
    return rows


def operators_of(ips: Ips) -> list[dict]:
    """Return the operators of one IPS (admins first, then by name) with their state."""
    return list(
        IpsOperador.select(
            Account.id,
            Account.email,
            Account.status,
            Account.created_at,
            IpsOperador.nombre,
            IpsOperador.es_admin,
        )
        .join(Account, on=(IpsOperador.account == Account.id))
        .where(IpsOperador.ips == ips.id)
        .order_by(IpsOperador.es_admin.desc(), IpsOperador.nombre, Account.id)
        .limit(500)
        .dicts()
    )


def operator_of(ips: Ips, account_id: int) -> Account | None:
    """Return the operator account with this id if it belongs to this IPS (else None)."""
    return (
        Account.select()
        .join(IpsOperador, on=(IpsOperador.account == Account.id))
        .where(
            (Account.id == account_id) & (Account.kind == Account.IPS) & (IpsOperador.ips == ips.id)
        )
        .first()
    )


# --- invitations --------------------------------------------------------------------


def _queue_link(
    account: Account, ips: Ips, nombre: str, *, secret: str, base_url: str, por: str = ""
) -> None:
    """Queue the mail with the link that sets the first password (dies once it is set)."""
    token = tokens.make_token(
        secret, INVITE_PURPOSE, {"u": account.id, "p": core_auth.password_fingerprint(account)}
    )
    notify.queue_template_email(
        account.email,
        INVITE_SUBJECT,
        "ips_acceso",
        nombre=nombre,
        ips=ips,
        nit=format_nit(ips.nit),
        email=account.email,
        link=f"{base_url}/ips/clave/{token}",
        lasts=INVITE_LASTS,
        base_url=base_url,
        por=por,
    )


def invite(
    actor: Account,
    ips: Ips,
    nombre: str,
    email: str,
    *,
    secret: str,
    base_url: str,
    es_admin: bool = True,
    ip: str | None = None,
) -> Account:
    """Create a pending operator of ips and mail the link to set the password, all at once.

    Staff give an IPS its admin (es_admin); the IPS admin adds the others. The
    audit row names the IPS (its target) and the new operator.
    """
    email = email.strip().lower()
    nombre = " ".join(nombre.split())
    login = login_of(ips.nit, email)
    if Account.by_login(Account.IPS, login) is not None:
        raise IpsProblem(Problem.EMAIL_TAKEN)
    try:
        with db.atomic():
            account = Account.create(
                kind=Account.IPS, login=login, email=email, password_hash="", status=Account.PENDING
            )
            IpsOperador.create(
                account=account, ips=ips, nombre=nombre, es_admin=es_admin, invited_by=actor.id
            )
            audit.record(
                actor,
                audit.Action.IPS_INVITAR,
                TARGET,
                ips.id,
                after={
                    "operador": account.id,
                    "nombre": nombre,
                    "email": email,
                    "administrador": es_admin,
                },
                ip=ip,
            )
            por = actor.nombre if actor.kind == Account.IPS else ""
            _queue_link(account, ips, nombre, secret=secret, base_url=base_url, por=por)
    except IntegrityError as exc:  # the same e-mail for the same NIT at the same moment
        raise IpsProblem(Problem.EMAIL_TAKEN) from exc
    return account


def reinvite(
    actor: Account, account: Account, *, secret: str, base_url: str, ip: str | None = None
) -> None:
    """Mail a pending operator a new link (the earlier ones keep working until one is used)."""
    with db.atomic():
        _lock(account.id)
        fresh = Account.get_or_none(Account.id == account.id)
        profile = fresh.ips if fresh is not None else None
        if profile is None or fresh.status != Account.PENDING or fresh.password_hash:
            raise IpsProblem(Problem.NOT_INVITED)
        audit.record(
            actor,
            audit.Action.IPS_INVITAR,
            TARGET,
            profile.ips_id,
            after={"operador": fresh.id, "reenvio": fresh.email},
            ip=ip,
        )
        _queue_link(fresh, profile.ips, profile.nombre, secret=secret, base_url=base_url)


def _linked_account(payload: dict, invalid: str) -> Account:
    account_id = payload.get("u") if isinstance(payload, dict) else None
    account = (
        Account.get_or_none((Account.id == account_id) & (Account.kind == Account.IPS))
        if isinstance(account_id, int)
        else None
    )
    if account is None or account.ips is None:
        raise core_auth.LinkInvalid(invalid)
    return account


def invited_account(token: str, *, secret: str) -> Account:
    """Return the pending operator a genuine, fresh, unused link names. Reads only.

    Raises core.auth.LinkExpired / LinkInvalid (their messages are for the
    person) or IpsProblem (LINK_USED, WITHDRAWN).
    """
    payload = core_auth.read_link(
        token,
        secret=secret,
        purpose=INVITE_PURPOSE,
        max_age=INVITE_MAX_AGE,
        what="para crear su contraseña",
        lasts=INVITE_LASTS,
    )
    account = _linked_account(payload, "El enlace para crear su contraseña no es válido.")
    if core_auth.user_with_same_password(payload) is None:
        raise IpsProblem(Problem.LINK_USED)
    if account.status != Account.PENDING:
        raise IpsProblem(Problem.WITHDRAWN)
    return account


def accept_invitation(account: Account, password: str) -> Account:
    """Set the first password of a pending operator and make it active.

    core.auth.set_password refuses a second use of the link (the fingerprint
    changes with the password). An operator disabled meanwhile keeps the
    password but stays disabled.
    """
    try:
        return core_auth.accept_invitation(account, password)
    except core_auth.LinkInvalid as exc:  # a second POST of the same form lost the race
        raise IpsProblem(Problem.LINK_USED) from exc
    except core_auth.InvitationWithdrawn as exc:
        raise IpsProblem(Problem.WITHDRAWN) from exc


def password_problems(account: Account, password: str) -> list[str]:
    """Apply the H1 password rules with the operator's data: the NIT, the IPS phone, the e-mail."""
    profile = account.ips
    ips = profile.ips if profile is not None else None
    phones = [p for p in (account.celular, ips.telefono if ips else "") if p]
    return passwords.password_problems(
        password,
        document=ips.nit if ips else None,
        phones=phones,
        email=account.email or None,
    )


# --- reset ---------------------------------------------------------------------------


def request_reset(nit: str, email: str, *, secret: str, base_url: str) -> None:
    """Queue the reset mail for NIT + e-mail; the answer and the work are the same either way.

    An active operator gets the reset link; a pending one a new link to create
    the password (it never set one); anyone else a short note at the address
    typed. Each branch writes one outbox row, after the same two budgets.
    """
    email = email.strip().lower()
    login = login_of(nit, email)
    with db.atomic():
        account = Account.by_login(Account.IPS, login)
        if throttle.cooldown(throttle.Purpose.RESET_MAIL, f"ips:{email}", RESET_COOLDOWN_SECONDS):
            return
        if not throttle.quota(throttle.Purpose.RESET_MAIL, f"ips:{login}", RESET_DAILY, 86400):
            return
        profile = account.ips if account is not None else None
        if profile is not None and account.status == Account.ACTIVE:
            token = tokens.make_token(
                secret,
                RESET_PURPOSE,
                {"u": account.id, "p": core_auth.password_fingerprint(account)},
            )
            notify.queue_template_email(
                email,
                RESET_SUBJECT,
                "ips_restablecer",
                nombre=profile.nombre,
                ips=profile.ips,
                nit=format_nit(nit),
                link=f"{base_url}/ips/restablecer/{token}",
                lasts=RESET_LASTS,
            )
        elif profile is not None and account.status == Account.PENDING:
            _queue_link(account, profile.ips, profile.nombre, secret=secret, base_url=base_url)
        else:
            notify.queue_template_email(
                email,
                RESET_SUBJECT,
                "ips_restablecer_sin_cuenta",
                nit=format_nit(nit),
                base_url=base_url,
            )


def account_for_reset(token: str, *, secret: str) -> Account:
    """Return the active operator a genuine, fresh, unused reset link names."""
    payload = core_auth.read_link(
        token,
        secret=secret,
        purpose=RESET_PURPOSE,
        max_age=RESET_MAX_AGE,
        what="para restablecer la contraseña",
        lasts=RESET_LASTS,
    )
    account = _linked_account(payload, "El enlace para restablecer la contraseña no es válido.")
    if core_auth.user_with_same_password(payload) is None:
        raise core_auth.LinkInvalid(
            "Este enlace ya fue usado o su contraseña cambió después de pedirlo. "
            "Solicite uno nuevo."
        )
    if account.status != Account.ACTIVE:
        raise core_auth.LinkInvalid(
            "Su usuario no está activo. Pida al administrador de su IPS que lo habilite."
        )
    return account


def reset_password(account: Account, password: str) -> None:
    """Set the new password of a reset link: every session of the account ends."""
    core_auth.set_password(account, password, reason=UserSession.RESET)


# --- the IPS admin's operators -------------------------------------------------------------


def _record_state(actor: Account, account: Account, before: str, after: str, ip: str | None):
    audit.record(
        actor,
        audit.Action.IPS_OPERADOR_ESTADO,
        TARGET,
        account.ips.ips_id,
        before={"estado": before},
        after={"estado": after, "operador": account.id},  # only changes are kept: say whose
        ip=ip,
    )


def disable(actor: Account, account: Account, ip: str | None = None) -> None:
    """Disable an operator: its sessions end, its cookies and trusted browsers stop working."""
    if actor.id == account.id:
        raise IpsProblem(Problem.OWN_ACCOUNT)
    with db.atomic():
        changed = (
            Account.update(status=Account.DISABLED, session_token=new_token())
            .where((Account.id == account.id) & (Account.status != Account.DISABLED))
            .execute()
        )
        if changed != 1:
            raise IpsProblem(Problem.ALREADY_DISABLED)
        core_auth.end_all_sessions(account, reason=UserSession.ACCOUNT)
        core_auth.revoke_devices(account)
        _record_state(actor, account, account.status, Account.DISABLED, ip)
    account.status = Account.DISABLED


def enable(actor: Account, account: Account, ip: str | None = None) -> str:
    """Enable a disabled operator again; return its new status (pending if it never set a password)."""
    with db.atomic():
        fresh = Account.get_or_none(Account.id == account.id)
        status = Account.ACTIVE if fresh and fresh.password_hash else Account.PENDING
        changed = (
            Account.update(status=status)
            .where((Account.id == account.id) & (Account.status == Account.DISABLED))
            .execute()
        )
        if changed != 1:
            raise IpsProblem(Problem.NOT_DISABLED)
        _record_state(actor, account, Account.DISABLED, status, ip)
    account.status = status
    return status
