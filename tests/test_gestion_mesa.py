"""S1 for I3: the staff help desk — the queue by target, replies, internal notes, assignment,
states, files, the motivos (admin) and the saved replies."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import threading
from datetime import datetime
from urllib.parse import urlsplit

import pytest

import models
from blueprints.gestion import mesa as views
from blueprints.gestion import mesa_service as service
from core import audit, mesa
from models import (
    AsuntoMesa,
    Attachment,
    AuditEvent,
    CasoMesa,
    MensajeMesa,
    Message,
    MotivoMesa,
    RespuestaGuardada,
)
from tests.factories import (
    make_eps_afiliado,
    make_eps_user,
    make_ips_operador,
    make_staff,
    make_user,
)
from tests.sample_files import pdf_bytes

QUEUE = "/gestion/mesa"
MOTIVOS = "/gestion/mesa/motivos"
RESPUESTAS = "/gestion/mesa/respuestas"
REPLY = "Revisamos el cargue: el archivo de enero quedó validado."
NOTE = "La IPS llamó dos veces; el error viene del validador externo."


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def desk(db):
    mesa.ensure_default_motivos()
    return {m.nombre: m for m in mesa.motivos()}


@pytest.fixture
def staff(db):
    return make_staff(roles=("soporte",), nombre="Carlos Soporte")


@pytest.fixture
def staff_client(client, auth, staff):
    return auth.login(client, staff)


@pytest.fixture
def operador(db):
    return make_ips_operador(nombre="Laura Gómez")


_keys = itertools.count(1)
_upload_dir: list[str] = [""]  # this test's UPLOAD_DIR, for the helpers that call core.mesa


@pytest.fixture(autouse=True)
def _remember_upload_dir(upload_dir):
    _upload_dir[0] = str(upload_dir)


def open_one(operador, desk, motivo="CAPACITACION", text="No cargan los RIPS de enero.", parts=()):
    """A case as the IPS side opens it ("Generar Servicio"), with the motivo's first asunto."""
    chosen = desk[motivo]
    asunto = mesa.asuntos_of(chosen.id)[0]
    return mesa.open_case(
        operador, chosen, asunto, text, f"form-{next(_keys)}", list(parts), _upload_dir[0]
    )


@pytest.fixture
def caso(desk, operador):
    return open_one(operador, desk)


def reload(caso: CasoMesa) -> CasoMesa:
    return CasoMesa.get_by_id(caso.id)


def events(action: str | None = None) -> list[AuditEvent]:
    query = AuditEvent.select().order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(query)


def error_of(text: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{re.escape(field)}-error"[^>]*>([^<]*)</p>', text)
    assert found, f"no error next to {field}"
    return found.group(1)


def seen(client, caso) -> dict:
    """The hidden fields the case page wrote into its reply form."""
    page = client.get(f"{QUEUE}/{caso.id}").text
    form = page[page.index(f'action="/gestion/mesa/{caso.id}/responder"') :]
    return {
        "visto": re.search(r'name="visto" value="(\d+)"', form)[1],
        "estado_visto": re.search(r'name="estado_visto" value="([a-z_]+)"', form)[1],
    }


def reply_data(client, caso, texto=REPLY, estado="espera_ips", **over) -> dict:
    return {**seen(client, caso), "respuesta": texto, "estado_despues": estado, **over}


def pdf(name="informe.pdf", body=b""):
    return (io.BytesIO(pdf_bytes(body)), name)


# --- who may see it -----------------------------------------------------------------------------


def case_routes(caso_id: int, attachment_id: int = 1) -> list[tuple[str, str]]:
    base = f"{QUEUE}/{caso_id}"
    return [
        ("get", base),
        ("get", f"{base}/adjuntos/{attachment_id}"),
        ("post", f"{base}/responder"),
        ("post", f"{base}/nota"),
        ("post", f"{base}/estado"),
        ("post", f"{base}/asignar"),
    ]


def routes(caso_id: int) -> list[tuple[str, str]]:
    return [("get", QUEUE), ("get", RESPUESTAS), ("post", RESPUESTAS), *case_routes(caso_id)]


POSTED = {
    "respuesta": REPLY,
    "estado_despues": "cerrado",
    "nota": NOTE,
    "nuevo_estado": "cerrado",
    "asignado": "0",
    "accion": "nueva",
    "nueva-titulo": "Saludo",
    "nueva-texto": "Buenos días, revisamos su caso.",
}


def test_anonymous_goes_to_the_staff_login_on_every_route(client, caso):
    for method, url in [*routes(caso.id), ("get", MOTIVOS), ("post", MOTIVOS)]:
        response = getattr(client, method)(url, data=POSTED)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/gestion/ingresar", url
    assert reload(caso).estado == CasoMesa.NUEVO


@pytest.mark.parametrize("who", ["pqrs", "admin", "afiliaciones", "hanna", "eps", "ips"])
def test_everyone_but_role_soporte_gets_404_on_every_route(client, auth, caso, desk, who):
    if who == "hanna":
        account = make_user()
    elif who == "eps":
        account = make_eps_user(make_eps_afiliado())
    elif who == "ips":
        account = make_ips_operador()  # even the IPS whose case this is not: none at /gestion
    else:
        account = make_staff(roles=(who,))
    auth.login(client, account)
    for method, url in routes(caso.id):
        assert getattr(client, method)(url, data=POSTED).status_code == 404, (who, url)
    assert reload(caso).estado == CasoMesa.NUEVO and reload(caso).asignado_id is None
    assert events() == [] and Message.select().count() == 0
    assert MensajeMesa.select().count() == 1 and RespuestaGuardada.select().count() == 0


def test_the_opening_ips_gets_no_back_office_page_either(client, auth, caso, operador):
    auth.login(client, operador)
    for method, url in [*routes(caso.id), ("get", MOTIVOS)]:
        assert getattr(client, method)(url, data=POSTED).status_code == 404, url
    assert events() == []


@pytest.mark.parametrize("who", ["soporte", "pqrs", "ips"])
def test_only_staff_admins_configure_the_motivos(client, auth, desk, who):
    account = make_ips_operador() if who == "ips" else make_staff(roles=(who,))
    auth.login(client, account)
    data = {"accion": "motivo_nuevo", "nuevo-nombre": "Convenios", "nuevo-horas": "8"}
    assert client.get(MOTIVOS).status_code == 404
    assert client.post(MOTIVOS, data=data).status_code == 404
    assert MotivoMesa.select().count() == 6 and events() == []


def test_staff_without_the_second_factor_is_sent_to_finish_signing_in(client, auth, staff):
    auth.login(client, staff, second_factor=False)
    assert client.get(QUEUE).status_code in (302, 303)


def test_the_menu_names_the_help_desk_for_soporte_and_the_motivos_for_admins(client, auth, db):
    auth.login(client, make_staff(roles=("soporte",)))
    home = client.get("/gestion/").text
    assert 'href="/gestion/mesa">Mesa de Ayuda IPS</a>' in home
    assert 'href="/gestion/mesa/motivos"' not in home
    auth.login(client, make_staff(roles=("admin",)))
    home = client.get("/gestion/").text
    assert 'href="/gestion/mesa/motivos">Motivos de la Mesa de Ayuda</a>' in home
    assert 'href="/gestion/mesa"' not in home


# --- the queue ----------------------------------------------------------------------------------


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d{5,})</td>", text)]


