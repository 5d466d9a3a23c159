"""Signed links: one serializer per purpose, each telling expired from invalid."""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

ACTIVATION = "activacion"
ACTIVATION_MAX_AGE = 48 * 3600
RESET = "restablecer"
EMAIL_CHANGE = "cambio-correo"
RESEND = "reenviar-activacion"
STAFF_INVITE = "invitacion-funcionario"


class TokenExpired(Exception):
    """The link was genuine but is too old."""


class TokenInvalid(Exception):
    """The link was tampered with, is for another purpose, or was used."""


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"portal-hanna:{purpose}")


def make_token(secret: str, purpose: str, payload: dict) -> str:
    """Sign payload for one purpose."""
    return _serializer(secret, purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age: int | None) -> dict:
    """Return the payload of a genuine, fresh token or raise TokenExpired/Invalid.

    max_age None checks the signature only (to offer a new link for an old one).
    """
    try:
        return _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenExpired from exc
    except BadSignature as exc:
        raise TokenInvalid from exc


def digest(value: str) -> str:
    """Return the SHA-256 hex digest of value (stored instead of a secret)."""
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
