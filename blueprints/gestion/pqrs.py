"""Back office: the PQRSF queue (G7, S1) by due date, and the case: answer, ask, extend, close, unblock."""

from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from werkzeug.routing import BuildError
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.auth import current_account, require
from blueprints.forms import REQUIRED, SpanishForm, normalized
from blueprints.gestion import bp
from blueprints.gestion import pqrs_service as service
from blueprints.gestion import service as gestion
from blueprints.gestion.desbloqueo import UnblockForm
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import render, see_other, send_attachment
from core.colombia import format_date
from core.permissions import Action
from models import Account, Pqrs, PqrsMensaje

PAGE_SIZE = 25
TITLE = "PQRSF"
ESTADO_NOMBRES = {
    Pqrs.RADICADA: "Radicada",
    Pqrs.INFORMACION: "Esperando información",
    Pqrs.RESPONDIDA: "Respondida",
    Pqrs.CERRADA: "Cerrada",
}
FILTRO_ESTADOS = {
    service.ABIERTAS: "Abiertas",
    Pqrs.RADICADA: "Radicadas",
    Pqrs.INFORMACION: "Esperando información",
    Pqrs.RESPONDIDA: "Respondidas",
    Pqrs.CERRADA: "Cerradas",
}
MENSAJE_NOMBRES = {
    PqrsMensaje.RESPUESTA: "Respuesta",
    PqrsMensaje.INFORMACION: "Solicitud de información",
    PqrsMensaje.PRORROGA: "Prórroga",
    PqrsMensaje.CIERRE: "Cierre",
    PqrsMensaje.CIUDADANO: "Ciudadano",
}
CHANGED = "Este PQRSF cambió mientras tanto (ahora: {estado}): otra persona lo atendió; vea abajo cómo quedó."
TEXTO_ERROR = f"Escriba entre {service.TEXTO_MIN} y {service.TEXTO_MAX} caracteres."
MOTIVO_ERROR = f"Escriba el motivo (entre {service.MOTIVO_MIN} y {service.MOTIVO_MAX} caracteres)."
DESISTIMIENTO_ERROR = (
    "Para cerrar sin respuesta escriba el motivo del desistimiento "
    f"(entre {service.MOTIVO_MIN} y {service.MOTIVO_MAX} caracteres)."
)


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _text(label: str, low: int, high: int, message: str) -> TextAreaField:
    return TextAreaField(
        label,
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(min=low, max=high, message=message)],
    )


class PqrsFilters(FilterForm):
    """The queue's filters: state (open ones by default), tipo, and a radicado or document."""

    estado = SelectField(
        "Estado",
        choices=[SelectChoice(k, v) for k, v in FILTRO_ESTADOS.items()],
        default=service.ABIERTAS,
    )
    tipo = SelectField(
        "Tipo",
        choices=[SelectChoice("", "Todos")]
        + [SelectChoice(k, v) for k, v in service.TIPO_NOMBRES.items()],
        default="",
    )
    buscar = StringField(
        "Radicado o número de documento",
        filters=[_strip],
        validators=[Optional(), normalized(service.clean_search)],
        render_kw={"autocomplete": "off", "maxlength": service.BUSCAR_MAX},
    )


class ResponderForm(SpanishForm):
    """Responder: the answer the citizen reads in Consulta PQRDS and by e-mail."""

    respuesta = _text("Respuesta", service.TEXTO_MIN, service.TEXTO_MAX, TEXTO_ERROR)


class InformacionForm(SpanishForm):
    """Pedir información: what the citizen must add to the request."""

    informacion = _text("Información que falta", service.TEXTO_MIN, service.TEXTO_MAX, TEXTO_ERROR)


DIAS_ERROR = "Escriba el número de días hábiles, como 5."


def _to_days(_form, field) -> None:
    """Read a whole number of days; the range is the service's (it depends on the tipo)."""
    text = field.data or ""
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise ValidationError(DIAS_ERROR)
    field.data = int(text)


