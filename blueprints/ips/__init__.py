"""Mesa de Ayuda IPS (SPEC I1–I3): IPS operators sign in by NIT and e-mail, open cases, follow them.

Route modules are imported at the bottom: ``acceso`` (I1: log-in by NIT,
setting a password from the e-mailed link, resetting it, the IPS admin's
operators) and ``mesa`` (I2 "Mesa de Ayuda – Mesa de Ayuda", I3 "Gestion de
Solicitud – Mis Solicitudes" and the case thread).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ips", __name__, url_prefix="/ips")

from blueprints.ips import acceso, mesa  # noqa: E402, F401
