"""The outbox: e-mail and SMS are rows first, deliveries later, never lost.

Callers queue a message inside the transaction of the change that causes it;
the worker (``flask --app app worker``) claims due rows, sends them, and retries
with back-off. Several workers may run: a row is claimed by a conditional
UPDATE, so only one of them sends it.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
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
CLAIM_FOR = timedelta(minutes=5)


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


def retry_delay(attempts: int) -> timedelta:
    """Return the wait before the next try: 1, 2, 4 … minutes, at most 1 hour."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def _claim(message_id: int) -> bool:
    now = utcnow()
    due = (Message.status == Message.PENDING) & (Message.next_attempt_at <= now)
    stale = (Message.status == Message.SENDING) & (Message.claimed_until < now)
    claimed = (
        Message.update(status=Message.SENDING, claimed_until=now + CLAIM_FOR)
        .where((Message.id == message_id) & (due | stale))
        .execute()
    )
    return claimed == 1


def deliver_due(senders: dict[str, Callable[[Message], None]], limit: int = 100) -> dict:
    """Send the messages that are due; return counts of sent, retried and failed."""
    now = utcnow()
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
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for message_id in candidates:
        if not _claim(message_id):
            continue  # another worker took it
        message = Message.get_by_id(message_id)
        attempts = message.attempts + 1
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
                    next_attempt_at=utcnow() + retry_delay(attempts),
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
    """Wrap an SMTP send so that refused recipients count as permanent."""

    def deliver(message: Message) -> None:
        try:
            send(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise PermanentFailure("SMTP rechazó el destinatario") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"SMTP {exc.smtp_code}") from exc
            raise

    return deliver


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
