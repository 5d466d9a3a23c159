"""The desk's pages: the sede, the look-up, "Reportar Uso" and its receipt."""

from __future__ import annotations

from flask import abort, current_app, redirect, request, url_for

from blueprints.auth import current_account, require
from blueprints.convenios import bp, current_sede, sede_or_404, sedes, set_sede
from blueprints.convenios.forms import ConsultaForm, SedeForm, UsoForm
from blueprints.web import render, see_other, wants_partial
from core import convenios
from core.permissions import Action
from models import Sede, UsoConvenio


def _sede_label(sede: Sede) -> str:
    return f"{sede.entidad.nombre} · {sede.nombre}"


def _page(template: str, /, partial: str | None = None, status: int = 200, **context):
    if not (partial and wants_partial()):  # the layout's "Cambiar sede" (a partial has none)
        context["sedes_count"] = len(sedes())
    return render(template, partial=partial, status=status, **context)


def _limits() -> convenios.Limits:
    return convenios.Limits.from_config(current_app.config)


def _sede_needed():
    """Where to go when this session has no sede yet: the picker (or a page saying there is none)."""
    granted = sedes()
    if len(granted) == 1:
        set_sede(granted[0])
        return None
    if not granted:
        return _page("convenios/sin_sedes.html")
    return (
        see_other(url_for("convenios.sede"))
        if request.method == "POST"
        else redirect(url_for("convenios.sede"))
    )


@bp.get("/")
@require(Action.USE_CONVENIOS)
def inicio():
    """ "Convenios Cajacopi": the notice, the report link and the look-up form."""
    if current_sede() is None and (answer := _sede_needed()) is not None:
        return answer
    return _page("convenios/inicio.html", form=ConsultaForm(formdata=None))


@bp.route("/sede", methods=["GET", "POST"])
@require(Action.USE_CONVENIOS)
def sede():
    """Choose the sede en convenio this session works for (only the granted ones)."""
    granted = sedes()
    if not granted:
        return _page("convenios/sin_sedes.html")
    form = SedeForm()
    form.sede.choices = [(s.id, _sede_label(s)) for s in granted]
    if request.method == "POST":
        raw = request.form.get("sede", "")
        raw = raw.strip()
        if raw.isascii() and raw.isdigit() and int(raw) not in {s.id for s in granted}:
            abort(404)  # someone else's sede: as if it did not exist
        if form.validate_on_submit():
            set_sede(sede_or_404(form.sede.data))
            return see_other(url_for("convenios.inicio"))
        return _page("convenios/sede.html", form=form, status=422)
    current = current_sede()
    if current is not None:
        form.sede.data = current.id
    return _page("convenios/sede.html", form=form)


@bp.post("/consultar")
@require(Action.USE_CONVENIOS)
def consultar():
    """Look a worker up ("Consultar Trabajador" or Enter): the result in place, or the page again."""
    sede = current_sede()
    if sede is None and (answer := _sede_needed()) is not None:
        return answer
    sede = current_sede()
    form = ConsultaForm()
    if not form.validate_on_submit():
        return _page(
            "convenios/inicio.html", partial="convenios/_consulta.html", form=form, status=422
        )
    try:
        consulta, trabajador = convenios.lookup(
            current_account(), sede, form.documento.data, _limits()
        )
    except convenios.LimitReached as exc:
        response = _page(
            "convenios/inicio.html",
            partial="convenios/_consulta.html",
            form=form,
            limite=str(exc),
            status=429,
        )
        response.headers["Retry-After"] = str(exc.wait_seconds)
        return response
    return _page(
        "convenios/inicio.html",
        partial="convenios/_consulta.html",
        form=form,
        trabajador=trabajador,
        uso_form=UsoForm(formdata=None, clave=consulta.clave),
    )


@bp.post("/reportar")
@require(Action.USE_CONVENIOS)
def reportar():
    """ "Reportar Uso": record the one use this look-up allows, and show its receipt."""
    sede = current_sede()
    if sede is None and (answer := _sede_needed()) is not None:
        return answer
    sede = current_sede()
    form = UsoForm()
    if not form.validate_on_submit():
        abort(404)
    consulta = convenios.consulta_for(current_account(), sede, form.clave.data)
    if consulta is None:
        abort(404)  # another operator's or another sede's look-up, or a made-up key
    try:
        uso, created = convenios.report_use(consulta)
    except convenios.UseRefused as exc:
        return _page(
            "convenios/inicio.html",
            partial="convenios/_consulta.html",
            form=ConsultaForm(formdata=None, documento=consulta.numero_documento),
            rechazo=str(exc),
            status=409,
        )
    if request.headers.get("HX-Request") == "true":
        return _page(
            "convenios/recibo.html",
            partial="convenios/_recibo.html",
            uso=uso,
            consulta=consulta,
            repetido=not created,
            form=ConsultaForm(formdata=None),
        )
    return redirect(url_for("convenios.recibo", numero=uso.numero, repetido=int(not created)), 303)


@bp.get("/recibo/<numero>")
@require(Action.USE_CONVENIOS)
def recibo(numero: str):
    """The receipt of a use this operator reported at one of their sedes."""
    uso = UsoConvenio.get_or_none(
        (UsoConvenio.numero == numero[:12]) & (UsoConvenio.account == current_account().id)
    )
    if uso is None or uso.sede_id not in {s.id for s in sedes()}:
        abort(404)
    return _page(
        "convenios/recibo.html",
        uso=uso,
        consulta=uso.consulta,
        repetido=request.args.get("repetido") == "1",
        form=ConsultaForm(formdata=None),
    )
