"""Hanna accounts: login, "Crear Cuenta Nueva", activation, reset, Mi cuenta, QR sign-in.

The blueprint lives here; its routes are in views (login, registration,
activation), recovery (reset, Mi cuenta, sessions) and qr (QR sign-in), which
share only what this module gives them.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from blueprints.web import render
from core import passwords

bp = Blueprint("accounts", __name__)


def app_secret() -> str:
    """The key that signs this portal's links."""
    return current_app.config["SECRET_KEY"]


def base_url() -> str:
    """The public address links in mail and SMS start with."""
    return current_app.config["BASE_URL"]


def captcha_on() -> bool:
    """Tell whether public forms ask for a captcha."""
    return current_app.config["CAPTCHA"] != "off"


def live_password_check(form, problems: list[str], status: int = 200, message: str = ""):
    """Render the rules block with each rule met or not, for a password being typed."""
    return render_template(
        "accounts/_clave.html",
        form=form,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
        live=True,
        met=passwords.rules_met(problems),
        others=passwords.other_problems(problems),
        message=message,
    ), status


def password_page(template: str, form, problems: list[str], status: int, **context):
    """Render a new-password page with the H1 rules, each marked met or not after a try."""
    return render(
        template,
        status=status,
        form=form,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
        live=bool(problems),
        met=passwords.rules_met(problems),
        others=passwords.other_problems(problems),
        **context,
    )


from blueprints.accounts import qr, recovery, views  # noqa: E402, F401
