"""G1 — "Registro al Sistema Génesis" (003_… §4–6): Tipo + número → Validar; Número
Celular + Fecha de expedición, the privacy policy, "Acepto" → FINALIZAR; the notice."""

from __future__ import annotations

from flask import current_app, redirect, session, url_for

from blueprints.genesis import bp, service
from blueprints.genesis.forms import DatosForm, DocumentoForm
from blueprints.web import limiter, render, see_other
from core import genesis

# Both steps share one budget per client: each answer says something about a document.
REGISTRO_LIMIT = "10/minute;50/hour"
NOT_ACTIVE = (
    "No encontramos un afiliado activo con ese documento en la base de datos de Cajacopi EPS. "
    "Revise el tipo y el número; si cree que es un error, comuníquese con nuestra línea de "
    "atención."
)
WRONG_PROOF = (
    "El número celular o la fecha de expedición no coinciden con los datos que Cajacopi EPS "
    "tiene registrados. Revíselos; si sus datos cambiaron, comuníquese con nuestra línea de "
    "atención para actualizarlos."
)
TICKET_EXPIRED = "Pasó demasiado tiempo desde que validó su documento. Valídelo de nuevo."
TICKET_INVALID = "No pudimos leer la solicitud. Escriba su documento y valídelo de nuevo."
DONE_KEY = "genesis_registrado"  # the masked mobile the success notice names


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _page(status: int = 200, **context):
    """Render the registration page, or only its step (#registro) for htmx."""
    context.setdefault("form", DocumentoForm(formdata=None))
    context.update(proof_tries=service.PROOF_TRIES, privacy_version=genesis.PRIVACY_VERSION)
    return render("genesis/registro.html", "genesis/_registro.html", status, **context)


def _step_one_again(message: str, status: int = 422):
    form = DocumentoForm(formdata=None)
    form.numero_documento.errors = [message]
    return _page(status, form=form)


@bp.route("/registro", methods=["GET", "POST"])
@limiter.shared_limit(REGISTRO_LIMIT, scope="genesis-registro", methods=["POST"])
def registro():
    """Step 1: Tipo de documento + número → "Validar" (only Activo in the EPS data go on)."""
    form = DocumentoForm()
    if not form.validate_on_submit():
        return _page(422 if form.errors else 200, form=form)
    tipo, numero = form.tipo_documento.data, form.numero_documento.data
    found = service.check_document(tipo, numero)
    if found is service.Documento.NO_ACTIVO:
        form.numero_documento.errors.append(NOT_ACTIVE)
        return _page(422, form=form)
    if found is service.Documento.REGISTRADO:
        return _page(form=form, registrado=True)
    ficha = service.registration_ticket(tipo, numero, secret=_secret())
    return _page(datos=DatosForm(formdata=None, ficha=ficha), tipo=tipo, numero=numero)


@bp.post("/registro/datos")
@limiter.shared_limit(REGISTRO_LIMIT, scope="genesis-registro")
def registro_datos():
    """Step 2: the mobile and the date prove who it is; consent; "FINALIZAR" creates the account."""
    datos = DatosForm()
    try:
        tipo, numero = service.document_of_ticket(datos.ficha.data or "", secret=_secret())
    except service.TicketExpired:
        return _step_one_again(TICKET_EXPIRED)
    except service.TicketInvalid:
        return _step_one_again(TICKET_INVALID)
    step = dict(datos=datos, tipo=tipo, numero=numero)
    if not datos.validate_on_submit():
        return _page(422, **step)
    result = service.register(tipo, numero, datos.celular.data, datos.fecha_expedicion.data)
    outcome = result.outcome
    if outcome is service.Registro.HECHO:
        session[DONE_KEY] = result.masked_phone
        return see_other(url_for("genesis.registro_exito"))
    if outcome is service.Registro.REGISTRADO:
        return _page(registrado=True)
    if outcome is service.Registro.NO_ACTIVO:
        return _step_one_again(NOT_ACTIVE)
    if outcome is service.Registro.AGOTADO:
        return _page(429, agotado=result.wait, **step)
    return _page(422, proof_error=WRONG_PROOF, **step)


@bp.get("/registro/exito")
def registro_exito():
    """Show the manual's success notice with the masked mobile the SMS went to."""
    masked = session.get(DONE_KEY)
    if not masked:
        return redirect(url_for("genesis.registro"))
    return render("genesis/registro_exito.html", masked_phone=masked)


@bp.get("/politica-de-privacidad")
def politica():
    """Show the "Política de Privacidad de Datos" (Ley 1581 de 2012)."""
    return render("genesis/politica.html", privacy_version=genesis.PRIVACY_VERSION)
