"""The portal as the bench serves it: the real app with rate limiting switched off.

The look-up allows 10 requests a minute per IP; a load test from one address
would otherwise measure the 429 page. Everything else (CSRF, sessions, security
headers, the database) stays as in production.
"""

from app import create_app


def create():
    """Build the portal with Flask-Limiter disabled."""
    return create_app({"RATELIMIT_ENABLED": False})
