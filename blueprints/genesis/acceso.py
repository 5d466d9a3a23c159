"""Portal Génesis: the entry, the "Afiliados" sign-in, the first-login gates and
"¿Olvidó su contraseña?" (SPEC G1, G2; 003_… §2, §3, §7)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from blueprints.accounts import password_page
from blueprints.auth import (
    check_login,
    current_account,
    home_url,
    keep_device,
    require,
    sign_in,
    signed_out,
)
from blueprints.genesis import bp, service
from blueprints.genesis.forms import CartaForm, CodigoForm, DocumentoForm, LoginForm, NuevaClaveForm
from blueprints.web import limiter, render, safe_next, see_other
from core import auth as core_auth
from core import genesis
from core.permissions import Action
from models import Account

LOGIN_FAILED = "El tipo o el número de documento o la contraseña no son correctos."
# Said only to whoever typed the right password.
REFUSED = {
    service.Ingreso.CLAVE_VENCIDA: (
        "Su contraseña temporal venció: era válida por 24 horas. Pida una nueva con "
        "«¿Olvidó su contraseña?»."
    ),
    service.Ingreso.AFILIADO_INACTIVO: (
        "Su afiliación a Cajacopi EPS no está activa, por eso no puede ingresar a la oficina "
        "virtual. Comuníquese con nuestra línea de atención para revisar su estado."
    ),
    service.Ingreso.CUENTA_INACTIVA: (
        "Su usuario no está activo. Comuníquese con nuestra línea de atención."
    ),
}
SAME_AS_TEMPORARY = "La nueva contraseña debe ser distinta de la contraseña temporal."
WRONG_CODE = (
    "El código no es correcto, venció o ya se usó. Revise el último mensaje o pida un código nuevo."
)
CODE_CAP = (
    f"Ya se pidieron {service.CODE_DAILY_CAP} códigos para este documento en las últimas 24 "
    "horas. Intente de nuevo mañana o comuníquese con nuestra línea de atención."
)
RESET_KEY = "genesis_olvide"  # the session keeps the signed document a code was asked for


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


@bp.get("", strict_slashes=False)
def inicio():
    """Show "Portal Génesis" with its "Afiliados" entry."""
    return render("genesis/inicio.html")


def _login_page(form: LoginForm, status: int = 200):
    return render("genesis/login.html", "genesis/_login_form.html", status, form=form)


@bp.route("/afiliados", methods=["GET", "POST"])
@limiter.limit("10/minute;100/hour", methods=["POST"])
def login():
    """Show the "Afiliados" sign-in and sign the member in by Tipo + número + Contraseña."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = LoginForm()
    if not form.validate_on_submit():
        return _login_page(form, 422 if form.errors else 200)
    login = genesis.login_of(form.tipo_documento.data, form.numero_documento.data)
    result = check_login(Account.EPS, login, form.password.data)
    if result.user is None:
        form.password.errors.append(LOGIN_FAILED)
        return _login_page(form, 422)
    verdict = service.may_sign_in(result.user)
    if verdict is not service.Ingreso.SI:
        form.password.errors.append(REFUSED[verdict])
        return _login_page(form, 422)
    sign_in(result.user)
    target = safe_next(request.args.get("next"), home_url(result.user))
    return keep_device(see_other(target), result)


@bp.get("/inactivo")
def inactivo():
    """End the session of an affiliate the EPS's data no longer has as ACTIVO (the first gate).

    Only that session: a link here signs nobody else out.
    """
    account = current_account()
    if account is None:
        return redirect(url_for("genesis.login"))
    if genesis.afiliado_of(account) is None or genesis.afiliado_of(account).estado == "ACTIVO":
        abort(404)
    core_auth.end_session(session["sid"])
    return signed_out(REFUSED[service.Ingreso.AFILIADO_INACTIVO], Account.EPS)


@bp.post("/salir")
def salir():
    """End this session on the server and in the browser."""
    if session.get("sid"):
        core_auth.end_session(session["sid"])
    return signed_out("Cerró su sesión.", Account.EPS)