def test_queue_orders_owed_cases_by_target_and_marks_them_across_a_holiday(
    client, auth, staff, desk, operador, clock
):
    # Friday 20 March 2026; Monday 23 is a holiday (San José). Office: 8-12 and 14-18.
    made = {}
    clock.set(datetime(2026, 3, 20, 17, 0))  # 1 h on Friday, then Tuesday 8:00-11:00
    made["tuesday"] = open_one(operador, desk, "ACCESO AL PORTAL")  # 4 h
    clock.set(datetime(2026, 3, 20, 8, 0))
    made["friday_18"] = open_one(operador, desk, "AUTORIZACIONES")  # 8 h: Friday 18:00
    made["friday_12"] = open_one(operador, desk, "ACCESO AL PORTAL")  # 4 h: Friday 12:00
    clock.set(datetime(2026, 3, 19, 8, 0))
    made["thursday"] = open_one(operador, desk, "ACCESO AL PORTAL")  # Thursday 12:00
    answered = open_one(operador, desk, "ACCESO AL PORTAL")
    mesa.staff_replies(answered, staff, "Ya quedó.", [], _upload_dir[0], link="/x")
    closed = open_one(operador, desk, "ACCESO AL PORTAL")
    mesa.close(closed)
    clock.set(datetime(2026, 3, 20, 17, 30))
    auth.login(client, staff)
    text = client.get(QUEUE).text
    order = [made[k].numero for k in ("thursday", "friday_12", "friday_18", "tuesday")]
    assert numbers_in(text) == order  # by target, not by number (filed in another order)
    assert made["tuesday"].id < made["thursday"].id
    marks = {
        k: re.search(
            rf"<td>{c.numero}</td>.*?<span class=\"tag ([^\"]+)\">([^<]+)</span>", text, re.S
        )
        for k, c in made.items()
    }
    assert {k: (m[1], m[2]) for k, m in marks.items()} == {
        "thursday": ("tag-vencido", "Vencido"),
        "friday_12": ("tag-vencido", "Vencido"),
        "friday_18": ("tag-por-vencer", "Por vencer"),  # half an office hour left
        "tuesday": ("tag-al-dia", "A tiempo"),  # 3.5 office hours left, past the holiday
    }
    assert "24/03/2026 11:00" in text  # the target in Bogotá time, Monday skipped
    assert answered.numero not in numbers_in(text) and closed.numero not in numbers_in(text)
    assert "Por responder (4)" in text and "En espera de la IPS (1)" in text
    assert "Cerrado (1)" in text


def test_queue_row_shows_the_ips_motivo_asunto_bogota_time_state_and_assignee(
    client, auth, staff, desk, operador, clock
):
    clock.set(datetime(2026, 3, 4, 15, 7))
    caso = open_one(operador, desk, "FACTURACION")
    mesa.assign(caso, staff)
    auth.login(client, staff)
    text = client.get(QUEUE).text
    ips = operador.ips.ips
    assert ips.nombre in text and f"NIT {ips.nit[:-1]}-{ips.nit[-1]}" in text
    assert "FACTURACION<br>RADICACION DE CUENTAS" in text
    assert "04/03/2026 15:07" in text  # Bogotá time, not the stored UTC (20:07)
    assert "<td>Nuevo</td>" in text and "<td>Carlos Soporte</td>" in text
    assert f'href="{QUEUE}/{caso.id}">Atender' in text


def test_queue_filters_by_state_motivo_mine_and_number_nit_or_name(staff_client, staff, desk, db):
    caribe = make_ips_operador(nombre="Ana")
    andina = make_ips_operador(nombre="Luis")
    models.Ips.update(nombre="Clínica Andina del Norte").where(
        models.Ips.id == andina.ips.ips_id
    ).execute()
    first = open_one(caribe, desk, "CAPACITACION")
    second = open_one(andina, desk, "REPORTES")
    waiting = open_one(andina, desk, "REPORTES")
    mesa.staff_replies(waiting, staff, "Ya quedó.", [], _upload_dir[0], link="/x")
    mesa.assign(second, staff)
    nit = caribe.ips.ips.nit

    def shown(query: str) -> set[int]:
        response = staff_client.get(f"{QUEUE}?{query}")
        assert response.status_code == 200, query
        return set(numbers_in(response.text))

    assert shown("") == {first.numero, second.numero}
    assert shown("estado=espera_ips") == {waiting.numero}
    assert shown("estado=nuevo") == {first.numero, second.numero}
    assert shown("estado=cerrado") == set()
    assert shown(f"motivo={desk['REPORTES'].id}") == {second.numero}
    assert shown("mios=y") == {second.numero}
    assert shown(f"buscar={first.numero}") == {first.numero}
    assert shown(f"buscar={nit}") == {first.numero}
    dotted = f"{nit[:3]}.{nit[3:6]}.{nit[6:9]}-{nit[9:]}"
    assert shown(f"buscar={dotted}") == {first.numero}  # as printed on an invoice
    assert shown(f"buscar={nit[:-1]}") == {first.numero}  # without the check digit
    assert shown("buscar=andina") == {second.numero}
    assert shown("estado=espera_ips&buscar=andina") == {waiting.numero}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("estado=borrado", "estado"),
        ("motivo=99999", "motivo"),
        ("buscar=" + "a" * 61, "buscar"),
        ("buscar=%25%27%20OR%201%3D1", "buscar"),
        ("buscar=a_b", "buscar"),
    ],
    ids=["estado", "motivo", "long", "symbols", "wildcard"],
)
def test_queue_with_a_bad_filter_is_422_with_the_message_next_to_it(
    staff_client, desk, query, field
):
    response = staff_client.get(f"{QUEUE}?{query}")
    assert response.status_code == 422
    assert error_of(response.text, field)


