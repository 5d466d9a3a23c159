"""Hanna accounts: login, "Crear Cuenta Nueva", activation and its quiz, logout."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.accounts import access, service
from blueprints.accounts.forms import LoginForm, LookupForm, QuizCodeForm, RegistrationForm
from blueprints.public import service as captchas
from blueprints.web import limiter, render, safe_next, see_other, wants_partial
from core import passwords, tokens

bp = Blueprint("accounts", __name__)

CONFIRM_PURPOSE, CONFIRM_MAX_AGE = "registro", 20 * 60


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _base_url() -> str:
    return current_app.config["BASE_URL"]


def _captcha_on() -> bool:
    return current_app.config["CAPTCHA"] != "off"


def _sign_in(user) -> None:
    """Start a fresh server-side session (a new cookie: no fixation)."""
    old = session.get("sid")
    if old:
        access.end_session(old)
    session.clear()
    session["sid"] = access.start_session(user, request.user_agent.string)
    login_user(user)


# --- login ------------------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
@limiter.limit("10/minute;100/hour", methods=["POST"])
def login():
    """Show "INICIAR SESIÓN" and sign the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = access.authenticate(form.email.data, form.password.data)
        if user is not None and user.status == user.ACTIVE:
            _sign_in(user)
            return see_other(safe_next(request.args.get("next"), url_for("accounts.home")))
        if user is not None and user.status == user.PENDING:
            form.email.errors.append(
                "Su cuenta aún no está activa: abra el enlace del correo de activación."
            )
            resend = tokens.make_token(_secret(), tokens.RESEND, {"u": user.id})
            return render(
                "accounts/login.html",
                "accounts/_login_form.html",
                422,
                form=form,
                resend_token=resend,
            )
        elif user is not None:
            form.email.errors.append(
                "Su usuario está bloqueado. Para desbloquearlo radique un PQRSF."
            )
        else:
            form.email.errors.append("El email o la contraseña no son correctos.")
        return render("accounts/login.html", "accounts/_login_form.html", 422, form=form)
    status = 422 if form.errors else 200
    return render("accounts/login.html", "accounts/_login_form.html", status, form=form)


@bp.post("/salir")
@login_required
def logout():
    """End this session on the server and in the browser."""
    if session.get("sid"):
        access.end_session(session["sid"])
    return signed_out("Cerró su sesión.")


def signed_out(message: str | None = None):
    """Forget the browser's session and cache, then go to the login page."""
    logout_user()
    session.clear()
    if message:
        flash(message, "info")
    response = see_other(url_for("accounts.login"))
    # Shared PCs: nothing the pages showed may stay in this browser.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.get("/inicio")
@login_required
def home():
    """Show the signed-in home with the user's applications."""
    return render_template("accounts/inicio.html")


# --- Crear Cuenta Nueva -----------------------------------------------------


NAME_FIELDS = ("primer_nombre", "segundo_nombre", "primer_apellido", "segundo_apellido")


def _match_affiliate(form: RegistrationForm):
    """Find the document in the Caja's data and put its names in the form.

    Names that came from the Caja for another document are cleared, so a
    stranger's names never stay in the form of a non-affiliate.
    """
    afiliado = None
    if form.numero_documento.data and not form.numero_documento.errors:
        afiliado = service.find_afiliado(form.tipo_documento.data, form.numero_documento.data)
    for name in NAME_FIELDS:
        if afiliado is not None:
            getattr(form, name).data = getattr(afiliado, name)
        elif request.form.get("de_caja"):
            getattr(form, name).data = ""
    return afiliado


def _registration_page(
    form: RegistrationForm, status: int = 200, new_captcha: bool = True, alert: str = ""
):
    afiliado = _match_affiliate(form)
    key = request.form.get("captcha_key", "")
    if _captcha_on() and (new_captcha or not captchas.challenge(key)):
        key = captchas.new_challenge()
        form.captcha.data = ""
    return render(
        "accounts/registro.html",
        "accounts/_registro_form.html",
        status,
        form=form,
        afiliado=afiliado,
        consultado=bool(form.numero_documento.data),
        captcha_key=key,
        alert=alert,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
    )


@bp.post("/registro/consulta")
@limiter.limit("10/minute;60/hour")
def lookup():
    """Look the document up in the Caja's data and fill names and Estado."""
    document = LookupForm()
    document.validate()
    form = RegistrationForm()  # without JS the button posts the whole form: keep it
    form.numero_documento.data = document.numero_documento.data
    form.numero_documento.errors = list(document.numero_documento.errors)
    status = 422 if document.numero_documento.errors else 200
    if not wants_partial():
        return _registration_page(form, status, new_captcha=False)
    afiliado = _match_affiliate(form)
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
    return render_template(
        "accounts/_clave.html", form=form, rules=passwords.RULES, advice=passwords.ADVICE, live=True
    )


