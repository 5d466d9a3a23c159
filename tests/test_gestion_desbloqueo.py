"""H2 from staff's side: the queue of blocked users, and unblocking one with a reason."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from factories import PASSWORD, make_staff, make_user

import models
from blueprints.accounts import service as accounts
from blueprints.gestion import service as gestion
from core.clock import utcnow
from core.demo import demo_afiliados
from core.importer import upsert_afiliados
from models import Account, Afiliado, AuditEvent, HannaUser, Message, QuizAttempt

BASE = "http://localhost"
ALREADY = "ya no está bloqueado"
REASON = "Llamó al call center y validó sus datos con la agente."


@pytest.fixture
def caja(db):
    """A few hundred affiliates: the population the quiz's options come from."""
    upsert_afiliados(demo_afiliados(seed=5, count=400))


def blocked(reason: str = accounts.BlockReason.ANSWERS, minutes_ago: int = 60, **over) -> Account:
    """A Hanna account marked blocked directly (for the list; no quiz behind it)."""
    user = make_user(status=Account.BLOCKED, **over)
    HannaUser.update(
        blocked_at=utcnow() - timedelta(minutes=minutes_ago), blocked_reason=reason, quiz_failures=3
    ).where(HannaUser.account == user.id).execute()
    return Account.get_by_id(user.id)


def wrong_answers(attempt: QuizAttempt) -> dict[str, str]:
    answers = {q["key"]: str(q["answer"]) for q in json.loads(attempt.questions)}
    first = next(iter(answers))
    answers[first] = str((int(answers[first]) + 1) % 4)
    return answers


def right_answers(attempt: QuizAttempt) -> dict[str, str]:
    return {q["key"]: str(q["answer"]) for q in json.loads(attempt.questions)}


def blocked_by_the_quiz() -> Account:
    """A pending affiliate's account that failed the quiz three times, as the app blocks it."""
    for afiliado in Afiliado.select().where(Afiliado.celular != "").order_by(Afiliado.id):
        if HannaUser.get_or_none(HannaUser.afiliado == afiliado):
            continue
        user = make_user(
            status=Account.PENDING,
            afiliado=afiliado,
            tipo_documento=afiliado.tipo_documento,
            numero_documento=afiliado.numero_documento,
        )
        if accounts.activation_kind(user) is accounts.Activation.QUIZ:
            break
    else:
        raise AssertionError("no affiliate with a fair quiz")
    for _ in range(accounts.QUIZ_ATTEMPTS):
        result, attempt, _ = accounts.start_quiz(user)
        assert result is accounts.QuizResult.STARTED
        last = accounts.answer_quiz(user, attempt.id, wrong_answers(attempt))
    assert last is accounts.QuizResult.BLOCKED
    return Account.get_by_id(user.id)


@pytest.fixture
def desk(app, db, auth):
    """A client signed in as a staff member of afiliaciones, second factor passed."""
    staff = make_staff(roles=("afiliaciones",))
    client = auth.login(app.test_client(), staff)
    client.staff = staff
    return client


def atender(user: Account) -> str:
    return f"/gestion/desbloqueos/{user.id}"


def audit_rows(user: Account, action: str | None = None) -> list[AuditEvent]:
    query = AuditEvent.select().where(
        (AuditEvent.target_type == "usuario") & (AuditEvent.target_id == user.id)
    )
    if action:
        query = query.where(AuditEvent.action == action)
    return list(query.order_by(AuditEvent.id))


def mails_to(user: Account) -> list[Message]:
    return list(
        Message.select()
        .where((Message.channel == Message.EMAIL) & (Message.recipient == user.email))
        .order_by(Message.id)
    )


def retry_form(**over) -> dict:
    return {"decision": gestion.Unblock.RETRY.value, "verified_by": "", "reason": REASON, **over}


def activate_form(**over) -> dict:
    return {
        "decision": gestion.Unblock.ACTIVATE.value,
        "verified_by": "llamada",
        "reason": REASON,
        **over,
    }


# --- the queue ------------------------------------------------------------------------


def test_a_user_the_quiz_blocked_waits_in_the_queue_with_its_reason(db, caja, desk):
    user = blocked_by_the_quiz()
    assert user.status == Account.BLOCKED and user.hanna.blocked_reason == "preguntas"
    page = desk.get("/gestion/desbloqueos")
    assert page.status_code == 200
    assert user.email in page.text and user.hanna.numero_documento in page.text
    assert "3 intentos fallidos de las preguntas" in page.text
    assert f'href="{atender(user)}"' in page.text
    assert "Vary" in page.headers and "HX-Request" in page.headers["Vary"]


