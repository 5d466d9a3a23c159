"""Security from day one: the headers every answer carries (sessions: blueprints/auth.py)."""

from __future__ import annotations

from flask import Flask, Response, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "report-uri /csp-report",
    ]
)


# Set on every answer and by nothing else (views may set nosniff, so it is added only if absent).
FIXED = [
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
]
DEFAULTS = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff")]
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
# Shared PCs: nothing a page shows may stay in the browser's cache; nor a missing
# /static/ file (404): it may exist after the next deploy.
NO_STORE = ("Cache-Control", "no-store")
# An unversioned static name (the hashed, immutable copies never get here:
# WhiteNoise answers them first): revalidate each use.
NO_CACHE = ("Cache-Control", "no-cache")


def init_app(app: Flask) -> None:
    """Install the security headers on every answer."""

    @app.after_request
    def headers(response: Response) -> Response:
        # One pass over the headers and one extend: werkzeug's setdefault and
        # item assignment each scan and validate them again.
        h = response.headers
        present = {name.lower() for name, _ in h}
        added = [pair for pair in DEFAULTS if pair[0].lower() not in present]
        added += FIXED
        # A TLS terminator in front (nginx, PROXY_HOPS=1) that forwards plain HTTP
        # without X-Forwarded-Proto: an https:// BASE_URL says the site is HTTPS all the same.
        if request.is_secure or app.config["BASE_URL"].startswith("https://"):
            if "strict-transport-security" in present:
                h.remove("Strict-Transport-Security")
            added.append(HSTS)
        if "cache-control" in present:
            h.remove("Cache-Control")
        static = request.endpoint == "static" and response.status_code in (200, 206, 304)
        added.append(NO_CACHE if static else NO_STORE)
        h.extend(added)
        return response
