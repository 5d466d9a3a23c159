"""S1 for G7: the staff PQRSF queue by due date, answering, asking, extending, closing, unblocking."""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from factories import make_eps_afiliado, make_eps_user, make_staff, make_user

import models
from blueprints.gestion import pqrs as views
from blueprints.gestion import pqrs_service as service
from blueprints.gestion import service as gestion
from core import audit, files, uploads, workdays
from core import clock as core_clock
from core import pqrs as pqrs_core
from core.colombia import BOGOTA
from models import Account, Attachment, AuditEvent, HannaUser, Message, Pqrs, PqrsMensaje
from tests.sample_files import pdf_bytes

QUEUE = "/gestion/pqrs"
LINK = "http://localhost/pqrs/consulta"
ANSWER = "Revisamos su caso: la cita de control quedó asignada para el 2 de abril a las 8:00."
REASON = "El ciudadano envió copia de su cédula por el PQRSF y coincide."


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


def local(*args) -> datetime:
    """A Bogotá wall-clock time as stored (naive UTC)."""
    return datetime(*args, tzinfo=BOGOTA).astimezone(UTC).replace(tzinfo=None)


_numbers = itertools.count(1)


def make_pqrs(
    tipo: str = Pqrs.PETICION, created_at: datetime | None = None, upload_dir=None, **over
) -> Pqrs:
    """A PQRSF as the citizen side files it: the row with its legal term, and its file if asked."""
    created_at = created_at or core_clock.utcnow()
    n = next(_numbers)
    term = pqrs_core.TIPOS[tipo].term_days
    fields = dict(
        radicado=pqrs_core.new_radicado(2026),
        tipo=tipo,
        tipo_documento="CC",
        numero_documento=f"52{n:06d}",
        nombre="MARÍA JOSÉ PÉREZ",
        email=f"ciudadana{n}@example.com",
        celular="3154567120",
        descripcion="Pedí una cita de control hace un mes.\nNadie me ha llamado.",
        term_days=term,
        due_on=workdays.add_working_days(created_at, term),
        form_key=f"pqrs-form-{n}",
        created_at=created_at,
    )
    fields.update(over)
    pqrs = Pqrs.create(**fields)
    if upload_dir is not None:
        files.save(
            io.BytesIO(pdf_bytes()),
            "historia clínica.pdf",
            uploads.HELP_DESK,
            upload_dir,
            service.OWNER_TYPE,
            pqrs.id,
        )
    return pqrs


def blocked_hanna(**over) -> Account:
    """A Hanna account the quiz blocked (marked directly, as test_gestion_desbloqueo does)."""
    user = make_user(status=Account.BLOCKED, **over)
    HannaUser.update(
        blocked_at=core_clock.utcnow() - timedelta(hours=2), blocked_reason="preguntas",
        quiz_failures=3,
    ).where(HannaUser.account == user.id).execute()  # fmt: skip
    return Account.get_by_id(user.id)


@pytest.fixture
def staff(db):
    return make_staff(roles=("pqrs",), email="pqrs.staff@cajacopi.example")


@pytest.fixture
def staff_client(client, auth, staff):
    return auth.login(client, staff)


@pytest.fixture
def case(db, upload_dir):
    return make_pqrs(upload_dir=upload_dir)


def reload(pqrs: Pqrs) -> Pqrs:
    return Pqrs.get_by_id(pqrs.id)


def events(action: str | None = None) -> list[AuditEvent]:
    query = AuditEvent.select().order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(query)


