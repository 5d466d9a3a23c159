"""Back office, role convenios (H6): the users granted CONVENIOS, revoking a grant, the look-up log."""

from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.auth import current_account, require
from blueprints.forms import SpanishForm
from blueprints.gestion import bp
from blueprints.gestion import convenios_service as service
from blueprints.queue import DateFilter, FilterForm, page_from_request, render_queue
from blueprints.web import render, see_other
from core import convenios
from core.permissions import Action, allowed
from models import Account, Entidad

GRANTS_PAGE, GRANTS_ROWS = "gestion/convenio_accesos.html", "gestion/_convenio_accesos_filas.html"
GRANT_PAGE = "gestion/convenio_acceso.html"
REVOKED_PAGE = "gestion/convenio_acceso_retirado.html"
LOG_PAGE, LOG_ROWS = "gestion/convenio_consultas.html", "gestion/_convenio_consultas_filas.html"
GRANTS_PER_PAGE = 25
LOG_PER_PAGE = 50

BAD_ID = -1  # what a typed entity id that is no number becomes: refused by the form
CEDULA_MESSAGE = "La cédula debe tener solo números, entre 3 y 15 dígitos."
MOTIVO_MESSAGE = (
    f"El motivo debe tener entre {service.MOTIVO_MIN} y {service.MOTIVO_MAX} caracteres."
)


def _entity_id(value):
    """Coerce the entity filter: blank is None, digits an id, anything else BAD_ID."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else BAD_ID


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


def _cedula(_form, field) -> None:
    """Keep the digits of the cédula, or say in Spanish why it cannot be one (blank: Optional)."""
    digits = convenios.normalize_document(field.data or "")
    # isascii: the desk's pattern (\d) also takes other scripts' digits (٣, ३); no cédula has them.
    if not digits.isascii() or convenios.document_problem(digits):
        raise ValidationError(CEDULA_MESSAGE)
    field.data = digits


def _entity_field() -> SelectField:
    """The entity filter; a subclass of EntityFilterForm places it among its fields."""
    return SelectField("Entidad", coerce=_entity_id, validate_choice=False, default=None)


class EntityFilterForm(FilterForm):
    """A list filtered by entity (its ``entidad`` field): the select lists the entities by name."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        entities = service.entity_choices()
        chosen = self.entidad.data
        if isinstance(chosen, int) and chosen > 0 and all(e.id != chosen for e in entities):
            # Past the list's cap (a link from the entity's page): listed, so it stays chosen.
            extra = service.entity(chosen)
            entities = [*entities, extra] if extra is not None else entities
        self.entidad.choices = [SelectChoice("", "Todas")] + [
            SelectChoice(e.id, e.nombre if e.estado == Entidad.ACTIVA else f"{e.nombre} (inactiva)")
            for e in entities
        ]

    def validate_entidad(self, field) -> None:
        if field.data is not None and (field.data == BAD_ID or service.entity(field.data) is None):
            raise ValidationError("Elija una entidad de la lista.")


