"""Sign-in plumbing every area shares: signing in and out, the user loader, the
anonymous answer per kind of account, the "must do first" gate, and the
permission checks views use (core/permissions.py declares the actions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from blueprints.web import login_manager, see_other, sign_in_first
from core import auth as core_auth
from core.permissions import RULES, Action, allowed
from models import Account, UserSession

# Where each kind of account signs in; an area's blueprint sends its
# anonymous visitors to its own kind's page.
LOGIN_VIEWS = {
    Account.HANNA: "accounts.login",
    Account.EPS: "genesis.login",
    Account.IPS: "ips.login",
    Account.STAFF: "gestion.ingresar",
}
BLUEPRINT_KINDS = {"gestion": Account.STAFF, "genesis": Account.EPS, "ips": Account.IPS}
# Where each kind lands after signing in (and when it opens a login page signed in).
HOME_VIEWS = {
    Account.HANNA: "accounts.home",
    Account.EPS: "genesis.oficina",
    Account.IPS: "ips.mesa",
    Account.STAFF: "gestion.inicio",
}


def _kind_of_request() -> str:
    return BLUEPRINT_KINDS.get(request.blueprint or "", Account.HANNA)


def home_url(account: Account) -> str:
    """Return the first page of account's kind."""
    return url_for(HOME_VIEWS.get(account.kind, HOME_VIEWS[Account.HANNA]))


def login_url(kind: str, **values: Any) -> str:
    """Return the login page of one kind of account."""
    return url_for(LOGIN_VIEWS.get(kind, LOGIN_VIEWS[Account.HANNA]), **values)


def idle_limit(account: Account) -> timedelta:
    """Return how long a session of account may sit idle.

    Staff, IPS and convenio desks work on shared PCs: they get the shorter time.
    """
    config = _app_config()
    shared = timedelta(minutes=config["IDLE_MINUTES_SHARED"])
    if account.kind in (Account.STAFF, Account.IPS):
        return shared
    if account.kind == Account.HANNA and allowed(account, Action.USE_CONVENIOS):
        return shared
    return timedelta(minutes=config["IDLE_MINUTES"])


def _app_config() -> dict:
    from flask import current_app

    return current_app.config


def sign_in(account: Account, *, second_factor: bool = False) -> None:
    """Start a fresh server-side session for account (a new cookie: no fixation).

    second_factor says the session already passed it (staff sign in in two steps).
    """
    old = session.get("sid")
    if old:
        core_auth.end_session(old)
    session.clear()
    session["sid"] = core_auth.start_session(
        account, request.user_agent.string, idle=idle_limit(account), second_factor=second_factor
    )
    login_user(account)


def signed_out(message: str | None = None, kind: str = Account.HANNA) -> Response:
    """Forget the browser's session and cache, then go to that kind's login page."""
    logout_user()
    session.clear()
    if message:
        flash(message, "info")
    response = see_other(login_url(kind))
    # Shared PCs: nothing the pages showed may stay in this browser.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _device_cookie_name() -> str:
    secure = _app_config()["SESSION_COOKIE_SECURE"]
    return ("__Host-" if secure else "") + core_auth.DEVICE_COOKIE


def check_login(kind: str, login: str, password: str) -> core_auth.LoginResult:
    """Check a password with this browser's device budget (its device cookie), any kind."""
    return core_auth.authenticate(
        kind,
        login,
        password,
        device_tokens=core_auth.device_tokens(request.cookies.get(_device_cookie_name())),
        secret=_app_config()["SECRET_KEY"],
    )


