"""Portal Génesis (SPEC G1–G4): EPS affiliates register, sign in, and use the virtual office.

The blueprint, and the two things an EPS account must do before any page
opens (G2): change the temporary password the SMS carried, then accept the
"carta de derechos y deberes"; and before both, that the affiliate is still
ACTIVO in the EPS's data (an open session of one retired since ends). Route modules are imported at the bottom:
``acceso`` (the entry, login, first-login gates, forgotten password),
``registro`` (G1), ``oficina`` (G3, G4).
"""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from blueprints.auth import add_gate, current_account, owned_or_404
from blueprints.web import render
from core import clock, genesis
from core.convenios_data import municipio_label
from core.eps_data import ESTADOS, ESTADOS_AUTORIZACION, PARENTESCOS
from core.permissions import Action
from models import Account, EpsAfiliado

bp = Blueprint("genesis", __name__, url_prefix="/genesis")


# --- what every office page shares ----------------------------------------------------


def account_key() -> str:
    """Rate-limit key: the signed-in account, not the address (a family shares a phone's IP)."""
    return f"cuenta:{current_user.id}" if current_user.is_authenticated else "anonimo"


def member_or_404(member_id: int) -> EpsAfiliado:
    """Return a member of the signed-in account's family group, or answer 404."""
    return owned_or_404(Action.VIEW_MEMBER, genesis.member_of(current_account(), member_id))


def render_office(template: str, /, partial: str | None = None, status: int = 200, **context):
    """Render an office page with the names its member boxes show."""
    return render(
        template,
        partial=partial,
        status=status,
        parentescos=PARENTESCOS,
        estados=ESTADOS,
        estados_autorizacion=ESTADOS_AUTORIZACION,
        municipio_label=municipio_label,
        edad=lambda m: genesis.age_on(m.fecha_nacimiento, clock.now().date()),
        **context,
    )


def _no_longer_active(account: Account) -> bool:
    # An import may retire an affiliate while a session is open: it ends at the next page.
    return (
        account.kind == Account.EPS
        and account.eps is not None
        and account.eps.afiliado.estado != EpsAfiliado.ACTIVO
    )


def _temporary_password(account: Account) -> bool:
    return account.kind == Account.EPS and account.must_change_password


def _carta_pending(account: Account) -> bool:
    return (
        account.kind == Account.EPS
        and account.eps is not None
        and account.eps.carta_accepted_at is None
    )


# In this order: an affiliate no longer ACTIVO is signed out; then the SMS password
# (the weaker secret); then the carta.
add_gate(_no_longer_active, "genesis.inactivo")
add_gate(_temporary_password, "genesis.cambiar_clave", ("genesis.salir",))
add_gate(_carta_pending, "genesis.carta", ("genesis.salir",))

from blueprints.genesis import acceso, certificados, datos, oficina, registro  # noqa: E402, F401