@bp.route("/cambiar-clave", methods=["GET", "POST"])
@require(Action.USE_GENESIS)
@limiter.limit("10/minute;30/hour", methods=["POST"])
def cambiar_clave():
    """Make the member replace the SMS password before any other page (first login)."""
    account = current_user._get_current_object()  # login_user() below needs the object
    if not account.must_change_password:
        return redirect(home_url(account))
    form, problems = NuevaClaveForm(), []
    if form.validate_on_submit():
        problems = core_auth.password_problems_for(account, form.password.data)
        if not problems and service.same_as_current(account, form.password.data):
            problems = [SAME_AS_TEMPORARY]
        if not problems:
            try:
                service.change_temporary_password(
                    account, form.password.data, keep_session=session["sid"]
                )
            except core_auth.AccountError:  # changed meanwhile (a double click, another tab)
                flash("Su contraseña ya había sido cambiada.", "info")
                return see_other(home_url(account))
            login_user(account)  # the login id rotated: keep this browser signed in
            flash("Su contraseña fue actualizada.", "ok")
            return see_other(home_url(account))
        form.password.errors.append(" ".join(problems))
    status = 422 if form.errors else 200
    return password_page("genesis/clave.html", form, problems, status)


@bp.route("/carta-de-derechos", methods=["GET", "POST"])
@require(Action.USE_GENESIS)
def carta():
    """Show the "carta de derechos y deberes"; the first login records its acceptance."""
    profile = current_user.eps
    form = CartaForm()
    if profile.carta_accepted_at is None and form.validate_on_submit():
        service.accept_carta(current_user)
        flash("Gracias. Ya puede usar la oficina virtual.", "ok")
        return see_other(home_url(current_user))
    if request.method == "POST" and profile.carta_accepted_at is not None:
        return see_other(home_url(current_user))
    return render(
        "genesis/carta.html", status=422 if form.errors else 200, form=form, profile=profile
    )


@bp.route("/olvide", methods=["GET", "POST"])
@limiter.limit("5/minute;30/hour", methods=["POST"])
def olvide():
    """Ask for the document and SMS a code to the mobile on file; the answer never tells if it exists."""
    form = DocumentoForm()
    if not form.validate_on_submit():
        return render("genesis/olvide.html", status=422 if form.errors else 200, form=form)
    tipo, numero = form.tipo_documento.data, form.numero_documento.data
    outcome, wait = service.send_reset_code(tipo, numero)
    if outcome is service.Envio.TOPE:
        form.numero_documento.errors.append(CODE_CAP)
        return render("genesis/olvide.html", status=429, form=form)
    if outcome is service.Envio.ESPERE:
        flash(
            "Hace menos de un minuto se pidió un código para este documento: use el último que "
            f"recibió, o pida otro en {wait} segundos.",
            "info",
        )
    session[RESET_KEY] = service.reset_ticket(tipo, numero, secret=_secret())
    return see_other(url_for("genesis.olvide_codigo"))


@bp.route("/olvide/codigo", methods=["GET", "POST"])
@limiter.limit("10/minute;50/hour", methods=["POST"])
def olvide_codigo():
    """Take the SMS code and the new password (H1 rules)."""
    try:
        tipo, numero = service.document_of_reset_ticket(
            session.get(RESET_KEY, ""), secret=_secret()
        )
    except (service.TicketExpired, service.TicketInvalid):
        flash("Escriba su documento para recibir un código nuevo.", "info")
        return redirect(url_for("genesis.olvide"))
    form, problems = CodigoForm(), []
    if form.validate_on_submit():
        result = service.reset_password(tipo, numero, form.codigo.data, form.password.data)
        if result.outcome is service.Restablecer.HECHO:
            if current_user.is_authenticated:
                logout_user()
            session.clear()
            flash("Su contraseña fue actualizada. Ya puede ingresar con ella.", "ok")
            return see_other(url_for("genesis.login"))
        if result.outcome is service.Restablecer.CODIGO:
            form.codigo.errors.append(WRONG_CODE)
        else:
            problems = result.problems
            form.password.errors.append(" ".join(problems))
    status = 422 if form.errors else 200
    return password_page("genesis/olvide_codigo.html", form, problems, status)
