"""Back office: admins and the convenios team manage the convenio entities and their sedes (S1, S2)."""

from __future__ import annotations

import functools

from flask import abort, flash, request, url_for
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, StopValidation

from blueprints.auth import current_account, require
from blueprints.forms import SpanishForm
from blueprints.gestion import bp, convenios_service
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import render, see_other
from core import convenios_data as data
from core.convenios_data import ConvenioError, Problem
from core.permissions import Action, allowed
from models import Entidad, Sede

LIST_PAGE, LIST_PARTIAL = "gestion/entidades.html", "gestion/_entidad_lista.html"
PAGE = "gestion/entidad.html"
ORDER = (Entidad.nombre, Entidad.id)
PER_PAGE = 25

REQUIRED = "Este campo es obligatorio."
ESTADOS = [SelectChoice(Entidad.ACTIVA, "Activa"), SelectChoice(Entidad.INACTIVA, "Inactiva")]
PROBLEMS = {
    Problem.NIT_TAKEN: "Ya hay una entidad registrada con este NIT.",
    Problem.CODIGO_TAKEN: "Esta entidad ya tiene una sede con este código.",
}


class Normalized:
    """A validator that stores normalize(data), or shows the Spanish ValueError it raises."""

    def __init__(self, normalize) -> None:
        self.normalize = normalize

    def __call__(self, _form, field) -> None:
        try:
            field.data = self.normalize(field.data or "")
        except ValueError as exc:
            raise StopValidation(str(exc)) from None


@functools.cache
def municipio_choices() -> tuple[SelectChoice, ...]:
    """Return the municipality options, grouped by department (built once)."""
    options = [SelectChoice("", "Seleccione el municipio")]
    for departamento, municipios in data.departamentos():
        options += [SelectChoice(m.codigo, m.nombre, optgroup=departamento) for m in municipios]
    return tuple(options)


