"""CSRF tokens masked afresh on every use, so compressed pages cannot leak them (BREACH).

Pages are compressed, carry the CSRF token and echo what the visitor typed:
an attacker who injects guesses and watches response sizes over TLS could
recover a token that is the same in every response. As Django does, each
`csrf_token()` in a template returns mask + (mask XOR secret), a different
string every time; the check unmasks it and compares the session's secret.

The check is this module's own (Flask-WTF's would sign what was unmasked only to
verify the signature again: a third of a look-up's CSRF time), and it is the only
one: forms carry no CSRF field of their own (SpanishForm), every POST, PUT,
PATCH and DELETE passes here before its view.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets

from flask import current_app, g, request, session
from flask_wtf.csrf import CSRFProtect, same_origin

log = logging.getLogger("flask_wtf.csrf")

# What mask() makes, bounded: b64decode would otherwise skip stray characters.
_MASKED = re.compile(r"[A-Za-z0-9_-]{8,200}")


def _field_name() -> str:
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")


def mask(secret: str) -> str:
    """Return the hex secret as base64url(mask + mask XOR secret), new on every call."""
    raw = bytes.fromhex(secret)
    pad = secrets.token_bytes(len(raw))
    return base64.urlsafe_b64encode(pad + _xor(raw, pad)).decode().rstrip("=")


def _xor(a: bytes, b: bytes) -> bytes:
    """a XOR b, of the same length (as integers: a loop over bytes cost a page 2 %)."""
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


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
    return _xor(data[:half], data[half:]).hex()


def session_secret() -> str:
    """This session's CSRF secret (40 hex digits, as Flask-WTF makes it), made on first use."""
    name = _field_name()
    secret = session.get(name)
    if not isinstance(secret, str):
        secret = session[name] = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324 - random
    return secret


def masked_csrf_token() -> str:
    """Return this session's CSRF secret, freshly masked (the templates' csrf_token())."""
    return mask(session_secret())


def refusal(sent: str | None) -> str | None:
    """Why a request carrying the token `sent` must be refused (Flask-WTF's words), or None."""
    if not sent:
        return "The CSRF token is missing."
    expected = session.get(_field_name())
    if not isinstance(expected, str):
        return "The CSRF session token is missing."
    secret = unmask(sent)
    if secret is None:
        return "The CSRF token is invalid."
    if not hmac.compare_digest(secret, expected):
        return "The CSRF tokens do not match."
    return None


class MaskedCSRFProtect(CSRFProtect):
    """CSRFProtect whose templates get masked tokens and whose check unmasks them."""

    def init_app(self, app) -> None:
        super().init_app(app)
        # Flask-WTF offers generate_csrf both as a global and through a context
        # processor; ours is registered later, so it wins in every template.
        app.jinja_env.globals["csrf_token"] = masked_csrf_token
        app.context_processor(lambda: {"csrf_token": masked_csrf_token})

    def protect(self, apply_exemptions: bool = False) -> None:
        """Refuse the request (400) unless it carries a token of this session's secret."""
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        reason = refusal(self._get_csrf_token())
        if reason:
            log.info(reason)
            self._error_response(reason)
        if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True