def error_of(text: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', text)
    assert found, f"no error next to {field}"
    return found.group(1)


def assert_gsm7(sms: Message) -> None:
    assert pqrs_core.is_gsm7_single(sms.body_text), sms.body_text
    assert not set("°áíóúÁÍÓÚ") & set(sms.body_text)


# --- who may see it ---------------------------------------------------------------------------


def routes(pqrs_id: int) -> list[tuple[str, str]]:
    base = f"{QUEUE}/{pqrs_id}"
    return [
        ("get", QUEUE),
        ("get", base),
        ("get", f"{base}/adjunto"),
        ("post", f"{base}/responder"),
        ("post", f"{base}/informacion"),
        ("post", f"{base}/prorrogar"),
        ("post", f"{base}/cerrar"),
        ("post", f"{base}/desbloquear"),
    ]


POSTED = {
    "respuesta": ANSWER,
    "informacion": ANSWER,
    "dias": "5",
    "motivo": "Motivo suficientemente largo.",
    "motivo_cierre": "Motivo suficientemente largo.",
}


def test_anonymous_goes_to_the_staff_login_on_every_route(client, case):
    for method, url in routes(case.id):
        response = getattr(client, method)(url, data=POSTED)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/gestion/ingresar", url
    assert reload(case).estado == Pqrs.RADICADA


@pytest.mark.parametrize(
    "who", ["admin", "afiliaciones", "autorizaciones", "convenios", "soporte", "hanna", "eps"]
)
def test_everyone_but_role_pqrs_gets_404_on_every_route(client, auth, case, who):
    if who == "hanna":
        account = make_user()
    elif who == "eps":
        account = make_eps_user(make_eps_afiliado())
    else:
        account = make_staff(roles=(who,))
    auth.login(client, account)
    for method, url in routes(case.id):
        assert getattr(client, method)(url, data=POSTED).status_code == 404, (who, url)
    assert reload(case).estado == Pqrs.RADICADA
    assert events() == [] and Message.select().count() == 0


def test_staff_without_the_second_factor_is_sent_to_finish_signing_in(client, auth, staff):
    auth.login(client, staff, second_factor=False)
    assert client.get(QUEUE).status_code in (302, 303)


def test_only_role_pqrs_has_the_section_and_its_open_count_on_the_home(client, auth, staff, db):
    make_pqrs()
    make_pqrs(estado=Pqrs.INFORMACION)
    make_pqrs(estado=Pqrs.RESPONDIDA)
    auth.login(client, staff)
    home = client.get("/gestion/").text
    assert re.search(r'href="/gestion/pqrs">PQRSF</a> <span class="tag">2</span>', home)
    auth.login(client, make_staff(roles=("admin", "afiliaciones")))
    assert 'href="/gestion/pqrs"' not in client.get("/gestion/").text


# --- the queue ----------------------------------------------------------------------------------


def test_queue_lists_open_ones_by_due_date_then_id_not_by_filing_order(staff_client, db):
    later = make_pqrs(due_on=date(2026, 4, 20), radicado="PQR-2026-LATER2")
    sooner = make_pqrs(due_on=date(2026, 4, 6), radicado="PQR-2026-SOONR2")
    tie = make_pqrs(due_on=date(2026, 4, 6), radicado="PQR-2026-SOONR3", estado=Pqrs.INFORMACION)
    make_pqrs(due_on=date(2026, 4, 1), radicado="PQR-2026-DONE22", estado=Pqrs.RESPONDIDA)
    make_pqrs(due_on=date(2026, 4, 1), radicado="PQR-2026-CLSD22", estado=Pqrs.CERRADA)
    text = staff_client.get(QUEUE).text
    assert text.index("SOONR2") < text.index("SOONR3") < text.index("LATER2")
    assert "DONE22" not in text and "CLSD22" not in text
    assert "Abiertas (3)" in text and "Respondidas (1)" in text and "Cerradas (1)" in text
    assert later.id < sooner.id < tie.id  # filed in this order, shown by due date


def test_queue_marks_across_a_holiday_weekend(client, auth, staff, clock):
    # Friday 20 March 2026; Monday 23 is a holiday (San José), so Tuesday 24 is the next working day.
    clock.set(datetime(2026, 3, 20, 10, 0))
    auth.login(client, staff)
    rows = {
        "PQR-2026-VENC22": date(2026, 3, 19),  # yesterday
        "PQR-2026-HOY222": date(2026, 3, 20),  # today
        "PQR-2026-MARTES": date(2026, 3, 24),  # the next working day, past the holiday weekend
        "PQR-2026-MIERCO": date(2026, 3, 25),  # two working days away
    }
    for radicado, due in rows.items():
        make_pqrs(radicado=radicado, due_on=due)
    text = client.get(QUEUE).text
    marks = {r: re.search(rf"{r}</td>.*?<span class=\"tag[^>]*>([^<]+)</span>", text, re.S)[1]
             for r in rows}  # fmt: skip
    assert marks == {
        "PQR-2026-VENC22": "Vencido",
        "PQR-2026-HOY222": "Por vencer",
        "PQR-2026-MARTES": "Por vencer",  # only Monday's holiday between: 1 working day
        "PQR-2026-MIERCO": "A tiempo",
    }
    assert "20/03/2026" in text and "24/03/2026" in text


def test_queue_row_shows_radicado_tipo_bogota_time_citizen_due_and_state(staff_client, db):
    make_pqrs(
        Pqrs.CONSULTA,
        created_at=local(2026, 3, 4, 15, 7),
        radicado="PQR-2026-ROW222",
        tipo_documento="CE",
        numero_documento="998877",
        nombre="ANA LUCÍA GÓMEZ",
    )
    text = staff_client.get(QUEUE).text
    assert "PQR-2026-ROW222" in text and "<td>Consulta</td>" in text
    assert "04/03/2026 15:07" in text  # Bogotá time, not the stored UTC (20:07)
    assert "CE 998877" in text and "Ana Lucía Gómez" in text
    assert "20/04/2026" in text  # 30 working days after 4 March 2026 (San José, Semana Santa off)
    assert "Radicada" in text and "Atender" in text


def test_a_case_waiting_for_the_citizen_shows_its_term_suspended(staff_client, db):
    make_pqrs(radicado="PQR-2026-SUSP22", estado=Pqrs.INFORMACION, due_on=date(2020, 1, 2))
    text = staff_client.get(QUEUE).text
    row = text[text.index("PQR-2026-SUSP22") :]
    assert "Término suspendido" in row[:600] and "Vencido" not in row[:600]


def test_queue_filters_by_state_tipo_radicado_and_document(staff_client, db):
    mine = make_pqrs(Pqrs.QUEJA, radicado="PQR-2026-MYNE22", numero_documento="1012345678")
    make_pqrs(Pqrs.RECLAMO, radicado="PQR-2026-OTHR22", numero_documento="55667788")
    make_pqrs(Pqrs.QUEJA, radicado="PQR-2026-DONE33", estado=Pqrs.RESPONDIDA)

    def shown(query: str) -> set[str]:
        return set(re.findall(r"PQR-2026-[A-Z0-9]{6}", staff_client.get(f"{QUEUE}?{query}").text))

    assert shown("tipo=queja") == {"PQR-2026-MYNE22"}
    assert shown("buscar=1.012.345.678") == {"PQR-2026-MYNE22"}
    assert shown("buscar=pqr2026myne22") == {"PQR-2026-MYNE22"}  # typed loosely
    assert shown("buscar=PQR-2026-MYNE22") == {"PQR-2026-MYNE22"}
    assert shown("buscar=myne22") == {"PQR-2026-MYNE22"}  # the code alone, read out by phone
    assert shown("estado=respondida") == {"PQR-2026-DONE33"}
    assert shown("estado=radicada&tipo=reclamo") == {"PQR-2026-OTHR22"}
    assert mine.estado == Pqrs.RADICADA


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("estado=borrada", "estado"),
        ("tipo=chisme", "tipo"),
        ("buscar=" + "1" * 21, "buscar"),
        ("buscar=%27%20OR%201%3D1", "buscar"),
    ],
    ids=["estado", "tipo", "long", "symbols"],
)
def test_queue_with_a_bad_filter_is_422_with_the_message_next_to_it(staff_client, db, query, field):
    response = staff_client.get(f"{QUEUE}?{query}")
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text


