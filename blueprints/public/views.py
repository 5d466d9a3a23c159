"""Public pages: "Descubrelo", the captcha images and sounds, health, CSP reports."""

from __future__ import annotations

import json
import logging
import unicodedata

from flask import Blueprint, Response, abort, render_template, request

from blueprints.public import service
from blueprints.web import csrf, limiter
from core import captcha

bp = Blueprint("public", __name__)
log = logging.getLogger("portal.csp")

CSP_REPORT_MAX = 4096


def _log_safe(value, uri: bool = False, limit: int = 80) -> str:
    """Return a report field fit for one log line: no control characters, short.

    A URI loses its query and fragment, which may carry a page's tokens.
    """
    if value is None:
        return "?"
    text = str(value)
    if uri:
        text = text.split("?", 1)[0].split("#", 1)[0]
    text = "".join("?" if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text)
    return text[:limit]


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
    """Draw the image of a live challenge: the same bytes every time for one key."""
    row = service.challenge(key) or abort(404)
    return Response(captcha.render_image(row.text, rng=row.image_rng()), mimetype="image/png")


@bp.get("/captcha/<key>.mp3")
@limiter.limit("20/minute")
def captcha_audio(key: str):
    """Speak the digits of a live challenge (the audio alternative)."""
    row = service.challenge(key) or abort(404)
    return Response(
        captcha.render_audio(row.audio_code, rng=row.audio_rng()), mimetype="audio/mpeg"
    )


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
    # A real report is well under 1 KB; read no more than the cap, even chunked.
    if (request.content_length or 0) > CSP_REPORT_MAX:
        return "", 413
    body = request.stream.read(CSP_REPORT_MAX + 1)
    if len(body) > CSP_REPORT_MAX:
        return "", 413
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = None
    report = data.get("csp-report") if isinstance(data, dict) else None
    report = report if isinstance(report, dict) else {}
    log.warning(
        "CSP violation: %s blocked %s",
        _log_safe(report.get("violated-directive")),
        _log_safe(report.get("blocked-uri"), uri=True),
    )
    return "", 204
