"""The development mailbox: read sent e-mail and SMS without a mail server.

Registered only in debug/testing or with DEV_MAILBOX=true on a loopback
BASE_URL (see app.create_app); never in production.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from models import Message

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/buzon")
def mailbox():
    """List the newest e-mail and SMS of the outbox, links clickable."""
    messages = Message.select().order_by(Message.id.desc()).limit(50)
    return render_template("dev/buzon.html", messages=messages)