def test_queue_pages_with_ver_mas_and_htmx_gets_only_rows(
    staff_client, desk, operador, monkeypatch, htmx
):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    made = [open_one(operador, desk) for _ in range(3)]
    first = staff_client.get(QUEUE)
    assert numbers_in(first.text) == [made[0].numero, made[1].numero]
    assert "3 resultados" in first.text
    more = re.search(r'href="(/gestion/mesa\?[^"]*despues=[^"]+)"', first.text)[1]
    rows = staff_client.get(more.replace("&amp;", "&"), headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert numbers_in(rows.text) == [made[2].numero]
    assert "HX-Request" in rows.headers["Vary"]
    assert staff_client.get(f"{QUEUE}?despues=nada").status_code == 303


# --- the case -----------------------------------------------------------------------------------


def test_case_shows_the_request_the_whole_thread_and_marks_internal_notes(
    client, auth, staff, desk, operador, clock
):
    clock.set(datetime(2026, 3, 4, 9, 30))
    caso = open_one(operador, desk, "AUTORIZACIONES", text="No aparece la autorización.\nUrgente.")
    mesa.staff_note(caso, staff, NOTE, [mesa.Upload(*pdf("interno.pdf"))], _upload_dir[0])
    auth.login(client, staff)
    text = client.get(f"{QUEUE}/{caso.id}").text
    ips = operador.ips.ips
    assert (
        f"Caso {caso.numero}" in text
        and f"NIT {ips.nit[:-1]}-{ips.nit[-1]}" in text
        and ips.nombre in text
    )
    assert "Laura Gómez" in text  # who opened it
    assert "04/03/2026 09:30" in text and "AUTORIZACIONES" in text
    assert "AUTORIZACION NO APARECE" in text
    assert "No aparece la autorización.<br>Urgente." in text
    assert (
        "8 horas hábiles" in text and "05/03/2026 09:30" in text
    )  # 6.5 office hours that day, 1.5 the next
    assert "Nota interna (la IPS no la ve)" in text and NOTE in text
    (interno,) = Attachment.select().where(Attachment.owner_type == mesa.OWNER_MESSAGE)
    assert f"{QUEUE}/{caso.id}/adjuntos/{interno.id}" in text and "interno.pdf" in text
    for action in ("responder", "nota", "estado", "asignar"):
        assert f"{QUEUE}/{caso.id}/{action}" in text
    assert text.count("Nota interna (la IPS no la ve)") == 1  # the IPS's own message is not one


def test_unknown_case_is_404_on_every_route(staff_client, desk):
    for method, url in case_routes(424242):
        assert getattr(staff_client, method)(url, data=POSTED).status_code == 404, url


def test_staff_download_a_file_and_it_is_audited_before_it_is_sent(
    staff_client, staff, desk, operador
):
    caso = open_one(operador, desk, parts=[mesa.Upload(*pdf("orden médica.pdf"))])
    other = open_one(make_ips_operador(), desk, parts=[mesa.Upload(*pdf("ajeno.pdf"))])
    mine, theirs = Attachment.select().order_by(Attachment.id)
    response = staff_client.get(f"{QUEUE}/{caso.id}/adjuntos/{mine.id}")
    assert response.status_code == 200 and response.data == pdf_bytes()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    (event,) = events(audit.Action.MESA_ADJUNTO_VER)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "caso_mesa", caso.id)
    assert json.loads(event.after) == {"numero": caso.numero, "archivo_id": mine.id}
    # Another case's file through this case's URL, or an unknown id: 404, nothing audited.
    assert staff_client.get(f"{QUEUE}/{caso.id}/adjuntos/{theirs.id}").status_code == 404
    assert staff_client.get(f"{QUEUE}/{caso.id}/adjuntos/99999").status_code == 404
    assert staff_client.get(f"{QUEUE}/{other.id}/adjuntos/{theirs.id}").status_code == 200
    assert len(events(audit.Action.MESA_ADJUNTO_VER)) == 2


# --- replying -----------------------------------------------------------------------------------


def test_reply_waits_for_the_ips_emails_the_opener_and_is_audited_without_its_text(
    staff_client, staff, caso, operador, outbox
):
    response = staff_client.post(
        f"{QUEUE}/{caso.id}/responder", data=reply_data(staff_client, caso)
    )
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == f"{QUEUE}/{caso.id}"
    done = reload(caso)
    assert done.estado == CasoMesa.ESPERA_IPS and done.closed_at is None
    last = MensajeMesa.select().order_by(MensajeMesa.id.desc()).first()
    assert (last.texto, last.de_mesa, last.interna, last.account_id) == (
        REPLY,
        True,
        False,
        staff.id,
    )
    (mail,) = outbox.all("email")
    assert mail.recipient == operador.email and str(caso.numero) in mail.subject
    assert REPLY in mail.body_text
    assert f"http://localhost/ips/solicitudes/{caso.numero}" in mail.body_text
    assert "En espera de la IPS" in mail.body_text
    (event,) = events(audit.Action.MESA_RESPONDER)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "caso_mesa", caso.id)
    assert json.loads(event.before) == {"estado": "nuevo"}
    assert json.loads(event.after) == {
        "estado": "espera_ips", "numero": caso.numero, "mensaje_id": last.id, "adjuntos": 0,
    }  # fmt: skip
    page = staff_client.get(f"{QUEUE}/{caso.id}").text
    assert "Respuesta enviada a la IPS" in page and REPLY in page