def test_queue_pages_with_ver_mas_and_htmx_gets_only_rows(staff_client, db, monkeypatch, htmx):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in (1, 2, 3):
        make_pqrs(due_on=date(2026, 4, n + 5), radicado=f"PQR-2026-PAGE2{n}")
    first = staff_client.get(QUEUE)
    assert "PAGE21" in first.text and "PAGE22" in first.text and "PAGE23" not in first.text
    assert "3 resultados" in first.text
    more = re.search(r'href="(/gestion/pqrs\?[^"]*despues=[^"]+)"', first.text)[1]
    rows = staff_client.get(more.replace("&amp;", "&"), headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert "PAGE23" in rows.text and "PAGE21" not in rows.text
    assert "HX-Request" in rows.headers["Vary"]
    assert staff_client.get(f"{QUEUE}?despues=nada").status_code == 303


# --- the case -------------------------------------------------------------------------------------


def test_case_shows_citizen_request_file_dates_and_history(
    client, auth, staff, db, upload_dir, clock
):
    clock.set(datetime(2026, 3, 10, 11, 0))
    staff_client = auth.login(client, staff)
    pqrs = make_pqrs(
        created_at=local(2026, 3, 2, 9, 30), upload_dir=upload_dir, radicado="PQR-2026-CASE22"
    )
    service.extend(pqrs.id, staff, 3, "Esperamos el concepto de la IPS.", LINK)
    text = staff_client.get(f"{QUEUE}/{pqrs.id}").text
    assert "PQRSF PQR-2026-CASE22" in text and "Petición" in text
    assert "Cédula de ciudadanía" in text and "María José Pérez" in text
    assert pqrs.email in text and "3154567120" in text
    assert "Pedí una cita de control hace un mes.<br>Nadie me ha llamado." in text
    assert f"{QUEUE}/{pqrs.id}/adjunto" in text and "historia clínica.pdf" in text
    assert "02/03/2026 09:30" in text and "15 días hábiles" in text
    assert "27/03/2026" in text  # due Tue 24/03 (Monday 23 a holiday) + 3 working days
    assert "Prórroga" in text and "Esperamos el concepto de la IPS." in text
    assert staff.email in text
    for action in ("responder", "informacion", "prorrogar", "cerrar"):
        assert f"{QUEUE}/{pqrs.id}/{action}" in text
    assert "/desbloquear" not in text


def test_unknown_case_is_404(staff_client, db):
    for method, url in routes(424242)[1:]:
        assert getattr(staff_client, method)(url, data=POSTED).status_code == 404


def test_staff_download_the_file_as_an_attachment_and_it_is_audited(staff_client, staff, case):
    response = staff_client.get(f"{QUEUE}/{case.id}/adjunto")
    assert response.status_code == 200 and response.data == pdf_bytes()
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "historia%20cl%C3%ADnica.pdf" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    (event,) = events(audit.Action.PQRS_ADJUNTO_VER)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "pqrs", case.id)
    assert json.loads(event.after)["radicado"] == case.radicado


def test_no_file_or_a_missing_one_is_404_and_not_audited(staff_client, case, upload_dir):
    assert staff_client.get(f"{QUEUE}/{make_pqrs().id}/adjunto").status_code == 404
    (attachment,) = Attachment.of(service.OWNER_TYPE, case.id)
    uploads.remove(attachment.key, upload_dir)
    assert staff_client.get(f"{QUEUE}/{case.id}/adjunto").status_code == 404
    assert events() == []


# --- answering ------------------------------------------------------------------------------------


