"""PQRSF (SPEC G6, G7; K: /pqrs and /pqrs/consulta): anyone files one and follows it by its code.

The blueprint and what its route modules share; the routes are in views.
The staff side (answering, extending, closing) lives in the back office.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pqrs", __name__, url_prefix="/pqrs")

from blueprints.pqrs import views  # noqa: E402, F401  (routes register on bp)
