"""I1: "Ingreso IPS" by NIT + e-mail + Contraseña, the e-mailed links, the reset, the admin's operators.

The manual signs an IPS in with NIT + Contraseña; each person of the IPS also
types their own e-mail (login "NIT:email"), so every message of a case says
who wrote it. The layout every IPS page extends (templates/ips/_layout.html)
takes its menu from ``MENU`` here.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from blueprints.accounts import captcha_on, live_password_check, password_page
from blueprints.auth import check_login, home_url, keep_device, require, sign_in, signed_out
from blueprints.ips import bp
from blueprints.ips.forms import ClaveForm, IngresoForm, NitCorreoForm, OperadorForm
from blueprints.public import service as captchas
from blueprints.web import limiter, render, safe_next, see_other
from core import auth as core_auth
from core import ips_accounts
from core.ips_accounts import IpsProblem, Problem
from core.permissions import Action, allowed
from models import Account

LOGIN_FAILED = "El NIT, el correo electrónico o la contraseña no son correctos."
# Said only to whoever typed the right password.
INACTIVE = (
    "Su usuario no está activo. Pida al administrador de su IPS que lo habilite, o "
    "comuníquese con la Mesa de Ayuda de Cajacopi EPS."
)
LINK_MESSAGES = {
    Problem.LINK_USED: (
        "Este enlace ya fue usado: su contraseña ya está creada. Ingrese con el NIT de su "
        "IPS, su correo y su contraseña."
    ),
    Problem.WITHDRAWN: (
        "Este acceso ya no está vigente. Si lo necesita, pida al administrador de su IPS "
        "que le envíe un enlace nuevo."
    ),
}
MESSAGES = {
    Problem.EMAIL_TAKEN: "Esta IPS ya tiene un operador con ese correo electrónico.",
    Problem.NOT_INVITED: "Este operador ya creó su contraseña: no necesita un enlace nuevo.",
    Problem.OWN_ACCOUNT: "No puede deshabilitar su propio usuario.",
    Problem.ALREADY_DISABLED: "Este operador ya estaba deshabilitado.",
    Problem.NOT_DISABLED: "Este operador ya estaba habilitado.",
}

# The IPS menu: (endpoint, label, permission). An endpoint not registered (yet) is left out.
MENU = [
    ("ips.mesa", "Mesa de Ayuda – Mesa de Ayuda", Action.USE_HELP_DESK),
    ("ips.solicitudes", "Gestion de Solicitud – Mis Solicitudes", Action.USE_HELP_DESK),
    ("ips.operadores", "Operadores", Action.MANAGE_IPS_OPERATORS),
]


@bp.context_processor
def ips_layout() -> dict:
    """Give the IPS pages their menu (what the operator may open) and the NIT's display."""

    def menu() -> list[tuple[str, str]]:
        account = current_user if current_user.is_authenticated else None
        views = current_app.view_functions
        return [
            (endpoint, label)
            for endpoint, label, action in MENU
            if endpoint in views and allowed(account, action)
        ]

    return {"ips_menu": menu, "format_nit": ips_accounts.format_nit}


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _base_url() -> str:
    return current_app.config["BASE_URL"]


# --- Ingreso IPS ------------------------------------------------------------------------


def _login_page(form: IngresoForm, status: int = 200):
    return render("ips/ingreso.html", "ips/_ingreso_form.html", status, form=form)


