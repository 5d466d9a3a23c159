"""Hanna account workflows: registration, activation, quiz, login, sessions.

No Flask request state here: views pass plain values in and get values or a
domain error back.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import SimpleNamespace

from peewee import IntegrityError, fn

from core import notify, passwords, quiz, throttle, tokens
from core.clock import utcnow
from core.colombia import mask_email, mask_phone
from models import (
    Afiliado,
    OneTimeCode,
    PendingRegistration,
    QuizAttempt,
    QuizBank,
    User,
    db,
    new_token,
)

QUIZ_ATTEMPTS = 3
QUIZ_IDLE = timedelta(minutes=2)
CODE_TTL = timedelta(minutes=10)
CODE_TRIES = 5
CODE_RESEND_AFTER = timedelta(seconds=60)
CODE_DAILY_CAP = 5  # codes a day per account and per phone: SMS cost nothing to ask for
CODE_PURPOSE = "activacion"
ACTIVATION_SUBJECT = "Active su cuenta de la Plataforma Hanna"
RESEND_COOLDOWN_SECONDS = 120
REGISTRATION_TTL = timedelta(minutes=20)  # captcha solved → "Crear Usuario"


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
    """Tell whether an active or blocked account holds this document.

    A pending account does not: a newer registration takes it over.
    """
    return (
        User.select()
        .where(
            (User.tipo_documento == tipo)
            & (User.numero_documento == numero)
            & (User.status != User.PENDING)
        )
        .exists()
    )


class RequestSpent(AccountError):
    """The held registration was already used, cancelled, or it expired."""


def _new_ticket() -> tuple[str, str]:
    ticket = secrets.token_urlsafe(32)
    return ticket, tokens.digest(ticket)


def _live_request(ticket: str | None) -> PendingRegistration | None:
    if not ticket or len(ticket) > 100:
        return None
    return PendingRegistration.get_or_none(
        (PendingRegistration.ticket_hash == tokens.digest(ticket))
        & (PendingRegistration.expires_at > utcnow())
    )


def _create_request(data: str = "") -> str:
    ticket, digest = _new_ticket()
    now = utcnow()
    with db.atomic():
        # Dead requests hold personal data and a password hash: sweep them on every new one.
        PendingRegistration.delete().where(PendingRegistration.expires_at <= now).execute()
        PendingRegistration.create(
            ticket_hash=digest, data=data, created_at=now, expires_at=now + REGISTRATION_TTL
        )
    return ticket


def open_registration() -> str:
    """Open a registration request whose captcha was just solved; return its ticket."""
    return _create_request()


def registration_open(ticket: str | None) -> bool:
    """Tell whether ticket names a live request (so its captcha counts as solved)."""
    return _live_request(ticket) is not None


def hold_registration(ticket: str | None, data: Registration) -> str:
    """Keep the validated form on the server until "Crear Usuario"; return the ticket.

    ticket is the form's open request (captcha solved), or None when there is
    none to fill (captcha off). Raises RequestSpent when that request is gone.
    """
    held = json.dumps(
        {
            "tipo_documento": data.tipo_documento,
            "numero_documento": data.numero_documento,
            "primer_nombre": data.primer_nombre,
            "segundo_nombre": data.segundo_nombre or "",
            "primer_apellido": data.primer_apellido,
            "segundo_apellido": data.segundo_apellido or "",
            "email": data.email.strip().lower(),
            "telefono": data.telefono or "",
            "celular": data.celular,
            "fecha_nacimiento": data.fecha_nacimiento.isoformat(),
            # slow: hashed before any transaction opens
            "password_hash": passwords.hash_password(data.password),
        },
        ensure_ascii=False,
    )
    if ticket is None:
        return _create_request(held)
    changed = (
        PendingRegistration.update(data=held)
        .where(
            (PendingRegistration.ticket_hash == tokens.digest(ticket))
            & (PendingRegistration.expires_at > utcnow())
        )
        .execute()
    )
    if changed != 1:
        raise RequestSpent("La verificación venció. Resuelva el captcha de nuevo.")
    return ticket


def _shown(data: str) -> dict:
    values = json.loads(data) if data else {}
    values.pop("password_hash", None)
    return values


def held_registration(ticket: str | None) -> dict | None:
    """Return the held form data (never the password) behind a live ticket."""
    row = _live_request(ticket)
    return _shown(row.data) if row is not None and row.data else None


def cancel_registration(ticket: str | None) -> tuple[dict | None, str | None]:
    """Forget the held data, keeping the solved captcha; return the data and a new ticket.

    The confirmation's ticket dies here: a new one names the request from now on.
    """
    row = _live_request(ticket)
    if row is None:
        return None, None
    fresh, digest = _new_ticket()
    changed = (
        PendingRegistration.update(data="", ticket_hash=digest)
        .where(
            (PendingRegistration.id == row.id)
            & (PendingRegistration.ticket_hash == row.ticket_hash)
        )
        .execute()
    )
    if changed != 1:
        return None, None
    return _shown(row.data), fresh


def forget_registration(ticket: str | None) -> None:
    """Drop the request behind ticket: its captcha counts as spent."""
    if ticket and len(ticket) <= 100:
        PendingRegistration.delete().where(
            PendingRegistration.ticket_hash == tokens.digest(ticket)
        ).execute()


def register(ticket: str, *, secret: str, base_url: str) -> str:
    """Spend the held registration once and create the inactive account; return the masked e-mail.

    The request is deleted by a conditional DELETE in the same transaction as
    the account, so two presses (or a replay) create one account and one mail.
    Raises RequestSpent for a used, cancelled or expired ticket.
    """
    try:
        with db.atomic():
            row = _live_request(ticket)
            spent = 0
            if row is not None and row.data:
                spent = (
                    PendingRegistration.delete()
                    .where(
                        (PendingRegistration.id == row.id)
                        & (PendingRegistration.ticket_hash == row.ticket_hash)
                        & (PendingRegistration.data != "")
                    )
                    .execute()
                )
            if spent != 1:
                raise RequestSpent(
                    "Esta solicitud ya fue usada o venció. Llene el formulario de nuevo."
                )
            data = json.loads(row.data)
            _create_account(data, secret=secret, base_url=base_url)
    except IntegrityError as exc:
        # Another registration with this e-mail or document committed at the same moment;
        # the transaction rolled back, so the request is still there to press again.
        raise AccountError(
            "Otra solicitud con estos datos se procesó al mismo tiempo. Intente de nuevo."
        ) from exc
    return mask_email(data["email"])


def _create_account(data: dict, *, secret: str, base_url: str) -> None:
    """Create the account, take a pending one over, or tell the e-mail's owner.

    What the page shows never depends on whether the e-mail has an account: a
    registered e-mail gets a notice and nothing changes; a document is refused
    only when an active or blocked account holds it.
    """
    email, tipo, numero = data["email"], data["tipo_documento"], data["numero_documento"]
    holder = User.get_or_none((User.tipo_documento == tipo) & (User.numero_documento == numero))
    if holder is not None and holder.status != User.PENDING:
        raise AccountError("Este documento ya tiene una cuenta.")
    owner = User.by_email(email)
    if owner is not None and (holder is None or owner.id != holder.id):
        notify.queue_template_email(
            email, "Intento de registro con su correo", "existing", user=owner, base_url=base_url
        )
        return
    afiliado = find_afiliado(tipo, numero)
    names = afiliado or SimpleNamespace(**data)  # an affiliate's names come from the Caja's data
    fields = dict(
        email=email,
        primer_nombre=names.primer_nombre,
        segundo_nombre=names.segundo_nombre,
        primer_apellido=names.primer_apellido,
        segundo_apellido=names.segundo_apellido,
        telefono=data["telefono"],
        celular=data["celular"],
        fecha_nacimiento=date.fromisoformat(data["fecha_nacimiento"]),
        password_hash=data["password_hash"],
        afiliado=afiliado,
    )
    if holder is None:
        user = User.create(tipo_documento=tipo, numero_documento=numero, **fields)
    else:
        # A newer registration replaces the pending one: its activation link dies
        # (new nonce), while failed quiz attempts keep counting toward the block.
        now = utcnow()
        fields.update(activation_nonce=new_token(), session_token=new_token(), created_at=now)
        taken = (
            User.update(fields)
            .where((User.id == holder.id) & (User.status == User.PENDING))
            .execute()
        )
        if taken != 1:
            raise AccountError("Este documento ya tiene una cuenta.")
        OneTimeCode.update(used_at=now).where(
            (OneTimeCode.user == holder.id) & OneTimeCode.used_at.is_null()
        ).execute()
        user = User.get_by_id(holder.id)
    # The registration's own mail starts the resend cool-down, as a resent one does.
    throttle.cooldown(throttle.Purpose.ACTIVATION_MAIL, user.email, RESEND_COOLDOWN_SECONDS)
    queue_activation_mail(user, secret=secret, base_url=base_url)


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


class QuizResult(StrEnum):
    """What grading, starting or timing out an attempt came to."""

    STARTED = "started"
    PASSED = "passed"
    FAILED = "failed"
    EXPIRED = "expired"
    BLOCKED = "blocked"


class Activation(StrEnum):
    """How an account proves it belongs to its owner."""

    LINK = "link"  # not an affiliate: the e-mail link is enough
    QUIZ = "quiz"
    CODE = "code"  # the Caja knows too little: a code to the mobile on file


_population_cache: dict = {}
# A value must then be held by MIN_SHARED people of the sample (many more of the Caja).
POPULATION_SAMPLE = 20_000


def _population() -> quiz.Population:
    """Return the model of the whole affiliate base, rebuilt when the data changes."""
    count, changed = Afiliado.select(fn.COUNT(Afiliado.id), fn.MAX(Afiliado.updated_at)).scalar(
        as_tuple=True
    )
    signature = (id(db.obj), count, str(changed))
    cached = _population_cache.get("model")
    if cached is None or cached[0] != signature:
        fields = {kind.field for kind in quiz.KINDS}
        columns = [getattr(Afiliado, name) for name in sorted(fields)]
        rows = Afiliado.select(*columns)
        if count > POPULATION_SAMPLE:
            # Shares need no more: a sample keeps the start of a quiz quick. It is
            # scattered by a fixed hash of the id, not by random(), so every process
            # (and every test run) models the Caja from the very same people.
            scatter = (Afiliado.id * 2654435761).bin_and(0xFFFFFFFF)  # Knuth's multiplicative hash
            rows = rows.order_by(scatter, Afiliado.id).limit(POPULATION_SAMPLE)
        _population_cache["model"] = (
            signature,
            quiz.build_population(rows.namedtuples().iterator()),
        )
    return _population_cache["model"][1]


def _refresh(user: User) -> None:
    """Read the account's status and failures again, in place (the caller keeps its object)."""
    fresh = User.select(User.status, User.quiz_failures).where(User.id == user.id).get()
    user.status, user.quiz_failures = fresh.status, fresh.quiz_failures