class EntidadFiltros(FilterForm):
    """The list's filters: part of the NIT or of the name, and the state."""

    q = StringField(
        "NIT o nombre",
        validators=[Optional(), Length(max=100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    estado = SelectField("Estado", choices=[SelectChoice("", "Todas"), *ESTADOS], default="")


class EntidadEditForm(SpanishForm):
    """What an admin may change of an entity: the NIT stays, it is the Caja's key."""

    nombre = StringField(
        "Nombre de la entidad",
        validators=[DataRequired(REQUIRED), Length(max=Entidad.nombre.max_length)],
        render_kw={"autocomplete": "organization"},
    )
    estado = SelectField(
        "Estado del convenio",
        choices=ESTADOS,
        default=Entidad.ACTIVA,
        validate_choice=False,
        validators=[AnyOf(data.ESTADOS, message="Elija el estado: Activa o Inactiva.")],
    )


class EntidadNuevaForm(EntidadEditForm):
    """A new entity: its NIT with the DIAN check digit, its name and state."""

    nit = StringField(
        "NIT (con dígito de verificación)",
        validators=[DataRequired(REQUIRED), Normalized(data.normalize_nit)],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"},
    )


SEDE_FIELDS = ("codigo", "nombre", "municipio", "direccion", "activa")


class SedeForm(SpanishForm):
    """A sede: the Caja's code (unique within the entity), name, municipality, address."""

    codigo = StringField(
        "Código de la sede",
        validators=[DataRequired(REQUIRED), Normalized(data.normalize_codigo)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    nombre = StringField(
        "Nombre de la sede",
        validators=[DataRequired(REQUIRED), Length(max=Sede.nombre.max_length)],
    )
    municipio = SelectField(
        "Municipio",
        choices=municipio_choices,
        validate_choice=False,  # normalize_municipio says it in Spanish
        validators=[
            DataRequired("Seleccione el municipio."),
            Normalized(data.normalize_municipio),
        ],
    )
    direccion = StringField(
        "Dirección",
        validators=[Optional(), Length(max=Sede.direccion.max_length)],
        render_kw={"autocomplete": "street-address"},
    )
    activa = BooleanField(
        "Sede activa: sus usuarios pueden consultar y reportar usos", default=True
    )


def _entidad_or_404(entidad_id: int) -> Entidad:
    found = Entidad.get_or_none(Entidad.id == entidad_id)
    if found is None:
        abort(404)
    return found


def _sede_or_404(entidad: Entidad, sede_id: int) -> Sede:
    found = Sede.get_or_none((Sede.id == sede_id) & (Sede.entidad == entidad.id))
    if found is None:
        abort(404)
    return found


def _sedes_of(entidad: Entidad) -> list[Sede]:
    return list(Sede.select().where(Sede.entidad == entidad.id).order_by(Sede.codigo))


def _refused(form, error: ConvenioError) -> None:
    getattr(form, error.field).errors = [PROBLEMS[error.problem]]


def _detail(entidad: Entidad, form: EntidadEditForm | None = None, status: int = 200):
    """Render the entity, its edit form and its sedes."""
    if form is None:
        form = EntidadEditForm(formdata=None, obj=entidad)
    accesos, accesos_total = convenios_service.grants_of_entity(entidad.id)
    return render(
        PAGE,
        "gestion/_entidad_form.html",
        status,
        title=entidad.nombre,
        entidad=entidad,
        form=form,
        sedes=_sedes_of(entidad),
        municipio_label=data.municipio_label,
        accesos=accesos,
        accesos_total=accesos_total,
        manage_access=allowed(current_account(), Action.MANAGE_CONVENIO_ACCESS),
    )


def _sede_page(entidad: Entidad, form: SedeForm, sede: Sede | None = None, status: int = 200):
    """Render the sede form (new, or the one being edited)."""
    return render(
        PAGE,
        "gestion/_entidad_sede_form.html",
        status,
        title=f"{'Editar' if sede else 'Nueva'} sede · {entidad.nombre}",
        entidad=entidad,
        sede=sede,
        sede_form=form,
    )


@bp.get("/entidades")
@require(Action.MANAGE_ENTITIES)
def entidades():
    """List the convenio entities by name, filtered by NIT or name and by state."""
    form = EntidadFiltros()
    context = {"title": "Entidades en convenio", "form": form}
    if not form.validate():
        return render_queue(LIST_PAGE, LIST_PARTIAL, 422, page=None, **context)
    query = data.entidades_query(form.q.data or "", form.estado.data or "")
    page = page_from_request(query, order=ORDER, ascending=True, per_page=PER_PAGE)
    return render_queue(LIST_PAGE, LIST_PARTIAL, page=page, **context)


@bp.route("/entidades/nueva", methods=["GET", "POST"])
@require(Action.MANAGE_ENTITIES)
def entidad_nueva():
    """Register a new convenio entity."""
    form = EntidadNuevaForm()
    if form.validate_on_submit():
        try:
            entidad = data.create_entidad(
                current_account(),
                form.nit.data,
                form.nombre.data,
                form.estado.data,
                ip=request.remote_addr,
            )
        except ConvenioError as error:
            _refused(form, error)
        else:
            flash(f"Entidad «{entidad.nombre}» registrada. Agregue ahora sus sedes.", "ok")
            return see_other(url_for("gestion.entidad", entidad_id=entidad.id))
    return render(
        PAGE,
        "gestion/_entidad_form.html",
        422 if any(f.errors for f in form) else 200,
        title="Nueva entidad",
        entidad=None,
        form=form,
    )


@bp.route("/entidades/<int:entidad_id>", methods=["GET", "POST"])
@require(Action.MANAGE_ENTITIES)
def entidad(entidad_id: int):
    """Show an entity with its sedes; a POST changes its name or state."""
    found = _entidad_or_404(entidad_id)
    if request.method == "GET":
        return _detail(found)
    form = EntidadEditForm()
    if not form.validate_on_submit():
        return _detail(found, form, 422)
    data.update_entidad(
        current_account(), found.id, form.nombre.data, form.estado.data, ip=request.remote_addr
    )
    flash("Cambios guardados.", "ok")
    return see_other(url_for("gestion.entidad", entidad_id=found.id))


@bp.route("/entidades/<int:entidad_id>/sedes/nueva", methods=["GET", "POST"])
@require(Action.MANAGE_ENTITIES)
def sede_nueva(entidad_id: int):
    """Add a sede to an entity."""
    return _save_sede(_entidad_or_404(entidad_id))


@bp.route("/entidades/<int:entidad_id>/sedes/<int:sede_id>", methods=["GET", "POST"])
@require(Action.MANAGE_ENTITIES)
def sede(entidad_id: int, sede_id: int):
    """Edit a sede of an entity."""
    found = _entidad_or_404(entidad_id)
    return _save_sede(found, _sede_or_404(found, sede_id))


def _save_sede(entidad: Entidad, current: Sede | None = None):
    """Show the sede form; on a valid POST create the sede (or change current) and go back."""
    form = SedeForm(obj=current)
    if form.validate_on_submit():
        values = {name: form[name].data for name in SEDE_FIELDS}
        values["direccion"] = values["direccion"] or ""
        actor, ip = current_account(), request.remote_addr
        try:
            if current is None:
                saved = data.create_sede(actor, entidad.id, **values, ip=ip)
            else:
                saved = data.update_sede(actor, current.id, **values, ip=ip)
        except ConvenioError as error:
            _refused(form, error)
        else:
            done = "agregada" if current is None else "guardada"
            flash(f"Sede «{saved.nombre}» {done}.", "ok")
            return see_other(url_for("gestion.entidad", entidad_id=entidad.id))
    return _sede_page(entidad, form, current, 422 if any(f.errors for f in form) else 200)


@bp.post("/entidades/<int:entidad_id>/sedes/<int:sede_id>/desactivar")
@require(Action.MANAGE_ENTITIES)
def sede_desactivar(entidad_id: int, sede_id: int):
    """Switch a sede off: its users can no longer report uses there."""
    return _switch(entidad_id, sede_id, activa=False)


@bp.post("/entidades/<int:entidad_id>/sedes/<int:sede_id>/activar")
@require(Action.MANAGE_ENTITIES)
def sede_activar(entidad_id: int, sede_id: int):
    """Switch a sede back on."""
    return _switch(entidad_id, sede_id, activa=True)


def _switch(entidad_id: int, sede_id: int, activa: bool):
    """Turn a sede on or off (the global CSRF check has run) and go back to its entity."""
    found = _entidad_or_404(entidad_id)
    current = _sede_or_404(found, sede_id)
    data.set_sede_activa(current_account(), current.id, activa, ip=request.remote_addr)
    flash(f"Sede «{current.nombre}» {'activada' if activa else 'desactivada'}.", "ok")
    return see_other(url_for("gestion.entidad", entidad_id=found.id))
