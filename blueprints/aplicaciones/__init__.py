"""Applications of the Hanna platform (H4): the home page tiles, requests and their state."""

from flask import Blueprint

bp = Blueprint("aplicaciones", __name__, url_prefix="/aplicaciones")

from blueprints.aplicaciones import views  # noqa: E402, F401  (routes register on bp)
