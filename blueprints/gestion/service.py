"""Back-office workflows: staff accounts and their second factor, the unblock queue (H2).

Plain arguments in, values out; each owns its transaction and writes its audit
row inside it. No Flask request state here.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable

import email_validator
from peewee import IntegrityError

from core import audit, notify, passwords, second_factor
from core.clock import utcnow
from core.permissions import Role
from models import (
    Account,
    CasoMesa,
    Entidad,
    HannaUser,
    Pqrs,
    SolicitudAplicacion,
    SolicitudAutorizacion,
    StaffMember,
    db,
    new_token,
)


class StaffError(Exception):
    """A staff workflow that cannot go on; the message is for the person."""


# --- the second factor --------------------------------------------------------


def enrolment_secret(account: Account) -> str:
    """Return the candidate TOTP secret of an account not yet enrolled, made once.

    Kept on the account (not in the cookie) until the first code proves the app
    has it, so a reload shows the same QR code.
    """
    if account.totp_secret:
        return account.totp_secret
    secret = second_factor.new_secret()
    Account.update(totp_secret=secret).where(
        (Account.id == account.id)
        & (Account.totp_secret == "")
        & Account.totp_enrolled_at.is_null()
    ).execute()
    account.totp_secret = (
        Account.select(Account.totp_secret).where(Account.id == account.id).scalar()
    )
    return account.totp_secret


def finish_enrolment(
    account: Account, secret: str, code: str, *, ip: str | None
) -> list[str] | None:
    """Enrol the app when code matches; return the ten recovery codes (None: wrong code)."""
    with db.atomic():
        if not second_factor.enroll(account, secret, code.replace(" ", "")):
            return None
        codes = second_factor.new_recovery_codes(account)
        audit.record(
            account, audit.Action.STAFF_SEGUNDO_FACTOR_INSCRIBIR, "funcionario", account.id, ip=ip
        )
    return codes


def renew_recovery_codes(account: Account, *, ip: str | None) -> list[str]:
    """Replace the account's recovery codes; the old ones stop working."""
    with db.atomic():
        codes = second_factor.new_recovery_codes(account)
        audit.record(account, audit.Action.STAFF_CODIGOS_RENOVAR, "funcionario", account.id, ip=ip)
    return codes


# --- staff accounts -------------------------------------------------------------


def _valid_base32(secret: str) -> bool:
    """Tell whether secret is base32 of at least 80 bits (what authenticator apps take)."""
    if len(secret) < 16:
        return False
    try:
        base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        return False
    return True


def create_staff(
    email: str,
    roles: Iterable[str],
    password: str,
    *,
    nombre: str = "",
    totp_secret: str | None = None,
    actor: Account | None = None,
) -> Account:
    """Create an active staff account (the create-staff command); refuse a weak password.

    With totp_secret the second factor is enrolled at once; without it the
    first sign-in asks to enrol an app.
    """
    email = email.strip().lower()
    try:
        # The sign-in form takes only a valid address: refuse what could never sign in.
        email_validator.validate_email(email, check_deliverability=False, test_environment=True)
    except email_validator.EmailNotValidError as exc:
        raise StaffError("Escriba un correo electrónico válido, como nombre@correo.com.") from exc
    wanted = [Role(r) for r in roles]
    problems = passwords.password_problems(password, email=email)
    if problems:
        raise StaffError(" ".join(problems))
    if totp_secret is not None:
        totp_secret = totp_secret.replace(" ", "").upper()
        if not _valid_base32(totp_secret):
            raise StaffError(
                "El secreto TOTP debe ser base32 (A–Z, 2–7) de al menos 16 caracteres."
            )
    password_hash = passwords.hash_password(password)
    try:
        with db.atomic():
            account = StaffMember.create_account(
                email,
                nombre or email.split("@")[0],
                wanted,
                password_hash=password_hash,
                status=Account.ACTIVE,
                totp_secret=totp_secret or "",
                totp_enrolled_at=utcnow() if totp_secret else None,
            )
            audit.record(
                actor,
                audit.Action.STAFF_CREAR,
                "funcionario",
                account.id,
                after={"email": email, "roles": sorted(wanted)},
            )
    except IntegrityError as exc:
        raise StaffError("Ya existe un funcionario con ese correo.") from exc
    return account


# --- counts for the home page -------------------------------------------------


def blocked_users_query():
    """Hanna accounts the quiz or the codes blocked, oldest block first."""
    return (
        HannaUser.select(HannaUser, Account)
        .join(Account)
        .where((Account.kind == Account.HANNA) & (Account.status == Account.BLOCKED))
    )


