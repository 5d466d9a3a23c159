"""I2 "Mesa de Ayuda – Mesa de Ayuda", I3 "Gestion de Solicitud – Mis Solicitudes" and the case.

Every case is looked up through core.mesa with the signed-in operator's IPS
(case_of_ips, attachment_for_ips): all operators of one IPS see its cases,
another IPS's number answers 404 like a number that does not exist, and
internal notes never leave core.mesa on this side.

The thread polls ("nuevos") every 10 s: 204 while nothing is new, else the new
messages and a poller that asks after the last of them. The poll is passive
(blueprints.auth.passive): a page left open does not keep the session alive.
"""

from __future__ import annotations

import functools

from flask import abort, current_app, flash, make_response, render_template, request, url_for
from flask_login import current_user

from blueprints.auth import current_account, login_url, passive, require
from blueprints.compression import add_vary
from blueprints.ips import bp
from blueprints.ips.mesa_forms import MensajeForm, MesaForm, SolicitudesFilters, new_form_key
from blueprints.queue import page_from_request, render_queue
from blueprints.web import (
    body_limit,
    limiter,
    render,
    see_other,
    send_attachment,
    wants_partial,
)
from core import colombia, mesa, uploads
from core.permissions import Action
from models import Account, AsuntoMesa, CasoMesa, IpsOperador, MensajeMesa, StaffMember

FILE_FIELD = "adjunto"
FORM_OVERHEAD = uploads.MB  # the text fields and the multipart framing
MAX_BODY = mesa.MAX_FILES * mesa.POLICY.max_bytes + FORM_OVERHEAD
PER_PAGE = 20
POLL_SECONDS = 10
# Per account: "Ver asuntos" without JavaScript posts too, so the minute allows a few.
CREATE_LIMIT = "20/minute;100/hour"
WRITE_LIMIT = "20/minute;200/hour"
STATE_LIMIT = "20/minute"

CREATED = "Se generó el servicio N° {numero}. Puede seguirlo aquí y en Mis Solicitudes."
STALE_FORM = (
    "El formulario venció. Revise los datos, elija los adjuntos otra vez y envíelo de nuevo."
)
TOO_MANY_FILES = f"Adjunte hasta {mesa.MAX_FILES} archivos."
NEED_TEXT = "Escriba el mensaje o adjunte un archivo."
CLOSED = "El caso está cerrado: para escribir un mensaje, reábralo primero."
SENT = "Se envió su mensaje."
CLOSED_OK = "Se cerró el caso N° {numero}."
REOPENED_OK = "Se reabrió el caso N° {numero}: la Mesa de Ayuda lo atenderá de nuevo."
ALREADY_CLOSED = "El caso N° {numero} ya estaba cerrado."
ALREADY_OPEN = "El caso N° {numero} ya estaba abierto."


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


def _ips_id() -> int:
    """Return the signed-in operator's IPS (an IPS account without its profile sees nothing)."""
    profile = current_account().ips
    if profile is None:
        abort(404)
    return profile.ips_id


def account_key() -> str:
    """Rate-limit key: the signed-in account (an IPS's operators share one address)."""
    return f"cuenta:{current_user.id}" if current_user.is_authenticated else "anonimo"


def _anonymous() -> bool:
    """The anonymous are sent to sign in by require(), uncounted."""
    return not current_user.is_authenticated


def _case_or_404(numero: int) -> CasoMesa:
    """Return the signed-in IPS's case by number, or answer 404 (another IPS's too)."""
    caso = mesa.case_of_ips(_ips_id(), numero)
    if caso is None:
        abort(404)
    return caso


def _fecha(value) -> str:
    """A stored naive-UTC time as its dd/mm/aaaa date in Bogotá."""
    return colombia.format_date(colombia.to_bogota(value).date()) if value else ""


class _Tracked:
    """The chosen files, remembering which one core.mesa was storing when it refused one."""

    def __init__(self, parts: list[mesa.Upload]) -> None:
        self.parts = parts
        self.current = ""

    def __iter__(self):
        for part in self.parts:
            self.current = part.filename
            yield part

    def message(self, refused: uploads.UploadError) -> str:
        name = self.current if len(self.current) <= 80 else self.current[:77] + "…"
        if len(self.parts) > 1 and name:
            return f"«{name}»: {refused.message} No se guardó nada; elija los archivos otra vez."
        return refused.message


