"""Gestión: the staff back office (SPEC S1), signed in with a password and a second factor.

The blueprint lives here, with the sections a staff member may open (each
guarded by its permission); route modules are imported at the bottom.
"""

from __future__ import annotations

from flask import Blueprint

from blueprints.auth import add_gate, current_account, second_factor_done
from core.permissions import Action, allowed
from models import Account

bp = Blueprint("gestion", __name__, url_prefix="/gestion")

# (permission, endpoint, label): the back office's menu, in this order.
SECTIONS = [
    (Action.UNBLOCK_USERS, "gestion.desbloqueos", "Usuarios bloqueados"),
    (Action.DECIDE_REQUESTS, "gestion.solicitudes", "Solicitudes de aplicaciones"),
    (Action.DECIDE_AUTHORIZATIONS, "gestion.autorizaciones", "Solicitudes de autorización"),
    (Action.ANSWER_PQRS, "gestion.pqrs", "PQRSF"),
    (Action.ANSWER_HELP_DESK, "gestion.mesa", "Mesa de Ayuda IPS"),
    (Action.INVITE_IPS, "gestion.ips", "Accesos de IPS"),
    (Action.CONFIGURE_HELP_DESK, "gestion.mesa_motivos", "Motivos de la Mesa de Ayuda"),
    (Action.MANAGE_ENTITIES, "gestion.entidades", "Entidades en convenio"),
    (Action.MANAGE_CONVENIO_ACCESS, "gestion.convenio_accesos", "Accesos a Convenios"),
    (Action.SEARCH_CONVENIO_LOOKUPS, "gestion.convenio_consultas", "Consultas de convenio"),
    (Action.MANAGE_STAFF, "gestion.personal", "Funcionarios"),
    (Action.SEARCH_AUDIT, "gestion.auditoria", "Auditoría"),
]


@bp.app_context_processor
def gestion_menu() -> dict:
    """Give templates the sections the signed-in staff member may open."""

    def sections() -> list[tuple[str, str]]:
        account = current_account()
        if account is None or account.kind != Account.STAFF or not second_factor_done():
            return []
        return [
            (endpoint, label) for action, endpoint, label in SECTIONS if allowed(account, action)
        ]

    return {"gestion_sections": sections}


def _second_factor_pending(account: Account) -> bool:
    return account.kind == Account.STAFF and not second_factor_done()


# Nothing of the back office, nor of any other area, opens before the second factor.
add_gate(
    _second_factor_pending,
    "gestion.segundo_factor",
    ("gestion.inscribir", "gestion.salir"),
)

from blueprints.gestion import (  # noqa: E402, F401
    acceso,
    auditoria,
    autorizaciones,
    convenios,
    desbloqueo,
    entidades,
    ips,
    mesa,
    personal,
    pqrs,
    solicitudes,
)