def quiz_bank(user: User) -> list[dict]:
    """Return the affiliate's questions, drawing them once for good on first use.

    The bank belongs to the person, not the account, so registering the same
    document again shows the very same options.
    """
    row = QuizBank.get_or_none(QuizBank.afiliado == user.afiliado_id)
    if row is None:
        bank = quiz.build_bank(user.afiliado, _population())
        try:
            with db.atomic():
                row = QuizBank.create(afiliado=user.afiliado_id, questions=json.dumps(bank))
        except IntegrityError:  # drawn at the same moment by another request
            row = QuizBank.get(QuizBank.afiliado == user.afiliado_id)
    bank = json.loads(row.questions)
    # The Caja corrected some data (the person called to update it): only those
    # questions are drawn again, so the owner is not graded on the old answers.
    refreshed = quiz.refresh_bank(bank, Afiliado.get_by_id(user.afiliado_id), _population)
    if refreshed is not None:
        QuizBank.update(questions=json.dumps(refreshed)).where(QuizBank.id == row.id).execute()
        bank = refreshed
    return bank


def activation_kind(user: User) -> Activation:
    """Tell how this account is activated."""
    if user.afiliado_id is None:
        return Activation.LINK
    return Activation.CODE if quiz.is_thin(quiz_bank(user)) else Activation.QUIZ


