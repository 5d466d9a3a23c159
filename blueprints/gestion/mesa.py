"""Back office: the Mesa de Ayuda IPS (S1, I3) — the queue by target, the case and its actions,
the motivos (admin) and the saved replies.

Every form posts to its own URL and answers 303 (HX-Redirect for htmx), a 422
with the input kept, or, when the case changed since the page was shown (a
second click, a colleague), the page again with a flash saying so.
"""

from __future__ import annotations

from dataclasses import replace

from flask import abort, current_app, flash, g, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from blueprints.auth import current_account, require
from blueprints.gestion import bp
from blueprints.gestion import mesa_service as service
from blueprints.gestion.mesa_forms import (
    FILTRO_ESTADOS,
    GUARDADA_ERROR,
    HORAS_ERROR,
    TEXTO_ERROR,
    AsignarForm,
    AsuntoForm,
    EstadoForm,
    MesaFilters,
    MotivoForm,
    NotaForm,
    ResponderForm,
    RespuestaGuardadaForm,
)
from blueprints.queue import page_from_request, render_queue
from blueprints.web import body_limit, render, see_other, send_attachment
from core import mesa as core_mesa
from core import uploads
from core.permissions import Action
from models import CasoMesa

PAGE_SIZE = 25
TITLE = "Mesa de Ayuda IPS"
FILE_FIELDS = {"responder": "adjuntos", "nota": "adjuntos_nota"}
ACCEPT = ".pdf,.xlsx,.docx,.pptx,.jpg,.jpeg,.png"
TOO_MANY_FILES = f"Adjunte hasta {service.MAX_FILES} archivos por mensaje."
OUTDATED = (
    "El caso tiene un mensaje nuevo desde que abrió esta página (de la IPS, de un compañero, "
    "o el suyo enviado dos veces): léalo abajo. Su texto no se envió; sigue en el formulario."
)
CHANGED = "Este caso cambió mientras tanto (ahora: {estado}); vea abajo cómo quedó."
ASSIGNED_MEANWHILE = "Otra persona cambió la asignación mientras tanto: ahora {quien}."
NOBODY = "no está asignado"


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


