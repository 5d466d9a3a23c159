"""core.mesa (SPEC I2, I3): case numbers under concurrency, the states, and what the IPS never reads."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

import pytest

import models
from core import mesa, uploads, workdays
from core.colombia import BOGOTA
from models import Attachment, CasoMesa, MensajeMesa
from tests.factories import make_ips_operador, make_staff
from tests.sample_files import pdf_bytes


@pytest.fixture
def desk(db):
    mesa.ensure_default_motivos()
    motivo = mesa.motivos()[0]
    return motivo, mesa.asuntos_of(motivo.id)[0]


@pytest.fixture
def upload_dir(app):
    return app.config["UPLOAD_DIR"]


def open_one(account, desk, upload_dir, key=None, parts=(), text="No cargan los RIPS de enero."):
    motivo, asunto = desk
    key = key or f"k{next(_keys)}"
    return mesa.open_case(account, motivo, asunto, text, key, parts, upload_dir)


_keys = iter(range(10**9))


def test_the_manual_six_motivos_each_with_asuntos(desk):
    assert len(mesa.motivos()) == 6
    assert all(mesa.asuntos_of(m.id) for m in mesa.motivos())
    assert mesa.ensure_default_motivos() == 0  # once


def test_numbers_start_at_the_manuals_case_and_follow_one_another(desk, upload_dir):
    operador = make_ips_operador()
    numbers = [open_one(operador, desk, upload_dir).numero for _ in range(3)]
    assert numbers == [40912, 40913, 40914]


def test_a_double_submit_of_one_form_is_one_case(desk, upload_dir):
    operador = make_ips_operador()
    first = open_one(operador, desk, upload_dir, key="same")
    with pytest.raises(mesa.DuplicateSubmit) as again:
        open_one(operador, desk, upload_dir, key="same")
    assert again.value.caso.id == first.id and CasoMesa.select().count() == 1
    other = make_ips_operador()  # another IPS with that key learns nothing of the first
    with pytest.raises(mesa.StaleForm):
        open_one(other, desk, upload_dir, key="same")


def test_sixteen_concurrent_creations_get_sixteen_sequential_numbers(desk, upload_dir):
    operadores = [make_ips_operador() for _ in range(4)]
    barrier, results = threading.Barrier(16, timeout=30), []
    lock = threading.Lock()
    models.db.close()

    def create(i):
        try:
            barrier.wait()
            caso = open_one(operadores[i % 4], desk, upload_dir, key=f"c{i}")
            with lock:
                results.append(caso.numero)
        except Exception as exc:  # reported below
            with lock:
                results.append(exc)
        finally:
            models.db.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    models.db.connect(reuse_if_open=True)
    assert all(isinstance(r, int) for r in results), results
    assert sorted(results) == list(range(40912, 40928))
    assert CasoMesa.select().count() == 16


def test_a_refused_file_leaves_no_case_no_number_and_no_file(desk, upload_dir):
    operador = make_ips_operador()
    bad = mesa.Upload(io.BytesIO(b"MZ\x90\x00 not a pdf"), "orden.pdf")
    with pytest.raises(uploads.UploadError):
        open_one(operador, desk, upload_dir, parts=[bad])
    assert CasoMesa.select().count() == 0 and Attachment.select().count() == 0
    assert open_one(operador, desk, upload_dir).numero == 40912  # the number was not spent


def test_internal_notes_never_reach_the_ips_side(desk, upload_dir):
    operador, staff = make_ips_operador(), make_staff(roles=("soporte",))
    caso = open_one(operador, desk, upload_dir)
    first = mesa.thread_for_ips(caso)[-1].id
    note = mesa.staff_note(
        caso, staff, "La IPS ya llamó dos veces.",
        [mesa.Upload(io.BytesIO(pdf_bytes()), "interno.pdf")], upload_dir,
    )  # fmt: skip
    assert mesa.poll(operador.id, caso.numero, first) is False  # the poll sees nothing new
    assert [m.id for m in mesa.thread_for_ips(caso)] == [first]
    (interno,) = Attachment.of(mesa.OWNER_MESSAGE, note.id)
    assert mesa.attachment_for_ips(caso.ips_id, caso.numero, interno.id) is None
    assert mesa.attachment_for_staff(caso.id, interno.id) == interno
    assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.NUEVO  # a note changes no state
    assert models.Message.select().count() == 0  # and sends nothing
    reply = mesa.staff_replies(caso, staff, "Ya lo revisamos.", [], upload_dir, link="/x")
    assert mesa.poll(operador.id, caso.numero, first) is True
    assert mesa.thread_for_ips(caso)[-1].id == reply.id
    assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.ESPERA_IPS
    (mail,) = models.Message.select()
    assert mail.recipient == operador.email and "40912" in mail.subject
    assert "La IPS ya llamó" not in mail.body_text


def test_another_ips_never_reads_a_case_or_its_files(desk, upload_dir):
    mine, theirs = make_ips_operador(), make_ips_operador()
    caso = open_one(mine, desk, upload_dir, parts=[mesa.Upload(io.BytesIO(pdf_bytes()), "o.pdf")])
    (adjunto,) = Attachment.select()
    assert mesa.case_of_ips(theirs.ips.ips_id, caso.numero) is None
    assert mesa.attachment_for_ips(theirs.ips.ips_id, caso.numero, adjunto.id) is None
    assert mesa.attachment_for_ips(mine.ips.ips_id, caso.numero, adjunto.id) == adjunto
    assert list(mesa.cases_of_ips(theirs.ips.ips_id)) == []


def test_the_states_close_reopen_and_the_target_in_office_hours(desk, upload_dir, clock):
    clock.set(datetime(2026, 3, 20, 16, 0))  # Friday 16:00 in Bogotá; Monday 23 is a holiday
    operador, staff = make_ips_operador(), make_staff(roles=("soporte",))
    motivo, _ = desk
    caso = open_one(operador, desk, upload_dir)
    expected = workdays.add_working_hours(
        datetime(2026, 3, 20, 21, 0, tzinfo=UTC), motivo.horas_objetivo
    )
    assert caso.due_at == expected.astimezone(UTC).replace(tzinfo=None)
    assert expected == datetime(2026, 3, 26, 16, 0, tzinfo=BOGOTA)  # 24 h: not the holiday
    mesa.staff_replies(caso, staff, "Envíe el archivo.", [], upload_dir, link="/x")
    mesa.ips_writes(caso, operador, "Adjunto el archivo.", [], upload_dir)
    assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.ESPERA_MESA
    mesa.close(caso)
    with pytest.raises(mesa.WrongState):
        mesa.close(caso)
    with pytest.raises(mesa.WrongState):
        mesa.ips_writes(caso, operador, "¿Sigue abierto?", [], upload_dir)
    mesa.reopen(caso)
    now = CasoMesa.get_by_id(caso.id)
    assert now.estado == CasoMesa.ESPERA_MESA and now.closed_at is None
    assert MensajeMesa.select().where(MensajeMesa.caso == caso.id).count() == 3


def test_a_case_staff_send_back_to_the_desk_gets_its_target_again(desk, upload_dir, clock):
    clock.set(datetime(2026, 3, 10, 9, 0))  # a Tuesday
    operador, staff = make_ips_operador(), make_staff(roles=("soporte",))
    caso = open_one(operador, desk, upload_dir)
    mesa.staff_replies(caso, staff, "Lo revisamos.", [], upload_dir, link="/x")
    clock.set(datetime(2026, 3, 17, 9, 0))  # a week later, long past the first target
    mesa.set_state(caso, CasoMesa.ESPERA_MESA)
    now = CasoMesa.get_by_id(caso.id)
    assert now.due_at == mesa.due_at_for(desk[0], datetime(2026, 3, 17, 14, 0))  # 9:00 Bogotá
    assert mesa.due_state(now) is not workdays.DueState.VENCIDO