def mobile_on_file(user: User) -> str:
    """Return the mobile number the Caja has for this affiliate ("" when none)."""
    return user.afiliado.celular if user.afiliado_id and user.afiliado else ""


def _open_attempt(user: User) -> QuizAttempt | None:
    return (
        QuizAttempt.select()
        .where((QuizAttempt.user == user) & QuizAttempt.finished_at.is_null())
        .order_by(QuizAttempt.id.desc())
        .first()
    )


def live_attempt(user: User) -> QuizAttempt | None:
    """Return the started, unexpired attempt (a reload shows it again; nothing is written)."""
    attempt = _open_attempt(user)
    if attempt is not None and utcnow() - attempt.created_at <= QUIZ_IDLE:
        return attempt
    return None


def idle_attempt_pending(user: User) -> bool:
    """Tell whether a started attempt ran out of time and will count as a failure."""
    attempt = _open_attempt(user)
    return attempt is not None and utcnow() - attempt.created_at > QUIZ_IDLE


def start_quiz(user: User) -> tuple[QuizResult, QuizAttempt | None, bool]:
    """Start an attempt when the person presses the button; return (result, attempt, timed_out).

    An attempt left idle counts as a failure first; a block it causes is
    committed, never rolled back.
    """
    bank = quiz_bank(user)
    with db.atomic():
        _refresh(user)
        if user.status == User.BLOCKED:
            return QuizResult.BLOCKED, None, False
        timed_out = False
        attempt = _open_attempt(user)
        if attempt is not None:
            if utcnow() - attempt.created_at <= QUIZ_IDLE:
                return QuizResult.STARTED, attempt, False
            _fail_attempt(user, attempt)
            timed_out = True
            if user.status == User.BLOCKED:
                return QuizResult.BLOCKED, None, True
        questions = quiz.draw(bank)
        attempt = QuizAttempt.create(user=user, questions=json.dumps(questions))
    return QuizResult.STARTED, attempt, timed_out


