"""Plumbing every blueprint shares: extensions, the htmx helper, redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, make_response, redirect, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
mail = Mail()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


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
