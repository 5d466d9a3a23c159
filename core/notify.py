"""The outbox: e-mail and SMS are rows first, deliveries later, never lost.

Callers queue a message inside the transaction of the change that causes it;
the worker (``flask --app app worker``) claims due rows, sends them, and retries
with back-off. Several workers may run: a row is claimed by a conditional
UPDATE, so only one of them sends it.

Delivery is at least once, and a duplicate needs a crash:

- one message at a time: claim it (the claim counts the attempt and holds the
  row for ``claim`` seconds, OUTBOX_CLAIM_SECONDS), send it, mark it sent. A
  worker killed between the server's "250" and that mark leaves one row
  claimed; when the claim ends another pass sends it again, so each crash can
  repeat at most the one message in flight. A resent e-mail keeps its
  Message-ID (``message_id``), so mail clients can show it once;
- an SMTP exchange is cut after a third of the claim (at most 60 s), so a
  server that accepts the connection and never answers can neither hang the
  worker nor outlive the claim and be sent twice by two workers;
- once the server has said "250" to the DATA, the message is sent: a failed
  QUIT or a connection dropped after it is not a reason to send it again.

Which SMTP answers are final (``smtp_sender``): only a 5xx refusal of the
recipient (RCPT TO: the address does not exist) fails the message at once. A
4xx anywhere (greylisting, "try later"), a refused or silent connection, and
a 5xx to the session or the transaction (554 to EHLO or DATA, a refused
sender) say the server or our configuration is in trouble, not the address:
they are retried after 1, 2, 4 … minutes (OUTBOX_RETRY_SECONDS is the first
wait, the longest is 60 of them), and fail after MAX_ATTEMPTS tries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape
from peewee import SQL

from core.clock import utcnow
from models import Message

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "email"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_SECONDS = 60.0  # the first wait; each next one doubles, up to 60 of them (1 hour)
CLAIM_SECONDS = 300.0  # how long a claimed row is the claimer's alone
CLAIM_FOR = timedelta(seconds=CLAIM_SECONDS)


class PermanentFailure(Exception):
    """Sending can never succeed (bad address, rejected by the gateway)."""


def queue_email(to: str, subject: str, text: str, html: str = "") -> Message:
    """Store an e-mail for delivery (call inside the causing transaction)."""
    return Message.create(
        channel=Message.EMAIL,
        recipient=to,
        subject=subject,
        body_text=text,
        body_html=html,
    )


def queue_template_email(to: str, subject: str, name: str, **context) -> Message:
    """Render templates/email/NAME.txt (and NAME.html if present) and queue it."""
    text = _templates.get_template(f"{name}.txt").render(subject=subject, **context)
    try:
        html = _templates.get_template(f"{name}.html").render(subject=subject, **context)
    except TemplateNotFound:
        html = ""
    return queue_email(to, subject, text, html)


def queue_sms(to: str, body: str) -> Message:
    """Store an SMS for delivery (call inside the causing transaction)."""
    return Message.create(channel=Message.SMS, recipient=to, body_text=body)


def retry_delay(attempts: int, base_seconds: float = RETRY_SECONDS) -> timedelta:
    """Return the wait before the next try: 1, 2, 4 … minutes, at most 1 hour (by default)."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), base_seconds * 60))


def send_timeout(claim_seconds: float = CLAIM_SECONDS) -> float:
    """Return the seconds one SMTP or gateway exchange may take: well inside the claim."""
    return min(60.0, claim_seconds / 3)


def _claim(message_id: int, claim_for: timedelta = CLAIM_FOR) -> bool:
    """Take the row for claim_for if it is due (or its claimer died); count the attempt."""
    now = utcnow()
    due = (Message.status == Message.PENDING) & (Message.next_attempt_at <= now)
    stale = (
        (Message.status == Message.SENDING)
        & (Message.claimed_until < now)
        & (Message.attempts < MAX_ATTEMPTS)
    )
    claimed = (
        Message.update(
            status=Message.SENDING,
            claimed_until=now + claim_for,
            # Counted now, not after the send: a message whose sending kills the
            # worker (or that is in flight at every crash) still stops at MAX_ATTEMPTS.
            attempts=Message.attempts + 1,
        )
        .where((Message.id == message_id) & (due | stale))
        .execute()
    )
    return claimed == 1


def _give_up_interrupted(now) -> int:
    """Fail the rows whose last allowed attempt was claimed by a worker that then died."""
    return (
        Message.update(
            status=Message.FAILED,
            claimed_until=None,
            last_error="interrumpido en el último intento",
        )
        .where(
            (Message.status == Message.SENDING)
            & (Message.claimed_until < now)
            & (Message.attempts >= MAX_ATTEMPTS)
        )
        .execute()
    )


