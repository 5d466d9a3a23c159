"""Password reset (H3), the account page, sessions and a new activation mail."""

from __future__ import annotations

from flask import abort, flash, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from blueprints.accounts import (
    access,
    app_secret,
    base_url,
    bp,
    captcha_on,
    live_password_check,
    service,
)
from blueprints.accounts.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ForgotForm,
    NewPasswordForm,
)
from blueprints.auth import require, signed_out
from blueprints.public import service as captchas
from blueprints.web import limiter, render, see_other
from core import auth as core_auth
from core import passwords
from core.permissions import Action
from core.useragent import describe
from models import UserSession

# --- Olvide mi Contraseña ------------------------------------------------------


def _forgot_page(form: ForgotForm, status: int = 200):
    key = captchas.new_challenge() if captcha_on() else None
    form.captcha.data = ""
    return render_template("accounts/olvide.html", form=form, captcha_key=key), status


@bp.route("/restablecer", methods=["GET", "POST"])
@limiter.limit("5/minute;30/hour", methods=["POST"])
def forgot():
    """Ask for the e-mail and the captcha; the answer never tells if it exists."""
    form = ForgotForm()
    if request.method == "GET" or request.form.get("accion") == "refrescar":
        return _forgot_page(form)
    if not form.validate():
        return _forgot_page(form, 422)
    if captcha_on() and not captchas.solve(
        request.form.get("captcha_key", ""), form.captcha.data or ""
    ):
        form.captcha.errors.append("El texto no coincide con la imagen. Intente con el nuevo.")
        return _forgot_page(form, 422)
    core_auth.request_reset(form.email.data, secret=app_secret(), base_url=base_url())
    return see_other(url_for("accounts.forgot_sent"))


@bp.get("/restablecer/enviado")
def forgot_sent():
    """Say what happens next, the same for every address."""
    return render_template("accounts/olvide_enviado.html")


@bp.route("/restablecer/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def reset(token: str):
    """Show "RESTABLECER CONTRASEÑA" and set the new password."""
    try:
        user = core_auth.user_for_reset(token, secret=app_secret())
    except core_auth.AccountError as exc:
        return render_template("accounts/enlace_invalido.html", message=str(exc), reset=True), 410
    form = NewPasswordForm()
    if form.validate_on_submit():
        problems = core_auth.password_problems_for(user, form.password.data)
        if not problems:
            try:
                core_auth.set_password(user, form.password.data, reason=UserSession.RESET)
            except core_auth.AccountError as exc:
                return render_template(
                    "accounts/enlace_invalido.html", message=str(exc), reset=True
                ), 410
            if current_user.is_authenticated:
                logout_user()
            session.clear()
            flash("Su contraseña fue actualizada. Ya puede iniciar sesión.", "ok")
            return see_other(url_for("accounts.login"))
        form.password.errors.append(" ".join(problems))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "accounts/restablecer.html",
        form=form,
        token=token,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
    ), status


@bp.post("/restablecer/<token>/clave")
@limiter.limit("60/minute;600/hour")
def reset_password_check(token: str):
    """Check the new password as the user types, with the data of the link's account."""
    form = NewPasswordForm()
    try:
        user = core_auth.user_for_reset(token, secret=app_secret())
    except core_auth.AccountError as exc:
        form.password.data = ""  # nothing is checked against an unknown account
        return live_password_check(form, [], 410, message=str(exc))
    return live_password_check(
        form, core_auth.password_problems_for(user, form.password.data or "")
    )


# --- a new activation mail -------------------------------------------------------


@bp.post("/activacion/reenviar/<token>")
@limiter.limit("5/10 minutes")
def resend_activation(token: str):
    """Send a new activation link (from an old link or a pending login), with a cool-down."""
    try:
        user = service.user_for_resend(token, secret=app_secret())
    except core_auth.AccountError as exc:
        return render_template("accounts/enlace_invalido.html", message=str(exc)), 410
    wait = service.resend_activation(user, secret=app_secret(), base_url=base_url())
    return render_template("accounts/reenviado.html", wait=wait, token=token)


# --- Mi cuenta ---------------------------------------------------------------------


def _account_page(password_form=None, email_form=None, status: int = 200):
    return render(
        "accounts/cuenta.html",
        None,
        status,
        password_form=password_form or ChangePasswordForm(formdata=None, prefix="clave"),
        email_form=email_form or ChangeEmailForm(formdata=None, prefix="correo"),
        rules=passwords.RULES,
        advice=passwords.ADVICE,
    )


