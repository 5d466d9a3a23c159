"""The public check of a certificate of affiliation (SPEC G5; `/certificados/verificar` is fixed, K).

No sign-in: whoever holds a certificate (an employer, a school) types its code
or reads its QR. The blueprint and its one route module, ``views``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("certificados", __name__, url_prefix="/certificados")

from blueprints.certificados import views  # noqa: E402, F401
