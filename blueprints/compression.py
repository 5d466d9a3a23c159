"""Compress pages and partials on the fly (brotli, else gzip) for clients that accept it.

Ours rather than Flask-Compress: that one leaves 4xx answers alone, and a form
sent back with its errors (422) is a whole page a phone has to download.
Static files never come here: WhiteNoise serves them precompressed.
"""

from __future__ import annotations

import gzip

import brotli
from flask import Flask, Response, request

COMPRESSIBLE = {"text/html", "text/plain", "text/css", "application/json", "image/svg+xml"}
# Below this a body fits in one packet anyway, and 204s and tiny partials would
# only grow by the encoding's own header.
MIN_SIZE = 256
# Measured on our pages (2–8 KB): brotli 5 is ~5 % smaller than 4 at ~0.2 ms;
# 11 saves 10 % more but costs 4–12 ms per page.
BROTLI_QUALITY = 5
GZIP_LEVEL = 6


def choose_encoding(accept_encoding: str) -> str | None:
    """Return "br" or "gzip" if the Accept-Encoding header allows it (q=0 refuses)."""
    offered: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered[name.strip()] = q
    wildcard = offered.get("*", 0.0)
    for encoding in ("br", "gzip"):
        if offered.get(encoding, wildcard) > 0:
            return encoding
    return None


def add_vary(response: Response, name: str) -> None:
    """Add name to response's Vary header unless it is there.

    werkzeug's ``response.vary.add`` parses the header into a set and writes it
    back quoted, on every call: a tenth of a poll's answer.
    """
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = name
    elif name.lower() not in (part.strip().lower() for part in current.split(",")):
        response.headers["Vary"] = f"{current}, {name}"


def compress(response: Response) -> Response:
    """Compress response in place when it is worth it; always vary on Accept-Encoding."""
    if response.direct_passthrough or response.is_streamed:
        return response  # files sent by Flask itself, and streams: left as they are
    if response.mimetype not in COMPRESSIBLE or "Content-Encoding" in response.headers:
        return response
    add_vary(response, "Accept-Encoding")
    if response.status_code < 200 or response.status_code in (204, 304):
        return response
    encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
    data = response.get_data()
    if encoding is None or len(data) < MIN_SIZE:
        return response
    if encoding == "br":
        body = brotli.compress(data, quality=BROTLI_QUALITY, mode=brotli.MODE_TEXT)
    else:
        body = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    if len(body) >= len(data):
        return response
    response.set_data(body)  # also sets Content-Length
    response.headers["Content-Encoding"] = encoding
    return response


def init_app(app: Flask) -> None:
    """Compress every eligible response of app."""
    app.after_request(compress)
