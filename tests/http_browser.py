"""Just enough of a browser for tests of whole servers: cookies, CSRF tokens, forms, files.

Cookies are kept per host, not per port (as a browser does), so one Browser
carries its session from one app server on 127.0.0.1 to another.
"""

from __future__ import annotations

import http.cookiejar
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HTMX = {"HX-Request": "true"}


@dataclass
class Answer:
    status: int
    text: str
    headers: dict
    body: bytes


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a test reads the 303 and its Location itself


class Browser:
    """A cookie jar and the requests a page's links and forms make."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def open(self, url: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        request = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                data = response.read()
                return Answer(
                    response.status, data.decode(errors="replace"), response.headers, data
                )
        except urllib.error.HTTPError as error:
            data = error.read()
            return Answer(error.code, data.decode(errors="replace"), error.headers, data)

    def get(self, url: str, headers: dict | None = None) -> tuple[int, str]:
        answer = self.open(url, headers=headers)
        return answer.status, answer.text

    def token(self, form_page: str) -> str:
        """Return the CSRF token of the form on form_page (GET)."""
        page = self.open(form_page)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {form_page} ({page.status})"
        return found.group(1)

    def submit(self, url: str, data: dict, form_page: str, headers: dict | None = None) -> Answer:
        """Post a form the way a browser does after loading form_page."""
        body = urllib.parse.urlencode({**data, "csrf_token": self.token(form_page)}).encode()
        return self.open(url, body, headers)

    def post(self, url: str, data: dict, form_page: str, headers: dict | None = None) -> int:
        return self.submit(url, data, form_page, headers).status

    def upload(
        self, url: str, data: dict, files: dict[str, tuple[str, bytes]], form_page: str
    ) -> Answer:
        """Post a multipart/form-data form: data's text fields and files' {field: (name, bytes)}."""
        boundary = f"----prueba{secrets.token_hex(12)}"
        parts = []
        for name, value in {**data, "csrf_token": self.token(form_page)}.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        for field, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + content
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.open(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
