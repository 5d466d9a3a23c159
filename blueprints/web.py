"""Plumbing every blueprint shares: extensions, the htmx helper, redirects."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from flask import Flask, Response, make_response, redirect, render_template, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail

from blueprints.csrf_mask import MaskedCSRFProtect

csrf = MaskedCSRFProtect()  # tokens masked per use: pages are compressed (BREACH)
mail = Mail()
login_manager = LoginManager()
# If Redis cannot be reached, count in memory meanwhile instead of failing the
# request (Flask-Limiter logs "storage unreachable", never the URL), and give up
# on a silent host quickly.
limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[],
    in_memory_fallback_enabled=True,
    storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
)
# One budget per client address for every page that shows a look-up result.
LOOKUP_LIMIT = "10/minute;60/hour"


def processes() -> int:
    """Return how many server processes will each keep their own in-memory counts.

    gunicorn.conf.py passes gunicorn's worker count (which -w, or gunicorn's
    own reading of WEB_CONCURRENCY, decided) as GUNICORN_WORKERS.
    """
    count = os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or "1"
    return int(count) if count.strip().isdigit() else 1


def check_shared_limits(app: Flask) -> None:
    """Refuse to start several processes whose rate limits would each count apart."""
    workers = processes()
    if workers <= 1 or app.config["REDIS_URL"] or app.debug or app.testing:
        return
    if not app.config.get("RATELIMIT_ENABLED", True):
        return  # limits switched off on purpose (the benchmark): nothing to multiply
    raise RuntimeError(
        f"Con {workers} procesos (WEB_CONCURRENCY o gunicorn -w) y sin REDIS_URL, cada "
        f"proceso cuenta sus propios límites: serían {workers} veces más débiles. Defina "
        "REDIS_URL o use un solo proceso con hilos (WEB_THREADS)."
    )


def lookup_allowed() -> bool:
    """Spend one look-up of this client's shared budget; False when it is used up."""
    try:
        with limiter.shared_limit(LOOKUP_LIMIT, scope="consulta-afiliado"):
            pass
    except RateLimitExceeded:
        return False
    return True


def wants_partial() -> bool:
    """Tell whether htmx asked for a fragment (not a boost, not a history restore)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, partial: str | None = None, status: int = 200, **context) -> Response:
    """Render the whole page, or only its partial when htmx asks for it."""
    template = partial if partial and wants_partial() else page
    response = make_response(render_template(template, **context), status)
    if partial:
        response.vary.add("HX-Request")
    return response


def see_other(url: str) -> Response:
    """Redirect after a successful POST: 303, or HX-Redirect for htmx."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def safe_next(target: str | None, default: str) -> str:
    """Return target only if it is a path on this site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
