"""The virtual office's "Actualización Datos Básicos" (SPEC G5; 003_… §10): the family group →
a member's data → "Actualizar Información" or "mis datos están actualizados", and the
member's "IPS de atención". ("Generar Certificados" lives with the certificates.)

Every member id goes through owned_or_404: anything outside the family group
(core.genesis.family_of) is answered as if it did not exist. Every change is kept
as a CambioDatosEps row by core.genesis.update_basic_data.
"""

from __future__ import annotations

from flask import flash, request, url_for

from blueprints.auth import current_account, require
from blueprints.genesis import account_key, bp, member_or_404, render_office
from blueprints.genesis.oficina_forms import DatosForm
from blueprints.web import limiter, see_other
from core import genesis
from core.permissions import Action
from models import EpsAfiliado

UPDATED = "Sus datos han sido actualizados de forma correcta."
UNCHANGED = (
    "No cambió ningún dato: sus datos siguen como estaban y quedó registrado que los revisó."
)
CONFIRMED = "Gracias por confirmar que sus datos están actualizados."
NOT_UPDATED = "No se pudieron actualizar sus datos: revise los campos marcados."
LOCKED = (
    "El celular y el correo de esta persona solo los puede cambiar ella misma, desde su propia "
    "cuenta del Portal Génesis: son los que usa para ingresar."
)


def phone_link(digits: str) -> tuple[str, str]:
    """Return a Colombian phone's tel: link and how it reads: "(605) 371 4545", "300 123 4567"."""
    if len(digits) == 10 and digits.startswith("60"):
        return f"tel:+57{digits}", f"({digits[:3]}) {digits[3:6]} {digits[6:]}"
    if len(digits) == 10:
        return f"tel:+57{digits}", f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    if len(digits) == 7:
        return f"tel:{digits}", f"{digits[:3]} {digits[3:]}"
    return f"tel:{digits}", digits


def _page(template: str, /, partial: str | None = None, status: int = 200, **context):
    return render_office(template, partial, status, tel=phone_link, **context)


@bp.get("/datos")
@require(Action.USE_GENESIS)
def datos():
    """G5: the núcleo familiar; choosing a member shows their basic data."""
    me = genesis.afiliado_of(current_account())
    return _page("genesis/nucleo.html", opcion="datos", miembros=genesis.family_of(me))


@bp.get("/datos/<int:member_id>")
@require(Action.USE_GENESIS)
def datos_miembro(member_id: int):
    """The member's information and the options: update, confirm, certificates, IPS."""
    return _page("genesis/datos.html", miembro=member_or_404(member_id))


@bp.post("/datos/<int:member_id>/confirmar")
@limiter.limit("30/hour", key_func=account_key)
@require(Action.USE_GENESIS)
def datos_confirmar(member_id: int):
    """ "mis datos están actualizados": record that the member's data was checked."""
    member = member_or_404(member_id)
    genesis.confirm_data(member)
    flash(CONFIRMED, "ok")
    return see_other(url_for("genesis.datos_miembro", member_id=member.id))


def _form(member: EpsAfiliado) -> DatosForm:
    """The form as posted, or filled in from the member's data (?departamento: its towns)."""
    if request.method == "POST":
        form = DatosForm()
        form.set_places()
        return form
    form = DatosForm(
        formdata=None,
        celular=member.celular,
        telefono=member.telefono,
        email=member.email,
        direccion=member.direccion,
        municipio=member.municipio,
    )
    chosen = request.args.get("departamento")
    form.set_places(chosen)
    if chosen and form.departamento.data != (member.municipio or "")[:2]:
        form.municipio.data = ""  # another department: its towns, none chosen yet
    return form


@bp.route("/datos/<int:member_id>/editar", methods=["GET", "POST"])
@limiter.limit("60/hour", key_func=account_key, methods=["POST"])
@require(Action.USE_GENESIS)
def datos_editar(member_id: int):
    """ "Actualizar Información": the form with its (*) fields; "Actualizar" saves the changes."""
    member = member_or_404(member_id)
    form = _form(member)
    page = dict(
        miembro=member, form=form, bloqueado=genesis.channels_locked(current_account(), member)
    )
    if request.method == "GET":
        return _page("genesis/datos_editar.html", "genesis/_municipios.html", **page)
    if request.form.get("accion") == "municipios":  # no JavaScript: the department's towns
        return _page("genesis/datos_editar.html", **page)
    if not form.validate_on_submit():
        return _page("genesis/datos_editar.html", status=422, **page)
    try:
        changed = genesis.update_basic_data(current_account(), member, form.values())
    except genesis.ContactLocked:
        form.celular.errors = [LOCKED]
        return _page("genesis/datos_editar.html", status=422, **page)
    flash(UPDATED if changed else UNCHANGED, "ok")
    return see_other(url_for("genesis.datos_miembro", member_id=member.id))


@bp.get("/datos/<int:member_id>/ips")
@require(Action.USE_GENESIS)
def ips_atencion(member_id: int):
    """ "IPS de atención": the member's primary-care IPS, its address and phone."""
    member = member_or_404(member_id)
    return _page("genesis/datos_ips.html", miembro=member, ips=genesis.ips_of(member))
