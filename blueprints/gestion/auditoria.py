"""Audit search for admins: who did what to which row, by staff member, action, target, dates."""

from __future__ import annotations

import json

from wtforms import IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from blueprints.auth import require
from blueprints.gestion import bp
from blueprints.queue import DateFilter, FilterForm, page_from_request, render_queue
from core import audit
from core.audit import Action
from core.permissions import Action as Can
from models import Account, AuditEvent

PAGE, ROWS = "gestion/auditoria.html", "gestion/_auditoria_filas.html"
ORDER = (AuditEvent.at, AuditEvent.id)

# Keyed by the stored code; one without a label here (added later) shows as its code.
ACTION_LABELS = {
    "usuario.desbloquear": "Desbloquear usuario",
    "usuario.activar": "Activar usuario",
    "solicitud.aprobar": "Aprobar solicitud",
    "solicitud.rechazar": "Rechazar solicitud",
    "staff.crear": "Crear funcionario",
    "staff.deshabilitar": "Deshabilitar funcionario",
    "staff.segundo_factor.reiniciar": "Reiniciar segundo factor",
    "entidad.crear": "Crear entidad",
    "entidad.editar": "Editar entidad",
    "sede.crear": "Crear sede",
    "sede.editar": "Editar sede",
    "convenio.acceso.retirar": "Retirar acceso a Convenios",
    "convenio.consultas.buscar": "Ver consultas de convenio",
    "autorizacion.aprobar": "Aprobar solicitud de autorización",
    "autorizacion.rechazar": "Rechazar solicitud de autorización",
    "autorizacion.soporte.ver": "Ver soporte de solicitud de autorización",
    "pqrs.responder": "Responder PQRSF",
    "pqrs.informacion": "Pedir información de PQRSF",
    "pqrs.prorrogar": "Prorrogar PQRSF",
    "pqrs.cerrar": "Cerrar PQRSF",
    "pqrs.adjunto.ver": "Ver adjunto de PQRSF",
    "mesa.responder": "Responder caso de la Mesa de Ayuda",
    "mesa.nota": "Nota interna en caso de la Mesa de Ayuda",
    "mesa.estado": "Cambiar estado de caso de la Mesa de Ayuda",
    "mesa.asignar": "Asignar caso de la Mesa de Ayuda",
    "mesa.adjunto.ver": "Ver adjunto de caso de la Mesa de Ayuda",
    "mesa.motivo": "Editar motivos y asuntos de la Mesa de Ayuda",
    "mesa.respuesta_guardada": "Editar respuestas guardadas de la Mesa de Ayuda",
    "ips.invitar": "Dar acceso a una IPS",
    "ips.operador.estado": "Habilitar o deshabilitar operador de IPS",
}
TARGET_LABELS = {
    "usuario": "Usuario",
    "caso_mesa": "Caso de la Mesa de Ayuda",
    "motivo_mesa": "Motivo de la Mesa de Ayuda",
    "respuesta_guardada": "Respuesta guardada",
    "ips": "IPS",
    "solicitud": "Solicitud de aplicación",
    "staff": "Funcionario",
    "entidad": "Entidad",
    "sede": "Sede",
    "acceso": "Acceso a aplicación",
    "cedula": "Cédula",
    "consultas_convenio": "Registro de consultas de convenio",
    "solicitud_autorizacion": "Solicitud de autorización",
    "pqrs": "PQRSF",
}
NOBODY = 0  # no account has id 0: an e-mail that is no staff member's matches no row


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


class AuditFilters(FilterForm):
    """The search: every field optional, blank means "any"."""

    funcionario = StringField(
        "Funcionario",
        description="Correo del funcionario, como aparece en su cuenta.",
        filters=[_lower],
        validators=[Optional(), Length(max=254)],
        render_kw={"type": "email", "autocomplete": "off", "spellcheck": "false"},
    )
    accion = SelectField("Acción", default="")
    objeto = SelectField(
        "Objeto",
        default="",
        choices=[SelectChoice(k, v) for k, v in {"": "Todos", **TARGET_LABELS}.items()],
    )
    objeto_id = IntegerField(
        "Número del objeto",
        validators=[Optional(), NumberRange(min=1, max=2**53, message="Revise el número.")],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    desde = DateFilter("Desde")
    hasta = DateFilter("Hasta")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read at each request: the enum grows as areas add audited actions.
        self.accion.choices = [SelectChoice("", "Todas")] + [
            SelectChoice(a.value, label_of(a.value)) for a in Action
        ]

    def validate_objeto_id(self, field) -> None:
        if field.data is not None and not self.objeto.data:
            raise ValidationError("Elija también el tipo de objeto.")

    def validate_hasta(self, field) -> None:
        since, until = self.desde.data, field.data
        if since and until and not isinstance(since, str) and not isinstance(until, str):
            if until < since:
                raise ValidationError("La fecha final es anterior a la inicial.")


def label_of(action: str) -> str:
    """Return the Spanish name of an audited action (its code when it has none)."""
    return ACTION_LABELS.get(action, action)


def actor_of(email: str) -> int | None:
    """Return the id of the staff account with that e-mail (NOBODY if none; None if blank)."""
    if not email:
        return None
    staff = Account.by_login(Account.STAFF, email)
    return staff.id if staff else NOBODY


def search_query(actor_id=None, accion="", objeto="", objeto_id=None, desde="", hasta=""):
    """Build the audit search for the form's values, filters only (the queue orders and pages)."""
    return audit.search_query(
        actor_id=actor_id,
        action=accion or None,
        target=(objeto, objeto_id) if objeto and objeto_id else objeto or None,
        since=desde or None,
        until=hasta or None,
    )


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def changes(before: str | None, after: str | None) -> list[tuple[str, str, str]]:
    """Return (field, before, after) for each field an audit row changed; "—" for a missing side."""
    old, new = json.loads(before or "{}"), json.loads(after or "{}")
    return [
        (key, _shown(old[key]) if key in old else "—", _shown(new[key]) if key in new else "—")
        for key in sorted(old.keys() | new.keys())
    ]


@bp.get("/auditoria")
@require(Can.SEARCH_AUDIT)
def auditoria():
    """Search the audit log by staff member, action, target and date range (SPEC S1)."""
    form = AuditFilters()
    context = dict(label_of=label_of, targets=TARGET_LABELS, changes=changes, title="Auditoría")
    if not form.validate():
        # 422 as any form with bad input: the input kept, the message by its field, no rows.
        return render_queue(PAGE, ROWS, 422, form=form, page=None, **context)
    filters = dict(form.data)
    actor_id = actor_of(filters.pop("funcionario"))
    page = page_from_request(search_query(actor_id, **filters), order=ORDER)
    return render_queue(
        PAGE, ROWS, form=form, page=page, unknown_staff=actor_id == NOBODY, **context
    )