def test_the_queue_shows_each_reason_and_the_oldest_block_first(db, desk):
    codes = blocked(accounts.BlockReason.CODES, minutes_ago=10)
    late = blocked(accounts.BlockReason.TIME, minutes_ago=300)
    page = desk.get("/gestion/desbloqueos").text
    assert "Códigos SMS incorrectos" in page and "Intentos sin responder a tiempo" in page
    assert page.index(late.email) < page.index(codes.email)


def test_the_queue_leaves_out_users_who_are_not_blocked(db, desk):
    active, pending = make_user(), make_user(status=Account.PENDING)
    page = desk.get("/gestion/desbloqueos").text
    assert active.email not in page and pending.email not in page
    assert "No hay usuarios bloqueados" in page


def test_the_queue_filters_by_documento_and_by_correo(db, desk):
    one, other = blocked(), blocked()
    pasted = f" {one.hanna.numero_documento} "  # copied from another screen, spaces and all
    by_document = desk.get("/gestion/desbloqueos", query_string={"documento": pasted})
    assert by_document.status_code == 200
    assert one.email in by_document.text and other.email not in by_document.text
    by_mail = desk.get("/gestion/desbloqueos", query_string={"correo": f" {other.email.upper()}"})
    assert other.email in by_mail.text and one.email not in by_mail.text
    nothing = desk.get("/gestion/desbloqueos", query_string={"documento": "1"})
    assert one.email not in nothing.text and "No hay usuarios bloqueados" in nothing.text


def test_a_filter_too_long_is_a_422_with_the_input_kept(db, desk):
    page = desk.get("/gestion/desbloqueos", query_string={"documento": "9" * 40})
    assert page.status_code == 422
    assert "9" * 40 in page.text


def test_the_queue_partial_is_only_rows(db, desk, htmx):
    user = blocked()
    partial = desk.get("/gestion/desbloqueos", headers=htmx)
    assert partial.status_code == 200
    assert user.email in partial.text and "<html" not in partial.text


def test_the_queue_pages_by_the_oldest_block(db, desk, htmx):
    waiting = [blocked(minutes_ago=1000 - i) for i in range(52)]  # the same minute for none
    first = desk.get("/gestion/desbloqueos")
    assert first.status_code == 200 and "52 resultados" in first.text
    shown = [u for u in waiting if u.email in first.text]
    assert shown == waiting[:50]
    more = re.search(r'href="(/gestion/desbloqueos\?despues=[^"]+)"', first.text)
    assert more, "no «Ver más» link"
    rest = desk.get(unescape(more.group(1)))
    assert rest.status_code == 200
    assert [u for u in waiting if u.email in rest.text] == waiting[50:]
    partial = desk.get(unescape(more.group(1)), headers=htmx)
    assert [u for u in waiting if u.email in partial.text] == waiting[50:]


def test_the_home_tile_counts_the_blocked_the_list_shows(db, desk):
    blocked(), blocked()
    make_user(status=Account.BLOCKED)  # no blocked_at: not in the list, so not counted
    home = desk.get("/gestion/").text
    assert 'href="/gestion/desbloqueos">Usuarios bloqueados</a> <span class="tag">2</span>' in home


def test_the_attend_page_shows_the_user_and_the_form(db, desk):
    user = blocked(primer_nombre="MARTA")
    page = desk.get(atender(user))
    assert page.status_code == 200
    assert "Desbloquear usuario" in page.text and "Marta" in page.text
    assert user.email in page.text and "3 intentos fallidos de las preguntas" in page.text
    assert 'name="decision"' in page.text and 'name="reason"' in page.text
    assert "Llamada al call center con validación de datos" in page.text
    assert 'value="reintentar"' in page.text and 'value="activar"' in page.text


def blocked_staff() -> Account:
    staff = make_staff(roles=("afiliaciones",))
    Account.update(status=Account.BLOCKED).where(Account.id == staff.id).execute()
    return staff


