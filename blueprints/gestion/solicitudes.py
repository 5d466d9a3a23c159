"""Back office: the queue of application requests (H4, S1) and the decision on each."""

from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from blueprints.aplicaciones import service
from blueprints.aplicaciones.forms import AprobarForm, RechazarForm
from blueprints.auth import current_account, require
from blueprints.gestion import bp
from blueprints.queue import CURSOR_ARG, FilterForm, page_from_request, page_url
from blueprints.web import render, see_other, send_attachment
from core.permissions import Action
from models import SolicitudAplicacion

PAGE_SIZE = 25
TITLE = "Solicitudes de aplicaciones"
ALREADY_DECIDED = "Esta solicitud ya fue decidida por otra persona; vea abajo cómo quedó."
CHOICE_ERRORS = {
    "entidad": "La entidad ya no está activa: elija otra.",
    "sedes": "Elija al menos una sede activa de la entidad elegida.",
    "motivo": "Escriba el motivo del rechazo (al menos 10 caracteres).",
}


def _solicitud_or_404(solicitud_id: int) -> SolicitudAplicacion:
    found = SolicitudAplicacion.get_or_none(id=solicitud_id)
    if found is None:
        abort(404)
    return found


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None


class SolicitudFilters(FilterForm):
    """The queue's filters: the state, and a NIT or a name."""

    estado = SelectField(
        "Estado",
        choices=[
            SelectChoice(SolicitudAplicacion.PENDIENTE, "Pendientes"),
            SelectChoice(SolicitudAplicacion.APROBADA, "Aprobadas"),
            SelectChoice(SolicitudAplicacion.RECHAZADA, "Rechazadas"),
        ],
        default=SolicitudAplicacion.PENDIENTE,
    )
    q = StringField(
        "NIT o nombre de la entidad",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[Optional(), Length(max=100)],
    )


@bp.get("/solicitudes")
@require(Action.DECIDE_REQUESTS)
def solicitudes():
    """Show the queue of application requests: pending ones oldest first, decided ones newest."""
    form = SolicitudFilters()
    context = dict(title=TITLE, form=form, counts=service.counts(), more_url=None, first_url=None)
    if not form.validate():
        return render(
            "gestion/solicitudes.html",
            "gestion/_solicitudes_filas.html",
            422,
            pagina=None,
            **context,
        )
    estado = form.estado.data
    query = service.queue_query(estado, form.q.data or "")
    pagina = page_from_request(
        query,
        order=service.QUEUE_ORDER,
        ascending=estado == SolicitudAplicacion.PENDIENTE,
        per_page=PAGE_SIZE,
    )
    # Not render_queue(): its context names the page "page", which is render()'s own argument.
    context.update(
        more_url=page_url(pagina.next_cursor) if pagina.has_more else None,
        first_url=page_url(None) if request.args.get(CURSOR_ARG) else None,
    )
    return render(
        "gestion/solicitudes.html", "gestion/_solicitudes_filas.html", pagina=pagina, **context
    )


def _entity_choice(entidad) -> SelectChoice:
    return SelectChoice(entidad.id, f"{entidad.nombre} · NIT {entidad.nit[:-1]}-{entidad.nit[-1:]}")


def _aprobar_form(
    solicitud: SolicitudAplicacion, entidad_id: int | None = None, posted: bool = False
) -> AprobarForm:
    """Build Aprobar: the active entities, and the sedes of the chosen one (or the NIT's)."""
    form = AprobarForm() if posted else AprobarForm(formdata=None)
    entities = service.active_entities()
    if not posted:
        if entidad_id is None:
            match = service.entity_for_nit(solicitud.nit)
            entidad_id = match.id if match is not None else None
        form.entidad.data = entidad_id
    chosen = form.entidad.data if isinstance(form.entidad.data, int) else None
    if chosen is not None and all(e.id != chosen for e in entities):
        # Past the list's cap (or inactive): listed when active, so it can still be chosen.
        extra = service.active_entity(chosen)
        entities = [*entities, extra] if extra is not None else entities
    form.entidad.choices = [SelectChoice("", "Elija la entidad")] + [
        _entity_choice(e) for e in entities
    ]
    form.sedes.choices = [SelectChoice(s.id, s.nombre) for s in service.active_sedes(chosen)]
    return form


