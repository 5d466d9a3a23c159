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


def init_app(app: Flask) -> None:
    """Install the security headers on every answer."""

    @app.after_request
    def headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.extend(FIXED)
        # A TLS terminator in front (nginx, PROXY_HOPS=1) that forwards plain HTTP
        # without X-Forwarded-Proto:
        # an https:// BASE_URL says the site is HTTPS all the same.
        if request.is_secure or app.config["BASE_URL"].startswith("https://"):
            h["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if request.endpoint == "static" and response.status_code in (200, 206, 304):
            # The hashed, immutable copies never get here (WhiteNoise answers
            # them first): this is an unversioned name, so revalidate each use.
            h["Cache-Control"] = "no-cache"
        else:
            # Shared PCs: nothing a page shows may stay in the browser's cache;
            # nor a missing /static/ file (404): it may exist after the next deploy.
            h["Cache-Control"] = "no-store"
        return response
