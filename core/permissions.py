"""Who may do what: declared actions, mapped to kinds of account and staff roles.

Views ask ``allowed(account, action, obj)``; none of them tests a role or a
kind itself. An object rule answers for one row (is this request the user's
own?), and a refusal on an object is answered as a 404 (blueprints.auth), so
nobody learns that another person's row exists.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.prepared import prepared
from models import Acceso, Account, StaffRole


class Role(enum.StrEnum):
    """A staff role: each sees only its own queues (SPEC S1)."""

    ADMIN = "admin"
    AFILIACIONES = "afiliaciones"
    CONVENIOS = "convenios"
    AUTORIZACIONES = "autorizaciones"
    PQRS = "pqrs"
    SOPORTE = "soporte"


ROLE_NAMES = {
    Role.ADMIN: "Administración",
    Role.AFILIACIONES: "Afiliaciones",
    Role.CONVENIOS: "Convenios",
    Role.AUTORIZACIONES: "Autorizaciones",
    Role.PQRS: "PQRSF",
    Role.SOPORTE: "Soporte IPS",
}


class Application(enum.StrEnum):
    """An application a Hanna user may be granted (H4): a tile on the home page."""

    CONVENIOS = "convenios"


class Action(enum.StrEnum):
    """Something an account may be allowed to do."""

    # Hanna users
    USE_HANNA = "hanna.usar"  # the Hanna pages: home, Mi cuenta, sessions, QR approval
    REQUEST_APPLICATION = "aplicacion.solicitar"
    VIEW_REQUEST = "solicitud.ver"  # obj: a SolicitudAplicacion
    USE_CONVENIOS = "convenios.usar"
    # EPS affiliates (Génesis)
    USE_GENESIS = "genesis.usar"  # the virtual office
    VIEW_MEMBER = "genesis.miembro"  # obj: an EpsAfiliado of the family group
    VIEW_AUTHORIZATION_REQUEST = "genesis.solicitud"  # obj: a SolicitudAutorizacion
    # Staff
    OPEN_BACK_OFFICE = "gestion.entrar"
    UNBLOCK_USERS = "usuarios.desbloquear"
    DECIDE_REQUESTS = "solicitudes.decidir"
    MANAGE_STAFF = "personal.gestionar"
    MANAGE_ENTITIES = "entidades.gestionar"
    SEARCH_AUDIT = "auditoria.consultar"
    MANAGE_CONVENIO_ACCESS = "convenios.accesos"  # who is granted CONVENIOS; revoke a grant
    SEARCH_CONVENIO_LOOKUPS = "convenios.consultas"  # the look-up log (habeas data)
    DECIDE_AUTHORIZATIONS = "autorizaciones.decidir"  # G3 requests: approve or reject
    ANSWER_PQRS = "pqrs.responder"  # G7: answer, ask, extend, close; unblock from a case
    ANSWER_HELP_DESK = "mesa.atender"  # I3: the help-desk queue, replies, notes, states
    CONFIGURE_HELP_DESK = "mesa.configurar"  # motivos, asuntos, targets and saved replies
    INVITE_IPS = "ips.invitar"  # give an IPS its first (admin) operator
    # IPS operators (Mesa de Ayuda)
    USE_HELP_DESK = "mesa.usar"  # open cases, read and write in the IPS's own cases
    MANAGE_IPS_OPERATORS = "ips.operadores"  # the IPS admin adds and removes operators


@dataclass(frozen=True)
class Rule:
    """Who an action is for: kinds of account, staff roles (any of), and a check on the object."""

    kinds: frozenset[str]
    roles: frozenset[Role] = frozenset()  # for staff: empty means any staff member
    check: Callable[[Account, Any], bool] | None = None  # with obj
    holds: Callable[[Account], bool] | None = None  # without obj


def _owns(account: Account, obj: Any) -> bool:
    return obj is not None and getattr(obj, "account_id", None) == account.id


def _in_family(account: Account, obj: Any) -> bool:
    from core.genesis import family_ids

    return obj is not None and getattr(obj, "id", None) in family_ids(account)


def _for_family(account: Account, obj: Any) -> bool:
    from core.genesis import family_ids

    return obj is not None and getattr(obj, "afiliado_id", None) in family_ids(account)


def _granted(application: Application) -> Callable[[Account], bool]:
    query = prepared(
        lambda account_id: (
            Acceso.select(Acceso.id)
            .where((Acceso.account == account_id) & (Acceso.aplicacion == application))
            .limit(1)
        )
    )

    def holds(account: Account) -> bool:
        return query.first(int(account.id)) is not None

    return holds


_STAFF = frozenset({Account.STAFF})
_HANNA = frozenset({Account.HANNA})
_EPS = frozenset({Account.EPS})
_IPS = frozenset({Account.IPS})


def _ips_admin(account: Account) -> bool:
    return account.ips is not None and account.ips.es_admin


RULES: dict[Action, Rule] = {
    Action.USE_HANNA: Rule(_HANNA),
    Action.REQUEST_APPLICATION: Rule(_HANNA),
    Action.VIEW_REQUEST: Rule(_HANNA, check=_owns),
    Action.USE_CONVENIOS: Rule(_HANNA, holds=_granted(Application.CONVENIOS)),
    Action.USE_GENESIS: Rule(_EPS),
    Action.VIEW_MEMBER: Rule(_EPS, check=_in_family),
    Action.VIEW_AUTHORIZATION_REQUEST: Rule(_EPS, check=_for_family),
    Action.OPEN_BACK_OFFICE: Rule(_STAFF),
    Action.UNBLOCK_USERS: Rule(_STAFF, frozenset({Role.AFILIACIONES})),
    Action.DECIDE_REQUESTS: Rule(_STAFF, frozenset({Role.CONVENIOS})),
    Action.MANAGE_STAFF: Rule(_STAFF, frozenset({Role.ADMIN})),
    # The convenios team looks after the entities and their sedes as well.
    Action.MANAGE_ENTITIES: Rule(_STAFF, frozenset({Role.ADMIN, Role.CONVENIOS})),
    Action.SEARCH_AUDIT: Rule(_STAFF, frozenset({Role.ADMIN})),
    Action.MANAGE_CONVENIO_ACCESS: Rule(_STAFF, frozenset({Role.CONVENIOS})),
    Action.SEARCH_CONVENIO_LOOKUPS: Rule(_STAFF, frozenset({Role.CONVENIOS})),
    Action.DECIDE_AUTHORIZATIONS: Rule(_STAFF, frozenset({Role.AUTORIZACIONES})),
    Action.ANSWER_PQRS: Rule(_STAFF, frozenset({Role.PQRS})),
    Action.ANSWER_HELP_DESK: Rule(_STAFF, frozenset({Role.SOPORTE})),
    Action.CONFIGURE_HELP_DESK: Rule(_STAFF, frozenset({Role.ADMIN})),
    Action.INVITE_IPS: Rule(_STAFF, frozenset({Role.ADMIN, Role.SOPORTE})),
    Action.USE_HELP_DESK: Rule(_IPS),
    Action.MANAGE_IPS_OPERATORS: Rule(_IPS, holds=_ips_admin),
}


def roles_of(account: Account) -> frozenset[Role]:
    """Return the staff roles of account, read once per object."""
    if account.kind != Account.STAFF:
        return frozenset()
    cached = account.__dict__.get("_roles")
    if cached is None:
        rows = StaffRole.select(StaffRole.role).where(StaffRole.account == account.id)
        cached = frozenset(Role(r.role) for r in rows if r.role in Role.__members__.values())
        account.__dict__["_roles"] = cached
    return cached


def allowed(account: Account | None, action: Action, obj: Any = None) -> bool:
    """Tell whether account may do action (to obj, when the action is about one row)."""
    if account is None or not getattr(account, "is_authenticated", False) or not account.is_active:
        return False
    rule = RULES[action]
    if account.kind not in rule.kinds:
        return False
    if account.kind == Account.STAFF and rule.roles and not (roles_of(account) & rule.roles):
        return False
    if rule.holds is not None and not rule.holds(account):
        return False
    if rule.check is not None:
        return rule.check(account, obj)
    return True
