"""CSRF tokens masked afresh on every use, so compressed pages cannot leak them (BREACH).

Pages are compressed, carry the CSRF token and echo what the visitor typed:
an attacker who injects guesses and watches response sizes over TLS could
recover a token that is the same in every response. As Django does, each
`csrf_token()` in a template returns mask + (mask XOR secret), a different
string every time; the check unmasks it and compares the session's secret.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from flask import current_app, session
from flask_wtf.csrf import CSRFProtect, generate_csrf
from itsdangerous import URLSafeTimedSerializer

# What mask() makes, bounded: b64decode would otherwise skip stray characters.
_MASKED = re.compile(r"[A-Za-z0-9_-]{8,200}")


def _field_name() -> str:
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")


def mask(secret: str) -> str:
    """Return the hex secret as base64url(mask + mask XOR secret), new on every call."""
    raw = bytes.fromhex(secret)
    pad = secrets.token_bytes(len(raw))
    masked = pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return base64.urlsafe_b64encode(masked).decode().rstrip("=")


def unmask(token: str) -> str | None:
    """Return the hex secret a masked token carries, or None if it is not one."""
    if not _MASKED.fullmatch(token):
        return None
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    half = len(data) // 2
    if not half or len(data) % 2:
        return None
    return bytes(a ^ b for a, b in zip(data[:half], data[half:], strict=True)).hex()


def masked_csrf_token() -> str:
    """Return this session's CSRF secret, freshly masked (the templates' csrf_token())."""
    generate_csrf()  # makes sure the session holds a secret
    return mask(session[_field_name()])


class MaskedCSRFProtect(CSRFProtect):
    """CSRFProtect whose templates get masked tokens and whose check unmasks them."""

    def init_app(self, app) -> None:
        super().init_app(app)
        # Flask-WTF offers generate_csrf both as a global and through a context
        # processor; ours is registered later, so it wins in every template.
        app.jinja_env.globals["csrf_token"] = masked_csrf_token
        app.context_processor(lambda: {"csrf_token": masked_csrf_token})

    def _get_csrf_token(self) -> str | None:
        sent = super()._get_csrf_token()
        secret = unmask(sent) if sent else None
        if secret is None:
            return sent  # validate_csrf rejects it with its own reason
        # Hand validate_csrf a signed token of what was unmasked: its
        # constant-time comparison with the session's secret is the check.
        key = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        return URLSafeTimedSerializer(key, salt="wtf-csrf-token").dumps(secret)