@pytest.mark.parametrize("who", ["active", "pending", "staff", "missing"])
def test_only_blocked_hanna_users_can_be_attended(db, desk, who):
    target = {
        "active": lambda: make_user(),
        "pending": lambda: make_user(status=Account.PENDING),
        "staff": lambda: blocked_staff(),
        "missing": lambda: Account(id=987654),
    }[who]()
    assert desk.get(atender(target)).status_code == 404


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form, message",
    [
        (retry_form(reason=""), "Este campo es obligatorio."),
        (retry_form(reason="   "), "Este campo es obligatorio."),
        (retry_form(reason="corto"), "Escriba el motivo (entre 10 y 1000 caracteres)."),
        (retry_form(reason="x" * 1001), "Escriba el motivo (entre 10 y 1000 caracteres)."),
        (retry_form(decision=""), "Elija qué hacer."),
        (retry_form(decision="borrar"), None),
        (activate_form(verified_by=""), "Diga cómo verificó la identidad para activar la cuenta."),
        (activate_form(verified_by="vecino"), None),
    ],
)
def test_bad_input_is_a_422_and_changes_nothing(db, desk, outbox, form, message):
    user = blocked()
    page = desk.post(atender(user), data=form)
    assert page.status_code == 422
    text = unescape(page.text)
    if message:
        assert message in text
    assert 'class="error"' in page.text
    assert "Not a valid" not in text  # the built-in messages are the Spanish ones
    if form["reason"].strip() and len(form["reason"]) <= 1000:
        assert form["reason"] in text  # what was typed is kept
    row = Account.get_by_id(user.id)
    assert row.status == Account.BLOCKED and row.hanna.quiz_failures == 3
    assert audit_rows(user) == [] and mails_to(user) == []


# --- a new chance at the quiz ------------------------------------------------------------


def test_retry_gives_three_new_tries_and_a_new_link(app, db, caja, desk, outbox):
    user = blocked_by_the_quiz()
    old_nonce = user.hanna.activation_nonce
    answer = desk.post(atender(user), data=retry_form())
    assert (
        answer.status_code == 303
        and urlsplit(answer.headers["Location"]).path == "/gestion/desbloqueos"
    )
    listing = desk.get("/gestion/desbloqueos").text
    assert "Usuario desbloqueado" in listing and user.email in listing
    assert "No hay usuarios bloqueados" in listing
    row = Account.get_by_id(user.id)
    assert row.status == Account.PENDING
    assert row.hanna.quiz_failures == 0 and row.hanna.unblocked_at is not None
    assert row.hanna.activation_nonce != old_nonce
    assert accounts.quiz_attempts_left(row) == 3
    (event,) = audit_rows(user)
    assert event.action == "usuario.desbloquear" and event.actor_id == desk.staff.id
    assert json.loads(event.before) == {"estado": "bloqueado", "intentos_fallidos": 3}
    assert json.loads(event.after) == {
        "estado": "pendiente",
        "intentos_fallidos": 0,
        "motivo": REASON,
    }
    (mail,) = mails_to(user)
    link = outbox.last_link("/activar/")
    assert link in mail.body_text
    # The person takes the quiz again, from the new link, in another browser.
    person = app.test_client()
    start = person.get(link)
    assert start.status_code == 200 and "3 intentos" in start.text
    quiz = person.post(link, data={"accion": "comenzar"})
    assert quiz.status_code == 200
    attempt = (
        QuizAttempt.select()
        .where(QuizAttempt.account == user.id)
        .order_by(QuizAttempt.id.desc())
        .get()
    )
    done = person.post(link, data={"intento": str(attempt.id), **right_answers(attempt)})
    assert done.status_code == 303 and Account.get_by_id(user.id).status == Account.ACTIVE


def test_retry_can_block_again_after_three_new_failures(db, caja, desk):
    user = blocked_by_the_quiz()
    desk.post(atender(user), data=retry_form())
    user = Account.get_by_id(user.id)
    for _ in range(accounts.QUIZ_ATTEMPTS):
        _, attempt, _ = accounts.start_quiz(user)
        last = accounts.answer_quiz(user, attempt.id, wrong_answers(attempt))
    assert last is accounts.QuizResult.BLOCKED
    assert user.email in desk.get("/gestion/desbloqueos").text
    page = desk.get(atender(user)).text
    assert "Desbloqueado antes" in page


# --- activating after another check of identity ------------------------------------------


def test_activate_makes_the_account_active_and_the_user_can_sign_in(app, db, caja, desk, outbox):
    user = blocked_by_the_quiz()
    answer = desk.post(atender(user), data=activate_form())
    assert answer.status_code == 303
    assert "ya puede ingresar" in desk.get("/gestion/desbloqueos").text
    row = Account.get_by_id(user.id)
    assert row.status == Account.ACTIVE and row.hanna.activated_at is not None
    (event,) = audit_rows(user)
    assert event.action == "usuario.activar"
    after = json.loads(event.after)
    assert after["verificado_por"] == "llamada" and after["motivo"] == REASON
    assert after["estado"] == "activo"
    (mail,) = mails_to(user)
    assert "activó su cuenta" in mail.body_text and "Estimado(a)" in mail.body_text
    person = app.test_client()
    login = person.post("/", data={"email": user.email, "password": PASSWORD})
    assert login.status_code == 303 and urlsplit(login.headers["Location"]).path == "/inicio"
    assert person.get("/inicio").status_code == 200


