"""Filing a PQRSF (G7), its radicado page and file, and "Consulta PQRDS" (G6).

Who may see a filed PQRSF here: the browser that filed it (its radicados are
kept in the session) or the signed-in account that filed it; anyone else is
sent to the consulta, which answers only when the document type, the number
and the radicado all match. Staff read cases in the back office.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import current_app, redirect, render_template, request, session, url_for

from blueprints.accounts import captcha_on
from blueprints.auth import current_account
from blueprints.pqrs import bp
from blueprints.pqrs.forms import ConsultaForm, InformacionForm, RadicarForm, new_form_key
from blueprints.public import service as captchas
from blueprints.web import body_limit, limiter, render, see_other, send_attachment
from core import colombia, pqrs, uploads
from core.pqrs import CaseError
from core.pqrs import resume as citizen_reply
from models import Account, Pqrs

FILE_FIELD = "adjunto"
SESSION_KEY = "pqrs_radicados"  # the radicados this browser filed, newest last
SESSION_KEEP = 10
BROWSER_KEY = "pqrs_navegador"  # binds each shown form's key to the browser it was shown in
STALE_FORM = "El formulario venció. Revise los datos, elija el adjunto otra vez y envíelo de nuevo."
LINK_INVALID = (
    "El enlace de desbloqueo no es válido o ya venció (o su usuario ya fue desbloqueado). "
    "Puede radicar la PQRSF de todos modos: escriba sus datos y envíela."
)
ONE_FILE = "Adjunte un solo archivo."
CAPTCHA_WRONG = "El texto no coincide con la imagen. Intente con el nuevo."
TOO_MANY = (
    "Ya se radicaron varias PQRSF hoy con este correo o este celular. Si necesita agregar "
    "algo a una que ya radicó, consúltela con su código o llame a nuestra línea de atención."
)
NO_MATCH = (
    "No encontramos una PQRDS con esos datos. Revise el tipo y el número de documento y el "
    "código, tal como aparecen en el mensaje que le enviamos."
)
REPLY_EXPIRED = (
    "El formulario para enviar la información venció. Consulte su PQRDS de nuevo con el "
    "tipo y número de documento y el código."
)
REPLY_THANKS = (
    "Recibimos la información. El plazo de respuesta vuelve a correr desde hoy; la fecha "
    "límite se actualizó."
)
REPLY_LATE = (
    "Su mensaje no se registró: esta PQRDS ya no espera esa información (fue respondida, "
    "cerrada, o le pedimos otra cosa después). Vea abajo su estado y lo que le pedimos."
)
FOLLOW_LIMIT = (
    "Se hicieron demasiadas consultas de este código hoy. Por seguridad, inténtelo de nuevo mañana."
)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


def _consulta_url() -> str:
    return current_app.config["BASE_URL"].rstrip("/") + url_for("pqrs.consulta")


def _captcha_needed() -> bool:
    """The anonymous answer a captcha; a signed-in account already proved itself."""
    return captcha_on() and current_account() is None


def _browser_nonce() -> str:
    """Return this browser's random PQRSF nonce (kept in its signed session cookie)."""
    nonce = session.get(BROWSER_KEY)
    if not isinstance(nonce, str) or not nonce:
        nonce = session[BROWSER_KEY] = secrets.token_urlsafe(16)
    return nonce


def _stored_key(form_key: str) -> str:
    """Return the form's key bound to this browser, as Pqrs.form_key keeps it.

    A double click in the same browser finds its first PQRSF; the same key
    replayed from another browser is a new form there, and never names or
    shows the first one's radicado.
    """
    return hashlib.sha256(f"{_browser_nonce()}:{form_key}".encode()).hexdigest()


def _remember(radicado: str) -> None:
    """Let this browser see the radicado's page and file (the last SESSION_KEEP filed)."""
    kept = [r for r in session.get(SESSION_KEY, []) if r != radicado]
    session[SESSION_KEY] = [*kept, radicado][-SESSION_KEEP:]


def _own_or_none(radicado: str) -> Pqrs | None:
    """Return the PQRSF if this browser filed it or the signed-in account did; else None."""
    found = pqrs.by_radicado(radicado)
    if found is None:
        return None
    account = current_account()
    if found.radicado in session.get(SESSION_KEY, []):
        return found
    if account is not None and found.account_id == account.id:
        return found
    return None


# --- G7: filing ----------------------------------------------------------------------