class AccesoFiltros(EntityFilterForm):
    """The grants list's filters: the entity, and part of the user's e-mail or name."""

    entidad = _entity_field()
    q = StringField(
        "Correo o nombre del usuario",
        filters=[_strip],
        validators=[Optional(), Length(max=100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class ConsultaFiltros(EntityFilterForm):
    """The look-up log's search: every field optional, blank means "any"."""

    cedula = StringField(
        "Cédula",
        description="Número de documento consultado, solo números.",
        filters=[_strip],
        validators=[Optional(), _cedula],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 20},
    )
    entidad = _entity_field()
    operador = StringField(
        "Operador",
        description="Correo del usuario que hizo la consulta.",
        filters=[_lower],
        validators=[Optional(), Length(max=254)],
        render_kw={"type": "email", "autocomplete": "off", "spellcheck": "false"},
    )
    resultado = SelectField(
        "Resultado",
        default="",
        choices=[SelectChoice("", "Todos")]
        + [SelectChoice(k, v) for k, v in convenios.RESULT_LABELS.items()],
    )
    desde = DateFilter("Desde")
    hasta = DateFilter("Hasta")

    def validate_hasta(self, field) -> None:
        since, until = self.desde.data, field.data
        if since and until and not isinstance(since, str) and not isinstance(until, str):
            if until < since:
                raise ValidationError("La fecha final es anterior a la inicial.")


class RetirarForm(SpanishForm):
    """Retirar acceso: the reason, which the user reads in the e-mail."""

    cuenta = HiddenField()  # the account the page was shown for (service.revoke)
    motivo = TextAreaField(
        "Motivo",
        filters=[_strip],
        validators=[
            DataRequired("Escriba el motivo del retiro."),
            Length(min=service.MOTIVO_MIN, max=service.MOTIVO_MAX, message=MOTIVO_MESSAGE),
        ],
    )

    def account_id(self) -> int | None:
        """Return the account id the form carries (None when it carries none)."""
        value = self.cuenta.data or ""
        return int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None


# --- the grants ------------------------------------------------------------------


@bp.get("/convenios/accesos")
@require(Action.MANAGE_CONVENIO_ACCESS)
def convenio_accesos():
    """List the users granted CONVENIOS, newest grant first, by entity and e-mail or name."""
    form = AccesoFiltros()
    context = {"title": "Accesos a Convenios", "form": form}
    if not form.validate():
        return render_queue(GRANTS_PAGE, GRANTS_ROWS, 422, page=None, **context)
    query = service.grants_query(form.entidad.data, form.q.data or "")
    page = page_from_request(query, order=service.GRANTS_ORDER, per_page=GRANTS_PER_PAGE)
    service.with_sedes(page.rows)
    return render_queue(GRANTS_PAGE, GRANTS_ROWS, page=page, **context)


def _revoked(acceso_id: int):
    """Say that this grant was revoked, when and by whom; 404 for one that never was."""
    revocation = service.revocation_of(acceso_id)
    if revocation is None:
        abort(404)
    return render(REVOKED_PAGE, status=410, title="Acceso retirado", revocation=revocation)


def _grant_page(acceso, form: RetirarForm | None = None, status: int = 200):
    user = Account.get_by_id(acceso.account_id)
    if form is None:
        form = RetirarForm(formdata=None)
    form.cuenta.data = str(user.id)  # the form now shown is for this grant's account
    return render(
        GRANT_PAGE,
        status=status,
        title=f"Acceso a Convenios · {user.nombre.title()}",
        acceso=acceso,
        user=user,
        entidad=service.entity(acceso.entidad_id) if acceso.entidad_id else None,
        sedes=service.sedes_of([acceso.id])[acceso.id],
        sessions=service.open_convenio_sessions(user.id),
        show_request=acceso.solicitud_id is not None
        and allowed(current_account(), Action.DECIDE_REQUESTS),
        form=form,
    )


@bp.get("/convenios/accesos/<int:acceso_id>")
@require(Action.MANAGE_CONVENIO_ACCESS)
def convenio_acceso(acceso_id: int):
    """Show one grant: the user, the entity, the sedes, and the "Retirar acceso" form."""
    found = service.grant(acceso_id)
    if found is None:
        return _revoked(acceso_id)
    return _grant_page(found)


@bp.post("/convenios/accesos/<int:acceso_id>/retirar")
@require(Action.MANAGE_CONVENIO_ACCESS)
def convenio_acceso_retirar(acceso_id: int):
    """Revoke a grant with a reason; a second submit of the same form finds it gone."""
    found = service.grant(acceso_id)
    if found is None:
        return _revoked(acceso_id)
    form = RetirarForm()
    if not form.validate_on_submit():
        return _grant_page(found, form, 422)
    try:
        user = service.revoke(
            current_account(),
            found.id,
            form.motivo.data,
            base_url=current_app.config["BASE_URL"],
            account_id=form.account_id(),
            ip=request.remote_addr,
        )
    except service.AccessGone:
        return _revoked(acceso_id)
    except service.InvalidMotivo:
        form.motivo.errors = [MOTIVO_MESSAGE]
        return _grant_page(found, form, 422)
    flash(
        f"Acceso retirado: {user.email} ya no puede usar Convenios. Le avisamos por correo.", "ok"
    )
    return see_other(url_for("gestion.convenio_accesos"))


# --- the look-up log --------------------------------------------------------------


@bp.get("/convenios/consultas")
@require(Action.SEARCH_CONVENIO_LOOKUPS)
def convenio_consultas():
    """Search the look-up log, newest first: who consulted which cédula, where, with what result."""
    form = ConsultaFiltros()
    context = {
        "title": "Consultas de convenio",
        "form": form,
        "labels": convenios.RESULT_LABELS,
        "unknown_operator": False,
    }
    if not form.validate():
        return render_queue(LOG_PAGE, LOG_ROWS, 422, page=None, **context)
    filters = {
        "cedula": form.cedula.data or "",
        "entidad_id": form.entidad.data,
        "operador": form.operador.data or "",
        "resultado": form.resultado.data or "",
        "desde": form.desde.data,
        "hasta": form.hasta.data,
    }
    operador_id = service.operator_id(filters["operador"])
    query = service.lookups_query(
        filters["cedula"],
        filters["entidad_id"],
        operador_id,
        filters["resultado"],
        filters["desde"],
        filters["hasta"],
    )
    page = page_from_request(query, order=service.LOOKUPS_ORDER, per_page=LOG_PER_PAGE)
    service.with_names(page.rows)
    if filters["cedula"] or page.rows:
        service.record_search(
            current_account(),
            filters,
            len(page.rows),
            ip=request.remote_addr,
            cedulas=[row["numero_documento"] for row in page.rows],
        )
    context["unknown_operator"] = operador_id == service.NOBODY
    return render_queue(LOG_PAGE, LOG_ROWS, page=page, **context)