def keep_device(response: Response, result: core_auth.LoginResult) -> Response:
    """Give this browser its own failure budget for the account from now on."""
    if result.device_token:
        name = _device_cookie_name()
        value = core_auth.remember_device(
            request.cookies.get(name), result.device_token, secret=_app_config()["SECRET_KEY"]
        )
        response.set_cookie(
            name,
            value,
            max_age=int(core_auth.DEVICE_TTL.total_seconds()),
            secure=_app_config()["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response


def current_account() -> Account | None:
    """Return the signed-in account, or None."""
    return current_user if current_user.is_authenticated else None


def second_factor_done() -> bool:
    """Tell whether this request's session passed the second factor."""
    return bool(g.get("second_factor"))


def require(action: Action) -> Callable:
    """Let a view run only for who may do action: the anonymous go to their login, others get 404.

    404 rather than 403: a Hanna user learns nothing of the back office's pages,
    nor a staff member of another role's queues.
    """
    rule = RULES[action]

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            account = current_account()
            if account is None:
                return login_manager.unauthorized()
            if account.kind == Account.STAFF and not second_factor_done():
                return login_manager.unauthorized()
            if rule.check is None and not allowed(account, action):
                abort(404)
            return view(*args, **kwargs)

        wrapped.required_action = action
        return wrapped

    return decorate


def passive(view: Callable) -> Callable:
    """Mark a view whose requests are not activity (a page's poll): they never extend the idle time.

    A page left open on a shared PC keeps polling; its session must still end
    after the idle minutes, as if nobody were there (load_user reads the mark).
    """
    view.passive_session = True
    return view


def _passive_request() -> bool:
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "passive_session", False))


def owned_or_404(action: Action, obj: Any) -> Any:
    """Return obj when the signed-in account may do action to it; else answer 404."""
    if obj is None or not allowed(current_account(), action, obj):
        abort(404)
    return obj


# --- what must happen before anything else ----------------------------------

# A gate: (holds for this account and session?, the endpoint that resolves it,
# the endpoints it leaves open). The first that holds redirects every other page.
Gate = tuple[Callable[[Account], bool], str, frozenset[str]]
GATES: list[Gate] = []


def add_gate(
    holds: Callable[[Account], bool], endpoint: str, open_endpoints: tuple[str, ...] = ()
) -> None:
    """Register something an account must do before any other page (a second factor, a new password)."""
    GATES.append((holds, endpoint, frozenset((endpoint, *open_endpoints))))


def _gate() -> Response | None:
    account = current_account()
    if account is None or request.endpoint in (None, "static"):
        return None
    for holds, endpoint, open_endpoints in GATES:
        if not holds(account):
            continue
        # The first gate that holds decides: its own pages open, nothing else.
        if request.endpoint in open_endpoints:
            return None
        return sign_in_first(url_for(endpoint), 303)
    return None


def init_app(app: Flask) -> None:
    """Install the user loader, the anonymous answer and the gate on app."""
    login_manager.session_protection = None  # the server-side session row does this job
    # Flask-Login still hashes the client's address and browser (SHA-512) on every
    # request and keeps the digest in the cookie, though only session protection reads it.
    login_manager._session_identifier_generator = str
    absolute = timedelta(hours=app.config["SESSION_MAX_HOURS"])

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
        UserSession.SECOND_FACTOR: (
            "Su sesión se cerró porque se reinició su segundo factor. Ingrese de nuevo y "
            "active su aplicación de autenticación."
        ),
    }

    @login_manager.user_loader
    def load_user(user_token: str):
        sid = session.get("sid")
        if not sid:
            return None
        check = core_auth.resolve_session(
            user_token, sid, absolute=absolute, touch=not _passive_request()
        )
        if check.user is None and not check.stale:
            g.session_end_reason = check.end_reason or ""
            session.clear()
        g.second_factor = check.second_factor
        g.session_id = check.session_id
        g.convenio_sede_id = check.convenio_sede_id
        # A stale cookie keeps its session: the change's own answer carries the new id.
        return check.user

    @login_manager.unauthorized_handler
    def unauthorized() -> Response:
        reason = g.get("session_end_reason")
        if reason is not None:
            flash(ended_messages.get(reason, "Su sesión se cerró. Ingrese de nuevo."), "info")
        account = current_account()
        kind = account.kind if account is not None else _kind_of_request()
        return sign_in_first(login_url(kind, next=request.full_path.rstrip("?")))

    app.before_request(_gate)
