"""Public pages: "Descubrelo", the captcha images and sounds, health, CSP reports."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, render_template, request

from blueprints.public import service
from blueprints.web import csrf, limiter
from core import captcha

bp = Blueprint("public", __name__)
log = logging.getLogger("portal.csp")


@bp.get("/descubre")
def discover():
    """Show what the platform offers ("Descubrelo Ahora")."""
    return render_template("public/descubre.html")


@bp.get("/salud")
def health():
    """Answer the load balancer's health check."""
    return {"estado": "ok"}


@bp.get("/captcha/<key>.png")
@limiter.limit("60/minute")
def captcha_image(key: str):
    """Draw the image of a live challenge."""
    row = service.challenge(key) or abort(404)
    return Response(captcha.render_image(row.text), mimetype="image/png")


@bp.get("/captcha/<key>.wav")
@limiter.limit("20/minute")
def captcha_audio(key: str):
    """Speak the digits of a live challenge (the audio alternative)."""
    row = service.challenge(key) or abort(404)
    return Response(captcha.render_audio(row.audio_code), mimetype="audio/wav")


@bp.get("/captcha/nuevo")
@limiter.limit("30/minute")
def captcha_refresh():
    """Return a new challenge block for htmx ("Refrescar"; without JS the form posts)."""
    return render_template("_macros/_captcha.html", captcha_key=service.new_challenge())


@bp.post("/csp-report")
@csrf.exempt
@limiter.limit("30/minute")
def csp_report():
    """Count a browser's CSP violation report (no page content is logged)."""
    report = (request.get_json(silent=True, force=True) or {}).get("csp-report", {})
    log.warning(
        "CSP violation: %s blocked %s",
        report.get("violated-directive", "?"),
        str(report.get("blocked-uri", "?"))[:80],
    )
    return "", 204