def test_answer_records_it_audits_and_tells_the_citizen(client, auth, staff, case, outbox, clock):
    clock.set(datetime(2026, 3, 20, 19, 45))  # Bogotá evening: the UTC date is already the 21st
    staff_client = auth.login(client, staff)
    response = staff_client.post(f"{QUEUE}/{case.id}/responder", data={"respuesta": f"  {ANSWER} "})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == QUEUE
    done = reload(case)
    assert (done.estado, done.respuesta) == (Pqrs.RESPONDIDA, ANSWER)
    assert done.answered_by_id == staff.id and done.answered_at == local(2026, 3, 20, 19, 45)
    (mensaje,) = done.mensajes
    assert (mensaje.tipo, mensaje.texto, mensaje.account_id) == (
        PqrsMensaje.RESPUESTA,
        ANSWER,
        staff.id,
    )
    (event,) = events(audit.Action.PQRS_RESPONDER)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "pqrs", case.id)
    assert json.loads(event.before) == {"estado": "radicada", "respuesta": ""}
    assert json.loads(event.after)["estado"] == "respondida"
    (sms,) = outbox.all("sms")
    assert sms.recipient == case.celular and case.radicado in sms.body_text
    assert "respondida" in sms.body_text and "cita" not in sms.body_text
    assert_gsm7(sms)
    (mail,) = outbox.all("email")
    assert mail.recipient == case.email and case.radicado in mail.subject
    assert ANSWER in mail.body_text and LINK in mail.body_text
    assert "respondido" in staff_client.get(QUEUE).text


def test_answer_without_phone_or_email_tells_nobody_and_still_answers(staff_client, db, outbox):
    pqrs = make_pqrs(email="", celular="")
    assert (
        staff_client.post(f"{QUEUE}/{pqrs.id}/responder", data={"respuesta": ANSWER}).status_code
        == 303
    )
    assert reload(pqrs).estado == Pqrs.RESPONDIDA and outbox.all() == []


@pytest.mark.parametrize(
    "texto", ["", "   ", "Listo.", "x" * 5001], ids=["empty", "blank", "short", "long"]
)
def test_answer_needs_10_to_5000_characters(staff_client, case, outbox, texto):
    response = staff_client.post(f"{QUEUE}/{case.id}/responder", data={"respuesta": texto})
    assert response.status_code == 422
    error = error_of(response.text, "respuesta")
    assert "obligatorio" in error or "entre 10 y 5000" in error
    if texto.strip():
        assert texto in response.text  # kept
    assert reload(case).estado == Pqrs.RADICADA and outbox.all() == [] and events() == []