def _ips_link(caso: CasoMesa) -> str:
    """Return the IPS's page of the case (I3) as an absolute URL, for the e-mail."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}/ips/solicitudes/{caso.numero}"


def _caso_or_404(caso_id: int) -> CasoMesa:
    found = service.get(caso_id)
    if found is None:
        abort(404)
    return found


def _posted_int(name: str) -> int | None:
    """Read a hidden whole number the page wrote (None when missing or tampered with)."""
    text = request.form.get(name, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None


def _parts(name: str) -> list[service.Upload] | str:
    """Return the chosen files of a file input, or the error when there are too many."""
    chosen = [p for p in request.files.getlist(name) if p.filename]
    if len(chosen) > service.MAX_FILES:
        return TOO_MANY_FILES
    return [service.Upload(p.stream, p.filename) for p in chosen]


def _estado(caso: CasoMesa) -> str:
    return core_mesa.estado_name(caso.estado).lower()


# --- the queue -------------------------------------------------------------------------------


@bp.get("/mesa")
@require(Action.ANSWER_HELP_DESK)
def mesa():
    """Show the help-desk queue: the cases staff owe an answer, nearest target first."""
    form = MesaFilters()
    form.set_motivos(core_mesa.motivos(include_inactive=True))
    context = dict(
        title=TITLE,
        form=form,
        counts=service.counts(),
        filtros=FILTRO_ESTADOS,
        estados=core_mesa.ESTADOS,
        mark=service.mark,
    )
    if not form.validate():
        return render_queue(
            "gestion/mesa.html", "gestion/_mesa_filas.html", 422, page=None, **context
        )
    estado = form.estado.data
    query = service.queue_query(
        estado,
        form.motivo_id,
        current_account().id if form.mios.data else None,
        form.buscar.data or "",
    )
    page = page_from_request(
        query, order=service.QUEUE_ORDER, ascending=service.ascending(estado), per_page=PAGE_SIZE
    )
    page = replace(page, rows=service.with_names(page.rows))  # names for this page's rows only
    return render_queue("gestion/mesa.html", "gestion/_mesa_filas.html", page=page, **context)


# --- one case --------------------------------------------------------------------------------


def _case(caso: CasoMesa, status: int = 200, **posted):
    """Render the case page with its thread and one form per action (a posted one keeps its input)."""
    me = current_account()
    messages = core_mesa.thread_for_staff(caso)
    staff = service.soporte_staff()
    responder = posted.get("responder") or ResponderForm(formdata=None)
    saved = service.saved_replies()
    chosen = service.saved_reply(request.args.get("respuesta_guardada")) if not posted else None
    if chosen is not None:  # "Usar" without JavaScript: the saved text, ready to edit
        responder.respuesta.data = chosen.texto
    asignar = posted.get("asignar") or AsignarForm(
        formdata=None, asignado=str(caso.asignado_id or 0)
    )
    asignar.set_staff(me.id, staff)
    if caso.asignado_id and caso.asignado_id not in {i for i, _ in staff}:
        # Given to someone who left the team: still shown as it is.
        asignar.asignado.choices.insert(
            0, SelectChoice(str(caso.asignado_id), "(fuera de soporte)")
        )
    estado = posted.get("estado") or EstadoForm(formdata=None)
    estado.offer_all_but(caso.estado)
    names = service.names_of([m.account_id for m in messages] + [caso.account_id, caso.asignado_id])
    return render(
        "gestion/mesa_caso.html",
        status=status,
        title=f"Caso {caso.numero}",
        caso=caso,
        estados=core_mesa.ESTADOS,
        due=service.mark(caso.estado, caso.due_at),
        mensajes=messages,
        archivos=core_mesa.files_of(messages),
        nombres=names,
        visto=service.last_message_id(messages),
        guardadas=saved,
        guardada=chosen,
        responder=responder,
        nota=posted.get("nota") or NotaForm(formdata=None),
        estado=estado,
        asignar=asignar,
        errores_adjuntos=posted.get("errores_adjuntos", {}),
        file_fields=FILE_FIELDS,
        accept=ACCEPT,
        max_files=service.MAX_FILES,
    )


@bp.get("/mesa/<int:caso_id>")
@require(Action.ANSWER_HELP_DESK)
def mesa_caso(caso_id: int):
    """Show a case: the IPS, the request, its target, the whole thread with the internal notes."""
    return _case(_caso_or_404(caso_id))


@bp.get("/mesa/<int:caso_id>/adjuntos/<int:adjunto_id>")
@require(Action.ANSWER_HELP_DESK)
def mesa_adjunto(caso_id: int, adjunto_id: int):
    """Download a file of the case's thread, and audit who opened it."""
    caso = _caso_or_404(caso_id)
    attachment = core_mesa.attachment_for_staff(caso.id, adjunto_id)
    response = send_attachment(attachment, _upload_dir())
    service.record_file_view(current_account(), caso, attachment, ip=request.remote_addr)
    return response


def _back(caso: CasoMesa, anchor: str = ""):
    return see_other(url_for("gestion.mesa_caso", caso_id=caso.id) + anchor)


