"""Security from day one: headers, server-side sessions, the anonymous answer."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, flash, g, make_response, redirect, request, session, url_for

from blueprints.accounts import access as accounts
from blueprints.web import login_manager
from models import User, UserSession

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

    # Why a session ended → what the login page tells the person (one place).
    ended_messages = {
        UserSession.IDLE: "Su sesión se cerró por inactividad. Ingrese de nuevo.",
        UserSession.EXPIRED: (
            f"Su sesión llegó al tiempo máximo de {app.config['SESSION_MAX_HOURS']} horas "
            "y se cerró. Ingrese de nuevo."
        ),
        UserSession.PASSWORD: (
            "Su sesión se cerró porque la contraseña de su cuenta se cambió. Ingrese con la "
            "nueva contraseña; si no fue usted, restablézcala."
        ),
        UserSession.RESET: (
            "Su sesión se cerró porque se restableció la contraseña de su cuenta. Ingrese con "
            "la nueva contraseña."
        ),
        UserSession.ELSEWHERE: (
            "Su sesión se cerró desde otro equipo (Mis sesiones). Ingrese de nuevo."
        ),
        UserSession.ALL: (
            "Su sesión se cerró porque se pidió cerrar la sesión en todos los equipos. "
            "Ingrese de nuevo."
        ),
        UserSession.LOGOUT: "Esta sesión fue cerrada. Ingrese de nuevo.",
        UserSession.ACCOUNT: "Su sesión se cerró porque su cuenta ya no está activa.",
    }

    @login_manager.user_loader
    def load_user(user_token: str):
        sid = session.get("sid")
        if not sid:
            return None
        check = accounts.resolve_session(user_token, sid, policies=policies)
        if check.user is None and not check.stale:
            g.session_end_reason = check.end_reason or ""
            session.clear()
        # A stale cookie keeps its session: the change's own answer carries the new id.
        return check.user

    @login_manager.unauthorized_handler
    def unauthorized() -> Response:
        reason = g.get("session_end_reason")
        if reason is not None:
            flash(ended_messages.get(reason, "Su sesión se cerró. Ingrese de nuevo."), "info")
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
        # A TLS terminator on the same host (PROXY_HOPS=0) forwards plain HTTP:
        # an https:// BASE_URL says the site is HTTPS all the same.
        if request.is_secure or app.config["BASE_URL"].startswith("https://"):
            h["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if request.endpoint == "static" and response.status_code in (200, 206, 304):
            # The hashed, immutable copies never get here (WhiteNoise answers
            # them first): this is an unversioned name, so revalidate each use.
            h["Cache-Control"] = "no-cache"
        else:
            # Shared PCs: nothing a page shows may stay in the browser's cache;
            # nor a missing /static/ file (404): it may exist after the next deploy.
            h["Cache-Control"] = "no-store"
        return response
