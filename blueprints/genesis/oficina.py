"""The virtual office (SPEC G2–G4; 003_… §7–9): "Solicitud de Autorizaciones" and
"Consulta Autorizaciones" for the members of the account's family group.

Every member id and request number goes through owned_or_404: anything outside
the family group (core.genesis.family_of) is answered as if it did not exist.
"""

from __future__ import annotations

from flask import current_app, flash, render_template, request, url_for

from blueprints.auth import current_account, owned_or_404, require
from blueprints.genesis import account_key, bp, member_or_404, render_office
from blueprints.genesis.oficina_forms import ContactoForm, SolicitudForm, new_form_key
from blueprints.web import body_limit, limiter, see_other, send_attachment, wants_partial
from core import genesis, uploads
from core.eps_data import ESTADOS
from core.permissions import Action
from models import EpsAfiliado, SolicitudAutorizacion

FILE_FIELD = "soporte"
STALE_FORM = "El formulario venció. Elija el soporte otra vez y envíe la solicitud de nuevo."
NOT_ACTIVE = (
    "{nombre} no tiene la afiliación activa en Cajacopi EPS (estado: {estado}), por eso no se "
    "pueden solicitar autorizaciones para esta persona. Comuníquese con nuestra línea de "
    "atención para revisar su estado."
)
TOO_MANY = (
    f"Ya se enviaron {genesis.REQUESTS_PER_HOUR} solicitudes en la última hora desde esta "
    "cuenta. Espere un poco antes de enviar otra."
)
LOCKED = (
    "El celular y el correo de esta persona solo los puede cambiar ella misma, desde su propia "
    "cuenta del Portal Génesis: son los que usa para ingresar."
)
TABS = ("autorizaciones", "solicitudes")


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


def _request_or_404(numero: str) -> SolicitudAutorizacion:
    """Return a request of the family group by its number, or answer 404."""
    return owned_or_404(Action.VIEW_AUTHORIZATION_REQUEST, genesis.request_by_numero(numero))


# --- the office ---------------------------------------------------------------------


@bp.get("/oficina")
@require(Action.USE_GENESIS)
def oficina():
    """Show "Oficina Virtual Cajacopi EPS" with its options."""
    return render_office("genesis/oficina.html", afiliado=genesis.afiliado_of(current_account()))


def _nucleo(option: str):
    me = genesis.afiliado_of(current_account())
    return render_office("genesis/nucleo.html", opcion=option, miembros=genesis.family_of(me))


@bp.get("/solicitud")
@require(Action.USE_GENESIS)
def solicitud():
    """G3: the núcleo familiar; choosing a member starts with their contact data."""
    return _nucleo("solicitud")


@bp.get("/consulta")
@require(Action.USE_GENESIS)
def consulta():
    """G4: the núcleo familiar; choosing a member shows their authorizations."""
    return _nucleo("consulta")


# --- G3: contact data first ------------------------------------------------------------


@bp.get("/solicitud/<int:member_id>/contacto")
@require(Action.USE_GENESIS)
def contacto(member_id: int):
    """Show the member's contact data: "Mis datos son correctos" or "Actualizar"."""
    return render_office("genesis/contacto.html", miembro=member_or_404(member_id), form=None)


@bp.post("/solicitud/<int:member_id>/contacto")
@require(Action.USE_GENESIS)
def contacto_correctos(member_id: int):
    """Record that the contact data is right, and go on to the member's request page."""
    member = member_or_404(member_id)
    genesis.confirm_contact(member)
    return see_other(url_for("genesis.solicitud_miembro", member_id=member.id))


def _contact_form(member: EpsAfiliado) -> ContactoForm:
    if request.method == "POST":
        form = ContactoForm()
        form.set_places()
        return form
    form = ContactoForm(
        formdata=None,
        celular=member.celular,
        email=member.email,
        direccion=member.direccion,
        municipio=member.municipio,
    )
    form.set_places(request.args.get("departamento"))
    if request.args.get("departamento") and form.departamento.data != (member.municipio or "")[:2]:
        form.municipio.data = ""  # another department: its towns, none chosen yet
    return form


@bp.route("/solicitud/<int:member_id>/contacto/editar", methods=["GET", "POST"])
@require(Action.USE_GENESIS)
def contacto_editar(member_id: int):
    """ "Actualizar": the contact form, then "¿Confirma la actualización?", then save it."""
    member = member_or_404(member_id)
    form = _contact_form(member)
    page = dict(
        miembro=member, form=form, bloqueado=genesis.channels_locked(current_account(), member)
    )
    if request.method == "GET":
        return render_office("genesis/contacto.html", "genesis/_municipios.html", **page)
    accion = request.form.get("accion", "actualizar")
    # "Corregir" on the confirmation, or "Cargar municipios" without JavaScript: the form again.
    if accion in ("municipios", "corregir"):
        return render_office("genesis/contacto.html", **page)
    if not form.validate_on_submit():
        return render_office("genesis/contacto.html", status=422, **page)
    values = form.values()
    changes = [f for f in genesis.CONTACT_FIELDS if (getattr(member, f) or "") != values[f]]
    if accion != "confirmar" and changes:
        return render_office("genesis/contacto_confirmar.html", cambios=changes, **page)
    try:
        genesis.update_contact(current_account(), member, values)
    except genesis.ContactLocked:
        form.celular.errors = [LOCKED]
        return render_office("genesis/contacto.html", status=422, **page)
    flash(
        "Los datos de contacto quedaron actualizados."
        if changes
        else "Sus datos están confirmados.",
        "ok",
    )
    return see_other(url_for("genesis.solicitud_miembro", member_id=member.id))