def _detail(solicitud, aprobar=None, rechazar=None, status=200):
    return render(
        "gestion/solicitud.html",
        status=status,
        title=f"Solicitud {solicitud.id}",
        solicitud=solicitud,
        adjunto=service.attachment_of(solicitud),
        sedes_otorgadas=service.sedes_granted(solicitud) if solicitud.estado == "aprobada" else [],
        aprobar=aprobar if aprobar is not None else _aprobar_form(solicitud, _int_arg("entidad")),
        rechazar=rechazar if rechazar is not None else RechazarForm(formdata=None),
    )


@bp.get("/solicitudes/<int:solicitud_id>")
@require(Action.DECIDE_REQUESTS)
def solicitud(solicitud_id: int):
    """Show one request, its PDF, and the Aprobar and Rechazar forms."""
    return _detail(_solicitud_or_404(solicitud_id))


@bp.get("/solicitudes/<int:solicitud_id>/sedes")
@require(Action.DECIDE_REQUESTS)
def solicitud_sedes(solicitud_id: int):
    """Answer the sede checkboxes of the entity chosen in Aprobar (htmx; plain GET reloads the page)."""
    found = _solicitud_or_404(solicitud_id)
    form = _aprobar_form(found, _int_arg("entidad"))
    return render(
        "gestion/solicitud.html",
        "gestion/_solicitud_sedes.html",
        title=f"Solicitud {found.id}",
        solicitud=found,
        adjunto=service.attachment_of(found),
        sedes_otorgadas=[],
        aprobar=form,
        rechazar=RechazarForm(formdata=None),
    )


@bp.get("/solicitudes/<int:solicitud_id>/soporte")
@require(Action.DECIDE_REQUESTS)
def solicitud_soporte(solicitud_id: int):
    """Download the request's supporting PDF."""
    attachment = service.attachment_of(_solicitud_or_404(solicitud_id))
    return send_attachment(attachment, current_app.config["UPLOAD_DIR"])


@bp.post("/solicitudes/<int:solicitud_id>/aprobar")
@require(Action.DECIDE_REQUESTS)
def solicitud_aprobar(solicitud_id: int):
    """Approve: grant the application for the chosen entity and sedes."""
    found = _solicitud_or_404(solicitud_id)
    form = _aprobar_form(found, posted=True)
    if not form.validate_on_submit():
        return _detail(found, aprobar=form, status=422)
    try:
        service.approve(
            found.id,
            current_account(),
            form.entidad.data,
            form.sedes.data,
            base_url=current_app.config["BASE_URL"],
            ip=request.remote_addr,
        )
    except service.AlreadyDecided:
        flash(ALREADY_DECIDED, "error")
        return see_other(url_for("gestion.solicitud", solicitud_id=found.id))
    except service.InvalidChoice as wrong:
        getattr(form, wrong.field).errors = [CHOICE_ERRORS[wrong.field]]
        return _detail(found, aprobar=form, status=422)
    flash(f"Solicitud {found.id} aprobada. Se avisó al usuario por correo.", "ok")
    return see_other(url_for("gestion.solicitudes"))


@bp.post("/solicitudes/<int:solicitud_id>/rechazar")
@require(Action.DECIDE_REQUESTS)
def solicitud_rechazar(solicitud_id: int):
    """Reject with a reason the user will read."""
    found = _solicitud_or_404(solicitud_id)
    form = RechazarForm()
    if not form.validate_on_submit():
        return _detail(found, rechazar=form, status=422)
    try:
        service.reject(
            found.id,
            current_account(),
            form.motivo.data,
            base_url=current_app.config["BASE_URL"],
            ip=request.remote_addr,
        )
    except service.AlreadyDecided:
        flash(ALREADY_DECIDED, "error")
        return see_other(url_for("gestion.solicitud", solicitud_id=found.id))
    except service.InvalidChoice as wrong:
        form.motivo.errors = [CHOICE_ERRORS[wrong.field]]
        return _detail(found, rechazar=form, status=422)
    flash(f"Solicitud {found.id} rechazada. Se avisó al usuario por correo.", "ok")
    return see_other(url_for("gestion.solicitudes"))