@bp.post("/mesa/<int:caso_id>/responder")
@body_limit(service.MAX_BODY)
@require(Action.ANSWER_HELP_DESK)
def mesa_responder(caso_id: int):
    """Answer the IPS (text and files), leave the case waiting for it or closed, e-mail the opener."""
    caso = _caso_or_404(caso_id)
    form = ResponderForm()
    if not form.validate_on_submit():
        return _case(caso, 422, responder=form)
    parts = _parts(FILE_FIELDS["responder"])
    if isinstance(parts, str):
        return _case(caso, 422, responder=form, errores_adjuntos={"responder": parts})
    try:
        service.reply(
            caso,
            current_account(),
            form.respuesta.data,
            parts,
            _upload_dir(),
            estado=form.estado_despues.data,
            seen_estado=request.form.get("estado_visto", ""),
            seen_message=_posted_int("visto") if _posted_int("visto") is not None else -1,
            link=_ips_link(caso),
            ip=request.remote_addr,
        )
    except service.Outdated:
        flash(OUTDATED, "error")
        return _case(_caso_or_404(caso.id), 409, responder=form)
    except service.WrongState:
        fresh = _caso_or_404(caso.id)
        flash(CHANGED.format(estado=_estado(fresh)), "error")
        return _case(fresh, 409, responder=form)
    except uploads.UploadError as refused:
        return _case(caso, 422, responder=form, errores_adjuntos={"responder": refused.message})
    except service.InvalidValue:
        form.respuesta.errors = [TEXTO_ERROR]
        return _case(caso, 422, responder=form)
    closed = " y el caso quedó cerrado" if form.estado_despues.data == CasoMesa.CERRADO else ""
    flash(f"Respuesta enviada a la IPS{closed}. Se le avisó por correo.", "ok")
    return _back(caso, "#hilo")


@bp.post("/mesa/<int:caso_id>/nota")
@body_limit(service.MAX_BODY)
@require(Action.ANSWER_HELP_DESK)
def mesa_nota(caso_id: int):
    """Add an internal note to the thread: staff's only, no e-mail, no change of state."""
    caso = _caso_or_404(caso_id)
    form = NotaForm()
    if not form.validate_on_submit():
        return _case(caso, 422, nota=form)
    parts = _parts(FILE_FIELDS["nota"])
    if isinstance(parts, str):
        return _case(caso, 422, nota=form, errores_adjuntos={"nota": parts})
    seen = _posted_int("visto")
    try:
        service.note(
            caso,
            current_account(),
            form.nota.data,
            parts,
            _upload_dir(),
            seen_message=seen if seen is not None else -1,
            ip=request.remote_addr,
        )
    except service.WrongState:  # Outdated: a message came meanwhile
        flash(OUTDATED, "error")
        return _case(_caso_or_404(caso.id), 409, nota=form)
    except uploads.UploadError as refused:
        return _case(caso, 422, nota=form, errores_adjuntos={"nota": refused.message})
    except service.InvalidValue:
        form.nota.errors = [TEXTO_ERROR]
        return _case(caso, 422, nota=form)
    flash("Nota interna guardada. La IPS no la ve.", "ok")
    return _back(caso, "#hilo")


@bp.post("/mesa/<int:caso_id>/estado")
@require(Action.ANSWER_HELP_DESK)
def mesa_estado(caso_id: int):
    """Set the case's state by hand."""
    caso = _caso_or_404(caso_id)
    form = EstadoForm()
    form.offer_all_but(request.form.get("estado_visto", caso.estado))
    if not form.validate_on_submit():
        return _case(caso, 422, estado=form)
    try:
        done = service.change_state(
            caso.id,
            current_account(),
            form.nuevo_estado.data,
            request.form.get("estado_visto", ""),
            ip=request.remote_addr,
        )
    except service.WrongState as late:
        if late.caso.estado == form.nuevo_estado.data:
            flash(f"El caso ya estaba {_estado(late.caso)}.", "ok")
        else:
            flash(CHANGED.format(estado=_estado(late.caso)), "error")
        return _back(caso)
    flash(f"Caso {done.numero}: ahora {_estado(done)}.", "ok")
    return _back(caso)