def _form_page(form: RadicarForm, status: int = 200, **context):
    key = captchas.new_challenge() if _captcha_needed() else None
    form.captcha.data = ""
    chosen = pqrs.tipo_of(form.tipo.data)
    return render(
        "pqrs/radicar.html",
        None,
        status,
        form=form,
        tipos=list(pqrs.TIPOS.values()),
        chosen=chosen,
        captcha_key=key,
        **context,
    )


def _new_form(blocked: Account | None, token: str) -> RadicarForm:
    """Build the empty form: prefilled from the blocked page's link, else from the signed-in account."""
    if blocked is not None:
        identity = pqrs.identity_of(blocked)
        identity.pop("celular", None)  # the link carries who is blocked, not where to text them
        form = RadicarForm(formdata=None, tipo=Pqrs.DESBLOQUEO, cuenta=token, **identity)
    else:
        form = RadicarForm(formdata=None, **pqrs.identity_of(current_account()))
        if pqrs.tipo_of(request.args.get("tipo", "")):
            form.tipo.data = request.args["tipo"]
    form.form_key.data = new_form_key()
    _browser_nonce()  # before the first submit, so a double click's two posts share it
    return form


def _blocked_from(form: RadicarForm) -> tuple[Account | None, bool]:
    """Read the blocked account from the form's link; (None, False) when the link is refused."""
    if not form.cuenta.data:
        return None, True
    blocked = pqrs.blocked_account(_secret(), form.cuenta.data)
    if blocked is None:
        form.cuenta.data = ""
        return None, False
    return blocked, True


def _one_part() -> pqrs.Upload | None | str:
    """Return the chosen file, None without one, or the error when several came."""
    parts = [p for p in request.files.getlist(FILE_FIELD) if p.filename]
    if len(parts) > 1:
        return ONE_FILE
    return pqrs.Upload(parts[0].stream, parts[0].filename) if parts else None


@bp.route("", methods=["GET", "POST"])
@body_limit(pqrs.MAX_BODY)
@limiter.limit("5/minute;20/hour", methods=["POST"])
def radicar():
    """Show the PQRSF form (anyone, signed in or not) and file it."""
    if request.method == "GET":
        token = request.args.get("cuenta", "")
        blocked = pqrs.blocked_account(_secret(), token) if token else None
        notice = LINK_INVALID if token and blocked is None else ""
        return _form_page(_new_form(blocked, token), blocked=blocked, notice=notice)
    form = RadicarForm()
    blocked, link_ok = _blocked_from(form)
    if not link_ok:
        return _form_page(form, 422, notice=LINK_INVALID)
    if request.form.get("accion") == "refrescar":  # a new captcha without JavaScript
        return _form_page(form, blocked=blocked)
    valid = form.validate()
    if not form.has_valid_key():
        form.form_key.data = new_form_key()
        return _form_page(form, 422, blocked=blocked, adjunto_error=STALE_FORM)
    if not valid:
        return _form_page(form, 422, blocked=blocked)
    if _captcha_needed() and not captchas.solve(
        request.form.get("captcha_key", ""), request.form.get("captcha", "")
    ):
        form.captcha.errors = [CAPTCHA_WRONG]
        return _form_page(form, 422, blocked=blocked)
    return _file(form, blocked)


def _file(form: RadicarForm, blocked: Account | None):
    """File the validated form; show its radicado, or the form again with what went wrong."""
    part = _one_part()
    if isinstance(part, str):
        return _form_page(form, 422, blocked=blocked, adjunto_error=part)
    try:
        made = pqrs.file(
            form.filing(),
            _stored_key(form.form_key.data),
            part,
            _upload_dir(),
            _consulta_url(),
            account=current_account(),
            cuenta_bloqueada=blocked,
        )
    except pqrs.DuplicateSubmit as sent:
        made = sent.pqrs  # the same form, the same filer: its first radicado
    except pqrs.StaleForm:
        form.form_key.data = new_form_key()
        return _form_page(form, 422, blocked=blocked, adjunto_error=STALE_FORM)
    except pqrs.TooManyFilings as exc:
        response = _form_page(form, 429, blocked=blocked, aviso=TOO_MANY)
        response.headers["Retry-After"] = str(exc.wait_seconds)
        return response
    except uploads.UploadError as refused:
        return _form_page(form, 422, blocked=blocked, adjunto_error=refused.message)
    _remember(made.radicado)
    return see_other(url_for("pqrs.radicado", radicado=made.radicado))