def section_counts(endpoints: list[str]) -> dict[str, int]:
    """Return what waits in each section the staff member may open."""
    counts = {}
    for endpoint in endpoints:
        if endpoint == "gestion.desbloqueos":
            counts[endpoint] = blocked_queue().count()  # what the list shows, no more
        elif endpoint == "gestion.solicitudes":
            counts[endpoint] = (
                SolicitudAplicacion.select()
                .where(SolicitudAplicacion.estado == SolicitudAplicacion.PENDIENTE)
                .count()
            )
        elif endpoint == "gestion.autorizaciones":
            counts[endpoint] = (
                SolicitudAutorizacion.select()
                .where(SolicitudAutorizacion.estado == SolicitudAutorizacion.PENDIENTE)
                .count()
            )
        elif endpoint == "gestion.pqrs":
            counts[endpoint] = (
                Pqrs.select().where(Pqrs.estado.in_((Pqrs.RADICADA, Pqrs.INFORMACION))).count()
            )
        elif endpoint == "gestion.mesa":  # the cases the desk owes an answer
            counts[endpoint] = (
                CasoMesa.select()
                .where(CasoMesa.estado.in_((CasoMesa.NUEVO, CasoMesa.ESPERA_MESA)))
                .count()
            )
        elif endpoint == "gestion.entidades":
            counts[endpoint] = Entidad.select().count()
        elif endpoint == "gestion.personal":
            counts[endpoint] = Account.select().where(Account.kind == Account.STAFF).count()
    return counts


# --- the unblock queue (H2) ----------------------------------------------------


class Unblock(enum.StrEnum):
    """What staff decide for a user the quiz or the codes blocked."""

    RETRY = "reintentar"  # three new tries at the questions, with a new activation link
    ACTIVATE = "activar"  # identity checked another way: the account is active now


# How staff verified identity when they activate without the quiz (said in the form).
# Why a Hanna user is blocked (HannaUser.blocked_reason), as staff read it.
BLOCK_REASONS = {
    "preguntas": "3 intentos fallidos de las preguntas",
    "tiempo": "Intentos sin responder a tiempo",
    "codigos": "Códigos SMS incorrectos",
}
VERIFIED_BY = {
    "oficina": "Documento de identidad presentado en una oficina de Cajacopi",
    "llamada": "Llamada al call center con validación de datos",
    "pqrsf": "Soportes enviados en un PQRSF",
}


def blocked_queue(documento: str = "", correo: str = ""):
    """The blocked Hanna users, filtered; the caller orders and pages it (oldest block first)."""
    query = (
        HannaUser.select(
            HannaUser.account,
            HannaUser.tipo_documento,
            HannaUser.numero_documento,
            HannaUser.primer_nombre,
            HannaUser.primer_apellido,
            HannaUser.blocked_at,
            HannaUser.blocked_reason,
            HannaUser.quiz_failures,
            Account.email,
        )
        .join(Account)
        .where(
            (Account.kind == Account.HANNA)
            & (Account.status == Account.BLOCKED)
            & HannaUser.blocked_at.is_null(False)
        )
    )
    documento = documento.strip()
    if documento:
        query = query.where(HannaUser.numero_documento == documento)
    if correo:
        query = query.where(Account.email == correo.strip().lower())
    return query


def blocked_user(account_id: int) -> Account | None:
    """Return the blocked Hanna account with this id, or None."""
    return Account.get_or_none(
        (Account.id == account_id)
        & (Account.kind == Account.HANNA)
        & (Account.status == Account.BLOCKED)
    )


def unblock(
    staff: Account,
    account_id: int,
    decision: Unblock,
    reason: str,
    *,
    verified_by: str = "",
    secret: str,
    base_url: str,
    ip: str | None,
) -> Account:
    """Unblock a user once: a new chance at the quiz, or active at once; mail them; audit it.

    Two staff deciding at the same moment decide once: the UPDATE that leaves
    the blocked state is conditional, and the second finds nothing to change.
    """
    from blueprints.accounts.service import queue_activation_mail  # the same mail as at sign-up

    if decision is Unblock.ACTIVATE and verified_by not in VERIFIED_BY:
        raise StaffError("Diga cómo verificó la identidad del usuario.")
    now = utcnow()
    with db.atomic():
        user = blocked_user(account_id)
        if user is None:
            raise StaffError("Este usuario ya no está bloqueado: otra persona lo atendió.")
        before = {"estado": user.status, "intentos_fallidos": user.hanna.quiz_failures}
        status = Account.PENDING if decision is Unblock.RETRY else Account.ACTIVE
        changed = (
            Account.update(status=status, failed_logins=0, login_blocked_until=None)
            .where((Account.id == user.id) & (Account.status == Account.BLOCKED))
            .execute()
        )
        if changed != 1:
            raise StaffError("Este usuario ya no está bloqueado: otra persona lo atendió.")
        profile = {"quiz_failures": 0, "unblocked_at": now, "activation_nonce": new_token()}
        if decision is Unblock.ACTIVATE:
            profile["activated_at"] = now
        HannaUser.update(**profile).where(HannaUser.account == user.id).execute()
        user.status = status
        user.hanna.activation_nonce = profile["activation_nonce"]
        if decision is Unblock.RETRY:
            queue_activation_mail(user, secret=secret, base_url=base_url)
        else:
            notify.queue_template_email(
                user.email,
                "Su cuenta de la Plataforma Hanna está activa",
                "unblocked_active",
                user=user,
                base_url=base_url,
            )
        after = {"estado": status, "intentos_fallidos": 0, "motivo": reason}
        if decision is Unblock.ACTIVATE:
            after["verificado_por"] = verified_by
        audit.record(
            staff,
            audit.Action.USUARIO_DESBLOQUEAR
            if decision is Unblock.RETRY
            else audit.Action.USUARIO_ACTIVAR,
            "usuario",
            user.id,
            before=before,
            after=after,
            ip=ip,
        )
    return user