@bp.route("", methods=["GET", "POST"], strict_slashes=False)
@limiter.limit("10/minute;100/hour", methods=["POST"])
def login():
    """Show "Ingreso IPS" and sign the operator in by NIT + correo + Contraseña."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = IngresoForm()
    if not form.validate_on_submit():
        return _login_page(form, 422 if form.errors else 200)
    nit = form.nit.data
    login = ips_accounts.login_of(nit, form.correo.data)
    result = check_login(Account.IPS, login, form.password.data)
    verdict = ips_accounts.may_sign_in(result.user, nit) if result.user is not None else None
    if verdict in (None, ips_accounts.Ingreso.SIN_IPS):
        form.password.errors.append(LOGIN_FAILED)
        return _login_page(form, 422)
    if verdict is ips_accounts.Ingreso.INACTIVA:
        form.password.errors.append(INACTIVE)
        return _login_page(form, 422)
    sign_in(result.user)
    target = safe_next(request.args.get("next"), home_url(result.user))
    return keep_device(see_other(target), result)


@bp.post("/salir")
def salir():
    """End this session on the server and in the browser."""
    if session.get("sid"):
        core_auth.end_session(session["sid"])
    return signed_out("Cerró su sesión.", Account.IPS)


# --- setting a password (the e-mailed link) ------------------------------------------------


def _refused(template: str, exc: Exception):
    """Render why a link cannot be used (410: this link is done), never a 500."""
    message = LINK_MESSAGES[exc.problem] if isinstance(exc, IpsProblem) else str(exc)
    return render(template, status=410, form=None, message=message)


@bp.route("/clave/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def clave(token: str):
    """Let an invited operator create the password; a GET only reads (mail scanners)."""
    try:
        account = ips_accounts.invited_account(token, secret=_secret())
    except (core_auth.AccountError, IpsProblem) as exc:
        return _refused("ips/clave.html", exc)
    form, problems = ClaveForm(), []
    if form.validate_on_submit():
        problems = ips_accounts.password_problems(account, form.password.data)
        if not problems:
            try:
                ips_accounts.accept_invitation(account, form.password.data)
            except (core_auth.AccountError, IpsProblem) as exc:
                return _refused("ips/clave.html", exc)
            sign_in(account)  # as the staff invitation: the link proved the address
            flash("Su contraseña quedó creada. Ya puede usar la Mesa de Ayuda.", "ok")
            return see_other(home_url(account))
        form.password.errors.append(" ".join(problems))
    status = 422 if request.method == "POST" else 200
    return password_page(
        "ips/clave.html", form, problems, status, token=token, operador=account.ips
    )


@bp.post("/clave/<token>/revisar")
@limiter.limit("60/minute;600/hour")
def clave_revisar(token: str):
    """Check the first password as the person types, with the data of the link's operator."""
    form = ClaveForm()
    try:
        account = ips_accounts.invited_account(token, secret=_secret())
    except (core_auth.AccountError, IpsProblem) as exc:
        form.password.data = ""  # nothing is checked against an unknown account
        message = LINK_MESSAGES[exc.problem] if isinstance(exc, IpsProblem) else str(exc)
        return live_password_check(form, [], 410, message=message)
    return live_password_check(
        form, ips_accounts.password_problems(account, form.password.data or "")
    )


# --- ¿Olvidó su contraseña? -------------------------------------------------------------


def _forgot_page(form: NitCorreoForm, status: int = 200, captcha_error: str = ""):
    key = captchas.new_challenge() if captcha_on() else None
    return render(
        "ips/olvide.html", status=status, form=form, captcha_key=key, captcha_error=captcha_error
    )


@bp.route("/olvide", methods=["GET", "POST"])
@limiter.limit("5/minute;30/hour", methods=["POST"])
def olvide():
    """Ask for NIT + correo (and the captcha); the answer never tells if the operator exists."""
    form = NitCorreoForm()
    if request.method == "GET" or request.form.get("accion") == "refrescar":
        return _forgot_page(form)
    if not form.validate():
        return _forgot_page(form, 422)
    if captcha_on() and not captchas.solve(
        request.form.get("captcha_key", ""), request.form.get("captcha", "")[:20]
    ):
        return _forgot_page(form, 422, "El texto no coincide con la imagen. Intente con el nuevo.")
    ips_accounts.request_reset(
        form.nit.data, form.correo.data, secret=_secret(), base_url=_base_url()
    )
    return see_other(url_for("ips.olvide_enviado"))


@bp.get("/olvide/enviado")
def olvide_enviado():
    """Say what happens next, the same for every NIT and address."""
    return render("ips/olvide.html", form=None, lasts=ips_accounts.RESET_LASTS)