def test_two_staff_answering_at_once_answer_once(app, db, case):
    """Two threads, each with its own connection, race the same case."""
    answerers = [make_staff(roles=("pqrs",)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def answer(actor):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            service.answer(case.id, actor, f"{ANSWER} ({actor.email})", LINK)
            outcomes.append("won")
        except service.WrongState:
            outcomes.append("late")
        finally:
            models.db.close()

    threads = [threading.Thread(target=answer, args=(a,)) for a in answerers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["late", "won"]
    with models.db.connection_context():
        done = reload(case)
        assert done.estado == Pqrs.RESPONDIDA
        assert PqrsMensaje.select().count() == 1 and len(events()) == 1
        assert Message.select().count() == 2  # one SMS and one e-mail, of the winner
        assert done.answered_by_id in {a.id for a in answerers}


def test_a_second_click_is_refused_with_a_message(staff_client, case, outbox):
    url = f"{QUEUE}/{case.id}"
    assert staff_client.post(f"{url}/responder", data={"respuesta": ANSWER}).status_code == 303
    again = staff_client.post(f"{url}/responder", data={"respuesta": ANSWER})
    assert again.status_code == 303 and urlsplit(again.headers["Location"]).path == url
    page = staff_client.get(url).text
    assert "cambió mientras tanto (ahora: respondida)" in page
    assert f"{url}/responder" not in page and f"{url}/cerrar" in page
    assert len(events()) == 1 and len(outbox.all("sms")) == 1


# --- asking for information -----------------------------------------------------------------------


def test_asking_for_information_suspends_the_term_and_tells_the_citizen(
    staff_client, staff, case, outbox
):
    texto = "Envíe la orden médica de la cita de control, por favor."
    response = staff_client.post(f"{QUEUE}/{case.id}/informacion", data={"informacion": texto})
    assert response.status_code == 303
    done = reload(case)
    assert done.estado == Pqrs.INFORMACION and done.due_on == case.due_on
    (mensaje,) = done.mensajes
    assert (mensaje.tipo, mensaje.texto) == (PqrsMensaje.INFORMACION, texto)
    (event,) = events(audit.Action.PQRS_PEDIR_INFORMACION)
    assert json.loads(event.before) == {"estado": "radicada"}
    assert json.loads(event.after)["estado"] == "informacion"
    (sms,) = outbox.all("sms")
    assert case.radicado in sms.body_text and "datos adicionales" in sms.body_text
    assert_gsm7(sms)
    (mail,) = outbox.all("email")
    assert texto in mail.body_text and "suspendido" in mail.body_text and LINK in mail.body_text
    page = staff_client.get(f"{QUEUE}/{case.id}").text
    assert "Término suspendido" in page
    assert f"{QUEUE}/{case.id}/responder" in page  # staff may still answer with what they have
    assert (
        f"{QUEUE}/{case.id}/prorrogar" not in page and f"{QUEUE}/{case.id}/informacion" not in page
    )


@pytest.mark.parametrize(
    ("today", "allowed"),
    [(datetime(2026, 3, 16, 17, 0), True), (datetime(2026, 3, 17, 8, 0), False)],
    ids=["working-day-10", "working-day-11"],
)
def test_information_is_asked_only_in_the_first_10_working_days(
    client, auth, staff, clock, outbox, today, allowed
):
    pqrs = make_pqrs(created_at=local(2026, 3, 2, 10, 0))
    clock.set(today)
    staff_client = auth.login(client, staff)
    assert (
        f"{QUEUE}/{pqrs.id}/informacion" in staff_client.get(f"{QUEUE}/{pqrs.id}").text
    ) is allowed
    response = staff_client.post(
        f"{QUEUE}/{pqrs.id}/informacion", data={"informacion": "Envíe la orden médica, por favor."}
    )
    if allowed:
        assert response.status_code == 303 and reload(pqrs).estado == Pqrs.INFORMACION
    else:
        assert response.status_code == 422
        assert "10 días hábiles" in error_of(response.text, "informacion")
        assert reload(pqrs).estado == Pqrs.RADICADA and outbox.all() == []


def test_the_citizen_completing_it_moves_the_due_date_by_the_working_days_waited(db, staff, clock):
    # Asked Wednesday 1 April 2026; Thursday 2 and Friday 3 are Semana Santa, then the weekend:
    # the citizen answers Monday 6, so the term stood still for one working day.
    clock.set(datetime(2026, 3, 25, 9, 0))
    pqrs = make_pqrs()
    assert pqrs.due_on == date(2026, 4, 17)
    clock.set(datetime(2026, 4, 1, 11, 0))
    service.ask_information(pqrs.id, staff, "Envíe la orden médica, por favor.", LINK)
    clock.set(datetime(2026, 4, 6, 16, 0))
    asked = pqrs_core.last_request_id(pqrs)
    citizen = pqrs_core.resume(pqrs.id, "Adjunto la orden médica.", request_id=asked)
    assert citizen.estado == Pqrs.RADICADA and citizen.due_on == date(2026, 4, 20)
    assert reload(pqrs).due_on == date(2026, 4, 20)
    assert [m.tipo for m in reload(pqrs).mensajes] == [
        PqrsMensaje.INFORMACION,
        PqrsMensaje.CIUDADANO,
    ]
    with pytest.raises(service.WrongState):
        pqrs_core.resume(pqrs.id, "Otra vez.", request_id=asked)


# --- extending ------------------------------------------------------------------------------------


def extend_form(dias="3", motivo="Esperamos el concepto técnico de la IPS tratante.") -> dict:
    return {"dias": dias, "motivo": motivo}


def test_extending_moves_the_due_date_from_the_current_one_and_tells_the_citizen(
    client, auth, staff, clock, outbox
):
    clock.set(datetime(2026, 3, 20, 10, 0))  # the due day itself: still in time
    pqrs = make_pqrs(due_on=date(2026, 3, 20), created_at=local(2026, 2, 27, 10, 0))
    staff_client = auth.login(client, staff)
    response = staff_client.post(f"{QUEUE}/{pqrs.id}/prorrogar", data=extend_form("2"))
    assert response.status_code == 303
    done = reload(pqrs)
    assert done.due_on == date(2026, 3, 25)  # Tue 24, Wed 25: Monday 23 is a holiday
    assert done.extended_days == 2
    assert done.extension_reason == "Esperamos el concepto técnico de la IPS tratante."
    (mensaje,) = done.mensajes
    assert mensaje.tipo == PqrsMensaje.PRORROGA and "25/03/2026" in mensaje.texto
    (event,) = events(audit.Action.PQRS_PRORROGAR)
    assert json.loads(event.before)["due_on"] == "2026-03-20"
    assert json.loads(event.after) == {
        "due_on": "2026-03-25",
        "extended_days": 2,
        "extension_reason": "Esperamos el concepto técnico de la IPS tratante.",
    }
    (sms,) = outbox.all("sms")
    assert "25/03/2026" in sms.body_text and pqrs.radicado in sms.body_text
    assert_gsm7(sms)
    (mail,) = outbox.all("email")
    assert "25/03/2026" in mail.body_text and "concepto técnico" in mail.body_text
    assert "2 días hábiles" in mail.body_text
    assert "prorrogado hasta el 25/03/2026" in staff_client.get(QUEUE).text


def test_extensions_add_up_to_the_term_and_no_more(staff_client, db, outbox):
    pqrs = make_pqrs(Pqrs.DOCUMENTOS)  # 10 working days
    url = f"{QUEUE}/{pqrs.id}/prorrogar"
    assert staff_client.post(url, data=extend_form("6")).status_code == 303
    over = staff_client.post(url, data=extend_form("5"))
    assert over.status_code == 422
    assert "no puede pasar de 10 días hábiles" in error_of(over.text, "dias")
    assert "quedan 4" in error_of(over.text, "dias")
    assert 'value="5"' in over.text  # what was typed stays
    assert staff_client.post(url, data=extend_form("4")).status_code == 303
    done = reload(pqrs)
    assert done.extended_days == 10
    assert done.due_on == workdays.add_working_days(pqrs.due_on, 10)  # twice the term in all
    assert url not in staff_client.get(f"{QUEUE}/{pqrs.id}").text  # nothing left to extend
    refused = staff_client.post(url, data=extend_form("1"))
    assert refused.status_code == 422 and "ya se usaron todos" in error_of(refused.text, "dias")
    assert len(events(audit.Action.PQRS_PRORROGAR)) == 2 and len(outbox.all("sms")) == 2


@pytest.mark.parametrize(
    ("dias", "message"),
    [
        ("0", "entre 1 y 15"),
        ("16", "entre 1 y 15"),
        ("", "Escriba el número de días hábiles"),
        ("tres", "Escriba el número de días hábiles"),
        ("-2", "Escriba el número de días hábiles"),
        ("2.5", "Escriba el número de días hábiles"),
    ],
    ids=["zero", "above-term", "empty", "words", "negative", "fraction"],
)
def test_extension_days_must_be_1_to_the_term(staff_client, case, outbox, dias, message):
    response = staff_client.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form(dias))
    assert response.status_code == 422
    assert message in error_of(response.text, "dias")
    assert reload(case).due_on == case.due_on and outbox.all() == [] and events() == []


@pytest.mark.parametrize("motivo", ["", "Tarde.", "x" * 1001], ids=["empty", "short", "long"])
def test_extension_needs_a_reason(staff_client, case, motivo):
    response = staff_client.post(f"{QUEUE}/{case.id}/prorrogar", data=extend_form(motivo=motivo))
    assert response.status_code == 422 and error_of(response.text, "motivo")
    assert reload(case).extended_days == 0


def test_no_extension_once_the_due_date_has_passed(client, auth, staff, clock, outbox):
    pqrs = make_pqrs(due_on=date(2026, 3, 20), created_at=local(2026, 2, 27, 10, 0))
    clock.set(datetime(2026, 3, 21, 0, 30))  # Saturday just after midnight in Bogotá
    staff_client = auth.login(client, staff)
    assert f"{QUEUE}/{pqrs.id}/prorrogar" not in staff_client.get(f"{QUEUE}/{pqrs.id}").text
    response = staff_client.post(f"{QUEUE}/{pqrs.id}/prorrogar", data=extend_form("2"))
    assert response.status_code == 422
    assert "venció el 20/03/2026" in error_of(response.text, "dias")
    assert reload(pqrs).due_on == date(2026, 3, 20) and outbox.all() == []


def test_two_extensions_at_once_do_not_lose_one(db, case, staff, monkeypatch):
    """The second read the due date before the first moved it: it must not overwrite it."""
    stale = Pqrs.get_by_id(case.id)
    service.extend(case.id, staff, 3, "Primera prórroga con su motivo.", LINK)
    real_get = Pqrs.get_by_id
    monkeypatch.setattr(Pqrs, "get_by_id", lambda pk: stale if pk == case.id else real_get(pk))
    with pytest.raises(service.WrongState):
        service.extend(case.id, staff, 3, "Segunda prórroga que leyó tarde.", LINK)
    monkeypatch.undo()
    done = reload(case)
    assert done.extended_days == 3 and len(events(audit.Action.PQRS_PRORROGAR)) == 1


# --- closing ------------------------------------------------------------------------------------


def test_closing_an_answered_case_needs_no_reason(staff_client, staff, case, outbox):
    service.answer(case.id, staff, ANSWER, LINK)
    before = len(outbox.all())
    response = staff_client.post(f"{QUEUE}/{case.id}/cerrar", data={"motivo_cierre": ""})
    assert response.status_code == 303
    done = reload(case)
    assert done.estado == Pqrs.CERRADA and done.closed_at is not None
    assert [m.tipo for m in done.mensajes] == [PqrsMensaje.RESPUESTA, PqrsMensaje.CIERRE]
    (event,) = events(audit.Action.PQRS_CERRAR)
    assert json.loads(event.before) == {"estado": "respondida", "closed_at": None}
    assert json.loads(event.after)["desistimiento"] is False
    assert len(outbox.all()) == before  # the answer was the notice
    page = staff_client.get(f"{QUEUE}/{case.id}").text
    assert "<form" not in page.split("Historial", 1)[1]  # a closed case takes no action


def test_closing_before_the_answer_needs_the_desistimiento_reason(staff_client, case, outbox):
    refused = staff_client.post(f"{QUEUE}/{case.id}/cerrar", data={"motivo_cierre": ""})
    assert refused.status_code == 422
    assert "motivo del desistimiento" in error_of(refused.text, "motivo_cierre")
    assert reload(case).estado == Pqrs.RADICADA and outbox.all() == []
    motivo = "La ciudadana llamó y desistió: ya le asignaron la cita."
    assert (
        staff_client.post(f"{QUEUE}/{case.id}/cerrar", data={"motivo_cierre": motivo}).status_code
        == 303
    )
    assert reload(case).estado == Pqrs.CERRADA
    (event,) = events(audit.Action.PQRS_CERRAR)
    assert json.loads(event.after)["desistimiento"] is True
    (sms,) = outbox.all("sms")
    assert "desistimiento" in sms.body_text
    assert_gsm7(sms)
    (mail,) = outbox.all("email")
    assert motivo in mail.body_text


# --- which action from which state ------------------------------------------------------------------


def act(action: str, pqrs: Pqrs, staff: Account):
    if action == "answer":
        return service.answer(pqrs.id, staff, ANSWER, LINK)
    if action == "ask":
        return service.ask_information(pqrs.id, staff, "Envíe la orden médica.", LINK)
    if action == "extend":
        return service.extend(pqrs.id, staff, 2, "Esperamos a la IPS tratante.", LINK)
    return service.close(pqrs.id, staff, "El ciudadano desistió por teléfono.", LINK)


STATE_RULES = {
    Pqrs.RADICADA: {"answer", "ask", "extend", "close"},
    Pqrs.INFORMACION: {"answer", "close"},
    Pqrs.RESPONDIDA: {"close"},
    Pqrs.CERRADA: set(),
}


@pytest.mark.parametrize("estado", list(STATE_RULES))
@pytest.mark.parametrize("action", ["answer", "ask", "extend", "close"])
def test_each_action_only_from_its_states(db, staff, estado, action):
    pqrs = make_pqrs(estado=estado)
    if action in STATE_RULES[estado]:
        act(action, pqrs, staff)
        assert reload(pqrs).estado != estado or action == "extend"
        assert len(events()) == 1
    else:
        with pytest.raises(service.WrongState):
            act(action, pqrs, staff)
        assert reload(pqrs).estado == estado and events() == []
        assert PqrsMensaje.select().count() == 0 and Message.select().count() == 0


# --- desbloqueo de cuenta -----------------------------------------------------------------------------


@pytest.fixture
def desbloqueo(db):
    user = blocked_hanna(tipo_documento="CC", numero_documento="73123456", email="bloq@example.com")
    pqrs = make_pqrs(
        Pqrs.DESBLOQUEO, tipo_documento="CC", numero_documento="73123456", cuenta_bloqueada=user
    )
    return pqrs, user


def test_a_desbloqueo_case_shows_the_blocked_account(staff_client, desbloqueo):
    pqrs, user = desbloqueo
    text = staff_client.get(f"{QUEUE}/{pqrs.id}").text
    assert "Cuenta de la Plataforma Hanna" in text and "bloq@example.com" in text
    assert "Cédula de ciudadanía 73123456" in text and "Bloqueada" in text
    assert "3 intentos fallidos de las preguntas" in text
    assert f"{QUEUE}/{pqrs.id}/desbloquear" in text
    assert "no es el de la cuenta" not in text
    assert '<option selected value="pqrsf">' in text  # the case itself is the proof offered


def test_unblocking_from_the_case_is_the_h2_unblock_linked_to_the_radicado(
    staff_client, staff, desbloqueo, outbox
):
    pqrs, user = desbloqueo
    data = {"decision": gestion.Unblock.RETRY.value, "verified_by": "pqrsf", "reason": REASON}
    response = staff_client.post(f"{QUEUE}/{pqrs.id}/desbloquear", data=data)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"{QUEUE}/{pqrs.id}"
    account = Account.get_by_id(user.id)
    profile = HannaUser.get_by_id(user.id)
    assert account.status == Account.PENDING and account.failed_logins == 0
    assert profile.quiz_failures == 0 and profile.unblocked_at is not None
    (event,) = events(audit.Action.USUARIO_DESBLOQUEAR)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "usuario", user.id)
    assert json.loads(event.after)["motivo"] == f"PQRSF {pqrs.radicado}: {REASON}"
    (mail,) = outbox.all("email")
    assert mail.recipient == "bloq@example.com" and "/activar/" in mail.body_text
    page = staff_client.get(f"{QUEUE}/{pqrs.id}").text
    assert "Cuenta desbloqueada" in page and "No está bloqueada" in page
    assert f"{QUEUE}/{pqrs.id}/desbloquear" not in page
    assert reload(pqrs).estado == Pqrs.RADICADA  # the case is answered on its own
    again = staff_client.post(f"{QUEUE}/{pqrs.id}/desbloquear", data=data)
    assert again.status_code == 303 and len(events()) == 1


def test_activating_from_the_case_needs_how_identity_was_checked(staff_client, desbloqueo):
    pqrs, user = desbloqueo
    data = {"decision": gestion.Unblock.ACTIVATE.value, "verified_by": "pqrsf", "reason": REASON}
    assert staff_client.post(f"{QUEUE}/{pqrs.id}/desbloquear", data=data).status_code == 303
    assert Account.get_by_id(user.id).status == Account.ACTIVE
    (event,) = events(audit.Action.USUARIO_ACTIVAR)
    assert json.loads(event.after)["verificado_por"] == "pqrsf"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"decision": ""}, "decision"),
        ({"reason": "Corto"}, "reason"),
        ({"verified_by": "x"}, "verified_by"),
        ({"verified_by": ""}, "verified_by"),  # activating says how identity was checked (H2)
    ],
    ids=["no-decision", "short-reason", "bad-verified-by", "activating-without-verified-by"],
)  # fmt: skip
def test_unblocking_with_a_bad_field_is_422(staff_client, desbloqueo, over, field):
    pqrs, user = desbloqueo
    data = {"decision": "activar", "verified_by": "pqrsf", "reason": REASON, **over}
    response = staff_client.post(f"{QUEUE}/{pqrs.id}/desbloquear", data=data)
    assert response.status_code == 422 and f'id="{field}-error"' in response.text
    assert Account.get_by_id(user.id).status == Account.BLOCKED


