"""Security from day one: headers, server-side sessions, the anonymous answer."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, flash, g, make_response, redirect, request, session, url_for

from blueprints.accounts import access as accounts
from blueprints.web import login_manager
from models import User

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "report-uri /csp-report",
    ]
)


def init_app(app: Flask) -> None:
    """Install the headers and the session checks on app."""
    login_manager.session_protection = None  # the server-side session row does this job
    absolute = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    policies = {
        User.AFFILIATE_ROLE: accounts.SessionPolicy(
            timedelta(minutes=app.config["IDLE_MINUTES"]), absolute
        ),
        User.SHARED_PC_ROLE: accounts.SessionPolicy(
            timedelta(minutes=app.config["IDLE_MINUTES_SHARED"]), absolute
        ),
    }
    login_manager.login_view = "accounts.login"

    @login_manager.user_loader
    def load_user(user_token: str):
        sid = session.get("sid")
        if not sid:
            return None
        user = accounts.resolve_session(user_token, sid, policies=policies)
        if user is None:
            g.session_ended = True
            session.clear()
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Response:
        if g.get("session_ended"):
            flash("Su sesión se cerró por inactividad. Ingrese de nuevo.", "info")
        login = url_for("accounts.login", next=request.full_path.rstrip("?"))
        if request.headers.get("HX-Request") == "true":
            response = make_response("", 401)
            response.headers["HX-Redirect"] = login
            return response
        return redirect(login)

    @app.after_request
    def headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "same-origin"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.is_secure:
            h["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if request.endpoint == "static":
            h["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            # Shared PCs: nothing a page shows may stay in the browser's cache.
            h["Cache-Control"] = "no-store"
        return response
