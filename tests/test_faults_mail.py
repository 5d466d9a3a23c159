"""Mail faults against the real worker process and a real SMTP server (aiosmtpd).

The server is absent, then silent, then answers 4xx and 5xx for a while, then
accepts; and the worker is killed (SIGKILL) while a message is in flight.
Every message must arrive, a refused address must fail at once, and each crash
may repeat at most the one message that was in flight. Deliveries are counted
by Subject (unique per row) and Message-ID (the same on a copy sent again).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller

import models
from core import db as dbmod
from core import notify
from models import Message
from tests.servers import BIN, ROOT, free_port

pytestmark = pytest.mark.slow

BAD_ADDRESS = "nadie@example.com"  # the server says 550 to RCPT TO: it does not exist
RETRY_SECONDS = "0.1"  # 0.1, 0.2, 0.4 … s between tries instead of 1, 2, 4 … minutes


# --- the database both processes use -----------------------------------------------------


@pytest.fixture
def database_url(tmp_path):
    """A SQLite file, or a schema of its own in DATABASE_URL's PostgreSQL; the test's too."""
    url = os.environ.get("DATABASE_URL", "")
    admin = schema = None
    if url.startswith("postgres"):
        schema = f"fm_{uuid.uuid4().hex[:10]}"
        admin = dbmod.open_database(url)
        admin.execute_sql(f"CREATE SCHEMA {schema}")
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path / 'faults.sqlite3'}"
    database = dbmod.open_database(url)
    models.db.initialize(database)
    with database.connection_context():
        dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
    yield url
    if not database.is_closed():
        database.close()
    if hasattr(database, "close_all"):
        database.close_all()
    if admin is not None:
        admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close_all()


def rows() -> list[Message]:
    with models.db.connection_context():
        return list(Message.select().order_by(Message.id))


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    states = [(r.id, r.status, r.attempts, r.last_error[:60]) for r in rows()]
    raise AssertionError(f"not within {seconds} s: {what}; outbox: {states}")


# --- the worker process --------------------------------------------------------------------


class Worker:
    """`flask --app app worker` in a process group of its own, its output in a file."""

    def __init__(self, url: str, port: int, log_path, claim_seconds: float) -> None:
        self.log_path = log_path
        self.env = {
            **os.environ,
            "SECRET_KEY": f"faults-mail-{uuid.uuid4().hex}",
            "DATABASE_URL": url,
            "BASE_URL": "http://127.0.0.1",
            "SMS_BACKEND": "http",  # console and file start only on a development machine
            "SMS_HTTP_URL": "http://127.0.0.1:9/sms",  # no SMS is queued here
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(port),
            "OUTBOX_RETRY_SECONDS": RETRY_SECONDS,
            "OUTBOX_CLAIM_SECONDS": str(claim_seconds),
        }
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log_path, "a") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [str(BIN / "flask"), "--app", "app", "worker", "--interval", "0.05"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# --- the SMTP server -----------------------------------------------------------------------


class Sink:
    """An aiosmtpd handler: answers what `script` says, one entry per session, then accepts.

    A script entry is (stage, reply): stage "helo" refuses EHLO and HELO (the
    session), "mail", "rcpt" or "data" refuse that command, and "hangup"
    accepts the message and drops the connection right after its "250".
    With `slow`, the server has the whole message and waits that long before
    its "250" (the window in which a killed worker leaves it unmarked).
    """

    def __init__(self, script=(), slow: float = 0.0) -> None:
        self.script = list(script)
        self.slow = slow
        self.answered: list[tuple[str, str]] = []
        self.received: list[tuple[str, str]] = []  # (Subject, Message-ID), in order
        self.receiving = threading.Event()  # set when a message's data has arrived

    def _refusal(self, session, stage: str) -> str | None:
        found = getattr(session, "refusal", None)
        if found and found[0] == stage:
            self.answered.append(found)
            session.refusal = None
            return found[1]
        return None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        session.refusal = self.script.pop(0) if self.script else None
        if session.refusal and session.refusal[0] == "helo":
            return [session.refusal[1]]  # and HELO, which smtplib tries next, too
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        refused = self._refusal(session, "helo")
        if refused:
            return refused
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        refused = self._refusal(session, "mail")
        if refused:
            return refused
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == BAD_ADDRESS:
            if getattr(session, "refusal", None):  # not reached: the next session gets it
                self.script.insert(0, session.refusal)
                session.refusal = None
            return "550 5.1.1 El buzón no existe"
        refused = self._refusal(session, "rcpt")
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        refused = self._refusal(session, "data")
        if refused:
            return refused
        mail = message_from_bytes(envelope.content)
        self.received.append((str(make_header(decode_header(mail["Subject"]))), mail["Message-ID"]))
        self.receiving.set()
        if self.slow:
            await asyncio.sleep(self.slow)  # cancelled if the client goes: it is delivered anyway
        if self._refusal(session, "hangup") is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Recibido"

    def deliveries(self) -> Counter:
        return Counter(subject for subject, _ in self.received)


def start_smtp(sink: Sink, port: int) -> Controller:
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def queue(count: int, bad: int = 0) -> dict[int, str]:
    """Queue count e-mails (and bad to the refused address); return {row id: subject}."""
    subjects = {}
    with models.db.connection_context():
        for i in range(count + bad):
            to = BAD_ADDRESS if i >= count else f"afiliado{i}@example.com"
            subject = f"Aviso de prueba {i}"
            subjects[notify.queue_email(to, subject, f"Texto {i}").id] = subject
    return subjects


def test_mail_arrives_after_an_absent_a_silent_and_a_refusing_server(database_url, tmp_path):
    subjects = queue(7, bad=1)
    bad_id = max(subjects)
    port = free_port()
    worker = Worker(database_url, port, tmp_path / "worker.log", claim_seconds=1.5)
    silent = None
    controller = None
    script = [
        ("helo", "554 5.3.2 Sistema de correo en mantenimiento"),
        ("mail", "421 4.3.2 Servicio no disponible, intente más tarde"),
        ("mail", "550 5.7.1 Remitente rechazado por ahora"),
        ("rcpt", "451 4.7.1 Lista gris: intente más tarde"),
        ("data", "451 4.3.0 Error temporal"),
        ("data", "554 5.3.0 Error del servidor de correo"),
        ("hangup", ""),
    ]
    sink = Sink(script)
    started = time.monotonic()
    try:
        worker.start()
        # 1. Nothing listens: every message is tried once and waits.
        wait_for(
            lambda: all(r.attempts >= 1 and r.status == Message.PENDING for r in rows()),
            30,
            "every message tried against a closed port",
        )
        assert all("Connection" in r.last_error or "refused" in r.last_error for r in rows())
        # 2. Something listens and never says a word: the worker must not hang on it.
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen(16)
        wait_for(
            lambda: any("timed out" in r.last_error for r in rows()),
            30,
            "a send to a silent server cut by its time-out",
        )
        silent.close()
        # 3. The real server: one refusal per session as scripted, then it accepts.
        controller = start_smtp(sink, port)
        wait_for(
            lambda: all(r.status in (Message.SENT, Message.FAILED) for r in rows()),
            60,
            "every message sent or failed",
        )
    finally:
        worker.stop()
        if silent is not None:
            silent.close()
        if controller is not None:
            controller.stop()
    elapsed = time.monotonic() - started

    assert sink.script == [] and sink.answered == script  # every refusal was met once
    final = {r.id: r for r in rows()}
    assert final[bad_id].status == Message.FAILED, "a 550 to RCPT TO is final"
    assert "rechazó el destinatario" in final[bad_id].last_error
    good = {i: s for i, s in subjects.items() if i != bad_id}
    assert {i: final[i].status for i in good} == {i: Message.SENT for i in good}, (
        "4xx, 554 to the session or the data, a refused sender: retried, then sent"
    )
    assert max(r.attempts for r in final.values()) < notify.MAX_ATTEMPTS
    # Exactly once each, the message whose server hung up after its "250" too.
    assert sink.deliveries() == Counter(good.values())
    assert len({mid for _, mid in sink.received}) == len(good)
    assert "@example.com" not in worker.log()  # ids in the log, never addresses
    assert elapsed < 40


def test_a_worker_killed_mid_send_repeats_at_most_the_message_in_flight(database_url, tmp_path):
    subjects = queue(6)
    port = free_port()
    sink = Sink(slow=0.25)  # has the message, then takes a quarter second to say "250"
    controller = start_smtp(sink, port)
    worker = Worker(database_url, port, tmp_path / "worker.log", claim_seconds=2)
    in_flight = []
    crashes = 2
    try:
        for _ in range(crashes):
            sink.receiving.clear()
            worker.start()
            assert sink.receiving.wait(30), worker.log()
            worker.kill9()  # while the server holds the message and the row is unmarked
            in_flight.append(sink.received[-1][0])
        worker.start()
        wait_for(lambda: all(r.status == Message.SENT for r in rows()), 60, "every message sent")
    finally:
        worker.stop()
        controller.stop()

    counts = sink.deliveries()
    assert set(counts) == set(subjects.values()), "every message arrived"
    duplicates = {s: n - 1 for s, n in counts.items() if n > 1}
    assert sum(duplicates.values()) <= crashes, counts
    assert set(duplicates) <= set(in_flight), (duplicates, in_flight)
    by_subject = {}
    for subject, mid in sink.received:
        by_subject.setdefault(subject, set()).add(mid)
    assert all(len(ids) == 1 for ids in by_subject.values()), "a copy keeps its Message-ID"
    final = {subjects[r.id]: r for r in rows()}
    assert all(final[s].attempts >= 2 for s in in_flight)  # the crashed try counts
    assert all(r.attempts < notify.MAX_ATTEMPTS for r in final.values())


def test_a_worker_told_to_stop_mid_send_finishes_that_message_and_claims_no_other(
    database_url, tmp_path
):
    """SIGTERM (a deploy, systemd, deploy/cluster.py stop) leaves no claim to expire and resend."""
    subjects = queue(4)
    port = free_port()
    sink = Sink(slow=0.5)  # the server holds the first message half a second before "250"
    controller = start_smtp(sink, port)
    worker = Worker(database_url, port, tmp_path / "worker.log", claim_seconds=60)
    try:
        worker.start()
        assert sink.receiving.wait(30), worker.log()
        os.killpg(worker.process.pid, signal.SIGTERM)  # while that message is in flight
        assert worker.process.wait(timeout=10) == 0, worker.log()
        states = Counter(r.status for r in rows())
        assert states == {Message.SENT: 1, Message.PENDING: 3}, states
        worker.start()
        wait_for(lambda: all(r.status == Message.SENT for r in rows()), 60, "every message sent")
    finally:
        worker.stop()
        controller.stop()
    assert sink.deliveries() == Counter(subjects.values()), "each message once"
