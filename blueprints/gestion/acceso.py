"""The back office's sign-in: e-mail and password, then a TOTP code or a recovery code."""

from __future__ import annotations

from flask import flash, redirect, request, session, url_for
from flask_login import current_user

from blueprints.auth import (
    check_login,
    current_account,
    home_url,
    keep_device,
    require,
    sign_in,
    signed_out,
)
from blueprints.gestion import SECTIONS, bp
from blueprints.gestion import service as gestion
from blueprints.gestion.forms import CodeForm, StaffLoginForm
from blueprints.web import limiter, render, safe_next, see_other
from core import auth as core_auth
from core import second_factor, throttle
from core.permissions import Action, allowed
from models import Account

LOGIN_FAILED = "El correo o la contraseña no son correctos."
WRONG_CODE = (
    "El código no es correcto o ya fue usado. Escriba el código que muestra ahora su aplicación."
)
CODE_TRIES = 5  # wrong codes in CODE_WINDOW before the password is asked again
CODE_WINDOW = 15 * 60


@bp.route("/ingresar", methods=["GET", "POST"])
@limiter.limit("10/minute;100/hour", methods=["POST"])
def ingresar():
    """Show "Gestión — Ingreso de funcionarios" and check the password (first step)."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = StaffLoginForm()
    if form.validate_on_submit():
        result = check_login(Account.STAFF, form.email.data.strip().lower(), form.password.data)
        if result.user is not None and result.user.is_active:
            sign_in(result.user)  # the second factor is still to come: the gate holds the rest
            session["gestion_next"] = safe_next(request.args.get("next"), url_for("gestion.inicio"))
            return keep_device(see_other(url_for("gestion.segundo_factor")), result)
        form.email.errors.append(LOGIN_FAILED)
        return render("gestion/ingresar.html", status=422, form=form)
    return render("gestion/ingresar.html", status=422 if form.errors else 200, form=form)


def _signed_in_staff() -> Account | None:
    account = current_account()
    return account if account is not None and account.kind == Account.STAFF else None


@bp.route("/segundo-factor", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def segundo_factor():
    """Ask for the code of the authenticator app, or a recovery code (second step)."""
    account = _signed_in_staff()
    if account is None:
        return redirect(url_for("gestion.ingresar"))
    if account.totp_enrolled_at is None:
        return redirect(url_for("gestion.inscribir"))
    form = CodeForm()
    if form.validate_on_submit():
        code = form.code.data.strip()
        digits = code.replace(" ", "")
        if digits.isdigit() and len(digits) == 6:
            passed, recovery = second_factor.accept_code(account, digits), False
        else:
            passed, recovery = second_factor.use_recovery_code(account, code), True
        if passed:
            core_auth.pass_second_factor(session["sid"])
            if recovery:
                left = second_factor.remaining_recovery_codes(account)
                flash(
                    f"Ingresó con un código de recuperación. Le quedan {left}; "
                    "genere códigos nuevos en «Mi seguridad» si le quedan pocos.",
                    "info",
                )
            return see_other(session.pop("gestion_next", None) or url_for("gestion.inicio"))
        # The quota spends one use per wrong code and refuses the one past the
        # limit: CODE_TRIES - 1 uses make the CODE_TRIES-th wrong code sign out.
        if not throttle.quota(
            throttle.Purpose.SECOND_FACTOR, str(account.id), CODE_TRIES - 1, CODE_WINDOW
        ):
            core_auth.end_session(session["sid"])
            return signed_out(
                "Demasiados códigos incorrectos. Ingrese de nuevo con su correo y contraseña.",
                Account.STAFF,
            )
        form.code.errors.append(WRONG_CODE)
    status = 422 if form.errors else 200
    return render("gestion/segundo_factor.html", status=status, form=form)


@bp.route("/segundo-factor/inscribir", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def inscribir():
    """Enrol an authenticator app: a QR code, then a first code; then the recovery codes."""
    account = _signed_in_staff()
    if account is None:
        return redirect(url_for("gestion.ingresar"))
    if account.totp_enrolled_at is not None:
        return redirect(url_for("gestion.segundo_factor"))
    secret = gestion.enrolment_secret(account)
    form = CodeForm()
    if form.validate_on_submit():
        codes = gestion.finish_enrolment(account, secret, form.code.data, ip=request.remote_addr)
        if codes is not None:
            core_auth.pass_second_factor(session["sid"])
            return render("gestion/codigos.html", codes=codes, first=True)
        form.code.errors.append(WRONG_CODE)
    uri = second_factor.provisioning_uri(secret, account.email)
    return render(
        "gestion/inscribir.html",
        status=422 if form.errors else 200,
        form=form,
        qr=second_factor.qr_svg(uri),
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    )


@bp.post("/seguridad/codigos")
@require(Action.OPEN_BACK_OFFICE)
def nuevos_codigos():
    """Replace the recovery codes with ten new ones, shown once."""
    codes = gestion.renew_recovery_codes(current_user, ip=request.remote_addr)
    return render("gestion/codigos.html", codes=codes, first=False)


@bp.get("/seguridad")
@require(Action.OPEN_BACK_OFFICE)
def seguridad():
    """Show the second factor's state and how many recovery codes are left."""
    left = second_factor.remaining_recovery_codes(current_user)
    return render("gestion/seguridad.html", left=left)


@bp.get("/")
@require(Action.OPEN_BACK_OFFICE)
def inicio():
    """Show the sections of this staff member's roles, each with its count."""
    counts = gestion.section_counts(
        [endpoint for action, endpoint, _ in SECTIONS if allowed(current_user, action)]
    )
    return render("gestion/inicio.html", counts=counts)


@bp.post("/salir")
def salir():
    """End this staff session, on the server and in the browser."""
    if session.get("sid"):
        core_auth.end_session(session["sid"])
    return signed_out("Cerró su sesión.", Account.STAFF)