def _parts() -> list[mesa.Upload]:
    return [
        mesa.Upload(p.stream, p.filename) for p in request.files.getlist(FILE_FIELD) if p.filename
    ]


# --- I2: a new case ------------------------------------------------------------------------


def _form_page(form: MesaForm, status: int = 200, partial: bool = False, **context):
    form.descripcion.data = form.descripcion.data or ""
    return render(
        "ips/mesa.html",
        "ips/_asuntos.html" if partial else None,
        status,
        form=form,
        quedan=mesa.DESCRIPCION_MAX - len(form.descripcion.data),
        maximo=mesa.DESCRIPCION_MAX,
        max_files=mesa.MAX_FILES,
        **context,
    )


@bp.route("/mesa", methods=["GET", "POST"], endpoint="mesa")
@body_limit(MAX_BODY)
@limiter.limit(CREATE_LIMIT, key_func=account_key, methods=["POST"], exempt_when=_anonymous)
@require(Action.USE_HELP_DESK)
def nueva():
    """ "Mesa de Ayuda – Mesa de Ayuda": the form, and "Generar Servicio"."""
    if request.method == "GET":
        form = MesaForm(formdata=None)
        form.form_key.data = new_form_key()
        return _form_page(form)
    form = MesaForm()
    if request.form.get("accion") == "asuntos":  # no JavaScript: the motivo's asuntos
        form.asunto.data = form.asunto.data if form.asunto.data in _asunto_values(form) else ""
        return _form_page(form)
    valid = form.validate()
    if not form.has_valid_key():
        form.form_key.data = new_form_key()
        return _form_page(form, 422, adjunto_error=STALE_FORM)
    if not valid:
        return _form_page(form, 422)
    parts = _parts()
    if len(parts) > mesa.MAX_FILES:
        return _form_page(form, 422, adjunto_error=TOO_MANY_FILES)
    return _open(form, parts)


def _asunto_values(form: MesaForm) -> set[str]:
    return {c.value for c in form.asunto.choices if c.value}


def _open(form: MesaForm, parts: list[mesa.Upload]):
    """Open the validated case; show it, or the form again with what went wrong."""
    motivo, asunto = form.chosen
    tracked = _Tracked(parts)
    try:
        caso = mesa.open_case(
            current_account(),
            motivo,
            asunto,
            form.descripcion.data,
            form.form_key.data,
            tracked,
            _upload_dir(),
        )
    except mesa.DuplicateSubmit as sent:
        caso = sent.caso  # the same form sent twice: its first case
    except mesa.StaleForm:
        form.form_key.data = new_form_key()
        return _form_page(form, 422, adjunto_error=STALE_FORM)
    except uploads.UploadError as refused:
        return _form_page(form, 422, adjunto_error=tracked.message(refused))
    flash(CREATED.format(numero=caso.numero), "ok")
    return see_other(url_for("ips.caso", numero=caso.numero))


@bp.get("/mesa/asuntos")
@require(Action.USE_HELP_DESK)
def asuntos():
    """The Asunto select of the chosen motivo (htmx); without htmx, the whole form with it."""
    form = MesaForm(formdata=None, motivo=request.args.get("motivo", ""))
    form.form_key.data = new_form_key()
    return _form_page(form, partial=True)


def _too_large(_error):
    """Answer a body over the cap in words, with the way back (not a 500)."""
    if request.endpoint not in ("ips.mesa", "ips.mensajes"):  # another page: the portal's 413
        return render_template("errors/413.html"), 413
    if request.endpoint == "ips.mensajes" and wants_partial():
        # htmx: say it above the form, keeping what was typed (the body was never read).
        response = make_response(render("ips/_mensajes_aviso.html", max_files=mesa.MAX_FILES), 413)
        response.headers["HX-Retarget"] = "#mensaje-aviso"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    volver = (
        url_for("ips.caso", numero=request.view_args["numero"])
        if request.endpoint == "ips.mensajes"
        else url_for("ips.mesa")
    )
    return render("ips/mesa_muy_grande.html", volver=volver, max_files=mesa.MAX_FILES), 413


