"""Secrets at rest and in logs, startup checks, CSP reports, HSTS (issue 6, items 5 and 7)."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest

from app import create_app, redact_path

STRONG = secrets.token_hex(32)


@pytest.fixture
def production(tmp_path, monkeypatch):
    """Build the app the way gunicorn does: no TESTING, no debug, only the environment."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    base = {
        "SECRET_KEY": STRONG,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "BASE_URL": "https://hanna.cajacopi.com",
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": "https://sms.example.com/enviar",
        "DEV_MAILBOX": "false",
    }

    def build(**env):
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)
        return create_app()

    return build


# --- startup checks -----------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["x", "a" * 40, "cambiar-esta-clave-secreta-por-una-larga", "changeme-changeme-changeme-123"],
)
def test_weak_secret_key_is_refused_in_production(production, key):
    with pytest.raises(RuntimeError, match="SECRET_KEY.*32 caracteres"):
        production(SECRET_KEY=key)


def test_strong_secret_key_starts(production):
    assert production().config["SECRET_KEY"] == STRONG


def test_debug_and_testing_accept_any_secret_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    assert create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": url})
    assert create_app({"DEBUG": True, "SECRET_KEY": "x", "DATABASE_URL": url})


@pytest.mark.parametrize("backend", ["console", "file"])
def test_development_sms_backends_are_refused_in_production(production, backend):
    with pytest.raises(RuntimeError, match=f"SMS_BACKEND={backend}"):
        production(SMS_BACKEND=backend)


@pytest.mark.parametrize("backend", ["console", "file"])
def test_development_sms_backends_start_on_a_development_machine(production, backend):
    app = production(SMS_BACKEND=backend, DEV_MAILBOX="true", BASE_URL="http://127.0.0.1:5000")
    assert app.config["SMS_BACKEND"] == backend


def test_dev_mailbox_flag_does_not_allow_console_sms_on_a_public_site(production):
    with pytest.raises(RuntimeError, match="SMS_BACKEND=console"):
        production(SMS_BACKEND="console", DEV_MAILBOX="true")


def test_body_retention_is_configurable(production):
    assert production().config["OUTBOX_BODY_RETENTION_HOURS"] == 48
    assert production(OUTBOX_BODY_RETENTION_HOURS="6").config["OUTBOX_BODY_RETENTION_HOURS"] == 6


# --- no token in any log line -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/activar/eyJ1IjoxfQ.aBc-12_x.Zz9", "/activar/…"),
        ("/restablecer/InR4dCI.ZmFrZQ.c2lnbmF0dXJl?x=1", "/restablecer/…"),
        ("/cuenta/sesiones/12/cerrar", "/cuenta/sesiones/12/cerrar"),
        ("/qr/k3yK3yK3yK3yK3y0", "/qr/…"),
        ("/registro?numero_documento=1000000001", "/registro"),
        ("/captcha/0123456789abcdef.png", "/captcha/…"),
    ],
)
def test_redact_path_hides_tokens_and_query_strings(path, logged):
    assert redact_path(path) == logged


def test_error_log_names_the_route_not_the_token(app, client, caplog):
    token = "eyJ1IjoxMjN9.ZmFrZS10b2tlbg.c2lnbmF0dXJlLXNlY3JldA"

    @app.get("/prueba/<token>/falla")
    def explode(token):
        raise RuntimeError("falla de prueba")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # let Flask log it as in production
    with caplog.at_level(logging.ERROR):
        response = client.get(f"/prueba/{token}/falla?codigo=123456&correo=ana@example.com")
    assert response.status_code == 500
    assert "Exception on /prueba/<token>/falla [GET]" in caplog.text
    assert token not in caplog.text and "123456" not in caplog.text
    assert "ana@example.com" not in caplog.text


def test_request_lines_of_the_development_server_are_redacted(app, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info(
            '%s - - [%s] "%s" %s -',
            "127.0.0.1",
            "01/Jan/2026 00:00:00",
            "GET /activar/eyJ1IjoxfQ.aBc-12_x.Zz9?codigo=654321 HTTP/1.1",
            200,
        )
    assert '"GET /activar/… HTTP/1.1" 200' in caplog.text
    assert "eyJ1" not in caplog.text and "654321" not in caplog.text


# --- the development mailbox listens only on loopback -------------------------


def test_dev_mailbox_answers_on_loopback(client):
    assert client.get("/dev/buzon").status_code == 200
    assert client.get("/dev/buzon", base_url="http://127.0.0.1:5000").status_code == 200


def test_dev_mailbox_is_404_for_a_remote_client(client):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/dev/buzon", environ_overrides=remote).status_code == 404


def test_dev_mailbox_is_404_under_a_public_host_name(client):
    assert client.get("/dev/buzon", base_url="http://hanna.cajacopi.com").status_code == 404


# --- CSP reports --------------------------------------------------------------


def _report(client, **fields):
    body = json.dumps({"csp-report": fields})
    return client.post("/csp-report", data=body, content_type="application/csp-report")


def test_csp_report_cannot_forge_log_lines(client, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        response = _report(
            client,
            **{
                "violated-directive": "script-src\nERROR falso: acceso de admin",
                "blocked-uri": "https://x.example/a.js?token=s3cr3t\r\nINFO otra",
            },
        )
    assert response.status_code == 204
    (record,) = [r for r in caplog.records if r.name == "portal.csp"]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line
    assert "s3cr3t" not in line and line.startswith("CSP violation: script-src")


def test_csp_report_fields_are_capped(client, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        _report(client, **{"violated-directive": "a" * 3000, "blocked-uri": "b" * 500})
    (record,) = [r for r in caplog.records if r.name == "portal.csp"]
    assert len(record.getMessage()) < 250


def test_large_csp_report_is_refused_without_logging(client, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        response = _report(client, **{"violated-directive": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert not [r for r in caplog.records if r.name == "portal.csp"]


def test_csp_report_without_length_is_read_only_up_to_the_cap(client, caplog):
    body = json.dumps({"csp-report": {"violated-directive": "y" * 10000}}).encode()
    with caplog.at_level(logging.WARNING, logger="portal.csp"):
        response = client.post(
            "/csp-report",
            input_stream=io.BytesIO(body),
            content_type="application/csp-report",
            environ_overrides={"wsgi.input_terminated": True},  # chunked: no Content-Length
        )
    assert response.status_code == 413
    assert not [r for r in caplog.records if r.name == "portal.csp"]


def test_csp_reports_are_rate_limited(limited_app):
    client = limited_app.test_client()
    answers = [_report(client, **{"violated-directive": "img-src"}).status_code for _ in range(31)]
    assert answers[:30] == [204] * 30 and answers[30] == 429


# --- HSTS ---------------------------------------------------------------------


def test_hsts_when_the_site_is_https_by_configuration(app, client):
    app.config["BASE_URL"] = "https://hanna.cajacopi.com"
    # Plain HTTP from a TLS terminator on the same host, PROXY_HOPS=0.
    header = client.get("/").headers.get("Strict-Transport-Security", "")
    assert header.startswith("max-age=63072000")


def test_no_hsts_on_a_plain_http_site(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
