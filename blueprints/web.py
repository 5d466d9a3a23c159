"""Plumbing every blueprint shares: extensions, the htmx helper, redirects."""

from __future__ import annotations

import os
import re
import unicodedata
from urllib.parse import quote, urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
)
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from werkzeug.wsgi import wrap_file

from blueprints.compression import add_vary
from blueprints.csrf_mask import MaskedCSRFProtect
from core import uploads

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


def render(template: str, /, partial: str | None = None, status: int = 200, **context) -> Response:
    """Render the whole page, or only its partial when htmx asks for it.

    template is positional-only, so a page may take any name (a list's ``page``) in its context.
    """
    chosen = partial if partial and wants_partial() else template
    response = make_response(render_template(chosen, **context), status)
    if partial:
        add_vary(response, "HX-Request")
    return response


def see_other(url: str) -> Response:
    """Redirect after a successful POST: 303, or HX-Redirect for htmx."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def body_limit(max_bytes: int):
    """Mark a view with the largest request body it takes (app.py applies it before parsing)."""

    def decorate(view):
        view.max_content_length = max_bytes
        return view

    return decorate


def sign_in_first(url: str, code: int = 302) -> Response:
    """Send a request that may not go on to url: a redirect, or 401 + HX-Redirect for htmx.

    htmx must not swap a whole login page into a small target, so it is told
    to navigate instead.
    """
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 401)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code)


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


def send_attachment(attachment, upload_dir: str | os.PathLike) -> Response:
    """Stream a stored file as a download (call it only after the access check).

    No attachment, or its file gone from UPLOAD_DIR, answers 404 (abort).
    """
    if attachment is None:
        abort(404)
    kind = uploads.Kind(attachment.kind)
    try:
        stored = uploads.open_stored(attachment.key, upload_dir)
    except uploads.UnknownKey:
        abort(404)
    size = os.fstat(stored.fileno()).st_size
    response = current_app.response_class(
        wrap_file(request.environ, stored), mimetype=kind.mime, direct_passthrough=True
    )
    response.content_length = size
    response.headers["Content-Disposition"] = content_disposition(attachment.original_name, kind)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    # Opened in a tab anyway (a PDF viewer, a pasted URL): no script, no origin.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def content_disposition(name: str, kind: uploads.Kind) -> str:
    """Return an attachment header: an ASCII fallback and the UTF-8 name (RFC 5987/6266)."""
    try:
        shown = uploads.safe_name(name, kind)
    except uploads.BadName:
        shown = "archivo" + kind.extension
    ascii_name = unicodedata.normalize("NFKD", shown).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" .") or "archivo"
    if not ascii_name.lower().endswith(kind.extension):
        ascii_name += kind.extension
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(shown, safe='')}"