def test_reply_may_close_the_case(staff_client, caso, outbox, clock):
    clock.set(datetime(2026, 3, 4, 10, 0))
    data = reply_data(staff_client, caso, estado="cerrado")
    assert staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data).status_code == 303
    done = reload(caso)
    assert done.estado == CasoMesa.CERRADO and done.closed_at is not None
    (mail,) = outbox.all("email")
    assert "Cerrado" in mail.body_text
    assert json.loads(events(audit.Action.MESA_RESPONDER)[0].after)["estado"] == "cerrado"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"respuesta": ""}, "respuesta"),
        ({"respuesta": "   "}, "respuesta"),
        ({"respuesta": "Ok"}, "respuesta"),
        ({"respuesta": "x" * 2001}, "respuesta"),
        ({"estado_despues": "nuevo"}, "estado_despues"),
    ],
    ids=["empty", "blank", "short", "long", "state"],
)
def test_a_bad_reply_is_422_with_the_message_and_the_text_kept(
    staff_client, caso, outbox, data, field
):
    posted = reply_data(staff_client, caso, texto="Texto que se conserva.", **data)
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=posted)
    assert response.status_code == 422
    assert error_of(response.text, field)
    if field != "respuesta":
        assert "Texto que se conserva." in response.text
    elif data["respuesta"].strip():
        assert data["respuesta"] in response.text
    assert reload(caso).estado == CasoMesa.NUEVO and outbox.all() == [] and events() == []
    assert MensajeMesa.select().count() == 1


def test_a_file_part_where_the_text_belongs_is_refused(staff_client, caso, outbox):
    posted = {**seen(staff_client, caso), "respuesta": pdf(), "estado_despues": "espera_ips"}
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=posted)
    assert response.status_code == 422 and "obligatorio" in error_of(response.text, "respuesta")
    assert MensajeMesa.select().count() == 1 and outbox.all() == []


def test_reply_with_files_records_them_names_them_in_the_email_and_counts_them(
    staff_client, caso, outbox
):
    data = reply_data(staff_client, caso, adjuntos=[pdf("guía.pdf"), pdf("pasos.pdf", b"x")])
    assert staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data).status_code == 303
    reply = MensajeMesa.select().order_by(MensajeMesa.id.desc()).first()
    stored = Attachment.of(mesa.OWNER_MESSAGE, reply.id)
    assert [a.original_name for a in stored] == ["guía.pdf", "pasos.pdf"]
    (mail,) = outbox.all("email")
    assert "guía.pdf" in mail.body_text and "pasos.pdf" in mail.body_text
    assert json.loads(events(audit.Action.MESA_RESPONDER)[0].after)["adjuntos"] == 2
    page = staff_client.get(f"{QUEUE}/{caso.id}").text
    assert all(f"/adjuntos/{a.id}" in page for a in stored)


def test_a_refused_file_saves_nothing_and_keeps_the_text(staff_client, caso, outbox, upload_dir):
    fake = (io.BytesIO(b"MZ\x90\x00 not a pdf"), "orden.pdf")
    data = reply_data(staff_client, caso, adjuntos=[pdf("bueno.pdf"), fake])
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data)
    assert response.status_code == 422
    assert "Solo se aceptan archivos" in error_of(response.text, "adjuntos")
    assert REPLY in response.text  # kept
    assert reload(caso).estado == CasoMesa.NUEVO and MensajeMesa.select().count() == 1
    assert Attachment.select().count() == 0 and not any(upload_dir.rglob("*.*"))
    assert [p for p in upload_dir.rglob("*") if p.is_file()] == []
    assert outbox.all() == [] and events() == []


def test_more_than_five_files_are_refused(staff_client, caso, outbox):
    data = reply_data(staff_client, caso, adjuntos=[pdf(f"{i}.pdf") for i in range(6)])
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data)
    assert response.status_code == 422 and "hasta 5 archivos" in error_of(response.text, "adjuntos")
    assert Attachment.select().count() == 0 and outbox.all() == []


def test_a_body_over_the_limit_is_a_spanish_413_with_the_way_back(staff_client, caso, monkeypatch):
    monkeypatch.setattr(views.mesa_responder, "max_content_length", 4000)
    data = reply_data(staff_client, caso, adjuntos=[pdf("grande.pdf", b"x" * 8000)])
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data)
    assert response.status_code == 413
    assert "demasiado grandes" in response.text and f'href="{QUEUE}/{caso.id}"' in response.text
    assert MensajeMesa.select().count() == 1 and events() == []


def test_a_second_click_sends_one_reply_and_keeps_the_text_with_a_flash(staff_client, caso, outbox):
    data = reply_data(staff_client, caso)
    assert staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data).status_code == 303
    staff_client.get(f"{QUEUE}/{caso.id}")  # the flash of the first is shown
    again = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data)
    assert again.status_code == 409
    assert "cambió mientras tanto" in again.text or "mensaje nuevo" in again.text
    assert again.text.count(REPLY) == 2  # once in the thread, once kept in the form
    assert MensajeMesa.select().where(MensajeMesa.de_mesa == True).count() == 1  # noqa: E712
    assert len(outbox.all("email")) == 1 and len(events(audit.Action.MESA_RESPONDER)) == 1