@bp.get("/cuenta")
@require(Action.USE_HANNA)
def account():
    """Show the account's data and the forms to change password and e-mail."""
    return _account_page()


@bp.post("/cuenta/clave")
@require(Action.USE_HANNA)
@limiter.limit("5/minute;30/hour")
def change_password():
    """Change the password (asks the current one); other sessions end."""
    form = ChangePasswordForm(prefix="clave")  # two forms on one page: distinct ids
    if form.validate():
        if not core_auth.check_password(current_user, form.current.data):
            form.current.errors.append("La contraseña actual no es correcta.")
        elif problems := core_auth.password_problems_for(current_user, form.password.data):
            form.password.errors.append(" ".join(problems))
        else:
            core_auth.set_password(current_user, form.password.data, keep_session=session["sid"])
            login_user(current_user)  # the login id rotated: keep this browser signed in
            flash("Su contraseña fue actualizada. Cerramos sus otras sesiones.", "ok")
            return see_other(url_for("accounts.account"))
    return _account_page(password_form=form, status=422)


@bp.post("/cuenta/clave/revisar")
@limiter.limit("60/minute")
def account_password_check():
    """Check the new password of "Cambiar contraseña" as the user types.

    Not @require(Action.USE_HANNA): Flask-Login would clear the session cookie of a check
    that crosses the change itself (its login id just rotated), signing the
    browser out. The session row alone says who asks; nothing is written.
    """
    user = core_auth.session_user(session.get("sid") or "")
    if user is None:
        return "", 401
    form = ChangePasswordForm(prefix="clave")
    return live_password_check(
        form, core_auth.password_problems_for(user, form.password.data or "")
    )


@bp.post("/cuenta/correo")
@require(Action.USE_HANNA)
@limiter.limit("5/minute;20/hour")
def change_email():
    """Send a confirmation link to the new address and a notice to the old one."""
    form = ChangeEmailForm(prefix="correo")
    if form.validate():
        if not core_auth.check_password(current_user, form.current.data):
            form.current.errors.append("La contraseña actual no es correcta.")
        else:
            access.request_email_change(
                current_user, form.email.data, secret=app_secret(), base_url=base_url()
            )
            flash(
                "Le enviamos un enlace de confirmación al nuevo correo. El cambio se hace "
                "cuando lo abra (vence en 24 horas).",
                "ok",
            )
            return see_other(url_for("accounts.account"))
    return _account_page(email_form=form, status=422)


@bp.route("/cuenta/correo/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def confirm_email(token: str):
    """Show the mailed link's page (a GET changes nothing); its button applies the change."""
    try:
        if request.method == "GET":
            _, new_email = access.email_change_for(token, secret=app_secret())
            return render_template("accounts/correo_confirmar.html", token=token, email=new_email)
        access.confirm_email_change(token, secret=app_secret())
    except core_auth.AccountError as exc:
        return render_template("accounts/enlace_invalido.html", message=str(exc)), 410
    flash("Su correo fue actualizado. Úselo para iniciar sesión.", "ok")
    return see_other(
        url_for("accounts.account" if current_user.is_authenticated else "accounts.login")
    )


# --- Mis sesiones --------------------------------------------------------------------


@bp.get("/cuenta/sesiones")
@require(Action.USE_HANNA)
def sessions():
    """List the browsers where the account is signed in."""
    rows = core_auth.active_sessions(current_user)
    current = core_auth.session_id(session["sid"])
    return render_template("accounts/sesiones.html", rows=rows, current=current, describe=describe)


@bp.post("/cuenta/sesiones/<int:session_id>/cerrar")
@require(Action.USE_HANNA)
def end_one_session(session_id: int):
    """End one session of the signed-in user (404 for anybody else's)."""
    row = core_auth.end_own_session(current_user, session_id, current=session["sid"]) or abort(404)
    if row.id == core_auth.session_id(session["sid"]):
        return signed_out("Cerró esta sesión.")
    flash("Cerramos esa sesión.", "ok")
    return see_other(url_for("accounts.sessions"))


@bp.post("/cuenta/sesiones/cerrar-todas")
@require(Action.USE_HANNA)
def end_all():
    """ "Cerrar sesión en todos los equipos": this one included."""
    core_auth.logout_everywhere(current_user)
    return signed_out("Cerramos su sesión en todos los equipos.")
