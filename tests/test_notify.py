"""The outbox and its worker, against a real SMTP server (aiosmtpd) and real HTTP."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

import models
from core import notify
from core.clock import utcnow
from models import Message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Keeper:
    """An SMTP handler that keeps what it receives, or refuses one address."""

    def __init__(self, refuse: str = ""):
        self.messages, self.refuse = [], refuse

    async def handle_RCPT(self, server, session, envelope: Envelope, address, options):
        if address == self.refuse:
            return "550 5.1.1 no existe"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope: Envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(app):
    keeper = Keeper(refuse="nadie@example.com")
    port = free_port()
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False)
    from blueprints.web import mail

    mail.init_app(app)
    yield keeper
    controller.stop()


def run_worker(runner):
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def test_worker_delivers_mail_over_smtp_and_marks_it_sent(db, smtp, runner):
    notify.queue_template_email(
        "ana@example.com",
        "Active su cuenta",
        "activation",
        user=models.Account(primer_nombre="ANA", afiliado=None),
        link="http://localhost/activar/abc",
    )
    assert "enviados 1" in run_worker(runner)
    received = smtp.messages[0]
    assert received["To"] == "ana@example.com" and received["Subject"] == "Active su cuenta"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in received.walk()
        if not p.is_multipart()
    }
    assert "http://localhost/activar/abc" in parts["text/plain"]
    assert 'href="http://localhost/activar/abc"' in parts["text/html"]
    assert Message.get().status == Message.SENT


def test_refused_recipient_is_a_permanent_failure(db, smtp, runner):
    notify.queue_email("nadie@example.com", "Hola", "texto")
    run_worker(runner)
    row = Message.get()
    assert row.status == Message.FAILED and row.attempts == 1


def test_smtp_down_is_retried_with_back_off(db, app, runner):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_SUPPRESS_SEND=False)
    from blueprints.web import mail

    mail.init_app(app)
    notify.queue_email("ana@example.com", "Hola", "texto")
    assert "reintentos 1" in run_worker(runner)
    row = Message.get()
    assert row.status == Message.PENDING and row.attempts == 1
    assert row.next_attempt_at > utcnow()
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()


def test_gives_up_after_the_last_attempt(db):
    notify.queue_email("ana@example.com", "Hola", "texto")
    Message.update(attempts=notify.MAX_ATTEMPTS - 1).execute()

    def broken(_message):
        raise OSError("caído")

    counts = notify.deliver_due({Message.EMAIL: broken})
    assert counts["failed"] == 1 and Message.get().status == Message.FAILED


def test_a_message_claimed_by_one_worker_is_not_sent_by_another(db):
    notify.queue_sms("3001234567", "hola")
    row = Message.get()
    assert notify._claim(row.id) is True
    assert notify._claim(row.id) is False


def test_retry_delay_doubles_and_is_capped():
    assert [notify.retry_delay(n).seconds for n in (1, 2, 3)] == [60, 120, 240]
    assert notify.retry_delay(30).seconds == 3600


def test_file_sms_backend_writes_json_lines(db, tmp_path):
    notify.queue_sms("3001234567", "Hanna: su código es 123456")
    path = tmp_path / "sms.jsonl"
    sender = notify.sms_sender("file", file=str(path))
    assert notify.deliver_due({Message.SMS: sender})["sent"] == 1
    line = json.loads(path.read_text().splitlines()[0])
    assert line["to"] == "3001234567" and "123456" in line["body"]


class Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.received.append((self.headers["Authorization"], json.loads(body)))
        self.send_response(Gateway.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    "status, expected", [(200, Message.SENT), (400, Message.FAILED), (503, Message.PENDING)]
)
def test_http_sms_backend(db, status, expected):
    Gateway.received, Gateway.status = [], status
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        notify.queue_sms("3001234567", "hola")
        sender = notify.sms_sender(
            "http", url=f"http://127.0.0.1:{server.server_port}/sms", token="secreto"
        )
        notify.deliver_due({Message.SMS: sender})
    finally:
        server.shutdown()
    assert Gateway.received[0] == ("Bearer secreto", {"to": "3001234567", "body": "hola"})
    assert Message.get().status == expected


def test_unknown_sms_backend_is_refused():
    with pytest.raises(ValueError):
        notify.sms_sender("paloma")


def _aged(message: Message, hours: float, status: str) -> None:
    then = utcnow() - timedelta(hours=hours)
    Message.update(status=status, created_at=then, sent_at=then).where(
        Message.id == message.id
    ).execute()


def test_bodies_are_blanked_after_the_retention_and_the_metadata_stays(db):
    link = "http://localhost/restablecer/un-token-vivo"
    old_sent = notify.queue_email("ana@example.com", "Restablecer", link, f"<a>{link}</a>")
    old_failed = notify.queue_sms("3001234567", "Hanna: su código es 123456")
    recent = notify.queue_email("ana@example.com", "Active su cuenta", "http://localhost/activar/x")
    waiting = notify.queue_sms("3001234567", "Hanna: su código es 654321")
    _aged(old_sent, 49, Message.SENT)
    _aged(old_failed, 49, Message.FAILED)
    _aged(recent, 47, Message.SENT)
    _aged(waiting, 49, Message.PENDING)  # still to deliver: the worker needs the body

    assert notify.purge_bodies(timedelta(hours=48)) == 2

    rows = {row.id: row for row in Message.select()}
    for purged in (old_sent, old_failed):
        row = rows[purged.id]
        assert row.body_text == "" and row.body_html == ""
        assert row.recipient == purged.recipient and row.channel == purged.channel
        assert row.subject == purged.subject and row.status in (Message.SENT, Message.FAILED)
        assert row.created_at is not None
    assert rows[recent.id].body_text == "http://localhost/activar/x"
    assert "654321" in rows[waiting.id].body_text
    assert notify.purge_bodies(timedelta(hours=48)) == 0  # nothing left to rewrite


def test_the_worker_purges_with_the_configured_retention(db, app, runner):
    app.config["OUTBOX_BODY_RETENTION_HOURS"] = 1
    message = notify.queue_sms("3001234567", "Hanna: su código es 123456")
    _aged(message, 2, Message.SENT)
    run_worker(runner)
    assert Message.get_by_id(message.id).body_text == ""


def test_the_purge_uses_an_index(db):
    if "sqlite" not in type(db.obj).__name__.lower():
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    cutoff = utcnow()
    query = notify.purge_query(cutoff)
    sql, params = query.sql()
    plan = " ".join(str(row) for row in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "USING INDEX message_status_created_at" in plan, plan


def test_dev_mailbox_says_when_a_body_was_purged(db, client):
    message = notify.queue_sms("3001234567", "Hanna: su código es 918273")
    _aged(message, 100, Message.SENT)
    notify.purge_bodies(timedelta(hours=48))
    page = client.get("/dev/buzon").text
    assert "918273" not in page and "Contenido borrado" in page


def test_a_claim_left_by_a_dead_worker_on_the_last_attempt_fails(db):
    notify.queue_sms("3001234567", "hola")
    Message.update(
        status=Message.SENDING,
        attempts=notify.MAX_ATTEMPTS,
        claimed_until=utcnow() - timedelta(seconds=1),
    ).execute()
    sent = []
    counts = notify.deliver_due({Message.SMS: sent.append})
    row = Message.get()
    assert counts["failed"] == 1 and sent == []
    assert row.status == Message.FAILED and "interrumpido" in row.last_error


def test_the_claim_counts_the_attempt_and_the_retry_base_is_configurable(db):
    notify.queue_sms("3001234567", "hola")

    def broken(_message):
        raise OSError("caído")

    notify.deliver_due({Message.SMS: broken}, retry_seconds=0.5)
    row = Message.get()
    assert row.attempts == 1 and row.status == Message.PENDING
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 0 < wait <= 0.5
    assert notify.retry_delay(3, 0.5).total_seconds() == 2.0
    assert notify.retry_delay(30, 0.5).total_seconds() == 30.0