def test_other_cases_cannot_unblock_and_a_closed_one_no_longer(staff_client, staff, desbloqueo):
    pqrs, user = desbloqueo
    data = {"decision": "reintentar", "verified_by": "pqrsf", "reason": REASON}
    other = make_pqrs(Pqrs.PETICION, cuenta_bloqueada=user)  # not a desbloqueo: names no account
    assert staff_client.post(f"{QUEUE}/{other.id}/desbloquear", data=data).status_code == 404
    service.close(pqrs.id, staff, "El ciudadano desistió de la solicitud.", LINK)
    assert f"{QUEUE}/{pqrs.id}/desbloquear" not in staff_client.get(f"{QUEUE}/{pqrs.id}").text
    assert staff_client.post(f"{QUEUE}/{pqrs.id}/desbloquear", data=data).status_code == 303
    assert Account.get_by_id(user.id).status == Account.BLOCKED


def test_staff_are_warned_when_the_filer_is_not_the_accounts_owner(staff_client, db):
    user = blocked_hanna(tipo_documento="CC", numero_documento="73123456")
    pqrs = make_pqrs(Pqrs.DESBLOQUEO, numero_documento="80999111", cuenta_bloqueada=user)
    assert "no es el de la cuenta" in staff_client.get(f"{QUEUE}/{pqrs.id}").text


