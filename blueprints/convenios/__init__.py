"""Convenios (H6): a partner's front desk checks a worker, reports a use, downloads its report.

The blueprint and what every page of it shares: the sede this session works
for (chosen once, shown on every page, re-checked against the grant on every
request). Route modules are imported at the bottom.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, request

from blueprints.auth import current_account
from core import convenios
from models import Sede

bp = Blueprint("convenios", __name__, url_prefix="/convenios")


def sedes() -> list[Sede]:
    """Return the sedes the signed-in account may work for (read once per request)."""
    if "convenio_sedes" not in g:
        g.convenio_sedes = convenios.granted_sedes(current_account())
    return g.convenio_sedes


def current_sede() -> Sede | None:
    """Return the sede this session works for, when it is still granted; else None."""
    if "convenio_sede" not in g:
        chosen = g.get("convenio_sede_id")
        if "convenio_sedes" in g:
            g.convenio_sede = next((s for s in g.convenio_sedes if s.id == chosen), None)
        else:
            g.convenio_sede = convenios.granted_sede(current_account(), chosen)
    return g.convenio_sede


def set_sede(sede: Sede | None) -> None:
    """Make sede the one this session works for (None: ask again)."""
    shared = int(current_app.config["IDLE_MINUTES_SHARED"]) * 60
    convenios.choose_sede(g.session_id, sede, idle_seconds=shared)
    g.convenio_sede_id = sede.id if sede else None
    g.convenio_sede = sede


def sede_or_404(sede_id) -> Sede:
    """Return a sede granted to the signed-in account, or answer 404."""
    sede = next((s for s in sedes() if s.id == sede_id), None)
    if sede is None:
        abort(404)
    return sede


@bp.app_template_global()
def convenio_sede() -> Sede | None:
    """The chosen sede, for the layout's band on every Convenios page (None elsewhere)."""
    if request.blueprint != "convenios" or current_account() is None:
        return None
    return current_sede()


from blueprints.convenios import reporte, views  # noqa: E402, F401  (routes register on bp)
