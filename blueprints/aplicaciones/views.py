"""The user's side of H4: request an application, follow the requests, open a granted one."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from werkzeug.routing import BuildError

from blueprints.aplicaciones import bp, service
from blueprints.aplicaciones.forms import SolicitudForm, new_form_key
from blueprints.auth import current_account, owned_or_404, require
from blueprints.web import body_limit, render, see_other, send_attachment
from core import uploads
from core.permissions import Action, Application, allowed
from models import SolicitudAplicacion

STALE_FORM = "El formulario venció. Elija el documento otra vez y envíe la solicitud de nuevo."


def _application_or_404(value: str) -> Application:
    try:
        return Application(value)
    except ValueError:
        abort(404)


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


@bp.get("/")
@require(Action.REQUEST_APPLICATION)
def inicio():
    """Show the user's applications and "Mis solicitudes"."""
    account = current_account()
    return render(
        "aplicaciones/inicio.html",
        tiles=service.tiles_for(account),
        solicitudes=service.requests_of(account),
    )


@bp.route("/<aplicacion>/solicitar", methods=["GET", "POST"])
@body_limit(service.MAX_BODY)
@require(Action.REQUEST_APPLICATION)
def solicitar(aplicacion: str):
    """Show "Solicitud de Aplicaciones" and create the request with its supporting PDF."""
    app_ = _application_or_404(aplicacion)
    account = current_account()
    # Takes effect when nothing read the body before this view (app.py's hook does it earlier).
    request.max_content_length = service.MAX_BODY
    form = SolicitudForm()
    if request.method == "GET":
        pending = service.pending_request(account, app_)
        if pending is not None:
            return render("aplicaciones/pendiente.html", solicitud=pending, aplicacion=app_)
        form.form_key.data = new_form_key()
        return render("aplicaciones/solicitar.html", form=form, aplicacion=app_)
    valid = form.validate_on_submit()
    if not form.has_valid_key():
        form.form_key.data = new_form_key()  # the next submit of this page counts as one
        if valid:
            form.soporte.errors = [STALE_FORM]
        valid = False
    if not valid:
        return render("aplicaciones/solicitar.html", status=422, form=form, aplicacion=app_)
    part = form.soporte.data
    try:
        solicitud = service.submit_request(
            account,
            app_,
            form.request_data(),
            form.form_key.data,
            part.stream,
            part.filename,
            _upload_dir(),
        )
    except service.DuplicateSubmit as sent:
        return see_other(url_for("aplicaciones.solicitud", solicitud_id=sent.solicitud.id))
    except service.AlreadyPending as pending:
        return render(
            "aplicaciones/pendiente.html", status=409, solicitud=pending.solicitud, aplicacion=app_
        )
    except service.StaleForm:
        form.form_key.data = new_form_key()
        form.soporte.errors = [STALE_FORM]
        return render("aplicaciones/solicitar.html", status=422, form=form, aplicacion=app_)
    except uploads.UploadError as refused:
        form.soporte.errors = [refused.message]
        return render("aplicaciones/solicitar.html", status=422, form=form, aplicacion=app_)
    flash("Recibimos su solicitud. Le avisaremos por correo cuando sea revisada.", "ok")
    return see_other(url_for("aplicaciones.solicitud", solicitud_id=solicitud.id))


@bp.get("/solicitudes/<int:solicitud_id>")
@require(Action.VIEW_REQUEST)
def solicitud(solicitud_id: int):
    """Show one of the user's requests and its state."""
    found = owned_or_404(Action.VIEW_REQUEST, SolicitudAplicacion.get_or_none(id=solicitud_id))
    return render(
        "aplicaciones/solicitud.html",
        solicitud=found,
        adjunto=service.attachment_of(found),
        sedes=service.sedes_granted(found) if found.estado == found.APROBADA else [],
    )


@bp.get("/solicitudes/<int:solicitud_id>/soporte")
@require(Action.VIEW_REQUEST)
def soporte(solicitud_id: int):
    """Download the request's supporting PDF (its owner only)."""
    found = owned_or_404(Action.VIEW_REQUEST, SolicitudAplicacion.get_or_none(id=solicitud_id))
    attachment = service.attachment_of(found)
    return send_attachment(attachment, _upload_dir())


@bp.get("/<aplicacion>/acceder")
@require(Action.REQUEST_APPLICATION)
def acceder(aplicacion: str):
    """Open a granted application ("Acceder"); without the grant, offer the request."""
    app_ = _application_or_404(aplicacion)
    if not allowed(current_account(), service.USE_ACTION[app_]):
        flash(
            f"Aún no tiene acceso a {app_.value.upper()}. Puede solicitarlo desde aquí.",
            "info",
        )
        return redirect(url_for("aplicaciones.inicio"))
    try:
        target = url_for(f"{app_.value}.inicio")
    except BuildError:  # the application's own area is not installed yet
        target = f"/{app_.value}"
    return redirect(target)