bp.register_error_handler(413, _too_large)


# --- I3: Mis Solicitudes -----------------------------------------------------------------------


@bp.get("/solicitudes")
@require(Action.USE_HELP_DESK)
def solicitudes():
    """ "Gestion de Solicitud – Mis Solicitudes": the IPS's cases, newest first."""
    form = SolicitudesFilters()
    context = dict(form=form, estados=mesa.ESTADOS, fecha=_fecha)
    if not form.validate():
        return render_queue(
            "ips/solicitudes.html", "ips/_solicitudes_filas.html", 422, page=None, **context
        )
    query = mesa.cases_of_ips(_ips_id(), form.estado.data or "", form.numero.data).select(
        CasoMesa.id,
        CasoMesa.numero,
        CasoMesa.created_at,
        CasoMesa.descripcion,
        CasoMesa.estado,
        AsuntoMesa.nombre.alias("asunto"),
    )
    page = page_from_request(query, order=(CasoMesa.created_at, CasoMesa.id), per_page=PER_PAGE)
    return render_queue("ips/solicitudes.html", "ips/_solicitudes_filas.html", page=page, **context)


# --- I3: the case and its thread -------------------------------------------------------------


def _authors(messages: list[MensajeMesa]) -> dict[int, str]:
    """Who wrote each message: the operator's name, or "Mesa de Ayuda" and the staff's first name."""
    ids = {m.account_id for m in messages if m.account_id}
    operators = dict(
        IpsOperador.select(IpsOperador.account, IpsOperador.nombre)
        .where(IpsOperador.account.in_(ids))
        .tuples()
    ) if ids else {}  # fmt: skip
    staff = dict(
        StaffMember.select(StaffMember.account, StaffMember.nombre)
        .where(StaffMember.account.in_(ids))
        .tuples()
    ) if ids else {}  # fmt: skip

    def author(m: MensajeMesa) -> str:
        if m.de_mesa:
            first = (staff.get(m.account_id) or "").split(" ")[0]
            return f"Mesa de Ayuda · {first}" if first else "Mesa de Ayuda"
        return operators.get(m.account_id) or "IPS"

    return {m.id: author(m) for m in messages}


def _thread_context(caso: CasoMesa, messages: list[MensajeMesa], **extra) -> dict:
    files = mesa.files_of(messages)
    return dict(
        caso=caso,
        mensajes=messages,
        adjuntos=files,
        autores=_authors(messages),
        ultimo=messages[-1].id if messages else extra.pop("despues", 0),
        abierto=caso.estado in mesa.OPEN,
        estado=mesa.estado_name(caso.estado),
        poll_seconds=POLL_SECONDS,
        **extra,
    )


def _case_page(caso: CasoMesa, status: int = 200, form: MensajeForm | None = None, **extra):
    """The case with its thread; for htmx, only the thread (with the state out of band)."""
    thread = mesa.thread_for_ips(caso)
    # The first message is the description itself, with the files sent with it.
    first, rest = (thread[0], thread[1:]) if thread else (None, [])
    context = _thread_context(caso, rest, despues=first.id if first else 0, **extra)
    context.update(
        form=form or MensajeForm(formdata=None),
        inicial=mesa.files_of([first]).get(first.id, []) if first else [],
        motivo=caso.motivo,
        asunto=caso.asunto,
        oob=wants_partial(),
        max_files=mesa.MAX_FILES,
        maximo=mesa.MENSAJE_MAX,
    )
    context["quedan"] = mesa.MENSAJE_MAX - len(context["form"].texto.data or "")
    return render("ips/caso.html", "ips/_mensajes.html", status, **context)


@bp.get("/solicitudes/<int:numero>")
@require(Action.USE_HELP_DESK)
def caso(numero: int):
    """The case: CASO, estado, FECHA, ASUNTO, MOTIVO, DESCRIPCION and the thread."""
    return _case_page(_case_or_404(numero))


@bp.get("/solicitudes/<int:numero>/adjuntos/<int:attachment_id>")
@require(Action.USE_HELP_DESK)
def adjunto(numero: int, attachment_id: int):
    """Download a file of the case's thread (the IPS's own case; never an internal note's)."""
    found = mesa.attachment_for_ips(_ips_id(), numero, attachment_id)
    return send_attachment(found, _upload_dir())