def _too_large(_error):
    """Answer a body over the form's cap in words, with the way back (not a 500).

    Under the cap, the body was refused for a text field over Werkzeug's form
    memory limit: the file is not what to blame.
    """
    texto = (request.content_length or 0) <= pqrs.MAX_BODY
    return render_template("pqrs/muy_grande.html", texto=texto), 413


bp.register_error_handler(413, _too_large)


@bp.get("/radicado/<radicado>")
def radicado(radicado: str):
    """Show the filed PQRSF's code, type and due date to its filer; others go to the consulta."""
    found = _own_or_none(radicado)
    if found is None:
        return redirect(url_for("pqrs.consulta"))
    return render_template(
        "pqrs/radicado.html",
        caso=found,
        tipo=pqrs.TIPOS[found.tipo],
        adjunto=pqrs.attachment_of(found),
        mask_email=colombia.mask_email,
        mask_phone=colombia.mask_phone,
    )


@bp.get("/radicado/<radicado>/adjunto")
def adjunto(radicado: str):
    """Download the file filed with the PQRSF (its filer only; 404 for anyone else)."""
    found = _own_or_none(radicado)
    attachment = pqrs.attachment_of(found) if found is not None else None
    return send_attachment(attachment, _upload_dir())


# --- G6: Consulta PQRDS ----------------------------------------------------------------


def _consulta_page(form: ConsultaForm, status: int = 200, **context):
    return render(
        "pqrs/consulta.html",
        "pqrs/_consulta.html",
        status,
        form=form,
        estados=pqrs.ESTADOS,
        tipo_name=pqrs.tipo_name,
        **context,
    )


@bp.route("/consulta", methods=["GET", "POST"])
@limiter.limit("10/minute;60/hour", methods=["POST"])
def consulta():
    """ "Consulta PQRDS": tipo y número de documento y código → its state and answers, or nothing."""
    if request.method == "GET":
        return _consulta_page(ConsultaForm(formdata=None))
    form = ConsultaForm()
    if not form.validate():
        return _consulta_page(form, 422)
    wait = pqrs.follow_allowed(form.radicado.data)  # before comparing: each try costs
    if wait:
        response = _consulta_page(form, 429, limite=FOLLOW_LIMIT)
        response.headers["Retry-After"] = str(wait)
        return response
    found = pqrs.follow(form.tipo_documento.data, form.numero_documento.data, form.radicado.data)
    if found is None:
        return _consulta_page(form, no_match=NO_MATCH)
    return _case_page(form, found)


def _case_page(
    form: ConsultaForm,
    found,
    status: int = 200,
    reply: InformacionForm | None = None,
    **context,
):
    """Show a matched PQRSF; one waiting for information gets the form to send it."""
    if found.estado == found.INFORMACION and reply is None:
        reply = InformacionForm(formdata=None)
        reply.ficha.data = pqrs.reply_token(found, secret=current_app.config["SECRET_KEY"])
    if found.estado != found.INFORMACION:
        reply = None
    return _consulta_page(
        form, status, caso=found, pasos=pqrs.public_steps(found), informacion=reply, **context
    )


@bp.post("/consulta/informacion")
@limiter.limit("10/minute;60/hour")
def informacion():
    """Take the citizen's answer to "Pedir información": the term runs again (Ley 1755, art. 17)."""
    reply = InformacionForm()
    named = pqrs.pqrs_for_reply(reply.ficha.data, secret=current_app.config["SECRET_KEY"])
    if named is None:  # an old or forged form: ask to look the PQRSF up again
        return _consulta_page(ConsultaForm(formdata=None), 422, no_match=REPLY_EXPIRED)
    found = named.pqrs
    form = ConsultaForm(formdata=None, radicado=found.radicado, tipo_documento=found.tipo_documento)
    form.numero_documento.data = found.numero_documento
    if not reply.validate():
        return _case_page(form, found, 422, reply)
    try:
        found = citizen_reply(found.id, reply.informacion.data, request_id=named.request_id)
    except CaseError:
        # Answered, closed or asked again meanwhile (or this form was sent already):
        # nothing was recorded, and the page says so, with the case as it is now.
        found = pqrs.by_radicado(found.radicado)
        return _case_page(form, found, 409, tarde=REPLY_LATE)
    return _case_page(form, found, recibida=REPLY_THANKS)