def test_a_message_that_came_meanwhile_stops_the_reply_until_it_is_read(
    staff_client, caso, operador, outbox
):
    data = reply_data(staff_client, caso)
    mesa.ips_writes(caso, operador, "Adjunto el soporte que faltaba.", [], _upload_dir[0])
    response = staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data)
    assert response.status_code == 409 and "mensaje nuevo" in response.text
    assert "Adjunto el soporte que faltaba." in response.text and REPLY in response.text
    assert outbox.all() == []
    fresh = reply_data(staff_client, caso)  # read the page again: now it goes
    assert staff_client.post(f"{QUEUE}/{caso.id}/responder", data=fresh).status_code == 303
    assert len(outbox.all("email")) == 1


def test_tampered_hidden_fields_never_send_a_reply(staff_client, caso, outbox):
    for bad in ({"visto": "abc"}, {"visto": ""}, {"estado_visto": "borrado"}):
        data = reply_data(staff_client, caso, **bad)
        assert staff_client.post(f"{QUEUE}/{caso.id}/responder", data=data).status_code == 409
    assert outbox.all() == [] and MensajeMesa.select().count() == 1


def test_two_staff_answering_at_once_leave_one_reply_and_a_consistent_state(app, db, caso):
    answerers = [make_staff(roles=("soporte",)) for _ in range(2)]
    first = mesa.thread_for_staff(caso)[-1].id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    models.db.close()

    def answer(actor):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            service.reply(
                CasoMesa.get_by_id(caso.id), actor, f"{REPLY} ({actor.email})", [],
                _upload_dir[0], estado=CasoMesa.ESPERA_IPS, seen_estado=CasoMesa.NUEVO,
                seen_message=first, link="http://localhost/ips/solicitudes/1",
            )  # fmt: skip
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
        assert reload(caso).estado == CasoMesa.ESPERA_IPS
        assert MensajeMesa.select().count() == 2  # the IPS's and the winner's
        assert Message.select().count() == 1 and len(events(audit.Action.MESA_RESPONDER)) == 1


# --- internal notes -----------------------------------------------------------------------------


def test_an_internal_note_changes_nothing_sends_nothing_and_never_reaches_an_email(
    staff_client, staff, caso, outbox
):
    page = seen(staff_client, caso)
    data = {"visto": page["visto"], "nota": NOTE, "adjuntos_nota": [pdf("interno.pdf")]}
    response = staff_client.post(f"{QUEUE}/{caso.id}/nota", data=data)
    assert response.status_code == 303
    assert reload(caso).estado == CasoMesa.NUEVO and outbox.all() == []
    note = MensajeMesa.select().order_by(MensajeMesa.id.desc()).first()
    assert (note.texto, note.interna, note.de_mesa) == (NOTE, True, True)
    (event,) = events(audit.Action.MESA_NOTA)
    assert json.loads(event.after) == {"numero": caso.numero, "mensaje_id": note.id, "adjuntos": 1}
    assert [m.id for m in mesa.thread_for_ips(caso)] == [mesa.thread_for_ips(caso)[0].id]
    # A reply afterwards e-mails the reply only.
    assert (
        staff_client.post(
            f"{QUEUE}/{caso.id}/responder", data=reply_data(staff_client, caso)
        ).status_code
        == 303
    )
    (mail,) = outbox.all("email")
    assert NOTE not in mail.body_text and "interno.pdf" not in mail.body_text
    assert all(NOTE not in m.body_text for m in outbox.all())


def test_a_bad_note_is_422_and_a_double_click_adds_one(staff_client, caso):
    page = seen(staff_client, caso)
    response = staff_client.post(
        f"{QUEUE}/{caso.id}/nota", data={"visto": page["visto"], "nota": "x"}
    )
    assert response.status_code == 422 and error_of(response.text, "nota")
    data = {"visto": page["visto"], "nota": NOTE}
    assert staff_client.post(f"{QUEUE}/{caso.id}/nota", data=data).status_code == 303
    assert staff_client.post(f"{QUEUE}/{caso.id}/nota", data=data).status_code == 409
    assert MensajeMesa.select().where(MensajeMesa.interna == True).count() == 1  # noqa: E712


# --- saved replies in a case --------------------------------------------------------------------


def test_a_saved_reply_is_inserted_without_javascript_and_offered_to_the_script(
    staff_client, staff, caso
):
    texto = "Buenos días. Para cargar la Resolución 2463 siga los pasos del manual adjunto."
    saved = service.add_saved_reply(staff, "Cargue 2463", texto)
    page = staff_client.get(f"{QUEUE}/{caso.id}").text
    assert 'data-insertar="respuesta"' in page and f'data-texto="{texto}"' in page
    assert "Insertar respuesta guardada" in page and ">Usar</button>" in page
    used = staff_client.get(f"{QUEUE}/{caso.id}?respuesta_guardada={saved.id}").text
    area = re.search(r'<textarea[^>]*id="respuesta"[^>]*>(.*?)</textarea>', used, re.S)[1]
    assert area.strip() == texto
    assert f'<option value="{saved.id}" data-texto="{texto}" selected>' in used
    nonsense = staff_client.get(f"{QUEUE}/{caso.id}?respuesta_guardada=x%27")
    assert nonsense.status_code == 200


# --- assigning and states -----------------------------------------------------------------------


def test_assign_to_me_to_a_colleague_and_to_nobody_is_audited(staff_client, staff, caso):
    colleague = make_staff(roles=("soporte",), nombre="Beatriz Mesa")
    outsider = make_staff(roles=("pqrs",))
    url = f"{QUEUE}/{caso.id}/asignar"
    page = staff_client.get(f"{QUEUE}/{caso.id}").text
    assert f'<option value="{staff.id}">A mí (Carlos Soporte)</option>' in page
    assert "Beatriz Mesa" in page and str(outsider.id) not in re.findall(r'value="(\d+)"', page)
    steps = [(staff.id, 0), (colleague.id, staff.id), (0, colleague.id)]
    for to, before in steps:
        response = staff_client.post(url, data={"asignado": str(to), "asignado_visto": str(before)})
        assert response.status_code == 303, to
        assert reload(caso).asignado_id == (to or None)
    rows = events(audit.Action.MESA_ASIGNAR)
    assert [(json.loads(e.before or "{}").get("asignado"), json.loads(e.after)["asignado"])
            for e in rows] == [(None, staff.id), (staff.id, colleague.id), (colleague.id, None)]  # fmt: skip
    refused = staff_client.post(url, data={"asignado": str(outsider.id), "asignado_visto": "0"})
    assert refused.status_code == 422 and reload(caso).asignado_id is None