def quiz_questions(attempt: QuizAttempt) -> list[dict]:
    """Return the attempt's questions without their answers (for the page)."""
    return [
        {"key": q["key"], "text": q["text"], "options": q["options"]}
        for q in json.loads(attempt.questions)
    ]


def quiz_attempts_left(user: User) -> int:
    """Return the tries left, counting a started attempt that already ran out of time."""
    failures = User.select(User.quiz_failures).where(User.id == user.id).scalar() or 0
    return max(QUIZ_ATTEMPTS - failures - idle_attempt_pending(user), 0)


def answer_quiz(user: User, attempt_id: int, answers: dict[str, str]) -> QuizResult:
    """Grade an attempt: passed, failed, expired (ran out of time) or blocked."""
    with db.atomic():
        attempt = QuizAttempt.get_or_none(
            (QuizAttempt.id == attempt_id)
            & (QuizAttempt.user == user)
            & QuizAttempt.finished_at.is_null()
        )
        if attempt is None:
            return QuizResult.EXPIRED
        # Spend the attempt first: two concurrent submits grade it once.
        spent = (
            QuizAttempt.update(finished_at=utcnow())
            .where((QuizAttempt.id == attempt.id) & QuizAttempt.finished_at.is_null())
            .execute()
        )
        if spent != 1:
            return QuizResult.EXPIRED
        _refresh(user)
        if user.status != User.PENDING:
            return QuizResult.BLOCKED if user.status == User.BLOCKED else QuizResult.EXPIRED
        on_time = utcnow() - attempt.created_at <= QUIZ_IDLE
        if on_time and quiz.grade(json.loads(attempt.questions), answers):
            QuizAttempt.update(passed=True).where(QuizAttempt.id == attempt.id).execute()
            activate(user)
            return QuizResult.PASSED
        _fail_attempt(user, attempt)
        if user.status == User.BLOCKED:
            return QuizResult.BLOCKED
        return QuizResult.FAILED if on_time else QuizResult.EXPIRED


def _fail_attempt(user: User, attempt: QuizAttempt | None) -> None:
    """Count one failed try (a quiz or a burned code); the third blocks the account."""
    if attempt is not None:
        QuizAttempt.update(
            finished_at=fn.COALESCE(QuizAttempt.finished_at, utcnow()), passed=False
        ).where(QuizAttempt.id == attempt.id).execute()
    User.update(quiz_failures=User.quiz_failures + 1).where(User.id == user.id).execute()
    failures = User.select(User.quiz_failures).where(User.id == user.id).scalar()
    user.quiz_failures = failures
    if failures >= QUIZ_ATTEMPTS:
        user.status, user.blocked_at = User.BLOCKED, utcnow()
        User.update(
            status=User.BLOCKED,
            blocked_at=user.blocked_at,
            activation_nonce=tokens.digest(secrets.token_hex(16)),
        ).where((User.id == user.id) & (User.status == User.PENDING)).execute()


