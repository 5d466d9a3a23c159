"""Back office: "Accesos de IPS" — staff give an IPS of the EPS's data its admin operator (I1).

The IPS admin gets a pending account and an e-mailed link to create the
password; from then on the admin adds the IPS's other operators
(blueprints/ips/acceso.py).
"""

from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from flask_login import current_user
from wtforms import StringField
from wtforms.validators import Length, Optional

from blueprints.auth import require
from blueprints.gestion import bp
from blueprints.ips.forms import OperadorForm
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import limiter, render, see_other
from core import ips_accounts
from core.ips_accounts import IpsProblem, Problem
from core.permissions import Action
from models import Account, Ips

LIST_PAGE, LIST_PARTIAL = "gestion/ips.html", "gestion/_ips_filas.html"
ORDER = (Ips.nombre, Ips.id)
STATE_NAMES = {
    Account.ACTIVE: "Activo",
    Account.PENDING: "Pendiente (no ha creado su contraseña)",
    Account.DISABLED: "Deshabilitado",
}
MESSAGES = {
    Problem.EMAIL_TAKEN: "Esta IPS ya tiene un operador con ese correo electrónico.",
    Problem.NOT_INVITED: "Este operador ya creó su contraseña: no necesita un enlace nuevo.",
}


class IpsFilters(FilterForm):
    buscar = StringField(
        "NIT o nombre de la IPS",
        validators=[Optional(), Length(max=160)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
        description="El NIT con o sin dígito de verificación, o una parte del nombre.",
    )


@bp.get("/ips")
@require(Action.INVITE_IPS)
def ips():
    """List the IPS of the EPS's data by name, with their operators and whether one is admin."""
    form = IpsFilters()
    context = {"title": "Accesos de IPS", "form": form, "format_nit": ips_accounts.format_nit}
    if not form.validate():
        return render_queue(LIST_PAGE, LIST_PARTIAL, 422, page=None, **context)
    page = page_from_request(
        ips_accounts.ips_query(form.buscar.data or ""), order=ORDER, ascending=True
    )
    ips_accounts.add_operator_counts(page.rows)
    return render_queue(LIST_PAGE, LIST_PARTIAL, page=page, **context)


def _detail_page(ips: Ips, form: OperadorForm | None = None, status: int = 200):
    operadores = ips_accounts.operators_of(ips)
    return render(
        "gestion/ips_detalle.html",
        status=status,
        title=ips.nombre,
        ips=ips,
        operadores=operadores,
        has_admin=any(o["es_admin"] and o["status"] != Account.DISABLED for o in operadores),
        form=form or OperadorForm(formdata=None, correo=ips.email),
        states=STATE_NAMES,
        format_nit=ips_accounts.format_nit,
        lasts=ips_accounts.INVITE_LASTS,
    )


@bp.route("/ips/<int:ips_id>", methods=["GET", "POST"])
@require(Action.INVITE_IPS)
@limiter.limit("30/minute", methods=["POST"])
def ips_detalle(ips_id: int):
    """Show an IPS and its operators; "Dar acceso" creates its admin, "Reenviar" mails a new link."""
    ips = Ips.get_or_none(Ips.id == ips_id) or abort(404)
    if request.method == "GET":
        return _detail_page(ips)
    action = request.form.get("accion", "")
    secret, base_url = current_app.config["SECRET_KEY"], current_app.config["BASE_URL"]
    if action == "dar_acceso":
        form = OperadorForm()
        if not form.validate_on_submit():
            return _detail_page(ips, form, 422)
        try:
            account = ips_accounts.invite(
                current_user,
                ips,
                form.nombre.data,
                form.correo.data,
                secret=secret,
                base_url=base_url,
                ip=request.remote_addr,
            )
        except IpsProblem as exc:
            form.correo.errors.append(MESSAGES[exc.problem])
            return _detail_page(ips, form, 422)
        flash(
            f"Acceso creado: enviamos a {account.email} el enlace para crear la contraseña "
            f"(vence en {ips_accounts.INVITE_LASTS}).",
            "ok",
        )
    elif action == "reenviar":
        raw = request.form.get("operador", "")
        target = (
            ips_accounts.operator_of(ips, int(raw))
            if raw.isascii() and raw.isdigit() and len(raw) < 10
            else None
        )
        if target is None:
            abort(404)
        try:
            ips_accounts.reinvite(
                current_user, target, secret=secret, base_url=base_url, ip=request.remote_addr
            )
        except IpsProblem as exc:
            flash(MESSAGES[exc.problem], "info")
        else:
            flash(f"Enviamos un enlace nuevo a {target.email}.", "ok")
    else:
        abort(400)
    return see_other(url_for("gestion.ips_detalle", ips_id=ips.id))