def test_an_assignment_changed_meanwhile_is_not_overwritten(staff_client, staff, caso):
    colleague = make_staff(roles=("soporte",), nombre="Beatriz Mesa")
    mesa.assign(caso, colleague)  # after the page was shown (asignado_visto 0)
    response = staff_client.post(
        f"{QUEUE}/{caso.id}/asignar", data={"asignado": str(staff.id), "asignado_visto": "0"}
    )
    assert response.status_code == 303
    assert reload(caso).asignado_id == colleague.id and events() == []
    assert "ahora lo tiene Beatriz Mesa" in staff_client.get(f"{QUEUE}/{caso.id}").text


def test_state_change_is_audited_before_to_after_and_a_second_click_does_nothing(
    staff_client, staff, caso, outbox
):
    url = f"{QUEUE}/{caso.id}/estado"
    data = {"nuevo_estado": "cerrado", "estado_visto": "nuevo"}
    assert staff_client.post(url, data=data).status_code == 303
    assert reload(caso).estado == CasoMesa.CERRADO and reload(caso).closed_at is not None
    assert staff_client.post(url, data=data).status_code == 303
    assert "ya estaba cerrado" in staff_client.get(f"{QUEUE}/{caso.id}").text
    (event,) = events(audit.Action.MESA_ESTADO)
    assert (event.actor_id, event.target_type, event.target_id) == (staff.id, "caso_mesa", caso.id)
    assert json.loads(event.before) == {"estado": "nuevo"}
    assert json.loads(event.after) == {"estado": "cerrado", "numero": caso.numero}
    back = {"nuevo_estado": "espera_mesa", "estado_visto": "cerrado"}
    assert staff_client.post(url, data=back).status_code == 303
    assert reload(caso).estado == CasoMesa.ESPERA_MESA and reload(caso).closed_at is None
    assert outbox.all() == []


def test_a_state_changed_meanwhile_is_not_overwritten(staff_client, caso):
    mesa.close(caso)  # the IPS closed it after the page was shown
    data = {"nuevo_estado": "espera_ips", "estado_visto": "nuevo"}
    assert staff_client.post(f"{QUEUE}/{caso.id}/estado", data=data).status_code == 303
    assert reload(caso).estado == CasoMesa.CERRADO and events() == []
    assert "cambió mientras tanto (ahora: cerrado)" in staff_client.get(f"{QUEUE}/{caso.id}").text


def test_a_bad_state_is_422(staff_client, caso):
    for value in ("borrado", "nuevo"):  # unknown, or the one it already has
        data = {"nuevo_estado": value, "estado_visto": "nuevo"}
        response = staff_client.post(f"{QUEUE}/{caso.id}/estado", data=data)
        assert response.status_code == 422 and error_of(response.text, "nuevo_estado")
    assert events() == []