class ProrrogaForm(SpanishForm):
    """Prorrogar: how many working days more, and why (the citizen is told)."""

    dias = StringField(
        "Días hábiles de prórroga",
        filters=[_strip],
        validators=[DataRequired(DIAS_ERROR), _to_days],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 4},
    )
    motivo = _text("Motivo de la prórroga", service.MOTIVO_MIN, service.MOTIVO_MAX, MOTIVO_ERROR)


class CerrarForm(SpanishForm):
    """Cerrar: after the answer; before it only by desistimiento, with its reason."""

    motivo_cierre = TextAreaField(
        "Motivo del cierre",
        filters=[_strip],
        validators=[
            Optional(),
            Length(min=service.MOTIVO_MIN, max=service.MOTIVO_MAX, message=MOTIVO_ERROR),
        ],
    )


class DesbloquearForm(UnblockForm):
    """Unblock the Hanna account the case names: a new quiz, or active at once (H2's form)."""

    decision = RadioField(
        "Qué hacer",
        choices=[
            SelectChoice(
                gestion.Unblock.RETRY.value,
                "Permitir 3 intentos nuevos de las preguntas (se envía un enlace nuevo)",
            ),
            SelectChoice(
                gestion.Unblock.ACTIVATE.value,
                "Activar la cuenta: verifiqué la identidad con los soportes del PQRSF u otro medio",
            ),
        ],
        validators=[DataRequired("Elija qué hacer.")],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("formdata", ...) is None or not self.is_submitted():
            self.verified_by.data = self.verified_by.data or "pqrsf"  # the case is the proof


FORMS = {
    "responder": ResponderForm,
    "informacion": InformacionForm,
    "prorroga": ProrrogaForm,
    "cerrar": CerrarForm,
    "desbloquear": DesbloquearForm,
}


def _pqrs_or_404(pqrs_id: int) -> Pqrs:
    found = service.get(pqrs_id)
    if found is None:
        abort(404)
    return found


def _consulta_link() -> str:
    """Return Consulta PQRDS (G6), where the citizen reads each step, as an absolute URL."""
    try:
        path = url_for("pqrs.consulta")
    except BuildError:  # the citizen side's endpoint (SPEC K: /pqrs/consulta)
        path = "/pqrs/consulta"
    return current_app.config["BASE_URL"].rstrip("/") + path


def _case(pqrs: Pqrs, status: int = 200, **posted):
    """Render the case page, with the forms its state allows (a posted one keeps its input)."""
    forms = {name: posted.get(name) or form(formdata=None) for name, form in FORMS.items()}
    cuenta = service.blocked_account_of(pqrs)
    asked = service.information_asked_on(pqrs) if pqrs.estado == Pqrs.INFORMACION else None
    return render(
        "gestion/pqrs_caso.html",
        status=status,
        title=f"PQRSF {pqrs.radicado}",
        pqrs=pqrs,
        tipos=service.TIPO_NOMBRES,
        estados=ESTADO_NOMBRES,
        mensaje_nombres=MENSAJE_NOMBRES,
        adjunto=service.attachment_of(pqrs),
        mensajes=service.messages_of(pqrs),
        due=service.due_of(pqrs.due_on) if pqrs.estado == Pqrs.RADICADA else None,
        asked=asked,
        asked_until=service.add_month(asked) if asked else None,
        information_allowed=pqrs.estado == Pqrs.RADICADA and service.information_allowed(pqrs),
        can_extend=service.can_extend(pqrs),
        extension_left=service.extension_left(pqrs),
        cuenta=cuenta,
        bloqueada=cuenta is not None and cuenta.status == Account.BLOCKED,
        posted=set(posted),
        same_person=service.same_person(pqrs, cuenta) if cuenta else True,
        reasons=gestion.BLOCK_REASONS,
        **forms,
    )


def _changed(found: Pqrs):
    flash(CHANGED.format(estado=ESTADO_NOMBRES.get(found.estado, found.estado).lower()), "error")
    return see_other(url_for("gestion.pqrs_caso", pqrs_id=found.id))


def _done(message: str):
    flash(message, "ok")
    return see_other(url_for("gestion.pqrs"))


@bp.get("/pqrs")
@require(Action.ANSWER_PQRS)
def pqrs():
    """Show the PQRSF queue: open ones by due date with their marks, others newest first."""
    form = PqrsFilters()
    context = dict(
        title=TITLE,
        form=form,
        counts=service.counts(),
        filtros=FILTRO_ESTADOS,
        estados=ESTADO_NOMBRES,
        tipos=service.TIPO_NOMBRES,
        due_of=service.due_of,
    )
    if not form.validate():
        return render_queue(
            "gestion/pqrs.html", "gestion/_pqrs_filas.html", 422, page=None, **context
        )
    estado = form.estado.data
    page = page_from_request(
        service.queue_query(estado, form.tipo.data or "", form.buscar.data or ""),
        order=service.QUEUE_ORDER,
        ascending=service.ascending(estado),
        per_page=PAGE_SIZE,
    )
    return render_queue("gestion/pqrs.html", "gestion/_pqrs_filas.html", page=page, **context)


@bp.get("/pqrs/<int:pqrs_id>")
@require(Action.ANSWER_PQRS)
def pqrs_caso(pqrs_id: int):
    """Show one PQRSF: the citizen, the request, its term, its steps and the actions its state allows."""
    return _case(_pqrs_or_404(pqrs_id))


@bp.get("/pqrs/<int:pqrs_id>/adjunto")
@require(Action.ANSWER_PQRS)
def pqrs_adjunto(pqrs_id: int):
    """Download the citizen's file, and audit who opened it."""
    found = _pqrs_or_404(pqrs_id)
    attachment = service.attachment_of(found)
    response = send_attachment(attachment, current_app.config["UPLOAD_DIR"])
    service.record_file_view(current_account(), found, attachment, ip=request.remote_addr)
    return response


@bp.post("/pqrs/<int:pqrs_id>/responder")
@require(Action.ANSWER_PQRS)
def pqrs_responder(pqrs_id: int):
    """Answer the PQRSF, and tell the citizen by SMS and e-mail."""
    found = _pqrs_or_404(pqrs_id)
    form = ResponderForm()
    if not form.validate_on_submit():
        return _case(found, 422, responder=form)
    try:
        done = service.answer(
            found.id,
            current_account(),
            form.respuesta.data,
            _consulta_link(),
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        return _changed(late.pqrs)
    except service.InvalidText:
        form.respuesta.errors = [TEXTO_ERROR]
        return _case(found, 422, responder=form)
    return _done(f"PQRSF {done.radicado} respondido. Se avisó al ciudadano.")


@bp.post("/pqrs/<int:pqrs_id>/informacion")
@require(Action.ANSWER_PQRS)
def pqrs_informacion(pqrs_id: int):
    """Ask the citizen for what the request lacks; the term stands still meanwhile."""
    found = _pqrs_or_404(pqrs_id)
    form = InformacionForm()
    if not form.validate_on_submit():
        return _case(found, 422, informacion=form)
    try:
        done = service.ask_information(
            found.id,
            current_account(),
            form.informacion.data,
            _consulta_link(),
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        return _changed(late.pqrs)
    except service.Refused:
        form.informacion.errors = [
            f"Ya pasaron los {service.INFORMATION_WITHIN} días hábiles siguientes a la radicación "
            "en que se puede pedir información (Ley 1755, art. 17): responda con lo que tiene."
        ]
        return _case(found, 422, informacion=form)
    except service.InvalidText:
        form.informacion.errors = [TEXTO_ERROR]
        return _case(found, 422, informacion=form)
    return _done(f"Se pidió información para el PQRSF {done.radicado}. Se avisó al ciudadano.")


def _refusal_text(refused: service.Refused) -> str:
    pqrs = refused.pqrs
    if refused.reason is service.Refusal.VENCIDO:
        return (
            f"El término venció el {format_date(pqrs.due_on)}: la prórroga se da antes de que "
            "venza (Ley 1755, art. 14)."
        )
    if refused.reason is service.Refusal.TOPE:
        left = service.extension_left(pqrs)
        limit = f"En total la prórroga no puede pasar de {pqrs.term_days} días hábiles (el término inicial)"
        return f"{limit}: quedan {left}." if left else f"{limit}, y ya se usaron todos."
    return f"Escriba un número de días hábiles entre 1 y {pqrs.term_days}."


@bp.post("/pqrs/<int:pqrs_id>/prorrogar")
@require(Action.ANSWER_PQRS)
def pqrs_prorrogar(pqrs_id: int):
    """Extend the term before it ends, with a reason; the citizen is told the new date."""
    found = _pqrs_or_404(pqrs_id)
    form = ProrrogaForm()
    if not form.validate_on_submit():
        return _case(found, 422, prorroga=form)
    try:
        done = service.extend(
            found.id,
            current_account(),
            form.dias.data,
            form.motivo.data,
            _consulta_link(),
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        return _changed(late.pqrs)
    except service.Refused as refused:
        form.dias.errors = [_refusal_text(refused)]
        return _case(found, 422, prorroga=form)
    except service.InvalidText:
        form.motivo.errors = [MOTIVO_ERROR]
        return _case(found, 422, prorroga=form)
    return _done(
        f"PQRSF {done.radicado} prorrogado hasta el {format_date(done.due_on)}. "
        "Se avisó al ciudadano."
    )


@bp.post("/pqrs/<int:pqrs_id>/cerrar")
@require(Action.ANSWER_PQRS)
def pqrs_cerrar(pqrs_id: int):
    """Close an answered PQRSF, or an open one by desistimiento with its reason."""
    found = _pqrs_or_404(pqrs_id)
    form = CerrarForm()
    if not form.validate_on_submit():
        return _case(found, 422, cerrar=form)
    try:
        done = service.close(
            found.id,
            current_account(),
            form.motivo_cierre.data,
            _consulta_link(),
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        return _changed(late.pqrs)
    except service.InvalidText:
        form.motivo_cierre.errors = [
            DESISTIMIENTO_ERROR if found.estado != Pqrs.RESPONDIDA else MOTIVO_ERROR
        ]
        return _case(found, 422, cerrar=form)
    return _done(f"PQRSF {done.radicado} cerrado.")


@bp.post("/pqrs/<int:pqrs_id>/desbloquear")
@require(Action.ANSWER_PQRS)
def pqrs_desbloquear(pqrs_id: int):
    """Unblock the Hanna account a "desbloqueo de cuenta" PQRSF names (the H2 unblock)."""
    found = _pqrs_or_404(pqrs_id)
    if service.blocked_account_of(found) is None:
        abort(404)
    form = DesbloquearForm()
    if not form.validate_on_submit():
        return _case(found, 422, desbloquear=form)
    decision = gestion.Unblock(form.decision.data)
    try:
        user = service.unblock_from_case(
            found.id,
            current_account(),
            decision,
            form.reason.data,
            verified_by=form.verified_by.data if decision is gestion.Unblock.ACTIVATE else "",
            secret=current_app.config["SECRET_KEY"],
            base_url=current_app.config["BASE_URL"],
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        return _changed(late.pqrs)
    except gestion.StaffError as exc:
        flash(str(exc), "error")
        return see_other(url_for("gestion.pqrs_caso", pqrs_id=found.id))
    done = (
        "recibirá un enlace para intentarlo de nuevo"
        if decision is gestion.Unblock.RETRY
        else "ya puede ingresar"
    )
    flash(
        f"Cuenta desbloqueada: {user.email} {done}. Le avisamos por correo. "
        "Responda el PQRSF para cerrarlo.",
        "ok",
    )
    return see_other(url_for("gestion.pqrs_caso", pqrs_id=found.id))