@bp.post("/mesa/<int:caso_id>/asignar")
@require(Action.ANSWER_HELP_DESK)
def mesa_asignar(caso_id: int):
    """Give the case to me, to a soporte colleague, or to nobody."""
    caso = _caso_or_404(caso_id)
    me = current_account()
    staff = service.soporte_staff()
    form = AsignarForm()
    form.set_staff(me.id, staff)
    if not form.validate_on_submit():
        return _case(caso, 422, asignar=form)
    seen = _posted_int("asignado_visto")
    try:
        service.assign(caso.id, me, form.to, seen or None, ip=request.remote_addr)
    except service.NotFound:
        form.asignado.errors = ["Elija a alguien del equipo de soporte."]
        return _case(caso, 422, asignar=form)
    except service.WrongState as late:
        if late.caso.asignado_id == form.to:
            flash("El caso ya estaba asignado así.", "ok")
        else:
            quien = dict(staff).get(late.caso.asignado_id)
            flash(
                ASSIGNED_MEANWHILE.format(quien=f"lo tiene {quien}" if quien else NOBODY), "error"
            )
        return _back(caso)
    names = dict(staff)
    flash(f"Caso asignado a {names[form.to]}." if form.to else "El caso quedó sin asignar.", "ok")
    return _back(caso)


def _too_large(_error):
    """Answer a body over a reply's cap in words, with the way back to the case (not a 500)."""
    g.private = True
    args = request.view_args or {}
    if request.endpoint in ("gestion.mesa_responder", "gestion.mesa_nota") and "caso_id" in args:
        back = url_for("gestion.mesa_caso", caso_id=args["caso_id"])
        return render_template(
            "gestion/mesa_muy_grande.html", volver=back, max_files=service.MAX_FILES
        ), 413
    return render_template("errors/413.html"), 413


bp.register_error_handler(413, _too_large)


# --- motivos and asuntos (admin) ----------------------------------------------------------------

TAKEN_MOTIVO = "Ya existe un motivo con ese nombre."
TAKEN_ASUNTO = "Este motivo ya tiene un asunto con ese nombre."


def _motivo_form(motivo) -> MotivoForm:
    return MotivoForm(
        formdata=None,
        prefix=f"m{motivo.id}",
        data={
            "nombre": motivo.nombre,
            "horas": str(motivo.horas_objetivo),
            "activo": motivo.activo,
        },
    )


def _motivos_page(status: int = 200, posted: tuple[str, object] | None = None):
    """Render every motivo with its asuntos, each with its form (a posted one keeps its input)."""
    key, form = posted or ("", None)
    rows = []
    for motivo, asuntos in service.motivos_with_asuntos():
        mkey, nkey = f"m{motivo.id}", f"n{motivo.id}"
        rows.append(
            dict(
                motivo=motivo,
                form=form if key == mkey else _motivo_form(motivo),
                nuevo=form if key == nkey else AsuntoForm(formdata=None, prefix=nkey),
                asuntos=[
                    (
                        asunto,
                        form
                        if key == f"a{asunto.id}"
                        else AsuntoForm(
                            formdata=None,
                            prefix=f"a{asunto.id}",
                            data={"nombre": asunto.nombre, "activo": asunto.activo},
                        ),
                    )
                    for asunto in asuntos
                ],
            )
        )
    nuevo = (
        form if key == "nuevo" else MotivoForm(formdata=None, prefix="nuevo", data={"horas": "16"})
    )
    return render(
        "gestion/mesa_motivos.html",
        status=status,
        title="Motivos de la Mesa de Ayuda",
        filas=rows,
        nuevo=nuevo,
        horas=(service.HORAS_MIN, service.HORAS_MAX),
    )


def _record_motivo(accion: str, ident: int | None):
    """Apply one posted motivo or asunto form: (key, form, error) when refused, else None."""
    actor, ip = current_account(), request.remote_addr
    if accion in ("motivo_nuevo", "motivo"):
        key = "nuevo" if accion == "motivo_nuevo" else f"m{ident}"
        form = MotivoForm(prefix=key)
        if not form.validate_on_submit():
            return key, form
        try:
            if accion == "motivo_nuevo":
                service.add_motivo(actor, form.nombre.data, form.horas.data, ip=ip)
            else:
                service.edit_motivo(
                    actor, ident, form.nombre.data, form.horas.data, form.activo.data, ip=ip
                )
        except service.Taken:
            form.nombre.errors = [TAKEN_MOTIVO]
            return key, form
        except service.InvalidValue:
            form.horas.errors = [HORAS_ERROR]
            return key, form
        return None
    key = f"n{ident}" if accion == "asunto_nuevo" else f"a{ident}"
    form = AsuntoForm(prefix=key)
    if not form.validate_on_submit():
        return key, form
    try:
        if accion == "asunto_nuevo":
            service.add_asunto(actor, ident, form.nombre.data, ip=ip)
        else:
            service.edit_asunto(actor, ident, form.nombre.data, form.activo.data, ip=ip)
    except service.Taken:
        form.nombre.errors = [TAKEN_ASUNTO]
        return key, form
    return None