@bp.route("/registro", methods=["GET", "POST"])
@limiter.limit("20/minute;200/hour", methods=["POST"])
def register():
    """Show "Crear Cuenta Nueva", confirm it, and create the account."""
    form = RegistrationForm()
    if request.method == "GET" or request.form.get("accion") in ("refrescar", "cancelar"):
        return _registration_page(form)
    if not form.validate():
        return _registration_page(form, 422, new_captcha=False)
    if service.document_taken(form.tipo_documento.data, form.numero_documento.data):
        form.numero_documento.errors.append(
            "Este documento ya tiene una cuenta. Si no recuerda su acceso, comuníquese a "
            "nuestro call center (3714545)."
        )
        return _registration_page(form, 422, new_captcha=False)
    ticket = request.form.get("confirmacion")
    if ticket:
        return _create(form, ticket)
    if _captcha_on() and not captchas.solve(
        request.form.get("captcha_key", ""), form.captcha.data or ""
    ):
        form.captcha.errors.append("El texto no coincide con la imagen. Intente con el nuevo.")
        return _registration_page(form, 422)
    ticket = tokens.make_token(_secret(), CONFIRM_PURPOSE, _fingerprint(form))
    if wants_partial():
        response = render(
            "accounts/confirmar.html",
            "accounts/_confirmar.html",
            form=form,
            ticket=ticket,
            in_dialog=True,
            captcha_key=captchas.new_challenge() if _captcha_on() else None,
        )
        response.headers["HX-Retarget"] = "#confirmacion"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render_template("accounts/confirmar.html", form=form, ticket=ticket, in_dialog=False)


def _fingerprint(form: RegistrationForm) -> dict:
    return {
        "e": form.email.data.strip().lower(),
        "d": f"{form.tipo_documento.data}:{form.numero_documento.data}",
    }


def _create(form: RegistrationForm, ticket: str):
    try:
        signed = tokens.read_token(_secret(), CONFIRM_PURPOSE, ticket, CONFIRM_MAX_AGE)
    except (tokens.TokenExpired, tokens.TokenInvalid):
        signed = None
    if signed != _fingerprint(form):
        alert = "La confirmación venció o no corresponde a estos datos. Revise y confirme de nuevo."
        return _registration_page(form, 422, alert=alert)
    data = service.Registration(
        **{name: getattr(form, name).data for name in service.Registration.__dataclass_fields__}
    )
    try:
        masked = service.register(data, secret=_secret(), base_url=_base_url())
    except service.AccountError as exc:
        form.numero_documento.errors.append(str(exc))
        return _registration_page(form, 422)
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
        return service.user_for_activation(token, secret=_secret())
    except service.AccountError as exc:
        resend = token if isinstance(exc, service.LinkExpired) else None
        page = render_template(
            "accounts/enlace_invalido.html", message=str(exc), resend_token=resend
        )
        abort(make_response(page, 410))


def _quiz_page(token: str, user, message: str = "", status: int = 200):
    try:
        attempt = service.start_quiz(user)
    except service.AccountError:
        return render_template("accounts/bloqueado.html"), 403
    return render_template(
        "accounts/quiz.html",
        token=token,
        attempt=attempt,
        questions=service.quiz_questions(attempt),
        message=message,
        attempts_left=service.quiz_attempts_left(user),
    ), status


@bp.route("/activar/<token>", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def activate(token: str):
    """Activate at once, or ask the affiliate the activation quiz."""
    user = _activation_user(token)
    if user.status == user.BLOCKED:
        return render_template("accounts/bloqueado.html"), 403
    if user.afiliado is None:
        service.activate(user)
        _sign_in(user)
        flash("Su cuenta fue activada. Ya puede solicitar sus aplicaciones.", "ok")
        return redirect(url_for("accounts.home"), 303)
    from core.quiz import is_thin

    if is_thin(user.afiliado):
        return render_template(
            "accounts/codigo.html",
            token=token,
            thin=True,
            form=QuizCodeForm(formdata=None),
            sent_to=None,
        )
    if request.method == "GET":
        return _quiz_page(token, user)
    answers = {k: v for k, v in request.form.items() if k != "csrf_token"}
    attempt_id = request.form.get("intento", "")
    result = service.answer_quiz(user, int(attempt_id) if attempt_id.isdigit() else 0, answers)
    if result == "passed":
        _sign_in(user)
        flash("Sus datos fueron validados y su cuenta está activa.", "ok")
        return see_other(url_for("accounts.home"))
    if result == "blocked":
        return render_template("accounts/bloqueado.html"), 403
    message = (
        "El tiempo para responder terminó (2 minutos) y contó como un intento."
        if result == "expired"
        else "Alguna de sus respuestas no coincide con nuestros datos."
    )
    return _quiz_page(token, user, message, 422)


@bp.route("/activar/<token>/codigo", methods=["GET", "POST"])
@limiter.limit("5/10 minutes", methods=["POST"])
def activation_code(token: str):
    """Send a one-time code to the mobile on file, and check it ("No recuerdo mis datos")."""
    user = _activation_user(token)
    if user.status == user.BLOCKED or user.afiliado is None:
        return render_template("accounts/bloqueado.html"), 403
    form = QuizCodeForm()
    sent_to, status = None, 200
    if request.method == "POST" and request.form.get("accion") == "enviar":
        form = QuizCodeForm(formdata=None)
        try:
            sent_to = service.send_code(user)
        except service.AccountError as exc:
            flash(str(exc), "error")
    elif form.validate_on_submit():
        try:
            ok = service.verify_code(user, form.codigo.data)
        except service.AccountError as exc:
            form.codigo.errors.append(str(exc))
            ok = False
        if ok:
            _sign_in(user)
            flash("Sus datos fueron validados y su cuenta está activa.", "ok")
            return see_other(url_for("accounts.home"))
        if not form.codigo.errors:
            form.codigo.errors.append("El código no es correcto.")
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template(
        "accounts/codigo.html", token=token, form=form, sent_to=sent_to, thin=False
    ), status


# Routes of the same blueprint that live in their own modules.
from blueprints.accounts import qr, recovery  # noqa: E402, F401