# --- CSRF and the audit search ------------------------------------------------------------------------


def test_every_action_needs_the_csrf_token(app, staff_client, case):
    app.config["WTF_CSRF_ENABLED"] = True
    url = f"{QUEUE}/{case.id}"
    for action in ("responder", "informacion", "prorrogar", "cerrar"):
        assert staff_client.post(f"{url}/{action}", data=POSTED).status_code == 400, action
    assert reload(case).estado == Pqrs.RADICADA and events() == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', staff_client.get(url).text)[1]
    response = staff_client.post(
        f"{url}/responder", data={"respuesta": ANSWER, "csrf_token": token}
    )
    assert response.status_code == 303 and reload(case).estado == Pqrs.RESPONDIDA


def test_admins_audit_search_names_the_pqrs_actions(client, auth, staff, case):
    service.extend(case.id, staff, 2, "Esperamos a la IPS tratante.", LINK)
    service.answer(case.id, staff, ANSWER, LINK)
    auth.login(client, make_staff(roles=("admin",)))
    page = client.get("/gestion/auditoria").text
    assert "Responder PQRSF" in page and "Prorrogar PQRSF" in page
    assert f"PQRSF n.º {case.id}" in page


def test_the_case_page_with_every_form_has_no_duplicate_ids(staff_client, desbloqueo):
    pqrs, user = desbloqueo
    pages = [
        staff_client.get(f"{QUEUE}/{pqrs.id}").text,
        staff_client.post(f"{QUEUE}/{pqrs.id}/prorrogar", data=extend_form("0")).text,
    ]
    for page in pages:
        for form in ("responder", "informacion", "prorrogar", "cerrar", "desbloquear"):
            assert f"{QUEUE}/{pqrs.id}/{form}" in page
        ids = re.findall(r'\bid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# --- the citizen's answer to "Pedir información" (G6, Ley 1755 art. 17) -------------------


def _follow(client, pqrs: Pqrs):
    return client.post(
        "/pqrs/consulta",
        data={
            "tipo_documento": pqrs.tipo_documento,
            "numero_documento": pqrs.numero_documento,
            "radicado": pqrs.radicado,
        },
    )


def test_the_citizen_sends_the_information_asked_and_the_term_runs_again(
    app, client, staff, case, clock
):
    service.ask_information(
        case.id,
        staff,
        "Envíe la orden médica firmada, por favor.",
        "http://localhost/pqrs/consulta",
    )
    due = reload(case).due_on
    clock.advance(seconds=4 * 24 * 3600)  # four days waiting (working or not)
    page = _follow(client, case)
    assert "Enviar la información solicitada" in page.text
    ficha = re.search(r'name="ficha" value="([^"]+)"', page.text).group(1)
    sent = client.post(
        "/pqrs/consulta/informacion",
        data={"ficha": ficha, "informacion": "Adjunto la orden firmada por el médico."},
    )
    assert sent.status_code == 200 and "Recibimos la información" in sent.text
    now = reload(case)
    assert now.estado == Pqrs.RADICADA and now.due_on > due
    said = PqrsMensaje.select().where(
        (PqrsMensaje.pqrs == case.id) & (PqrsMensaje.tipo == PqrsMensaje.CIUDADANO)
    )
    assert [m.texto for m in said] == ["Adjunto la orden firmada por el médico."]
    again = client.post(
        "/pqrs/consulta/informacion", data={"ficha": ficha, "informacion": "Otra vez."}
    )
    assert again.status_code == 409 and "Enviar la información solicitada" not in again.text
    assert "Su mensaje no se registró" in again.text
    assert said.count() == 1  # a replayed form changes nothing


@pytest.mark.parametrize("ficha", ["", "falsa", "x" * 300])
def test_a_forged_or_empty_reply_form_is_refused_and_changes_nothing(
    app, client, staff, case, ficha
):
    service.ask_information(
        case.id,
        staff,
        "Envíe la orden médica firmada, por favor.",
        "http://localhost/pqrs/consulta",
    )
    sent = client.post(
        "/pqrs/consulta/informacion", data={"ficha": ficha, "informacion": "Aquí está."}
    )
    assert sent.status_code == 422 and "venció" in sent.text
    assert reload(case).estado == Pqrs.INFORMACION


def test_an_empty_answer_is_refused_next_to_the_field(app, client, staff, case):
    service.ask_information(
        case.id,
        staff,
        "Envíe la orden médica firmada, por favor.",
        "http://localhost/pqrs/consulta",
    )
    ficha = re.search(r'name="ficha" value="([^"]+)"', _follow(client, case).text).group(1)
    sent = client.post("/pqrs/consulta/informacion", data={"ficha": ficha, "informacion": "  "})
    assert sent.status_code == 422 and "Escriba la información que le pidieron." in sent.text
    assert reload(case).estado == Pqrs.INFORMACION
