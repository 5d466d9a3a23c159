"""Hanna account workflows: registration, activation, quiz, login, sessions.

No Flask request state here: views pass plain values in and get values or a
domain error back.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from peewee import fn

from core import notify, passwords, quiz, tokens
from core.clock import utcnow
from core.colombia import mask_email, mask_phone
from models import (
    Afiliado,
    Message,
    OneTimeCode,
    QuizAttempt,
    User,
    db,
)

QUIZ_ATTEMPTS = 3
QUIZ_IDLE = timedelta(minutes=2)
CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 5
CODE_RESEND_AFTER = timedelta(seconds=60)
ACTIVATION_SUBJECT = "Active su cuenta de la Plataforma Hanna"
RESEND_COOLDOWN = timedelta(minutes=2)


class AccountError(Exception):
    """A workflow step that cannot go on; the message is for the user."""


class LinkExpired(AccountError):
    pass


class LinkInvalid(AccountError):
    pass


@dataclass
class Registration:
    tipo_documento: str
    numero_documento: str
    primer_nombre: str
    segundo_nombre: str
    primer_apellido: str
    segundo_apellido: str
    email: str
    telefono: str
    celular: str
    fecha_nacimiento: date
    password: str


# --- registration -----------------------------------------------------------


def find_afiliado(tipo: str, numero: str) -> Afiliado | None:
    """Look a person up in the Caja's affiliate data."""
    return Afiliado.find(tipo, numero)


def document_taken(tipo: str, numero: str) -> bool:
    """Tell whether a Hanna account already exists for this document."""
    return (
        User.select()
        .where((User.tipo_documento == tipo) & (User.numero_documento == numero))
        .exists()
    )


def register(data: Registration, *, secret: str, base_url: str) -> str:
    """Create the inactive account and queue its activation mail; return the masked e-mail.

    When the e-mail already has an account nothing is created and its owner is
    told by mail instead, so the page never tells a stranger whose e-mail is
    registered.
    """
    email = data.email.strip().lower()
    password_hash = passwords.hash_password(data.password)  # slow: outside the transaction
    with db.atomic():
        existing = User.by_email(email)
        if existing is not None:
            notify.queue_template_email(
                email,
                "Intento de registro con su correo",
                "existing",
                user=existing,
                base_url=base_url,
            )
            return mask_email(email)
        if document_taken(data.tipo_documento, data.numero_documento):
            raise AccountError("Este documento ya tiene una cuenta.")
        afiliado = find_afiliado(data.tipo_documento, data.numero_documento)
        names = afiliado or data  # an affiliate's names come from the Caja's data
        user = User.create(
            email=email,
            tipo_documento=data.tipo_documento,
            numero_documento=data.numero_documento,
            primer_nombre=names.primer_nombre,
            segundo_nombre=names.segundo_nombre,
            primer_apellido=names.primer_apellido,
            segundo_apellido=names.segundo_apellido,
            telefono=data.telefono,
            celular=data.celular,
            fecha_nacimiento=data.fecha_nacimiento,
            password_hash=password_hash,
            afiliado=afiliado,
        )
        queue_activation_mail(user, secret=secret, base_url=base_url)
    return mask_email(email)


def activation_link(user: User, *, secret: str, base_url: str) -> str:
    """Return the signed activation URL for user."""
    token = tokens.make_token(secret, tokens.ACTIVATION, {"u": user.id, "n": user.activation_nonce})
    return f"{base_url}/activar/{token}"


def queue_activation_mail(user: User, *, secret: str, base_url: str) -> None:
    """Queue the activation e-mail (inside the caller's transaction)."""
    link = activation_link(user, secret=secret, base_url=base_url)
    notify.queue_template_email(user.email, ACTIVATION_SUBJECT, "activation", user=user, link=link)


# --- activation and quiz ----------------------------------------------------


def read_link(
    token: str, *, secret: str, purpose: str, max_age: int, what: str, lasts: str
) -> dict:
    """Read a signed link, telling "expired" from "invalid" in the user's words."""
    try:
        return tokens.read_token(secret, purpose, token, max_age)
    except tokens.TokenExpired as exc:
        raise LinkExpired(f"El enlace {what} venció (es válido por {lasts}).") from exc
    except tokens.TokenInvalid as exc:
        raise LinkInvalid(f"El enlace {what} no es válido.") from exc


def user_for_activation(token: str, *, secret: str) -> User:
    """Return the pending account a genuine, fresh activation link names."""
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.ACTIVATION,
        max_age=tokens.ACTIVATION_MAX_AGE,
        what="de activación",
        lasts="48 horas",
    )
    user = User.get_or_none(User.id == payload.get("u"))
    if user is None or not tokens.same(user.activation_nonce, str(payload.get("n"))):
        raise LinkInvalid("Este enlace de activación ya fue usado o no es válido.")
    return user


def activate(user: User) -> None:
    """Make the account active and kill its activation link."""
    with db.atomic():
        User.update(
            status=User.ACTIVE,
            activated_at=utcnow(),
            activation_nonce=tokens.digest(secrets.token_hex(16)),
        ).where(User.id == user.id).execute()
    user.status = User.ACTIVE


def start_quiz(user: User) -> QuizAttempt:
    """Return the open quiz attempt of user, drawing a new one when needed."""
    with db.atomic():
        open_attempt = (
            QuizAttempt.select()
            .where((QuizAttempt.user == user) & QuizAttempt.finished_at.is_null())
            .order_by(QuizAttempt.id.desc())
            .first()
        )
        if open_attempt is not None:
            if utcnow() - open_attempt.created_at <= QUIZ_IDLE:
                return open_attempt
            _fail_attempt(user, open_attempt)  # left idle: it counts as a failure
            if user.status == User.BLOCKED:
                raise AccountError("bloqueado")
        last = (
            QuizAttempt.select()
            .where(QuizAttempt.user == user)
            .order_by(QuizAttempt.id.desc())
            .first()
        )
        avoid = frozenset(q["key"] for q in json.loads(last.questions)) if last else frozenset()
        questions = quiz.draw(user.afiliado, avoid=avoid)
        return QuizAttempt.create(user=user, questions=json.dumps(questions))