@bp.post("/solicitudes/<int:numero>/mensajes")
@body_limit(MAX_BODY)
@limiter.limit(WRITE_LIMIT, key_func=account_key, exempt_when=_anonymous)
@require(Action.USE_HELP_DESK)
def mensajes(numero: int):
    """ "ENVIAR": the IPS writes in its open case (JS off: back to the case; htmx: the thread)."""
    caso = _case_or_404(numero)
    form = MensajeForm()
    if caso.estado not in mesa.OPEN:
        return _case_page(caso, 409, form, aviso=CLOSED)
    if not form.validate():
        return _case_page(caso, 422, form)
    parts = _parts()
    if len(parts) > mesa.MAX_FILES:
        return _case_page(caso, 422, form, adjunto_error=TOO_MANY_FILES)
    if not form.texto.data and not parts:
        form.texto.errors = [NEED_TEXT]
        return _case_page(caso, 422, form)
    tracked = _Tracked(parts)
    try:
        mesa.ips_writes(caso, current_account(), form.texto.data or "", tracked, _upload_dir())
    except mesa.WrongState as changed:
        return _case_page(changed.caso, 409, form, aviso=CLOSED)
    except uploads.UploadError as refused:
        return _case_page(caso, 422, form, adjunto_error=tracked.message(refused))
    if wants_partial():
        return _case_page(caso)  # ips_writes updated its state
    flash(SENT, "ok")
    return see_other(url_for("ips.caso", numero=numero, _anchor="hilo"))


def _change_state(numero: int, change, done: str, already: str):
    caso = _case_or_404(numero)
    try:
        change(caso)
    except mesa.WrongState:
        flash(already.format(numero=numero), "info")  # a second click changes nothing
    else:
        flash(done.format(numero=numero), "ok")
    return see_other(url_for("ips.caso", numero=numero))


@bp.post("/solicitudes/<int:numero>/cerrar")
@limiter.limit(STATE_LIMIT, key_func=account_key, exempt_when=_anonymous)
@require(Action.USE_HELP_DESK)
def cerrar(numero: int):
    """ "Cerrar caso": the IPS closes its open case."""
    return _change_state(numero, mesa.close, CLOSED_OK, ALREADY_CLOSED)


@bp.post("/solicitudes/<int:numero>/reabrir")
@limiter.limit(STATE_LIMIT, key_func=account_key, exempt_when=_anonymous)
@require(Action.USE_HELP_DESK)
def reabrir(numero: int):
    """ "Reabrir caso": the IPS reopens its closed case (it waits for the desk again)."""
    return _change_state(numero, mesa.reopen, REOPENED_OK, ALREADY_OPEN)


# --- the poll --------------------------------------------------------------------------------


def _back_to_case(view):
    """After a poll found the session ended, sign in to come back to the case, not to the poll."""

    @functools.wraps(view)
    def wrapped(numero: int, **kwargs):
        response = view(numero=numero, **kwargs)
        if current_account() is None:
            target = login_url(Account.IPS, next=url_for("ips.caso", numero=numero))
            if "HX-Redirect" in response.headers:
                response.headers["HX-Redirect"] = target
            elif response.location:
                response.location = target
        return response

    return wrapped


@bp.get("/solicitudes/<int:numero>/nuevos")
@passive
@_back_to_case
@require(Action.USE_HELP_DESK)
def nuevos(numero: int):
    """The thread's poll: 204 while nothing is new after ``despues``, else the new messages."""
    despues = request.args.get("despues", "")
    if not (despues.isascii() and despues.isdigit() and len(despues) <= 15):
        _case_or_404(numero)  # another IPS's case is a 404 whatever the query says
        abort(400)
    despues = int(despues)
    news = mesa.poll(current_account().id, numero, despues)
    if news is None:
        abort(404)
    if not news:
        response = make_response("", 204)
        add_vary(response, "HX-Request")
        return response
    caso = _case_or_404(numero)
    messages = mesa.thread_for_ips(caso, after=despues)
    context = _thread_context(caso, messages, despues=despues)
    return render("ips/_mensajes_nuevos.html", oob=True, **context)
