"""Back office: the queue of authorization requests (G3, S1), by due date, and the decision on each."""

from __future__ import annotations

from dataclasses import replace

from flask import abort, current_app, flash, request, url_for
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.auth import LOGIN_VIEWS, current_account, require
from blueprints.forms import REQUIRED, SpanishForm, normalized
from blueprints.gestion import autorizaciones_service as service
from blueprints.gestion import bp
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import render, see_other, send_attachment
from core import eps_data
from core.convenios_data import municipio_label
from core.permissions import Action
from models import Account, SolicitudAutorizacion

PAGE_SIZE = 25
TITLE = "Solicitudes de autorización"
ESTADO_NOMBRES = {
    SolicitudAutorizacion.PENDIENTE: "Pendiente",
    SolicitudAutorizacion.APROBADA: "Aprobada",
    SolicitudAutorizacion.RECHAZADA: "Rechazada",
}
ALREADY_DECIDED = "Esta solicitud ya fue decidida por otra persona; vea abajo cómo quedó."
CHOICE_ERRORS = {
    "codigo": "Escriba el código CUPS con letras, números y guiones.",
    "nombre": "Escriba el nombre del servicio.",
    "ips": "La IPS ya no está en la lista: elija otra.",
    "motivo": "Escriba el motivo del rechazo (entre 10 y 1000 caracteres).",
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _int_or_none(value):
    """Coerce a submitted id; anything else becomes None, which validation then refuses."""
    if isinstance(value, int):
        return value
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None


def _document_chars(_form, field) -> None:
    if field.data and not service.compact_document(field.data).isalnum():
        raise ValidationError("Escriba solo las letras y números del documento.")


class AutorizacionFilters(FilterForm):
    """The queue's filters: the state, and a document number."""

    estado = SelectField(
        "Estado",
        choices=[SelectChoice(k, f"{v}s") for k, v in ESTADO_NOMBRES.items()],
        default=SolicitudAutorizacion.PENDIENTE,
    )
    documento = StringField(
        "Número de documento",
        description="Del afiliado o de su cotizante: muestra todo el núcleo familiar.",
        filters=[_strip],
        validators=[Optional(), Length(max=20), _document_chars],
        render_kw={"autocomplete": "off"},
    )


class AprobarForm(SpanishForm):
    """Aprobar: the service authorized (CUPS code and name) and the IPS that provides it."""

    codigo_servicio = StringField(
        "Código del servicio",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), normalized(service.clean_codigo)],
        render_kw={"autocomplete": "off", "maxlength": service.CODIGO_MAX},
    )
    nombre_servicio = StringField(
        "Nombre del servicio",
        filters=[lambda v: " ".join(v.split()) if isinstance(v, str) else v],
        validators=[DataRequired(REQUIRED), Length(max=service.NOMBRE_MAX)],
        render_kw={"maxlength": service.NOMBRE_MAX},
    )
    ips = SelectField(
        "IPS",
        coerce=_int_or_none,
        validate_choice=False,
        validators=[DataRequired("Elija la IPS de la lista.")],
    )

    def validate_ips(self, field) -> None:
        """Accept only an IPS of the list shown."""
        if field.data is None or field.data not in {c.value for c in field.choices}:
            raise ValidationError("Elija la IPS de la lista.")


class RechazarForm(SpanishForm):
    """Rechazar: the reason the member will read in Consulta Autorizaciones."""

    motivo = TextAreaField(
        "Motivo del rechazo",
        filters=[_strip],
        validators=[
            DataRequired("Escriba el motivo del rechazo."),
            Length(
                min=service.MOTIVO_MIN,
                max=service.MOTIVO_MAX,
                message=(
                    f"El motivo debe tener entre {service.MOTIVO_MIN} y "
                    f"{service.MOTIVO_MAX} caracteres."
                ),
            ),
        ],
    )


def _solicitud_or_404(solicitud_id: int) -> SolicitudAutorizacion:
    found = service.get(solicitud_id)
    if found is None:
        abort(404)
    return found


def _aprobar_form(posted: bool = False) -> AprobarForm:
    form = AprobarForm() if posted else AprobarForm(formdata=None)
    form.ips.choices = [SelectChoice("", "Elija la IPS")] + [
        SelectChoice(i.id, f"{i.nombre} · {municipio_label(i.municipio)}")
        for i in service.ips_choices()
    ]
    return form


def _office_link() -> str:
    """Return the Portal Génesis login the member's e-mail points to."""
    return current_app.config["BASE_URL"].rstrip("/") + url_for(LOGIN_VIEWS[Account.EPS])