def test_every_action_needs_the_csrf_token(app, staff_client, caso, outbox):
    app.config["WTF_CSRF_ENABLED"] = True
    url = f"{QUEUE}/{caso.id}"
    for action in ("responder", "nota", "estado", "asignar"):
        assert staff_client.post(f"{url}/{action}", data=POSTED).status_code == 400, action
    assert staff_client.post(RESPUESTAS, data=POSTED).status_code == 400
    assert reload(caso).estado == CasoMesa.NUEVO and events() == [] and outbox.all() == []
    page = staff_client.get(url).text
    data = reply_data(staff_client, caso)
    data["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert staff_client.post(f"{url}/responder", data=data).status_code == 303


# --- motivos (admin) ----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, auth, db):
    admin = make_staff(roles=("admin",), nombre="Admin Mesa")
    auth.login(client, admin)
    return client


def test_the_motivos_page_makes_the_manuals_six_when_there_are_none(admin_client):
    text = admin_client.get(MOTIVOS).text
    assert MotivoMesa.select().count() == 6
    for nombre, _horas, asuntos in mesa.DEFAULT_MOTIVOS:
        assert nombre in text and asuntos[0] in text
    assert 'value="24"' in text and 'value="4"' in text


def test_admin_adds_a_motivo_with_an_asunto_and_the_ips_is_offered_it(admin_client):
    admin_client.get(MOTIVOS)
    data = {
        "accion": "motivo_nuevo",
        "nuevo-nombre": "  convenios   docentes ",
        "nuevo-horas": "12",
    }
    assert admin_client.post(MOTIVOS, data=data).status_code == 303
    motivo = MotivoMesa.get(MotivoMesa.nombre == "CONVENIOS DOCENTES")
    assert motivo.horas_objetivo == 12 and motivo.activo and motivo.orden == 6
    assert mesa.asuntos_of(motivo.id) == []
    data = {"accion": "asunto_nuevo", "id": str(motivo.id), f"n{motivo.id}-nombre": "Prácticas"}
    assert admin_client.post(MOTIVOS, data=data).status_code == 303
    assert [a.nombre for a in mesa.asuntos_of(motivo.id)] == ["PRÁCTICAS"]
    assert motivo.id in [m.id for m in mesa.motivos()]
    rows = events(audit.Action.MESA_MOTIVO)
    assert [e.target_type for e in rows] == ["motivo_mesa", "motivo_mesa"]
    assert {e.target_id for e in rows} == {motivo.id}
    assert json.loads(rows[0].after) == {"nombre": "CONVENIOS DOCENTES", "horas_objetivo": 12,
                                         "activo": True}  # fmt: skip


def test_admin_retimes_renames_and_deactivates_a_motivo_which_cases_keep(
    admin_client, desk, operador
):
    motivo = desk["REPORTES"]
    caso = open_one(operador, desk, "REPORTES")
    data = {
        "accion": "motivo",
        "id": str(motivo.id),
        f"m{motivo.id}-nombre": "Reportes e informes",
        f"m{motivo.id}-horas": "40",
    }  # fmt: skip  (activo unticked)
    assert admin_client.post(MOTIVOS, data=data).status_code == 303
    fresh = MotivoMesa.get_by_id(motivo.id)
    assert (fresh.nombre, fresh.horas_objetivo, fresh.activo) == ("REPORTES E INFORMES", 40, False)
    assert motivo.id not in [m.id for m in mesa.motivos()]  # not offered any more
    assert mesa.asuntos_of(motivo.id) == []
    assert reload(caso).motivo_id == motivo.id  # the case keeps it
    (event,) = events(audit.Action.MESA_MOTIVO)
    assert json.loads(event.before) == {"nombre": "REPORTES", "horas_objetivo": 24, "activo": True}
    assert json.loads(event.after) == {"nombre": "REPORTES E INFORMES", "horas_objetivo": 40,
                                       "activo": False}  # fmt: skip
    data[f"m{motivo.id}-activo"] = "y"
    assert admin_client.post(MOTIVOS, data=data).status_code == 303
    assert motivo.id in [m.id for m in mesa.motivos()]


def test_admin_renames_and_deactivates_an_asunto(admin_client, desk):
    motivo = desk["FACTURACION"]
    asunto = mesa.asuntos_of(motivo.id)[1]
    data = {
        "accion": "asunto",
        "id": str(asunto.id),
        f"a{asunto.id}-nombre": "Glosas y devoluciones",
    }
    assert admin_client.post(MOTIVOS, data=data).status_code == 303
    fresh = AsuntoMesa.get_by_id(asunto.id)
    assert (fresh.nombre, fresh.activo) == ("GLOSAS Y DEVOLUCIONES", False)
    assert asunto.id not in [a.id for a in mesa.asuntos_of(motivo.id)]
    assert AsuntoMesa.select().where(AsuntoMesa.id == asunto.id).exists()  # never deleted
    (event,) = events(audit.Action.MESA_MOTIVO)
    assert event.target_id == motivo.id
    assert json.loads(event.after) == {"asunto": "GLOSAS Y DEVOLUCIONES", "asunto_activo": False}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"nuevo-nombre": "", "nuevo-horas": "8"}, "nuevo-nombre", "obligatorio"),
        ({"nuevo-nombre": "AB", "nuevo-horas": "8"}, "nuevo-nombre", "entre 3 y 80"),
        ({"nuevo-nombre": "X" * 81, "nuevo-horas": "8"}, "nuevo-nombre", "entre 3 y 80"),
        ({"nuevo-nombre": "capacitacion", "nuevo-horas": "8"}, "nuevo-nombre", "Ya existe"),
        ({"nuevo-nombre": "Convenios", "nuevo-horas": "0"}, "nuevo-horas", "entre 1 y 240"),
        ({"nuevo-nombre": "Convenios", "nuevo-horas": "241"}, "nuevo-horas", "entre 1 y 240"),
        ({"nuevo-nombre": "Convenios", "nuevo-horas": "8.5"}, "nuevo-horas", "entre 1 y 240"),
        ({"nuevo-nombre": "Convenios", "nuevo-horas": ""}, "nuevo-horas", "entre 1 y 240"),
    ],
    ids=["empty", "short", "long", "taken", "zero", "too-many", "decimal", "no-hours"],
)
def test_a_bad_motivo_is_422_in_spanish_with_the_input_kept(admin_client, desk, data, field, words):
    response = admin_client.post(MOTIVOS, data={"accion": "motivo_nuevo", **data})
    assert response.status_code == 422
    assert words in error_of(response.text, field)
    for value in data.values():
        if value and len(value) < 20:
            assert f'value="{value.lower()}"' in response.text.lower()  # the name upper-cased
    assert MotivoMesa.select().count() == 6 and events() == []


def test_an_asunto_name_twice_in_one_motivo_is_refused(admin_client, desk):
    motivo = desk["CAPACITACION"]
    data = {"accion": "asunto_nuevo", "id": str(motivo.id),
            f"n{motivo.id}-nombre": "uso del portal genesis"}  # fmt: skip
    response = admin_client.post(MOTIVOS, data=data)
    assert response.status_code == 422
    assert "ya tiene un asunto" in error_of(response.text, f"n{motivo.id}-nombre")
    other = desk["REPORTES"]  # the same name under another motivo is fine
    data = {
        "accion": "asunto_nuevo",
        "id": str(other.id),
        f"n{other.id}-nombre": "Uso del portal genesis",
    }
    assert admin_client.post(MOTIVOS, data=data).status_code == 303


def test_an_unknown_motivo_or_asunto_is_404_and_a_bad_action_400(admin_client, desk):
    assert admin_client.post(MOTIVOS, data={"accion": "motivo", "id": "9999", "m9999-nombre": "Nuevo",
                                            "m9999-horas": "5"}).status_code == 404  # fmt: skip
    assert admin_client.post(MOTIVOS, data={"accion": "asunto", "id": "9999",
                                            "a9999-nombre": "Nuevo"}).status_code == 404  # fmt: skip
    assert admin_client.post(MOTIVOS, data={"accion": "borrar", "id": "1"}).status_code == 400
    assert admin_client.post(MOTIVOS, data={"accion": "motivo", "id": "x"}).status_code == 400
    assert events() == []


# --- saved replies (the page) ---------------------------------------------------------------------


