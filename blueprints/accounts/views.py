"""Hanna accounts: login, "Crear Cuenta Nueva", activation and its quiz, logout."""

from __future__ import annotations

from datetime import date

from flask import (
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from blueprints.accounts import app_secret, base_url, bp, captcha_on, live_password_check, service
from blueprints.accounts.forms import AfiliadoForm, LoginForm, QuizCodeForm, RegistrationForm
from blueprints.aplicaciones.service import tiles_for
from blueprints.auth import check_login, home_url, keep_device, require, sign_in, signed_out
from blueprints.public import service as captchas
from blueprints.web import limiter, lookup_allowed, render, safe_next, see_other, wants_partial
from core import auth as core_auth
from core import passwords, pqrs, tokens
from core.permissions import Action
from models import Account, Pqrs

# --- login ------------------------------------------------------------------


LOGIN_FAILED = (
    "El email o la contraseña no son correctos. Si acaba de crear su cuenta, actívela "
    "primero con el enlace que le enviamos por correo (le enviamos uno nuevo si hace falta)."
)


@bp.route("/", methods=["GET", "POST"])
@limiter.limit("10/minute;100/hour", methods=["POST"])
def login():
    """Show "INICIAR SESIÓN" and sign the user in."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        result = check_login(Account.HANNA, form.email.data.strip().lower(), form.password.data)
        user = result.user
        if user is not None and user.status == user.ACTIVE:
            sign_in(user)
            target = safe_next(request.args.get("next"), url_for("accounts.home"))
            return keep_device(see_other(target), result)
        if user is not None and user.status == user.BLOCKED:
            # The right password: the same signed link as the blocked page, so a
            # user who comes back days later files a PQRSF with their identity.
            form.email.errors.append(
                Markup(
                    'Su usuario está bloqueado. Para desbloquearlo <a href="{}">radique un PQRSF</a>.'
                ).format(_desbloqueo_link(user))
            )
        else:
            if user is not None:  # pending: the right password, but not active yet
                # Said only by e-mail: the page must not tell a stranger who just
                # registered this address whether it already had an account.
                service.resend_activation(user, secret=app_secret(), base_url=base_url())
            form.email.errors.append(LOGIN_FAILED)
        return render("accounts/login.html", "accounts/_login_form.html", 422, form=form)
    status = 422 if form.errors else 200
    return render("accounts/login.html", "accounts/_login_form.html", status, form=form)


@bp.post("/salir")
@require(Action.USE_HANNA)
def logout():
    """End this session on the server and in the browser."""
    if session.get("sid"):
        core_auth.end_session(session["sid"])
    return signed_out("Cerró su sesión.")


@bp.get("/inicio")
@require(Action.USE_HANNA)
def home():
    """Show the signed-in home with the user's applications."""
    return render_template("accounts/inicio.html", tiles=tiles_for(current_user))


# --- Crear Cuenta Nueva -----------------------------------------------------


NAME_FIELDS = ("primer_nombre", "segundo_nombre", "primer_apellido", "segundo_apellido")


LOOKUP_LIMITED = (
    "Consultó demasiados documentos seguidos. Espere unos minutos y vuelva a intentarlo."
)


def _lookup_budget(form: AfiliadoForm) -> bool:
    """Spend one look-up of the shared per-IP limit, unless this browser just looked this one up.

    Every page that shows a look-up result comes through here (the htmx
    partial, the no-JS "Consultar", every re-render of the form), so no path
    has a bucket of its own.
    """
    document = f"{form.tipo_documento.data}:{form.numero_documento.data}"
    seen = tokens.digest(f"{app_secret()}:consulta:{document}")[:16]  # no document in the cookie
    if session.get("consulta") == seen:
        return True
    if not lookup_allowed():
        return False
    session["consulta"] = seen
    return True


def _match_affiliate(form: AfiliadoForm):
    """Find the document in the Caja's data and put its names in the form.

    Names that came from the Caja for another document are cleared, so a
    stranger's names never stay in the form of a non-affiliate.
    """
    afiliado = None
    if form.numero_documento.data and not form.numero_documento.errors:
        if _lookup_budget(form):
            afiliado = service.find_afiliado(form.tipo_documento.data, form.numero_documento.data)
        else:
            form.numero_documento.errors = [*form.numero_documento.errors, LOOKUP_LIMITED]
    for name in NAME_FIELDS:
        if afiliado is not None:
            getattr(form, name).data = getattr(afiliado, name)
        elif request.form.get("de_caja"):
            getattr(form, name).data = ""
    return afiliado


def _registration_page(
    form: RegistrationForm,
    status: int = 200,
    new_captcha: bool = True,
    alert: str = "",
    solicitud: str | None = None,
    retype: bool | None = None,
):
    """Render "Crear Cuenta Nueva"; solicitud is the open request whose captcha is solved."""
    afiliado = _match_affiliate(form)
    key = None
    if captcha_on() and not solicitud:
        key = request.form.get("captcha_key", "")
        if new_captcha or not captchas.challenge(key):
            key = captchas.new_challenge()
    form.captcha.data = ""
    if retype is None:  # passwords are never sent back: say they must be typed again
        retype = bool(request.form.get("password") or request.form.get("confirm"))
    return render(
        "accounts/registro.html",
        "accounts/_registro_form.html",
        status,
        form=form,
        afiliado=afiliado,
        consultado=bool(form.numero_documento.data),
        captcha_key=key,
        solicitud=solicitud if captcha_on() else None,  # nothing to remember without one
        retype=retype,
        alert=alert,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
    )


@bp.post("/registro/consulta")
@limiter.limit("30/minute")  # a flood guard: the look-ups themselves spend LOOKUP_LIMIT
def lookup():
    """Look the document up in the Caja's data and fill names and Estado."""
    # Without JS the button posts the whole form: it comes back whole. The partial
    # draws the document and the names only.
    partial = wants_partial()
    form = AfiliadoForm() if partial else RegistrationForm()
    form.validate_document()
    form.tipo_documento.errors = []  # a type off the list is shown as the form's default
    status = 422 if form.numero_documento.errors else 200
    if not partial:
        solicitud = request.form.get("solicitud")  # a solved captcha stays solved
        if not service.registration_open(solicitud):
            solicitud = None
        return _registration_page(form, status, new_captcha=False, solicitud=solicitud)
    afiliado = _match_affiliate(form)
    if LOOKUP_LIMITED in form.numero_documento.errors:
        status = 429
    return render(
        "accounts/registro.html",
        "accounts/_datos_afiliado.html",
        status,
        form=form,
        afiliado=afiliado,
        consultado=True,
        swapped=True,  # the document field is outside the swap: show its error here
    )


@bp.post("/registro/clave")
@limiter.limit("60/minute")
def password_check():
    """Check the password rules as the user types (htmx)."""
    form = RegistrationForm()
    form.validate()
    return live_password_check(form, form.password.errors)


DOCUMENT_TAKEN = (
    "Este documento ya tiene una cuenta. Si no recuerda su acceso, comuníquese a "
    "nuestro call center (605) 371 4545."
)


@bp.route("/registro", methods=["GET", "POST"])
@limiter.limit("20/minute;200/hour", methods=["POST"])
def register():
    """Show "Crear Cuenta Nueva", hold it on the server, and create the account once confirmed."""
    form = RegistrationForm()
    if request.method == "GET" or request.form.get("accion") == "refrescar":
        return _registration_page(form)
    ticket = request.form.get("confirmacion")
    if ticket:
        return _cancel(ticket) if request.form.get("accion") == "cancelar" else _create(ticket)
    valid = form.validate()
    # The captcha comes first: nothing about the document is said to a robot.
    solicitud = request.form.get("solicitud") or None
    if not service.registration_open(solicitud):
        solicitud = None
        if captcha_on():
            if not captchas.solve(request.form.get("captcha_key", ""), form.captcha.data or ""):
                form.captcha.errors.append(
                    "El texto no coincide con la imagen. Intente con el nuevo."
                )
                return _registration_page(form, 422)
            solicitud = service.open_registration()
    if not valid:
        return _registration_page(form, 422, solicitud=solicitud)
    if service.document_taken(form.tipo_documento.data, form.numero_documento.data):
        service.forget_registration(solicitud)  # each such answer costs a captcha
        form.numero_documento.errors.append(DOCUMENT_TAKEN)
        return _registration_page(form, 422)
    data = service.Registration(
        **{name: getattr(form, name).data for name in service.Registration.__dataclass_fields__}
    )
    try:
        ticket = service.hold_registration(solicitud, data)
    except service.RequestSpent as exc:
        form.captcha.errors.append(str(exc))
        return _registration_page(form, 422)
    return _confirmation(_summary(form), ticket)


def _summary(form: RegistrationForm) -> dict:
    return {name: getattr(form, name).data for name in service.Registration.__dataclass_fields__}


def _confirmation(held: dict, ticket: str, spent: str = ""):
    """Show "Confirmar Solicitud": a modal dialog over the form (htmx) or its own page."""
    if wants_partial():
        response = render(
            "accounts/confirmar.html",
            "accounts/_confirmar.html",
            422 if spent else 200,
            held=held,
            ticket=ticket,
            spent=spent,
            in_dialog=True,
            captcha_on=captcha_on(),
            captcha_key=captchas.new_challenge() if spent and captcha_on() else None,
        )
        response.headers["HX-Retarget"] = "#confirmacion"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render_template("accounts/confirmar.html", held=held, ticket=ticket, in_dialog=False)


def _prefilled(data: dict | None) -> RegistrationForm:
    form = RegistrationForm(formdata=None)
    for name, value in (data or {}).items():
        if name in form and name not in ("password", "confirm", "captcha"):
            form[name].data = value
    if data and data.get("fecha_nacimiento"):
        form.fecha_nacimiento.data = date.fromisoformat(data["fecha_nacimiento"])
    return form


def _cancel(ticket: str):
    """Forget the held data ("Cancelar"); the captcha stays solved for the corrected form."""
    data, solicitud = service.cancel_registration(ticket)
    if wants_partial():
        # The form is still in the browser as typed: only its request ticket changes.
        response = render(
            "accounts/confirmar.html",
            "accounts/_cancelado.html",
            solicitud=solicitud if captcha_on() else None,
            captcha_key=captchas.new_challenge() if captcha_on() and not solicitud else None,
        )
        response.headers["HX-Retarget"] = "#confirmacion"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return _registration_page(_prefilled(data), solicitud=solicitud, retype=bool(data))


def _create(ticket: str):
    """Spend the held registration ("Crear Usuario") and show "Guardado Exitosamente"."""
    held = service.held_registration(ticket)
    try:
        masked = service.register(ticket, secret=app_secret(), base_url=base_url())
    except service.RequestSpent as exc:
        if wants_partial():
            return _confirmation({}, "", spent=str(exc))
        return _registration_page(RegistrationForm(formdata=None), 422, alert=str(exc))
    except core_auth.AccountError as exc:
        service.forget_registration(ticket)
        form = _prefilled(held)
        form.numero_documento.errors.append(str(exc))
        if wants_partial():
            return _confirmation({}, "", spent=str(exc))
        return _registration_page(form, 422, retype=True)
    session["guardado"] = masked
    return see_other(url_for("accounts.registered"))


@bp.get("/registro/guardado")
def registered():
    """Show "Guardado Exitosamente" with the masked address."""
    masked = session.get("guardado") or abort(404)
    return render_template("accounts/guardado.html", masked_email=masked)


# --- activation -------------------------------------------------------------


def _activation_user(token: str):
    try:
        return service.user_for_activation(token, secret=app_secret())
    except core_auth.AccountError as exc:
        resend = token if isinstance(exc, core_auth.LinkExpired) else None
        page = render_template(
            "accounts/enlace_invalido.html", message=str(exc), resend_token=resend
        )
        abort(make_response(page, 410))


def _desbloqueo_link(user) -> str:
    """Return the desbloqueo PQRSF's link, signed for this blocked account (prefilled form)."""
    return url_for(
        "pqrs.radicar", tipo=Pqrs.DESBLOQUEO, cuenta=pqrs.desbloqueo_token(app_secret(), user)
    )


def _blocked_page(user):
    """Say the account is blocked, with the link to file its desbloqueo PQRSF (prefilled)."""
    return render_template("accounts/bloqueado.html", pqrs_link=_desbloqueo_link(user)), 403


def _quiz_page(token: str, user, attempt, status: int = 200):
    return render_template(
        "accounts/quiz.html",
        token=token,
        attempt=attempt,
        questions=service.quiz_questions(attempt),
        attempts_left=service.quiz_attempts_left(user),
        has_mobile=bool(service.mobile_on_file(user)),
    ), status


def _quiz_start_page(token: str, user, notice: str = "", status: int = 200):
    """Show what the quiz asks and the button that starts its clock (a GET starts nothing)."""
    if not notice and service.idle_attempt_pending(user):
        notice = "tiempo"
    return render_template(
        "accounts/quiz_inicio.html",
        token=token,
        notice=notice,
        attempts_left=service.quiz_attempts_left(user),
        has_mobile=bool(service.mobile_on_file(user)),
    ), status


def _code_page(token: str, user, form=None, sent_to=None, send_error="", status: int = 200):
    return render_template(
        "accounts/codigo.html",
        token=token,
        form=form or QuizCodeForm(formdata=None),
        sent_to=sent_to,
        send_error=send_error,
        thin=service.activation_kind(user) is service.Activation.CODE,
        has_mobile=bool(service.mobile_on_file(user)),
    ), status


def _activated(user, message: str):
    sign_in(user)
    flash(message, "ok")
    return see_other(url_for("accounts.home"))


@bp.route("/activar/<token>", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def activate(token: str):
    """Open the mailed link's page; only a POST activates, starts the quiz or grades it."""
    user = _activation_user(token)
    if user.status == user.BLOCKED:
        return _blocked_page(user)
    kind = service.activation_kind(user)
    if kind is service.Activation.LINK:
        if request.method == "POST" and request.form.get("accion") == "activar":
            service.activate(user)
            return _activated(user, "Su cuenta fue activada. Ya puede iniciar sesión en Hanna.")
        return render_template("accounts/activar.html", token=token)
    if kind is service.Activation.CODE:
        return _code_page(token, user)
    if request.method == "GET":
        attempt = service.live_attempt(user)  # a reload shows the started quiz again
        if attempt is not None:
            return _quiz_page(token, user, attempt)
        if not service.quiz_attempts_left(user):
            return _blocked_page(user)  # the last try ran out of time; the next POST records it
        return _quiz_start_page(token, user)
    if request.form.get("accion") == "comenzar":
        result, attempt, timed_out = service.start_quiz(user)
        if result is service.QuizResult.BLOCKED:
            return _blocked_page(user)
        return _quiz_page(token, user, attempt)
    return _grade_quiz(token, user)


def _grade_quiz(token: str, user):
    """Grade the posted answers; a wrong or late attempt shows the start page again."""
    raw_id = request.form.get("intento", "")
    attempt_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 16 else 0
    answers = {k: v for k, v in request.form.items() if k not in ("csrf_token", "intento")}
    result = service.answer_quiz(user, attempt_id, answers)
    if result is service.QuizResult.PASSED:
        return _activated(user, "Sus datos fueron validados y su cuenta está activa.")
    if result is service.QuizResult.BLOCKED:
        return _blocked_page(user)
    notice = "tiempo" if result is service.QuizResult.EXPIRED else "respuestas"
    return _quiz_start_page(token, user, notice, 422)


@bp.route("/activar/<token>/codigo", methods=["GET", "POST"])
@limiter.limit("5/10 minutes", methods=["POST"])
def activation_code(token: str):
    """Send a one-time code to the mobile on file, and check it ("No recuerdo mis datos")."""
    user = _activation_user(token)
    if user.hanna.afiliado_id is None:
        abort(404)
    if user.status == user.BLOCKED:
        return _blocked_page(user)
    if request.method == "GET":
        return _code_page(token, user)
    if request.form.get("accion") == "enviar":
        try:
            return _code_page(token, user, sent_to=service.send_code(user))
        except core_auth.AccountError as exc:
            return _code_page(token, user, send_error=str(exc), status=422)
    form = QuizCodeForm()
    if not form.validate():
        return _code_page(token, user, form=form, status=422)
    try:
        result = service.verify_code(user, form.codigo.data)
    except core_auth.AccountError as exc:
        form.codigo.errors.append(str(exc))
        return _code_page(token, user, form=form, status=422)
    if result is service.QuizResult.PASSED:
        return _activated(user, "Sus datos fueron validados y su cuenta está activa.")
    if result is service.QuizResult.BLOCKED:
        return _blocked_page(user)
    form.codigo.errors.append("El código no es correcto.")
    return _code_page(token, user, form=form, status=422)