@bp.route("/mesa/motivos", methods=["GET", "POST"])
@require(Action.CONFIGURE_HELP_DESK)
def mesa_motivos():
    """Show the motivos with their targets and asuntos; add, rename, retime, (de)activate them."""
    if request.method == "GET":
        return _motivos_page()
    accion = request.form.get("accion", "")
    ident = _posted_int("id")
    if accion not in ("motivo_nuevo", "motivo", "asunto_nuevo", "asunto") or (
        accion != "motivo_nuevo" and ident is None
    ):
        abort(400)
    try:
        refused = _record_motivo(accion, ident)
    except service.NotFound:
        abort(404)
    if refused is not None:
        return _motivos_page(422, refused)
    flash("Cambios guardados." if accion in ("motivo", "asunto") else "Agregado.", "ok")
    return see_other(url_for("gestion.mesa_motivos"))


# --- saved replies ---------------------------------------------------------------------------------

TAKEN_TITLE = "Ya hay una respuesta guardada con ese título."


def _respuestas_page(status: int = 200, posted: tuple[str, object] | None = None):
    key, form = posted or ("", None)
    rows = [
        (
            saved,
            form
            if key == f"r{saved.id}"
            else RespuestaGuardadaForm(
                formdata=None,
                prefix=f"r{saved.id}",
                data={"titulo": saved.titulo, "texto": saved.texto},
            ),
        )
        for saved in service.saved_replies()
    ]
    nueva = form if key == "nueva" else RespuestaGuardadaForm(formdata=None, prefix="nueva")
    return render(
        "gestion/mesa_respuestas.html",
        status=status,
        title="Respuestas guardadas",
        filas=rows,
        nueva=nueva,
    )


@bp.route("/mesa/respuestas", methods=["GET", "POST"])
@require(Action.ANSWER_HELP_DESK)
def mesa_respuestas():
    """Show the saved replies; add, edit or delete one."""
    if request.method == "GET":
        return _respuestas_page()
    accion, ident = request.form.get("accion", ""), _posted_int("id")
    actor, ip = current_account(), request.remote_addr
    if accion not in ("nueva", "editar", "borrar") or (accion != "nueva" and ident is None):
        abort(400)
    if accion == "borrar":
        try:
            service.delete_saved_reply(actor, ident, ip=ip)
        except service.NotFound:
            flash("Esa respuesta guardada ya no existe.", "error")
            return see_other(url_for("gestion.mesa_respuestas"))
        flash("Respuesta guardada borrada.", "ok")
        return see_other(url_for("gestion.mesa_respuestas"))
    key = "nueva" if accion == "nueva" else f"r{ident}"
    form = RespuestaGuardadaForm(prefix=key)
    if not form.validate_on_submit():
        return _respuestas_page(422, (key, form))
    try:
        if accion == "nueva":
            service.add_saved_reply(actor, form.titulo.data, form.texto.data, ip=ip)
        else:
            service.edit_saved_reply(actor, ident, form.titulo.data, form.texto.data, ip=ip)
    except service.Taken:
        form.titulo.errors = [TAKEN_TITLE]
        return _respuestas_page(422, (key, form))
    except service.InvalidValue:
        form.texto.errors = [GUARDADA_ERROR]
        return _respuestas_page(422, (key, form))
    except service.NotFound:
        abort(404)
    flash("Respuesta guardada." if accion == "nueva" else "Cambios guardados.", "ok")
    return see_other(url_for("gestion.mesa_respuestas"))