def _detail(solicitud, aprobar=None, rechazar=None, status=200):
    pendiente = solicitud.estado == SolicitudAutorizacion.PENDIENTE
    return render(
        "gestion/autorizacion.html",
        status=status,
        title=f"Solicitud {solicitud.numero}",
        solicitud=solicitud,
        afiliado=solicitud.afiliado,
        adjunto=service.attachment_of(solicitud),
        historial=service.history_of(solicitud),
        due=service.due_of(solicitud.due_on) if pendiente else None,
        estados=ESTADO_NOMBRES,
        estados_autorizacion=eps_data.ESTADOS_AUTORIZACION,
        parentescos=eps_data.PARENTESCOS,
        estados_afiliado=eps_data.ESTADOS,
        municipio_label=municipio_label,
        aprobar=aprobar if aprobar is not None else (_aprobar_form() if pendiente else None),
        rechazar=rechazar if rechazar is not None else RechazarForm(formdata=None),
    )


@bp.get("/autorizaciones")
@require(Action.DECIDE_AUTHORIZATIONS)
def autorizaciones():
    """Show the queue of authorization requests: pending ones by due date, decided ones newest."""
    form = AutorizacionFilters()
    context = dict(
        title=TITLE,
        form=form,
        counts=service.counts(),
        estados=ESTADO_NOMBRES,
        due_of=service.due_of,
        municipio_label=municipio_label,
    )
    if not form.validate():
        return render_queue(
            "gestion/autorizaciones.html",
            "gestion/_autorizaciones_filas.html",
            422,
            page=None,
            **context,
        )
    estado = form.estado.data
    page = page_from_request(
        service.queue_query(estado, form.documento.data or ""),
        order=service.QUEUE_ORDER,
        ascending=estado == SolicitudAutorizacion.PENDIENTE,
        per_page=PAGE_SIZE,
    )
    page = replace(page, rows=service.with_members(page.rows))  # for this page's rows only
    return render_queue(
        "gestion/autorizaciones.html", "gestion/_autorizaciones_filas.html", page=page, **context
    )


@bp.get("/autorizaciones/<int:solicitud_id>")
@require(Action.DECIDE_AUTHORIZATIONS)
def autorizacion(solicitud_id: int):
    """Show one request, its member, its support and history, and the Aprobar and Rechazar forms."""
    return _detail(_solicitud_or_404(solicitud_id))


@bp.get("/autorizaciones/<int:solicitud_id>/soporte")
@require(Action.DECIDE_AUTHORIZATIONS)
def autorizacion_soporte(solicitud_id: int):
    """Download the request's support, and audit who opened the member's health data."""
    found = _solicitud_or_404(solicitud_id)
    attachment = service.attachment_of(found)
    response = send_attachment(attachment, current_app.config["UPLOAD_DIR"])
    # After the file opened: the log says what was really handed out.
    service.record_file_view(current_account(), found, attachment, ip=request.remote_addr)
    return response


def _refuse_decided(found: SolicitudAutorizacion):
    flash(ALREADY_DECIDED, "error")
    return see_other(url_for("gestion.autorizacion", solicitud_id=found.id))


@bp.post("/autorizaciones/<int:solicitud_id>/aprobar")
@require(Action.DECIDE_AUTHORIZATIONS)
def autorizacion_aprobar(solicitud_id: int):
    """Approve: issue the authorization for the service and IPS, and tell the member."""
    found = _solicitud_or_404(solicitud_id)
    if found.estado != SolicitudAutorizacion.PENDIENTE:
        return _refuse_decided(found)
    form = _aprobar_form(posted=True)
    if not form.validate_on_submit():
        return _detail(found, aprobar=form, status=422)
    approval = service.Approval(form.codigo_servicio.data, form.nombre_servicio.data, form.ips.data)
    try:
        done = service.approve(
            found.id, current_account(), approval, _office_link(), ip=request.remote_addr
        )
    except service.AlreadyDecided:
        return _refuse_decided(found)
    except service.InvalidChoice as wrong:
        field = {"codigo": form.codigo_servicio, "nombre": form.nombre_servicio}.get(
            wrong.field, form.ips
        )
        field.errors = [CHOICE_ERRORS[wrong.field]]
        return _detail(found, aprobar=form, status=422)
    flash(
        f"Solicitud {done.numero} aprobada con la autorización {done.autorizacion.numero}. "
        "Se avisó al afiliado.",
        "ok",
    )
    return see_other(url_for("gestion.autorizaciones"))


@bp.post("/autorizaciones/<int:solicitud_id>/rechazar")
@require(Action.DECIDE_AUTHORIZATIONS)
def autorizacion_rechazar(solicitud_id: int):
    """Reject with a reason the member will read, and tell them."""
    found = _solicitud_or_404(solicitud_id)
    if found.estado != SolicitudAutorizacion.PENDIENTE:
        return _refuse_decided(found)
    form = RechazarForm()
    if not form.validate_on_submit():
        return _detail(found, rechazar=form, status=422)
    try:
        done = service.reject(
            found.id, current_account(), form.motivo.data, _office_link(), ip=request.remote_addr
        )
    except service.AlreadyDecided:
        return _refuse_decided(found)
    except service.InvalidChoice as wrong:
        form.motivo.errors = [CHOICE_ERRORS[wrong.field]]
        return _detail(found, rechazar=form, status=422)
    flash(f"Solicitud {done.numero} rechazada. Se avisó al afiliado.", "ok")
    return see_other(url_for("gestion.autorizaciones"))
