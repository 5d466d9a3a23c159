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
from core.auth import AccountError, LinkInvalid, read_link
from core.clock import utcnow
from core.colombia import mask_email, mask_phone
from models import (
    Account,
    Afiliado,
    HannaUser,
    OneTimeCode,
    PendingRegistration,
    QuizAttempt,
    QuizBank,
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
        HannaUser.select()
        .join(Account)
        .where(
            (HannaUser.tipo_documento == tipo)
            & (HannaUser.numero_documento == numero)
            & (Account.status != Account.PENDING)
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
    holder = (
        Account.select()
        .join(HannaUser)
        .where((HannaUser.tipo_documento == tipo) & (HannaUser.numero_documento == numero))
        .first()
    )
    if holder is not None and holder.status != Account.PENDING:
        raise AccountError("Este documento ya tiene una cuenta.")
    owner = Account.by_email(email)
    if owner is not None and (holder is None or owner.id != holder.id):
        notify.queue_template_email(
            email, "Intento de registro con su correo", "existing", user=owner, base_url=base_url
        )
        return
    afiliado = find_afiliado(tipo, numero)
    names = afiliado or SimpleNamespace(**data)  # an affiliate's names come from the Caja's data
    credential = dict(
        login=email, email=email, celular=data["celular"], password_hash=data["password_hash"]
    )
    profile = dict(
        primer_nombre=names.primer_nombre,
        segundo_nombre=names.segundo_nombre,
        primer_apellido=names.primer_apellido,
        segundo_apellido=names.segundo_apellido,
        telefono=data["telefono"],
        fecha_nacimiento=date.fromisoformat(data["fecha_nacimiento"]),
        afiliado=afiliado,
    )
    if holder is None:
        user = Account.create(kind=Account.HANNA, **credential)
        HannaUser.create(account=user, tipo_documento=tipo, numero_documento=numero, **profile)
    else:
        # A newer registration replaces the pending one: its activation link dies
        # (new nonce), while failed quiz attempts keep counting toward the block.
        now = utcnow()
        credential.update(session_token=new_token(), created_at=now)
        taken = (
            Account.update(credential)
            .where((Account.id == holder.id) & (Account.status == Account.PENDING))
            .execute()
        )
        if taken != 1:
            raise AccountError("Este documento ya tiene una cuenta.")
        HannaUser.update(activation_nonce=new_token(), **profile).where(
            HannaUser.account == holder.id
        ).execute()
        OneTimeCode.update(used_at=now).where(
            (OneTimeCode.account == holder.id) & OneTimeCode.used_at.is_null()
        ).execute()
        user = Account.get_by_id(holder.id)
    # The registration's own mail starts the resend cool-down, as a resent one does.
    throttle.cooldown(throttle.Purpose.ACTIVATION_MAIL, user.email, RESEND_COOLDOWN_SECONDS)
    queue_activation_mail(user, secret=secret, base_url=base_url)


def activation_link(user: Account, *, secret: str, base_url: str) -> str:
    """Return the signed activation URL for user."""
    token = tokens.make_token(
        secret, tokens.ACTIVATION, {"u": user.id, "n": user.hanna.activation_nonce}
    )
    return f"{base_url}/activar/{token}"


def queue_activation_mail(user: Account, *, secret: str, base_url: str) -> None:
    """Queue the activation e-mail (inside the caller's transaction)."""
    link = activation_link(user, secret=secret, base_url=base_url)
    notify.queue_template_email(user.email, ACTIVATION_SUBJECT, "activation", user=user, link=link)


# --- activation and quiz ----------------------------------------------------


def user_for_activation(token: str, *, secret: str) -> Account:
    """Return the pending account a genuine, fresh activation link names."""
    payload = read_link(
        token,
        secret=secret,
        purpose=tokens.ACTIVATION,
        max_age=tokens.ACTIVATION_MAX_AGE,
        what="de activación",
        lasts="48 horas",
    )
    user = Account.get_or_none((Account.id == payload.get("u")) & (Account.kind == Account.HANNA))
    if user is None or not tokens.same(user.hanna.activation_nonce, str(payload.get("n"))):
        raise LinkInvalid("Este enlace de activación ya fue usado o no es válido.")
    return user


def activate(user: Account) -> None:
    """Make the account active and kill its activation link."""
    now = utcnow()
    with db.atomic():
        Account.update(status=Account.ACTIVE).where(Account.id == user.id).execute()
        HannaUser.update(
            activated_at=now, activation_nonce=tokens.digest(secrets.token_hex(16))
        ).where(HannaUser.account == user.id).execute()
    user.status = Account.ACTIVE
    user.hanna.activated_at = now


class QuizResult(StrEnum):
    """What grading, starting or timing out an attempt came to."""

    STARTED = "started"
    PASSED = "passed"
    FAILED = "failed"
    EXPIRED = "expired"
    BLOCKED = "blocked"


class BlockReason(StrEnum):
    """What the third failed try was (the unblock queue shows it)."""

    ANSWERS = "preguntas"  # wrong answers to the quiz
    TIME = "tiempo"  # a quiz left unanswered past its 2 minutes
    CODES = "codigos"  # wrong SMS codes


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


def _refresh(user: Account) -> None:
    """Read the account's status and failures again, in place (the caller keeps its object)."""
    user.status = Account.select(Account.status).where(Account.id == user.id).scalar()
    user.hanna.quiz_failures = (
        HannaUser.select(HannaUser.quiz_failures).where(HannaUser.account == user.id).scalar()
    )


def quiz_bank(user: Account) -> list[dict]:
    """Return the affiliate's questions, drawing them once for good on first use.

    The bank belongs to the person, not the account, so registering the same
    document again shows the very same options.
    """
    row = QuizBank.get_or_none(QuizBank.afiliado == user.hanna.afiliado_id)
    if row is None:
        bank = quiz.build_bank(user.hanna.afiliado, _population())
        try:
            with db.atomic():
                row = QuizBank.create(afiliado=user.hanna.afiliado_id, questions=json.dumps(bank))
        except IntegrityError:  # drawn at the same moment by another request
            row = QuizBank.get(QuizBank.afiliado == user.hanna.afiliado_id)
    bank = json.loads(row.questions)
    # The Caja corrected some data (the person called to update it): only those
    # questions are drawn again, so the owner is not graded on the old answers.
    refreshed = quiz.refresh_bank(bank, Afiliado.get_by_id(user.hanna.afiliado_id), _population)
    if refreshed is not None:
        QuizBank.update(questions=json.dumps(refreshed)).where(QuizBank.id == row.id).execute()
        bank = refreshed
    return bank


def activation_kind(user: Account) -> Activation:
    """Tell how this account is activated."""
    if user.hanna.afiliado_id is None:
        return Activation.LINK
    return Activation.CODE if quiz.is_thin(quiz_bank(user)) else Activation.QUIZ


def mobile_on_file(user: Account) -> str:
    """Return the mobile number the Caja has for this affiliate ("" when none)."""
    profile = user.hanna
    return profile.afiliado.celular if profile and profile.afiliado_id and profile.afiliado else ""


def _open_attempt(user: Account) -> QuizAttempt | None:
    return (
        QuizAttempt.select()
        .where((QuizAttempt.account == user) & QuizAttempt.finished_at.is_null())
        .order_by(QuizAttempt.id.desc())
        .first()
    )


def live_attempt(user: Account) -> QuizAttempt | None:
    """Return the started, unexpired attempt (a reload shows it again; nothing is written)."""
    attempt = _open_attempt(user)
    if attempt is not None and utcnow() - attempt.created_at <= QUIZ_IDLE:
        return attempt
    return None


def idle_attempt_pending(user: Account) -> bool:
    """Tell whether a started attempt ran out of time and will count as a failure."""
    attempt = _open_attempt(user)
    return attempt is not None and utcnow() - attempt.created_at > QUIZ_IDLE


def start_quiz(user: Account) -> tuple[QuizResult, QuizAttempt | None, bool]:
    """Start an attempt when the person presses the button; return (result, attempt, timed_out).

    An attempt left idle counts as a failure first; a block it causes is
    committed, never rolled back.
    """
    bank = quiz_bank(user)
    with db.atomic():
        _refresh(user)
        if user.status == Account.BLOCKED:
            return QuizResult.BLOCKED, None, False
        timed_out = False
        attempt = _open_attempt(user)
        if attempt is not None:
            if utcnow() - attempt.created_at <= QUIZ_IDLE:
                return QuizResult.STARTED, attempt, False
            _fail_attempt(user, attempt, BlockReason.TIME)
            timed_out = True
            if user.status == Account.BLOCKED:
                return QuizResult.BLOCKED, None, True
        questions = quiz.draw(bank)
        attempt = QuizAttempt.create(account=user, questions=json.dumps(questions))
    return QuizResult.STARTED, attempt, timed_out


def quiz_questions(attempt: QuizAttempt) -> list[dict]:
    """Return the attempt's questions without their answers (for the page)."""
    return [
        {"key": q["key"], "text": q["text"], "options": q["options"]}
        for q in json.loads(attempt.questions)
    ]


def quiz_attempts_left(user: Account) -> int:
    """Return the tries left, counting a started attempt that already ran out of time."""
    failures = (
        HannaUser.select(HannaUser.quiz_failures).where(HannaUser.account == user.id).scalar() or 0
    )
    return max(QUIZ_ATTEMPTS - failures - idle_attempt_pending(user), 0)


def answer_quiz(user: Account, attempt_id: int, answers: dict[str, str]) -> QuizResult:
    """Grade an attempt: passed, failed, expired (ran out of time) or blocked."""
    with db.atomic():
        attempt = QuizAttempt.get_or_none(
            (QuizAttempt.id == attempt_id)
            & (QuizAttempt.account == user)
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
        if user.status != Account.PENDING:
            return QuizResult.BLOCKED if user.status == Account.BLOCKED else QuizResult.EXPIRED
        on_time = utcnow() - attempt.created_at <= QUIZ_IDLE
        if on_time and quiz.grade(json.loads(attempt.questions), answers):
            QuizAttempt.update(passed=True).where(QuizAttempt.id == attempt.id).execute()
            activate(user)
            return QuizResult.PASSED
        _fail_attempt(user, attempt, BlockReason.ANSWERS if on_time else BlockReason.TIME)
        if user.status == Account.BLOCKED:
            return QuizResult.BLOCKED
        return QuizResult.FAILED if on_time else QuizResult.EXPIRED


def _fail_attempt(user: Account, attempt: QuizAttempt | None, cause: BlockReason) -> None:
    """Count one failed try (a quiz or a burned code); the third blocks the account."""
    if attempt is not None:
        QuizAttempt.update(
            finished_at=fn.COALESCE(QuizAttempt.finished_at, utcnow()), passed=False
        ).where(QuizAttempt.id == attempt.id).execute()
    mine = HannaUser.account == user.id
    HannaUser.update(quiz_failures=HannaUser.quiz_failures + 1).where(mine).execute()
    failures = HannaUser.select(HannaUser.quiz_failures).where(mine).scalar()
    user.hanna.quiz_failures = failures
    if failures >= QUIZ_ATTEMPTS:
        blocked = (
            Account.update(status=Account.BLOCKED)
            .where((Account.id == user.id) & (Account.status == Account.PENDING))
            .execute()
        )
        if blocked:
            user.status, user.hanna.blocked_at = Account.BLOCKED, utcnow()
            HannaUser.update(
                blocked_at=user.hanna.blocked_at,
                blocked_reason=cause,
                activation_nonce=tokens.digest(secrets.token_hex(16)),
            ).where(mine).execute()


def send_code(user: Account) -> str:
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
        mine = OneTimeCode.account == user
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
        # Only this purpose's earlier code dies: a code sent for something else stays.
        OneTimeCode.update(used_at=now).where(
            mine & activation & OneTimeCode.used_at.is_null()
        ).execute()
        OneTimeCode.create(
            account=user,
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


def verify_code(user: Account, code: str) -> QuizResult:
    """Activate user when code matches the live one; a code burned by wrong tries counts as a failure."""
    with db.atomic():
        _refresh(user)
        if user.status == Account.BLOCKED:
            return QuizResult.BLOCKED
        row = (
            OneTimeCode.select()
            .where(
                (OneTimeCode.account == user)
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
                .where((OneTimeCode.account == user) & (OneTimeCode.purpose == CODE_PURPOSE))
                .scalar()
            )
            if wrong and wrong % CODE_TRIES == 0:
                _fail_attempt(user, None, BlockReason.CODES)
                if user.status == Account.BLOCKED:
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


def resend_activation(user: Account, *, secret: str, base_url: str) -> int:
    """Queue a new activation mail unless one left recently; return seconds to wait (0: sent)."""
    with db.atomic():
        wait = throttle.cooldown(
            throttle.Purpose.ACTIVATION_MAIL, user.email, RESEND_COOLDOWN_SECONDS
        )
        if wait:
            return wait
        if user.status == Account.PENDING:
            queue_activation_mail(user, secret=secret, base_url=base_url)
    return 0


def user_for_resend(token: str, *, secret: str) -> Account:
    """Return the pending account behind an activation link, however old, or a resend ticket."""
    for purpose in (tokens.ACTIVATION, tokens.RESEND):
        try:
            payload = tokens.read_token(secret, purpose, token, None)
        except tokens.TokenInvalid:
            continue
        user = Account.get_or_none(
            (Account.id == payload.get("u")) & (Account.kind == Account.HANNA)
        )
        # The nonce ties the link to this registration: after a newer one took the
        # pending account over, an old link must not send mail to its new address.
        if (
            user is not None
            and user.status == Account.PENDING
            and tokens.same(user.hanna.activation_nonce, str(payload.get("n")))
        ):
            return user
        break
    raise LinkInvalid("No hay una cuenta pendiente de activación para este enlace.")


def resend_ticket(user: Account, *, secret: str) -> str:
    """Return the signed ticket a pending account's login page uses to ask for a new link."""
    return tokens.make_token(
        secret, tokens.RESEND, {"u": user.id, "n": user.hanna.activation_nonce}
    )
