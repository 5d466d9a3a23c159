"""Sign a shared PC in with a phone that is already signed in ("Código QR", H5)."""

from __future__ import annotations

import segno
from flask import (
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from blueprints.accounts import access, bp
from blueprints.auth import require, sign_in
from blueprints.compression import add_vary
from blueprints.web import limiter, wants_partial
from core.permissions import Action
from core.useragent import describe


def _qr_svg(url: str) -> Markup:
    """Draw url as an inline SVG QR code (no script, no image request)."""
    svg = segno.make(url, error="m").svg_inline(scale=5, border=2, title="Código QR")
    return Markup(svg)  # noqa: S704 - segno's own markup, our URL inside it


@bp.get("/qr")
@limiter.limit("10/minute;60/hour")
def qr_start():
    """Show the QR code of a new sign-in request for this PC."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.home"))
    qr, secret = access.start_qr_login(request.user_agent.string)
    session["qr"] = {"key": qr.key, "secret": secret}
    return _qr_page(qr)


def _qr_page(qr, notice: str = ""):
    url = f"{current_app.config['BASE_URL']}/qr/{qr.key}"
    return render_template("accounts/qr.html", qr=qr, svg=_qr_svg(url), url=url, notice=notice)


@bp.get("/qr/estado")
@limiter.limit("60/minute")
def qr_status():
    """Tell the waiting PC what happened; sign it in once the phone approved."""
    pending = session.get("qr") or {}
    state, user = access.claim_qr_login(pending.get("key", ""), pending.get("secret", ""))
    if state == "listo":
        sign_in(user)  # clears the session, and with it the request's secret
        flash("Sesión iniciada con el Código QR.", "ok")
        if wants_partial():
            response = make_response("", 200)
            response.headers["HX-Redirect"] = url_for("accounts.home")
            return response
        return redirect(url_for("accounts.home"), 303)
    if state == "esperando":
        if wants_partial():
            return "", 204  # nothing new: htmx keeps polling
        # Without JS: the same code and number again, so the phone can still use them.
        qr = access.qr_for_phone(pending["key"])
        if qr is not None:
            notice = (
                "Todavía no recibimos la confirmación. Confirme en su celular y vuelva a intentar."
            )
            return _qr_page(qr, notice)
        state = "vencido"  # it expired in between
    session.pop("qr", None)
    template = "accounts/_qr_estado.html" if wants_partial() else "accounts/qr_estado.html"
    response = make_response(render_template(template, state=state), 200)
    add_vary(response, "HX-Request")
    return response


@bp.route("/qr/<key>", methods=["GET", "POST"])
@require(Action.USE_HANNA)
@limiter.limit("10/minute", methods=["POST"])
def qr_confirm(key: str):
    """On the phone: show which browser asks, and approve or refuse it."""
    qr = access.qr_for_phone(key)
    if qr is None:
        return render_template("accounts/qr_confirmar.html", qr=None), 410
    if request.method == "POST":
        picked = request.form.get("numero") if request.form.get("accion") == "aprobar" else None
        if access.decide_qr(key, current_user, picked):
            return render_template("accounts/qr_confirmar.html", qr=qr, done="aprobado")
        return render_template("accounts/qr_confirmar.html", qr=qr, done="rechazado")
    return render_template(
        "accounts/qr_confirmar.html",
        qr=qr,
        device=describe(qr.user_agent),
        options=access.qr_match_options(qr),
    )