def test_a_second_post_for_the_same_user_changes_nothing(db, desk, outbox):
    user = blocked()
    assert desk.post(atender(user), data=retry_form()).status_code == 303
    desk.get("/gestion/desbloqueos")  # the first flash is read
    again = desk.post(atender(user), data=activate_form())
    assert again.status_code == 303
    assert urlsplit(again.headers["Location"]).path == "/gestion/desbloqueos"
    assert ALREADY in desk.get("/gestion/desbloqueos").text
    assert Account.get_by_id(user.id).status == Account.PENDING
    assert len(audit_rows(user)) == 1 and len(mails_to(user)) == 1


def test_a_second_staff_member_with_the_page_open_decides_nothing(app, db, auth, outbox):
    user = blocked()
    first = auth.login(app.test_client(), make_staff(roles=("afiliaciones",)))
    second = auth.login(app.test_client(), make_staff(roles=("afiliaciones",)))
    assert second.get(atender(user)).status_code == 200  # both have it open
    assert first.post(atender(user), data=activate_form()).status_code == 303
    late = second.post(atender(user), data=retry_form())
    assert late.status_code == 303
    assert ALREADY in second.get("/gestion/desbloqueos").text
    assert Account.get_by_id(user.id).status == Account.ACTIVE
    assert [e.action for e in audit_rows(user)] == ["usuario.activar"]


def test_two_staff_unblocking_at_once_decide_once(app, db):
    """Two threads, two connections, one conditional UPDATE: one audit row, one mail."""
    user = blocked()
    deciders = [make_staff(roles=("afiliaciones",)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(staff, decision):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            gestion.unblock(
                staff,
                user.id,
                decision,
                REASON,
                verified_by="oficina",
                secret="test-secret",
                base_url=BASE,
                ip=None,
            )
            outcomes.append("won")
        except gestion.StaffError:
            outcomes.append("already")
        finally:
            models.db.close()

    models.db.close()
    threads = [
        threading.Thread(target=decide, args=(deciders[0], gestion.Unblock.RETRY)),
        threading.Thread(target=decide, args=(deciders[1], gestion.Unblock.ACTIVATE)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["already", "won"]
    with models.db.connection_context():
        assert len(audit_rows(user)) == 1
        assert len(mails_to(user)) == 1
        assert Account.get_by_id(user.id).status in (Account.PENDING, Account.ACTIVE)


# --- who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["convenios", "admin", "autorizaciones", "pqrs", "soporte"])
def test_other_roles_find_no_unblock_queue(app, db, auth, role):
    user = blocked()
    client = auth.login(app.test_client(), make_staff(roles=(role,)))
    assert client.get("/gestion/desbloqueos").status_code == 404
    assert client.get(atender(user)).status_code == 404
    assert client.post(atender(user), data=activate_form()).status_code == 404
    assert Account.get_by_id(user.id).status == Account.BLOCKED


def test_hanna_users_and_the_anonymous_cannot_unblock(app, db, auth, client):
    user = blocked()
    anonymous = client.post(atender(user), data=activate_form())
    assert anonymous.status_code in (302, 303)
    assert urlsplit(anonymous.headers["Location"]).path == "/gestion/ingresar"
    hanna = auth.login(app.test_client(), make_user())
    assert hanna.post(atender(user), data=activate_form()).status_code == 404
    half = auth.login(app.test_client(), make_staff(roles=("afiliaciones",)), second_factor=False)
    assert half.post(atender(user), data=activate_form()).status_code == 303
    assert Account.get_by_id(user.id).status == Account.BLOCKED and audit_rows(user) == []


def test_nothing_personal_reaches_the_log(app, db, desk, caplog):
    user = blocked()
    # The app's own log lines (the request log included); peewee's DEBUG SQL is off in production.
    with caplog.at_level("INFO"):
        desk.get("/gestion/desbloqueos", query_string={"correo": user.email})
        desk.post(atender(user), data=retry_form())
    assert user.email not in caplog.text and user.hanna.numero_documento not in caplog.text