def send_code(user: User) -> str:
    """Send a one-time code to the mobile the Caja has on file; return it masked."""
    mobile = mobile_on_file(user)
    if not mobile:
        raise AccountError(
            "La Caja no tiene un celular registrado para usted. Comuníquese a "
            "nuestro call center (605) 371 4545 para actualizar sus datos."
        )
    code = f"{secrets.randbelow(10**6):06d}"
    phone_hash = tokens.digest(f"celular:{mobile}")
    now = utcnow()
    with db.atomic():
        mine = OneTimeCode.user == user
        to_phone = OneTimeCode.recipient_hash == phone_hash
        activation = OneTimeCode.purpose == CODE_PURPOSE
        if (
            OneTimeCode.select()
            .where(mine & activation & (OneTimeCode.created_at > now - CODE_RESEND_AFTER))
            .exists()
        ):
            raise AccountError(
                "Ya enviamos un código hace menos de un minuto. Espere "
                "un momento antes de pedir otro."
            )
        today = now - timedelta(days=1)
        sent_today = OneTimeCode.select().where(
            activation & (OneTimeCode.created_at > today) & (mine | to_phone)
        )
        if sent_today.count() >= CODE_DAILY_CAP:
            raise AccountError(
                f"Ya enviamos {CODE_DAILY_CAP} códigos en las últimas 24 horas. Intente "
                "de nuevo mañana o comuníquese a nuestro call center (605) 371 4545."
            )
        OneTimeCode.update(used_at=now).where(mine & OneTimeCode.used_at.is_null()).execute()
        OneTimeCode.create(
            user=user,
            purpose=CODE_PURPOSE,
            code_hash=tokens.digest(code),
            recipient_hash=phone_hash,
            expires_at=now + CODE_TTL,
        )
        notify.queue_sms(
            mobile,
            f"Hanna: su código de activación es {code}. Vence en "
            "10 minutos. No lo comparta con nadie.",
        )
    return mask_phone(mobile)


def verify_code(user: User, code: str) -> QuizResult:
    """Activate user when code matches the live one; a code burned by wrong tries counts as a failure."""
    with db.atomic():
        _refresh(user)
        if user.status == User.BLOCKED:
            return QuizResult.BLOCKED
        row = (
            OneTimeCode.select()
            .where(
                (OneTimeCode.user == user)
                & (OneTimeCode.purpose == CODE_PURPOSE)
                & OneTimeCode.used_at.is_null()
                & (OneTimeCode.expires_at > utcnow())
            )
            .order_by(OneTimeCode.id.desc())
            .first()
        )
        if row is None:
            raise AccountError("El código venció o ya fue usado. Pida uno nuevo.")
        if not tokens.same(row.code_hash, tokens.digest(code.strip())):
            OneTimeCode.update(attempts=OneTimeCode.attempts + 1).where(
                OneTimeCode.id == row.id
            ).execute()
            OneTimeCode.update(used_at=utcnow()).where(
                (OneTimeCode.id == row.id)
                & OneTimeCode.used_at.is_null()
                & (OneTimeCode.attempts >= CODE_TRIES)
            ).execute()
            # Every CODE_TRIES wrong codes count as one failed attempt, across
            # codes: asking for a new one does not wipe the wrong tries.
            wrong = (
                OneTimeCode.select(fn.SUM(OneTimeCode.attempts))
                .where((OneTimeCode.user == user) & (OneTimeCode.purpose == CODE_PURPOSE))
                .scalar()
            )
            if wrong and wrong % CODE_TRIES == 0:
                _fail_attempt(user, None)
                if user.status == User.BLOCKED:
                    return QuizResult.BLOCKED
            return QuizResult.FAILED
        spent = (
            OneTimeCode.update(used_at=utcnow())
            .where((OneTimeCode.id == row.id) & OneTimeCode.used_at.is_null())
            .execute()
        )
        if spent != 1:
            raise AccountError("El código venció o ya fue usado. Pida uno nuevo.")
        activate(user)
        return QuizResult.PASSED


def resend_activation(user: User, *, secret: str, base_url: str) -> int:
    """Queue a new activation mail unless one left recently; return seconds to wait (0: sent)."""
    with db.atomic():
        wait = throttle.cooldown(
            throttle.Purpose.ACTIVATION_MAIL, user.email, RESEND_COOLDOWN_SECONDS
        )
        if wait:
            return wait
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
        # The nonce ties the link to this registration: after a newer one took the
        # pending account over, an old link must not send mail to its new address.
        if (
            user is not None
            and user.status == User.PENDING
            and tokens.same(user.activation_nonce, str(payload.get("n")))
        ):
            return user
        break
    raise LinkInvalid("No hay una cuenta pendiente de activación para este enlace.")


def resend_ticket(user: User, *, secret: str) -> str:
    """Return the signed ticket a pending account's login page uses to ask for a new link."""
    return tokens.make_token(secret, tokens.RESEND, {"u": user.id, "n": user.activation_nonce})