@bp.route("/restablecer/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def restablecer(token: str):
    """Set a new password from the reset link; every session of the operator ends."""
    try:
        account = ips_accounts.account_for_reset(token, secret=_secret())
    except core_auth.AccountError as exc:
        return _refused("ips/restablecer.html", exc)
    form, problems = ClaveForm(), []
    if form.validate_on_submit():
        problems = ips_accounts.password_problems(account, form.password.data)
        if not problems:
            try:
                ips_accounts.reset_password(account, form.password.data)
            except core_auth.AccountError as exc:
                return _refused("ips/restablecer.html", exc)
            if current_user.is_authenticated:
                logout_user()
            session.clear()
            flash("Su contraseña fue actualizada. Ya puede ingresar con ella.", "ok")
            return see_other(url_for("ips.login"))
        form.password.errors.append(" ".join(problems))
    status = 422 if request.method == "POST" else 200
    return password_page("ips/restablecer.html", form, problems, status, token=token)


@bp.post("/restablecer/<token>/revisar")
@limiter.limit("60/minute;600/hour")
def restablecer_revisar(token: str):
    """Check the new password as the person types, with the data of the link's operator."""
    form = ClaveForm()
    try:
        account = ips_accounts.account_for_reset(token, secret=_secret())
    except core_auth.AccountError as exc:
        form.password.data = ""
        return live_password_check(form, [], 410, message=str(exc))
    return live_password_check(
        form, ips_accounts.password_problems(account, form.password.data or "")
    )


# --- Operadores (the IPS admin) -------------------------------------------------------------


def _operators_page(form: OperadorForm | None = None, status: int = 200, error: str = ""):
    ips = current_user.ips.ips
    return render(
        "ips/operadores.html",
        status=status,
        ips=ips,
        operadores=ips_accounts.operators_of(ips),
        form=form or OperadorForm(formdata=None),
        error=error,
        lasts=ips_accounts.INVITE_LASTS,
    )


@bp.route("/operadores", methods=["GET", "POST"])
@require(Action.MANAGE_IPS_OPERATORS)
@limiter.limit("20/minute;200/day", methods=["POST"])
def operadores():
    """List the operators of the admin's IPS and add one (a pending account and its link)."""
    form = OperadorForm()
    if not form.validate_on_submit():
        return _operators_page(form, 422 if form.errors else 200)
    try:
        account = ips_accounts.invite(
            current_user,
            current_user.ips.ips,
            form.nombre.data,
            form.correo.data,
            secret=_secret(),
            base_url=_base_url(),
            es_admin=False,
            ip=request.remote_addr,
        )
    except IpsProblem as exc:
        form.correo.errors.append(MESSAGES[exc.problem])
        return _operators_page(form, 422)
    flash(
        f"Le enviamos a {account.email} un enlace para crear su contraseña "
        f"(vence en {ips_accounts.INVITE_LASTS}).",
        "ok",
    )
    return see_other(url_for("ips.operadores"))


OPERATOR_DONE = {
    "deshabilitar": "Operador deshabilitado: se cerraron sus sesiones y ya no puede ingresar.",
    "habilitar": "Operador habilitado.",
    "reenviar": "Enviamos un enlace nuevo a {email}.",
}


@bp.post("/operadores/<int:account_id>")
@require(Action.MANAGE_IPS_OPERATORS)
@limiter.limit("20/minute", methods=["POST"])
def operador(account_id: int):
    """Disable, enable or re-send the link of an operator of the admin's own IPS (else 404)."""
    target = ips_accounts.operator_of(current_user.ips.ips, account_id) or abort(404)
    action = request.form.get("accion", "")
    if action not in OPERATOR_DONE:
        abort(400)
    try:
        if action == "deshabilitar":
            ips_accounts.disable(current_user, target, ip=request.remote_addr)
        elif action == "habilitar":
            ips_accounts.enable(current_user, target, ip=request.remote_addr)
        else:
            ips_accounts.reinvite(
                current_user, target, secret=_secret(), base_url=_base_url(), ip=request.remote_addr
            )
    except IpsProblem as exc:
        if exc.problem is Problem.OWN_ACCOUNT:
            return _operators_page(status=422, error=MESSAGES[exc.problem])
        flash(MESSAGES[exc.problem], "info")  # a second click: already as asked
    else:
        flash(OPERATOR_DONE[action].format(email=target.email), "ok")
    return see_other(url_for("ips.operadores"))