def deliver_due(
    senders: dict[str, Callable[[Message], None]],
    limit: int = 100,
    *,
    retry_seconds: float = RETRY_SECONDS,
    claim_seconds: float = CLAIM_SECONDS,
    stopping: Callable[[], bool] = lambda: False,
) -> dict:
    """Send the messages that are due, one at a time; return counts of sent, retried and failed.

    Each row is claimed just before its send and marked just after it, so a
    crash leaves at most one message sent but not marked. stopping() is asked
    before each claim: a worker told to stop finishes the message in hand and
    claims no more, leaving nothing claimed behind it.
    """
    now = utcnow()
    claim_for = timedelta(seconds=claim_seconds)
    counts = {"sent": 0, "retry": 0, "failed": _give_up_interrupted(now)}
    candidates = [
        row.id
        for row in Message.select(Message.id)
        .where(
            ((Message.status == Message.PENDING) & (Message.next_attempt_at <= now))
            | ((Message.status == Message.SENDING) & (Message.claimed_until < now))
        )
        .order_by(Message.id)
        .limit(limit)
    ]
    for message_id in candidates:
        if stopping():
            break
        if not _claim(message_id, claim_for):
            continue  # another worker took it
        message = Message.get_by_id(message_id)
        attempts = message.attempts
        try:
            senders[message.channel](message)
        except PermanentFailure as exc:
            _finish(message_id, Message.FAILED, attempts, str(exc))
            counts["failed"] += 1
        except Exception as exc:
            if attempts >= MAX_ATTEMPTS:
                _finish(message_id, Message.FAILED, attempts, type(exc).__name__)
                counts["failed"] += 1
            else:
                Message.update(
                    status=Message.PENDING,
                    attempts=attempts,
                    claimed_until=None,
                    next_attempt_at=utcnow() + retry_delay(attempts, retry_seconds),
                    last_error=f"{type(exc).__name__}: {exc}"[:300],
                ).where(Message.id == message_id).execute()
                counts["retry"] += 1
            # Log the id, never the address or the body.
            log.warning(
                "message %s not sent (attempt %s): %s", message_id, attempts, type(exc).__name__
            )
        else:
            _finish(message_id, Message.SENT, attempts, "")
            counts["sent"] += 1
    return counts


def _finish(message_id: int, status: str, attempts: int, error: str) -> None:
    Message.update(
        status=status,
        attempts=attempts,
        claimed_until=None,
        last_error=error[:300],
        sent_at=utcnow() if status == Message.SENT else None,
    ).where(Message.id == message_id).execute()


def purge_query(cutoff):
    """Build the UPDATE that blanks bodies of messages finished and created before cutoff."""
    # The literal (not a parameter) lets the database match the partial index
    # on created_at that holds only rows whose body is still there.
    return Message.update(body_text="", body_html="").where(
        SQL("body_text <> ''")
        & (Message.created_at < cutoff)
        & Message.status.in_([Message.SENT, Message.FAILED])
    )


def purge_bodies(retention: timedelta) -> int:
    """Blank the text of messages sent or failed longer ago than retention; return how many.

    Bodies hold live links and codes; channel, recipient, subject, status and
    times stay for the audit trail.
    """
    return purge_query(utcnow() - retention).execute()


def smtp_sender(send: Callable[[Message], None]) -> Callable[[Message], None]:
    """Wrap an SMTP send so that only a 5xx refusal of the recipient is permanent.

    Everything else raises as it came and is retried (the module docstring says why).
    """

    def deliver(message: Message) -> None:
        try:
            send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentFailure("SMTP rechazó el destinatario") from exc
            raise  # 4xx: greylisting, a full mailbox for now, "try later"

    return deliver


def message_id(message: Message, secret: str, sender: str) -> str:
    """Return the Message-ID header of an outbox row: the same at every retry of it.

    Derived from the row and SECRET_KEY, so it tells nobody how many messages
    the portal sends, and a copy sent again after a crash can be recognised.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    created = message.created_at.isoformat() if message.created_at else ""
    digest = hmac.new(
        secret.encode(), f"outbox:{message.id}:{created}".encode(), hashlib.sha256
    ).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def smtp_transport(
    host: str,
    port: int,
    *,
    timeout: float,
    use_tls: bool = False,
    use_ssl: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> Callable[[str, str, bytes], None]:
    """Return send(from_addr, to_addr, data): one SMTP session, cut after timeout seconds.

    Flask-Mail's own connection has no time-out and lets a failed QUIT after a
    "250" fail the whole send (so the worker would send the message again).
    """

    def send(from_addr: str, to_addr: str, data: bytes) -> None:
        if use_ssl:
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if username and password:
                smtp.login(username, password)
            smtp.sendmail(from_addr, [to_addr], data)
        except BaseException:
            smtp.close()
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the server has the message: its "250" to DATA is what counts

    return send


def sms_sender(
    backend: str, *, file: str = "", url: str = "", token: str = "", timeout: float = 10
) -> Callable[[Message], None]:
    """Return the SMS gateway named by SMS_BACKEND: console, file or http."""
    if backend == "console":

        def to_console(message: Message) -> None:
            print(f"SMS para {message.recipient}: {message.body_text}", flush=True)

        return to_console
    if backend == "file":
        path = Path(file or "instance/sms.jsonl")

        def to_file(message: Message) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            line = {
                "to": message.recipient,
                "body": message.body_text,
                "id": message.id,
                "at": utcnow().isoformat(),
            }
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")

        return to_file
    if backend == "http":
        if not url.startswith(("https://", "http://")):
            raise ValueError("SMS_BACKEND=http necesita SMS_HTTP_URL (http:// o https://)")

        def to_http(message: Message) -> None:
            body = json.dumps({"to": message.recipient, "body": message.body_text})
            request = urllib.request.Request(  # noqa: S310 - scheme checked above
                url,
                data=body.encode(),
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                    response.read()
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code != 429:
                    raise PermanentFailure(f"pasarela SMS {exc.code}") from exc
                raise

        return to_http
    raise ValueError(f"SMS_BACKEND desconocido: {backend}")