def test_saved_replies_are_added_edited_and_deleted_audited_without_their_text(staff_client, staff):
    texto = "Buenos días. Su caso quedó resuelto; cualquier duda escríbanos aquí."
    data = {"accion": "nueva", "nueva-titulo": " Caso  resuelto ", "nueva-texto": texto}
    assert staff_client.post(RESPUESTAS, data=data).status_code == 303
    saved = RespuestaGuardada.get()
    assert (saved.titulo, saved.texto, saved.created_by_id) == ("Caso resuelto", texto, staff.id)
    page = staff_client.get(RESPUESTAS).text
    assert "Caso resuelto" in page and texto in page
    edit = {"accion": "editar", "id": str(saved.id), f"r{saved.id}-titulo": "Cierre",
            f"r{saved.id}-texto": texto + " Gracias."}  # fmt: skip
    assert staff_client.post(RESPUESTAS, data=edit).status_code == 303
    assert RespuestaGuardada.get_by_id(saved.id).titulo == "Cierre"
    assert (
        staff_client.post(RESPUESTAS, data={"accion": "borrar", "id": str(saved.id)}).status_code
        == 303
    )
    assert RespuestaGuardada.select().count() == 0
    rows = events(audit.Action.MESA_RESPUESTA_GUARDADA)
    assert len(rows) == 3 and {e.target_type for e in rows} == {"respuesta_guardada"}
    assert all(texto not in (e.before or "") + (e.after or "") for e in rows)
    again = staff_client.post(RESPUESTAS, data={"accion": "borrar", "id": str(saved.id)})
    assert again.status_code == 303 and len(events(audit.Action.MESA_RESPUESTA_GUARDADA)) == 3


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"nueva-titulo": "", "nueva-texto": "Texto suficientemente largo."},
            "nueva-titulo",
            "obligatorio",
        ),
        (
            {"nueva-titulo": "Ya", "nueva-texto": "Texto suficientemente largo."},
            "nueva-titulo",
            "entre 3 y 80",
        ),
        (
            {"nueva-titulo": "saludo", "nueva-texto": "Texto suficientemente largo."},
            "nueva-titulo",
            "Ya hay",
        ),
        ({"nueva-titulo": "Corta", "nueva-texto": "Hola."}, "nueva-texto", "entre 10 y 2000"),
        ({"nueva-titulo": "Larga", "nueva-texto": "x" * 2001}, "nueva-texto", "entre 10 y 2000"),
    ],
    ids=["no-title", "short-title", "taken", "short-text", "long-text"],
)
def test_a_bad_saved_reply_is_422_in_spanish(staff_client, staff, data, field, words):
    service.add_saved_reply(staff, "Saludo", "Buenos días, revisamos su caso.")
    response = staff_client.post(RESPUESTAS, data={"accion": "nueva", **data})
    assert response.status_code == 422 and words in error_of(response.text, field)
    assert RespuestaGuardada.select().count() == 1


# --- nothing personal in the audit or the log -------------------------------------------------------


def test_no_message_text_or_personal_data_reaches_the_audit_rows_or_the_log(
    staff_client, staff, caso, operador, outbox, caplog
):
    caplog.set_level(logging.DEBUG)
    staff_client.post(f"{QUEUE}/{caso.id}/responder", data=reply_data(staff_client, caso))
    page = seen(staff_client, caso)
    staff_client.post(f"{QUEUE}/{caso.id}/nota", data={"visto": page["visto"], "nota": NOTE})
    staff_client.post(
        f"{QUEUE}/{caso.id}/asignar", data={"asignado": str(staff.id), "asignado_visto": "0"}
    )
    staff_client.post(f"{QUEUE}/{caso.id}/estado", data={"nuevo_estado": "cerrado",
                                                          "estado_visto": "espera_ips"})  # fmt: skip
    assert len(events()) == 4 and len(outbox.all("email")) == 1
    ips = operador.ips.ips
    secrets = [
        REPLY,
        NOTE,
        "No cargan los RIPS",
        operador.email,
        ips.nombre,
        ips.nit,
        "Laura Gómez",
    ]
    stored = " ".join((e.before or "") + (e.after or "") for e in events())
    for secret in secrets:
        assert secret not in stored, secret
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("peewee"))
    for secret in secrets:
        assert secret not in logged, secret


# --- odd requests -------------------------------------------------------------------------------


def test_an_htmx_reply_is_told_where_to_go(staff_client, caso, htmx):
    response = staff_client.post(
        f"{QUEUE}/{caso.id}/responder", data=reply_data(staff_client, caso), headers=htmx
    )
    assert response.status_code == 204
    assert urlsplit(response.headers["HX-Redirect"]).path == f"{QUEUE}/{caso.id}"


ODD = ["9" * 40, "-1", "1e3", "０", "\u202e1", " ", "x" * 5000]


@pytest.mark.parametrize("value", ODD, ids=range(len(ODD)))
def test_odd_values_in_every_field_never_give_a_5xx(client, auth, staff, caso, value):
    auth.login(client, make_staff(roles=("soporte", "admin")))
    fields = {
        k: value
        for k in (
            "respuesta", "estado_despues", "visto", "estado_visto", "nota", "nuevo_estado",
            "asignado", "asignado_visto", "accion", "id", "nueva-titulo", "nueva-texto",
        )
    }  # fmt: skip
    for url in (f"{QUEUE}/{caso.id}/{a}" for a in ("responder", "nota", "estado", "asignar")):
        assert client.post(url, data=fields).status_code < 500, url
    for accion in ("motivo", "asunto", "asunto_nuevo", "motivo_nuevo", "nueva", "editar", "borrar"):
        data = {**fields, "accion": accion, "id": "1", "m1-horas": value, "m1-nombre": value,
                "a1-nombre": value, "n1-nombre": value, "r1-titulo": value}  # fmt: skip
        assert client.post(MOTIVOS, data=data).status_code < 500, accion
        assert client.post(RESPUESTAS, data=data).status_code < 500, accion
    query = {"estado": value, "motivo": value, "mios": value, "buscar": value}
    assert client.get(QUEUE, query_string=query).status_code < 500
    assert (
        client.get(f"{QUEUE}/{caso.id}", query_string={"respuesta_guardada": value}).status_code
        == 200
    )
    assert client.get(f"{QUEUE}/{'9' * 30}").status_code == 404
    assert reload(caso).estado == CasoMesa.NUEVO