# --- G3: the new request ------------------------------------------------------------------


def _request_form(member: EpsAfiliado) -> SolicitudForm:
    if request.method == "POST":
        form = SolicitudForm()
        form.set_places()
        return form
    form = SolicitudForm(formdata=None, municipio=member.municipio)
    chosen = request.args.get("departamento")
    form.set_places(chosen)
    if chosen and chosen != (member.municipio or "")[:2]:
        form.municipio.data = ""
    form.form_key.data = new_form_key()
    return form


def _request_page(member: EpsAfiliado, form: SolicitudForm, status: int = 200, **context):
    return render_office(
        "genesis/solicitud.html",
        "genesis/_municipios.html",
        status,
        miembro=member,
        form=form,
        activo=member.estado == EpsAfiliado.ACTIVO,
        not_active=NOT_ACTIVE.format(
            nombre=member.nombre_completo.title(), estado=ESTADOS.get(member.estado, member.estado)
        ),
        **context,
    )


@bp.route("/solicitud/<int:member_id>", methods=["GET", "POST"])
@body_limit(genesis.MAX_BODY)
@limiter.limit("30/hour", key_func=account_key, methods=["POST"])
@require(Action.USE_GENESIS)
def solicitud_miembro(member_id: int):
    """The member's data and the new request: Departamento, Municipio, Observación, Soporte."""
    member = member_or_404(member_id)
    fresh = genesis.contact_is_fresh(member) or member.estado != EpsAfiliado.ACTIVO
    # The contact data comes first (G3): only the list of towns may load without it.
    loading_towns = (
        wants_partial() if request.method == "GET" else (request.form.get("accion") == "municipios")
    )
    if not fresh and not loading_towns:
        return see_other(url_for("genesis.contacto", member_id=member.id))
    form = _request_form(member)
    if request.method == "GET":
        return _request_page(member, form)
    if request.form.get("accion") == "municipios":  # no JavaScript: load the department's towns
        return _request_page(member, form)
    valid = form.validate_on_submit()
    if not form.has_valid_key():
        form.form_key.data = new_form_key()  # the next submit of this page counts as one
        return _request_page(member, form, 422, soporte_error=STALE_FORM)
    if not valid:
        return _request_page(member, form, 422)
    parts = [genesis.Upload(p.stream, p.filename) for p in request.files.getlist(FILE_FIELD)]
    try:
        made = genesis.submit_request(
            current_account(),
            member,
            form.municipio.data,
            form.observacion.data,
            form.form_key.data,
            parts,
            _upload_dir(),
        )
    except genesis.DuplicateSubmit as sent:
        made = sent.solicitud
    except genesis.StaleForm:
        form.form_key.data = new_form_key()
        return _request_page(member, form, 422, soporte_error=STALE_FORM)
    except genesis.MemberNotActive:
        return _request_page(EpsAfiliado.get_by_id(member.id), form, 409)
    except genesis.TooManyRequests:
        return _request_page(member, form, 429, aviso=TOO_MANY)
    except uploads.UploadError as refused:
        return _request_page(member, form, 422, soporte_error=refused.message)
    return see_other(url_for("genesis.solicitud_enviada", numero=made.numero))


def _too_large(error):
    """Answer a body over the request form's cap in words, with the way back (not a 500)."""
    args = request.view_args or {}
    if request.endpoint == "genesis.solicitud_miembro" and "member_id" in args:
        back = url_for("genesis.solicitud_miembro", member_id=args["member_id"])
        return render_template("genesis/muy_grande.html", volver=back), 413
    return render_template("errors/413.html"), 413


bp.register_error_handler(413, _too_large)


@bp.get("/solicitudes/<numero>")
@require(Action.USE_GENESIS)
def solicitud_enviada(numero: str):
    """The confirmation: the request's number, the member, the date and the manual's note."""
    found = _request_or_404(numero)
    return render_office("genesis/solicitud_enviada.html", solicitud=found, miembro=found.afiliado)


@bp.get("/solicitudes/<numero>/soporte")
@require(Action.USE_GENESIS)
def solicitud_soporte(numero: str):
    """Download the request's supporting PDF (the family group only)."""
    attachment = genesis.attachment_of(_request_or_404(numero))
    return send_attachment(attachment, _upload_dir())


# --- G4: Consulta Autorizaciones ------------------------------------------------------------


@bp.get("/consulta/<int:member_id>")
@require(Action.USE_GENESIS)
def consulta_miembro(member_id: int):
    """The member's data and two tabs: Autorizaciones (history, pending, filter) and Solicitudes."""
    member = member_or_404(member_id)
    pestana = request.args.get("pestana", TABS[0])
    if pestana not in TABS:
        pestana = TABS[0]
    q = " ".join(request.args.get("q", "").split())[:100]
    context = dict(miembro=member, pestana=pestana, q=q)
    if pestana == "autorizaciones":
        context["autorizaciones"] = genesis.authorizations_of(member, q)
        context["pendientes"] = genesis.requests_of(member, SolicitudAutorizacion.PENDIENTE)
    else:
        context["solicitudes"] = genesis.requests_of(member)
    return render_office("genesis/consulta.html", "genesis/_consulta_tab.html", **context)