def quiz_questions(attempt: QuizAttempt) -> list[dict]:
    """Return the attempt's questions without their answers (for the page)."""
    return [
        {"key": q["key"], "text": q["text"], "options": q["options"]}
        for q in json.loads(attempt.questions)
    ]


def quiz_attempts_left(user: User) -> int:
    return max(QUIZ_ATTEMPTS - user.quiz_failures, 0)


def answer_quiz(user: User, attempt_id: int, answers: dict[str, str]) -> str:
    """Grade an attempt: return "passed", "failed", "expired" or "blocked"."""
    with db.atomic():
        attempt = QuizAttempt.get_or_none(
            (QuizAttempt.id == attempt_id)
            & (QuizAttempt.user == user)
            & QuizAttempt.finished_at.is_null()
        )
        if attempt is None:
            return "expired"
        if utcnow() - attempt.created_at > QUIZ_IDLE:
            _fail_attempt(user, attempt)
            return "blocked" if user.status == User.BLOCKED else "expired"
        if quiz.grade(json.loads(attempt.questions), answers):
            attempt.finished_at, attempt.passed = utcnow(), True
            attempt.save()
            activate(user)
            return "passed"
        _fail_attempt(user, attempt)
        return "blocked" if user.status == User.BLOCKED else "failed"


def _fail_attempt(user: User, attempt: QuizAttempt) -> None:
    attempt.finished_at, attempt.passed = utcnow(), False
    attempt.save()
    user.quiz_failures += 1
    fields = {User.quiz_failures: User.quiz_failures + 1}
    if user.quiz_failures >= QUIZ_ATTEMPTS:
        user.status, user.blocked_at = User.BLOCKED, utcnow()
        fields.update(
            {
                User.status: User.BLOCKED,
                User.blocked_at: user.blocked_at,
                User.activation_nonce: tokens.digest(secrets.token_hex(16)),
            }
        )
    User.update(fields).where(User.id == user.id).execute()


def send_code(user: User) -> str:
    """Send a one-time code to the mobile the Caja has on file; return it masked."""
    mobile = user.afiliado.celular if user.afiliado else ""
    if not mobile:
        raise AccountError(
            "La Caja no tiene un celular registrado para usted. Comuníquese a "
            "nuestro call center (3714545) para actualizar sus datos."
        )
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    with db.atomic():
        recent = (
            OneTimeCode.select()
            .where(
                (OneTimeCode.user == user)
                & (OneTimeCode.purpose == "activacion")
                & (OneTimeCode.created_at > now - CODE_RESEND_AFTER)
            )
            .exists()
        )
        if recent:
            raise AccountError(
                "Ya enviamos un código hace menos de un minuto. Espere "
                "un momento antes de pedir otro."
            )
        OneTimeCode.update(used_at=now).where(
            (OneTimeCode.user == user) & OneTimeCode.used_at.is_null()
        ).execute()
        OneTimeCode.create(
            user=user,
            purpose="activacion",
            code_hash=tokens.digest(code),
            expires_at=now + CODE_TTL,
        )
        notify.queue_sms(
            mobile,
            f"Hanna: su código de activación es {code}. Vence en "
            "10 minutos. No lo comparta con nadie.",
        )
    return mask_phone(mobile)


def verify_code(user: User, code: str) -> bool:
    """Activate user when code matches the live one; count the try otherwise."""
    with db.atomic():
        row = (
            OneTimeCode.select()
            .where(
                (OneTimeCode.user == user)
                & OneTimeCode.used_at.is_null()
                & (OneTimeCode.expires_at > utcnow())
            )
            .order_by(OneTimeCode.id.desc())
            .first()
        )
        if row is None:
            raise AccountError("El código venció o ya fue usado. Pida uno nuevo.")
        if not tokens.same(row.code_hash, tokens.digest(code.strip())):
            row.attempts += 1
            if row.attempts >= CODE_TRIES:
                row.used_at = utcnow()
            row.save()
            return False
        row.used_at = utcnow()
        row.save()
        activate(user)
        return True


def resend_activation(user: User, *, secret: str, base_url: str) -> int:
    """Queue a new activation mail unless one left recently; return seconds to wait (0: sent)."""
    with db.atomic():
        last = (
            Message.select(fn.MAX(Message.created_at))
            .where((Message.recipient == user.email) & (Message.subject == ACTIVATION_SUBJECT))
            .scalar()
        )
        if last and utcnow() - last < RESEND_COOLDOWN:
            return int((RESEND_COOLDOWN - (utcnow() - last)).total_seconds()) + 1
        if user.status == User.PENDING:
            queue_activation_mail(user, secret=secret, base_url=base_url)
    return 0


def user_for_resend(token: str, *, secret: str) -> User:
    """Return the pending account behind an activation link, however old, or a resend ticket."""
    for purpose in (tokens.ACTIVATION, tokens.RESEND):
        try:
            payload = tokens.read_token(secret, purpose, token, None)
        except tokens.TokenInvalid:
            continue
        user = User.get_or_none(User.id == payload.get("u"))
        if user is not None and user.status == User.PENDING:
            return user
        break
    raise LinkInvalid("No hay una cuenta pendiente de activación para este enlace.")
