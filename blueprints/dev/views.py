"""The development mailbox: read sent e-mail and SMS without a mail server.

Registered only on a development machine (debug/testing, or DEV_MAILBOX=true on
a loopback BASE_URL: see app.create_app), and answered only to a loopback
client asking for a loopback host; never in production.
"""

from __future__ import annotations

import ipaddress

from flask import Blueprint, abort, current_app, render_template, request

from models import Message

bp = Blueprint("dev", __name__, url_prefix="/dev")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _is_loopback_address(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


@bp.before_request
def loopback_only() -> None:
    """Hide the mailbox from anyone not on this machine, whatever BASE_URL says."""
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    if host.lower() not in LOOPBACK_HOSTS or not _is_loopback_address(request.remote_addr):
        abort(404)


@bp.get("/buzon")
def mailbox():
    """List the newest e-mail and SMS of the outbox, links clickable."""
    messages = Message.select().order_by(Message.id.desc()).limit(50)
    return render_template(
        "dev/buzon.html",
        messages=messages,
        retention_hours=current_app.config["OUTBOX_BODY_RETENTION_HOURS"],
    )
