"""G3/S1 from staff's side: the queue of authorization requests by due date, approving, rejecting."""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import pytest
from factories import make_eps_afiliado, make_eps_user, make_ips, make_staff, make_user
from flask import url_for

import models
from blueprints.gestion import autorizaciones as views
from blueprints.gestion import autorizaciones_service as service
from core import audit, files, uploads, workdays
from core import clock as core_clock
from core.colombia import BOGOTA
from models import (
    Attachment,
    AuditEvent,
    Autorizacion,
    Message,
    SolicitudAutorizacion,
)
from tests.sample_files import pdf_bytes

BASE = "http://localhost"
LINK = f"{BASE}/genesis/"
QUEUE = "/gestion/autorizaciones"


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


_numbers = itertools.count(1)


def make_solicitud(
    afiliado=None, account=None, upload_dir=None, created_at: datetime | None = None, **over
) -> SolicitudAutorizacion:
    """A request as the office files it (helper B's side): the row, due in 5 working days, its PDF."""
    afiliado = afiliado or make_eps_afiliado()
    account = account or make_eps_user(afiliado)
    created_at = created_at or core_clock.utcnow()
    n = next(_numbers)
    fields = dict(
        numero=f"T{n:04d}-TEST",
        afiliado=afiliado,
        account=account,
        municipio="08001",
        observacion="Consulta de control con pediatría.\nAdjunto la orden médica.",
        form_key=f"form-key-{n}",
        created_at=created_at,
        due_on=workdays.add_working_days(created_at, 5),
    )
    fields.update(over)
    solicitud = SolicitudAutorizacion.create(**fields)
    if upload_dir is not None:
        files.save(
            io.BytesIO(pdf_bytes()),
            "orden médica.pdf",
            uploads.AUTHORIZATION,
            upload_dir,
            service.OWNER_TYPE,
            solicitud.id,
            created_by=account.id,
        )
    return solicitud


def local(*args) -> datetime:
    """A Bogotá wall-clock time as stored (naive UTC)."""
    return datetime(*args, tzinfo=BOGOTA).astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def family(db):
    """A cotizante with a registered account and a beneficiary child without phone or e-mail."""
    head = make_eps_afiliado(
        numero_documento="1012345678",
        primer_nombre="LUIS",
        segundo_nombre="FERNANDO",
        primer_apellido="ORTIZ",
        segundo_apellido="PEÑA",
        celular="3154567120",
        email="luis@example.com",
    )
    child = make_eps_afiliado(
        head,
        tipo_documento="TI",
        numero_documento="1098765432",
        primer_nombre="MARIANA",
        segundo_nombre="",
        primer_apellido="ORTIZ",
        segundo_apellido="CASTRO",
        fecha_nacimiento=date(2013, 10, 5),
        celular="",
        email="",
        parentesco="HIJO",
    )
    account = make_eps_user(head)
    return head, child, account


@pytest.fixture
def pending(family, upload_dir):
    head, child, account = family
    return make_solicitud(child, account, upload_dir)


@pytest.fixture
def ips(db):
    return make_ips(nombre="Clínica Los Almendros", direccion="Avenida 31 # 50-10")


@pytest.fixture
def staff(db):
    return make_staff(roles=("autorizaciones",), email="marcela@cajacopi.example")


@pytest.fixture
def staff_client(client, auth, staff):
    return auth.login(client, staff)


def approve_data(ips_row, **over) -> dict:
    data = {
        "codigo_servicio": "890250",
        "nombre_servicio": "Consulta de primera vez por especialista en pediatría",
        "ips": str(ips_row.id),
    }
    data.update(over)
    return data


# --- who may see it ---------------------------------------------------------------------------


def routes(solicitud_id: int) -> list[tuple[str, str]]:
    return [
        ("get", QUEUE),
        ("get", f"{QUEUE}/{solicitud_id}"),
        ("get", f"{QUEUE}/{solicitud_id}/soporte"),
        ("post", f"{QUEUE}/{solicitud_id}/aprobar"),
        ("post", f"{QUEUE}/{solicitud_id}/rechazar"),
    ]


def test_anonymous_goes_to_the_staff_login_on_every_route(client, pending):
    for method, url in routes(pending.id):
        response = getattr(client, method)(url, data={"motivo": "No cumple los requisitos."})
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/gestion/ingresar", url
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == SolicitudAutorizacion.PENDIENTE


@pytest.mark.parametrize(
    "who", ["admin", "afiliaciones", "convenios", "pqrs", "soporte", "hanna", "eps"]
)
def test_everyone_but_role_autorizaciones_gets_404_on_every_route(
    client, auth, pending, family, ips, who
):
    if who == "hanna":
        account = make_user()
    elif who == "eps":
        account = family[2]  # the very family the request is for: still not staff
    else:
        account = make_staff(roles=(who,))
    auth.login(client, account)
    for method, url in routes(pending.id):
        response = getattr(client, method)(url, data=approve_data(ips))
        assert response.status_code == 404, (who, url)
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == SolicitudAutorizacion.PENDIENTE
    assert AuditEvent.select().count() == 0


def test_staff_without_the_second_factor_is_sent_to_finish_signing_in(client, auth, staff):
    auth.login(client, staff, second_factor=False)
    assert client.get(QUEUE).status_code in (302, 303)


def test_only_role_autorizaciones_has_the_section_in_the_menu(client, auth, staff, db):
    auth.login(client, staff)
    assert "Solicitudes de autorización" in client.get("/gestion/").text
    other = make_staff(roles=("convenios", "admin"))
    auth.login(client, other)
    assert "Solicitudes de autorización" not in client.get("/gestion/").text


# --- the queue ----------------------------------------------------------------------------------


def test_queue_lists_pending_by_due_date_not_by_filing_order(staff_client, family, upload_dir):
    head, child, account = family
    later = make_solicitud(head, account, upload_dir, due_on=date(2031, 3, 10), numero="LATER-1")
    sooner = make_solicitud(child, account, upload_dir, due_on=date(2031, 3, 3), numero="SOON-1")
    tie = make_solicitud(head, account, upload_dir, due_on=date(2031, 3, 3), numero="SOON-2")
    done = make_solicitud(head, account, upload_dir, numero="DONE-1")
    service.reject(done.id, make_staff(roles=("autorizaciones",)), "Orden ilegible, reenvíe.", LINK)
    text = staff_client.get(QUEUE).text
    assert text.index("SOON-1") < text.index("SOON-2") < text.index("LATER-1")
    assert "DONE-1" not in text
    assert "Pendientes (3)" in text and "Rechazadas (1)" in text
    assert later.id < sooner.id < tie.id  # filed in this order, shown by due date


def test_queue_row_shows_number_date_member_municipio_due_and_state(
    staff_client, family, upload_dir
):
    head, child, account = family
    make_solicitud(
        child, account, upload_dir, created_at=local(2031, 3, 4, 15, 7), municipio="08758"
    )
    text = staff_client.get(QUEUE).text
    assert "04/03/2031 15:07" in text  # Bogotá time, not the stored UTC (20:07)
    assert "TI 1098765432" in text and "Mariana Ortiz Castro" in text
    assert "SOLEDAD (ATLÁNTICO)" in text
    assert "11/03/2031" in text  # 5 working days after Tue 4 March 2031
    assert "Pendiente" in text and "A tiempo" in text


def test_queue_filters_by_state_and_by_the_members_or_cotizantes_document(
    staff_client, family, upload_dir, staff
):
    head, child, account = family
    mine = make_solicitud(child, account, upload_dir, numero="MINE-1")
    other = make_eps_afiliado(numero_documento="55667788")
    make_solicitud(other, None, upload_dir, numero="OTHER-1")
    by_child = staff_client.get(f"{QUEUE}?documento=1.098.765.432").text
    assert "MINE-1" in by_child and "OTHER-1" not in by_child
    by_head = staff_client.get(f"{QUEUE}?documento=1012345678").text
    assert "MINE-1" in by_head and "OTHER-1" not in by_head  # the cotizante's whole núcleo
    service.reject(mine.id, staff, "Orden ilegible, reenvíe.", LINK)
    assert "MINE-1" not in staff_client.get(QUEUE).text
    rejected = staff_client.get(f"{QUEUE}?estado=RECHAZADA").text
    assert "MINE-1" in rejected and "OTHER-1" not in rejected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("estado=BORRADA", "estado"),
        ("documento=" + "1" * 21, "documento"),
        ("documento=%27%20OR%201%3D1", "documento"),
    ],
    ids=["estado", "long-document", "symbols"],
)
def test_queue_with_a_bad_filter_is_422_with_the_message_next_to_it(staff_client, db, query, field):
    response = staff_client.get(f"{QUEUE}?{query}")
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text


def test_queue_document_filter_says_what_is_wrong(staff_client, db):
    response = staff_client.get(f"{QUEUE}?documento=%27%20OR%201%3D1")
    assert "Escriba solo las letras y números del documento." in response.text
    assert 'value="&#39; OR 1=1"' in response.text


def test_queue_with_a_bad_cursor_goes_back_to_page_one(staff_client, db):
    assert staff_client.get(f"{QUEUE}?despues=nada").status_code == 303


def test_queue_pages_with_ver_mas_and_htmx_gets_only_rows(
    staff_client, family, upload_dir, monkeypatch, htmx
):
    head, child, account = family
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n, day in enumerate((3, 4, 5), start=1):
        make_solicitud(head, account, upload_dir, due_on=date(2031, 3, day), numero=f"PAGE-{n}")
    first = staff_client.get(QUEUE)
    assert "PAGE-1" in first.text and "PAGE-2" in first.text and "PAGE-3" not in first.text
    assert "3 resultados" in first.text
    more = re.search(r'href="(/gestion/autorizaciones\?[^"]*despues=[^"]+)"', first.text).group(1)
    more = more.replace("&amp;", "&")
    rest = staff_client.get(more)
    assert "PAGE-3" in rest.text and "PAGE-1" not in rest.text and "Ver más" not in rest.text
    rows = staff_client.get(more, headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert "PAGE-3" in rows.text
    assert "HX-Request" in rows.headers["Vary"]


# --- the request ----------------------------------------------------------------------------------


def test_detail_shows_member_data_observacion_file_and_history(staff_client, pending, family, ips):
    head, child, account = family
    Autorizacion.create(
        numero="AUT-OLD-1",
        afiliado=child,
        codigo_servicio="890201",
        nombre_servicio="Consulta de primera vez por medicina general",
        fecha=date(2025, 9, 3),
        estado="APROBADA",
        ips=ips,
    )
    text = staff_client.get(f"{QUEUE}/{pending.id}").text
    assert "Tarjeta de identidad 1098765432" in text and "Mariana Ortiz Castro" in text
    assert "Hijo(a)" in text
    assert "Consulta de control con pediatría.<br>Adjunto la orden médica." in text
    assert "BARRANQUILLA (ATLÁNTICO)" in text
    assert f"{QUEUE}/{pending.id}/soporte" in text and "orden médica.pdf" in text
    assert "AUT-OLD-1" in text and "Clínica Los Almendros" in text
    assert "Radicada por" in text and "Luis Fernando Ortiz Peña" in text
    assert "Aprobar" in text and "Rechazar" in text and "Clínica Los Almendros ·" in text


def test_unknown_request_is_404(staff_client, db):
    for method, url in routes(424242)[1:]:
        assert getattr(staff_client, method)(url).status_code == 404


def test_staff_download_the_support_as_an_attachment_and_it_is_audited(
    staff_client, staff, pending
):
    response = staff_client.get(f"{QUEUE}/{pending.id}/soporte")
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "orden%20m%C3%A9dica.pdf" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    (event,) = AuditEvent.select().where(AuditEvent.action == audit.Action.AUTORIZACION_SOPORTE_VER)
    assert (event.actor_id, event.target_type, event.target_id) == (
        staff.id,
        "solicitud_autorizacion",
        pending.id,
    )
    assert json.loads(event.after)["numero"] == pending.numero


def test_a_missing_file_is_404_and_not_audited(staff_client, pending, upload_dir):
    (attachment,) = Attachment.of(service.OWNER_TYPE, pending.id)
    uploads.remove(attachment.key, upload_dir)
    assert staff_client.get(f"{QUEUE}/{pending.id}/soporte").status_code == 404
    assert AuditEvent.select().count() == 0


# --- approving ------------------------------------------------------------------------------------


def test_approve_issues_the_authorization_audits_and_tells_the_member(
    app, client, auth, staff, pending, family, ips, outbox, clock
):
    clock.set(datetime(2031, 3, 4, 20, 30))  # Bogotá evening: the UTC date is already the 5th
    staff_client = auth.login(client, staff)  # signed in at the frozen time
    response = staff_client.post(
        f"{QUEUE}/{pending.id}/aprobar", data=approve_data(ips, codigo_servicio=" 890250 ")
    )
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == QUEUE
    solicitud = SolicitudAutorizacion.get_by_id(pending.id)
    autorizacion = solicitud.autorizacion
    assert solicitud.estado == SolicitudAutorizacion.APROBADA
    assert solicitud.decided_by_id == staff.id
    assert solicitud.decided_at == local(2031, 3, 4, 20, 30)
    assert re.fullmatch(r"2031-[2-9A-Z]{4}-[2-9A-Z]{4}", autorizacion.numero)
    assert autorizacion.afiliado_id == family[1].id
    assert (autorizacion.codigo_servicio, autorizacion.estado) == ("890250", "APROBADA")
    assert autorizacion.ips_id == ips.id
    assert autorizacion.fecha == date(2031, 3, 4)  # today in Bogotá
    (event,) = AuditEvent.select().where(AuditEvent.action == audit.Action.AUTORIZACION_APROBAR)
    assert event.actor_id == staff.id and event.target_id == pending.id
    assert json.loads(event.before) == {"estado": "PENDIENTE", "autorizacion": None}
    after = json.loads(event.after)
    assert after["estado"] == "APROBADA" and after["autorizacion"] == autorizacion.numero
    # The child has no phone or e-mail: the cotizante who filed it is told.
    (sms,) = outbox.all("sms")
    assert sms.recipient == "3154567120"
    assert pending.numero in sms.body_text and "aprobada" in sms.body_text
    assert "Portal Génesis" in sms.body_text and "pediatría" not in sms.body_text
    (mail,) = outbox.all("email")
    assert mail.recipient == "luis@example.com" and pending.numero in mail.subject
    assert autorizacion.numero in mail.body_text and "Clínica Los Almendros" in mail.body_text
    assert "pediatría" not in mail.body_text and "pediatría" not in mail.body_html
    with app.test_request_context():
        login = BASE + url_for("genesis.login")
    assert login in mail.body_text and f'href="{login}"' in mail.body_html
    followed = staff_client.get(QUEUE).text
    assert f"aprobada con la autorización {autorizacion.numero}" in followed
    assert f'href="{QUEUE}/{pending.id}"' not in followed  # out of the pending queue


def test_approve_tells_the_member_on_their_own_phone_and_skips_a_missing_email(
    staff_client, family, upload_dir, ips, outbox
):
    head, child, account = family
    models.EpsAfiliado.update(email="").where(models.EpsAfiliado.id == head.id).execute()
    models.Account.update(email="").where(models.Account.id == account.id).execute()
    own = make_solicitud(head, account, upload_dir)
    assert staff_client.post(f"{QUEUE}/{own.id}/aprobar", data=approve_data(ips)).status_code == 303
    assert [m.recipient for m in outbox.all("sms")] == ["3154567120"]
    assert outbox.all("email") == []


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"codigo_servicio": ""}, "codigo_servicio", "Este campo es obligatorio."),
        ({"codigo_servicio": "89;0201"}, "codigo_servicio", "letras, números y guiones"),
        ({"codigo_servicio": "8" * 21}, "codigo_servicio", "letras, números y guiones"),
        ({"codigo_servicio": "8902-"}, "codigo_servicio", "letras, números y guiones"),
        ({"nombre_servicio": "  "}, "nombre_servicio", "Este campo es obligatorio."),
        ({"nombre_servicio": "x" * 201}, "nombre_servicio", "200"),
        ({"ips": ""}, "ips", "Elija la IPS de la lista."),
        ({"ips": "999999"}, "ips", "Elija la IPS de la lista."),
        ({"ips": "uno"}, "ips", "Elija la IPS de la lista."),
    ],
    ids=["no-code", "bad-code", "long-code", "dangling-dash", "no-name", "long-name", "no-ips",
         "unknown-ips", "text-ips"],
)  # fmt: skip
def test_approve_with_a_bad_field_is_422_with_the_message_next_to_it(
    staff_client, pending, ips, outbox, over, field, message
):
    data = approve_data(ips, **over)
    response = staff_client.post(f"{QUEUE}/{pending.id}/aprobar", data=data)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', response.text)
    assert error and message in error.group(1)
    for name in ("codigo_servicio", "nombre_servicio"):
        typed = data[name].strip()
        if typed:
            kept = rf'<input [^>]*name="{name}"[^>]*value="{re.escape(typed)}"'
            assert re.search(kept, response.text)  # what was typed stays
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == SolicitudAutorizacion.PENDIENTE
    assert Autorizacion.select().count() == 0 and outbox.all() == []


def test_approve_service_refuses_a_bad_code_without_the_form(db, pending, ips, staff):
    with pytest.raises(service.InvalidChoice) as refused:
        service.approve(pending.id, staff, service.Approval("<b>", "Consulta", ips.id), LINK)
    assert refused.value.field == "codigo"
    assert Autorizacion.select().count() == 0


# --- rejecting ------------------------------------------------------------------------------------


def test_reject_records_the_reason_audits_and_tells_the_member(
    staff_client, staff, pending, outbox
):
    motivo = "La orden médica no se lee: envíe una foto nítida de la orden completa."
    response = staff_client.post(f"{QUEUE}/{pending.id}/rechazar", data={"motivo": motivo})
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == QUEUE
    solicitud = SolicitudAutorizacion.get_by_id(pending.id)
    assert (solicitud.estado, solicitud.motivo_rechazo) == ("RECHAZADA", motivo)
    assert solicitud.decided_by_id == staff.id and solicitud.autorizacion is None
    (event,) = AuditEvent.select().where(AuditEvent.action == audit.Action.AUTORIZACION_RECHAZAR)
    assert json.loads(event.after) == {"estado": "RECHAZADA", "motivo_rechazo": motivo}
    (sms,) = outbox.all("sms")
    assert "negada" in sms.body_text and pending.numero in sms.body_text
    (mail,) = outbox.all("email")
    assert "negada" in mail.subject and "Consulta Autorizaciones" in mail.body_text
    assert "rechazada" in staff_client.get(QUEUE).text


@pytest.mark.parametrize(
    ("motivo", "message"),
    [
        ("", "Escriba el motivo del rechazo."),
        ("   ", "Escriba el motivo del rechazo."),
        ("Borrosa", "El motivo debe tener entre 10 y 1000 caracteres."),
        ("x" * 1001, "El motivo debe tener entre 10 y 1000 caracteres."),
    ],
    ids=["empty", "blank", "short", "long"],
)
def test_reject_needs_a_reason_of_10_to_1000_characters(
    staff_client, pending, outbox, motivo, message
):
    response = staff_client.post(f"{QUEUE}/{pending.id}/rechazar", data={"motivo": motivo})
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="motivo-error"[^>]*>([^<]*)</p>', response.text)
    assert error and message in error.group(1)
    if motivo.strip():
        assert re.search(rf">\s*{motivo}</textarea>", response.text)  # the text typed is kept
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == SolicitudAutorizacion.PENDIENTE
    assert outbox.all() == [] and AuditEvent.select().count() == 0


# --- deciding once --------------------------------------------------------------------------------


def test_a_second_decision_is_refused_with_a_message(staff_client, pending, ips, outbox):
    url = f"{QUEUE}/{pending.id}"
    assert staff_client.post(f"{url}/aprobar", data=approve_data(ips)).status_code == 303
    again = staff_client.post(f"{url}/aprobar", data=approve_data(ips))
    assert again.status_code == 303 and urlsplit(again.headers["Location"]).path == url
    assert "ya fue decidida" in staff_client.get(url).text
    late = staff_client.post(f"{url}/rechazar", data={"motivo": "Llegó tarde este rechazo."})
    assert late.status_code == 303
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == "APROBADA"
    assert Autorizacion.select().count() == 1 and AuditEvent.select().count() == 1
    assert len(outbox.all("sms")) == 1 and len(outbox.all("email")) == 1


def test_the_service_refuses_a_decided_request(db, pending, ips, staff):
    service.reject(pending.id, staff, "La orden está vencida.", LINK)
    with pytest.raises(service.AlreadyDecided):
        service.approve(pending.id, staff, service.Approval("890201", "Consulta", ips.id), LINK)
    with pytest.raises(service.AlreadyDecided):
        service.reject(pending.id, staff, "Otra vez el mismo rechazo.", LINK)
    assert Autorizacion.select().count() == 0 and AuditEvent.select().count() == 1


@pytest.mark.parametrize("second", ["approve", "reject"])
def test_two_staff_deciding_at_once_decide_once(app, db, pending, ips, second):
    """Two threads, each with its own connection, race the same request."""
    deciders = [make_staff(roles=("autorizaciones",)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(actor, how):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            if how == "approve":
                approval = service.Approval("890250", "Consulta pediatría", ips.id)
                service.approve(pending.id, actor, approval, LINK)
            else:
                service.reject(pending.id, actor, "La orden no corresponde.", LINK)
            outcomes.append("won")
        except service.AlreadyDecided:
            outcomes.append("already")
        finally:
            models.db.close()

    threads = [
        threading.Thread(target=decide, args=(deciders[0], "approve")),
        threading.Thread(target=decide, args=(deciders[1], second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["already", "won"]
    with models.db.connection_context():
        solicitud = SolicitudAutorizacion.get_by_id(pending.id)
        assert Autorizacion.select().count() == (1 if solicitud.estado == "APROBADA" else 0)
        assert AuditEvent.select().count() == 1
        assert Message.select().count() == 2  # one SMS and one e-mail, of the winner


def test_a_decided_request_shows_how_it_ended_and_no_forms(staff_client, staff, pending, ips):
    service.approve(
        pending.id, staff, service.Approval("890250", "Consulta pediatría", ips.id), LINK
    )
    page = staff_client.get(f"{QUEUE}/{pending.id}").text
    numero = SolicitudAutorizacion.get_by_id(pending.id).autorizacion.numero
    assert f"{numero}: 890250 Consulta pediatría" in page
    assert staff.email in page
    assert "/aprobar" not in page and "/rechazar" not in page


# --- CSRF -------------------------------------------------------------------------------------------


def test_deciding_needs_the_csrf_token(app, staff_client, pending, ips):
    app.config["WTF_CSRF_ENABLED"] = True
    url = f"{QUEUE}/{pending.id}"
    assert staff_client.post(f"{url}/aprobar", data=approve_data(ips)).status_code == 400
    rechazo = {"motivo": "La orden médica no se lee bien."}
    assert staff_client.post(f"{url}/rechazar", data=rechazo).status_code == 400
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == "PENDIENTE"
    token = re.search(r'name="csrf_token" value="([^"]+)"', staff_client.get(url).text).group(1)
    response = staff_client.post(f"{url}/rechazar", data={**rechazo, "csrf_token": token})
    assert response.status_code == 303
    assert SolicitudAutorizacion.get_by_id(pending.id).estado == "RECHAZADA"


# --- the audit search names the actions -----------------------------------------------------------


def test_admins_audit_search_shows_the_decision_in_words(client, auth, staff, pending, ips):
    service.approve(pending.id, staff, service.Approval("890250", "Consulta", ips.id), LINK)
    auth.login(client, make_staff(roles=("admin",)))
    page = client.get("/gestion/auditoria").text
    assert "Aprobar solicitud de autorización" in page
    assert "Solicitud de autorización" in page


# --- the demo data ----------------------------------------------------------------------------------


def demo_rows() -> list[SolicitudAutorizacion]:
    return list(
        SolicitudAutorizacion.select()
        .where(SolicitudAutorizacion.numero.startswith("DEMO-"))
        .order_by(SolicitudAutorizacion.numero)
    )


def test_demo_data_registers_a_family_with_requests_in_every_state_once(
    runner, db, upload_dir, client, auth
):
    from core import eps_demo, genesis, passwords

    assert runner.invoke(args=["demo-data"]).exit_code == 0
    first = [(s.id, s.estado, s.due_on) for s in demo_rows()]
    files_on_disk = sorted(p.name for p in upload_dir.rglob("*") if p.is_file())
    again = runner.invoke(args=["demo-data"])
    assert again.exit_code == 0, again.output
    assert "1000000120 LUIS FERNANDO ORTIZ PEÑA" in again.output
    # Twice makes nothing new: no second request, file or account.
    assert [(s.id, s.estado, s.due_on) for s in demo_rows()] == first
    assert sorted(p.name for p in upload_dir.rglob("*") if p.is_file()) == files_on_disk
    assert models.Account.select().where(models.Account.kind == models.Account.EPS).count() == 1

    account = models.Account.by_login(models.Account.EPS, genesis.login_of("CC", "1000000120"))
    assert account.is_active and not account.must_change_password
    assert passwords.verify_password(account.password_hash, eps_demo.DEMO_PASSWORD)
    assert account.eps.carta_accepted_at is not None and account.eps.privacy_accepted_at
    rosa = models.EpsAfiliado.find("CC", "1000000101")
    assert models.EpsUser.get_or_none(models.EpsUser.afiliado == rosa.id) is None  # for G1

    rows = demo_rows()
    assert len(rows) == 6 and all(s.account_id == account.id for s in rows)
    assert {s.afiliado.numero_documento for s in rows} == {"1000000120", "1000000121"}
    pending = [s for s in rows if s.estado == "PENDIENTE"]
    assert {service.due_of(s.due_on) for s in pending} == set(workdays.DueState)
    (approved,) = [s for s in rows if s.estado == "APROBADA"]
    assert approved.autorizacion.estado == "APROBADA" and approved.decided_by is not None
    (rejected,) = [s for s in rows if s.estado == "RECHAZADA"]
    assert len(rejected.motivo_rechazo) >= service.MOTIVO_MIN
    for s in rows:
        assert s.due_on == workdays.add_working_days(s.created_at, 5)
        assert s.created_at <= core_clock.utcnow()
        (attachment,) = Attachment.of(service.OWNER_TYPE, s.id)
        with uploads.open_stored(attachment.key, upload_dir) as stored:
            head = stored.read()
        assert uploads.sniff(head[: uploads.HEAD], uploads.path_for(attachment.key, upload_dir))
        assert s.numero.encode() in head

    decider = models.Account.by_login(models.Account.STAFF, "autorizaciones@gestion.test")
    auth.login(client, decider)
    queue = client.get(QUEUE).text
    assert all(s.numero in queue for s in pending) and "Vencido" in queue
    download = client.get(f"{QUEUE}/{pending[0].id}/soporte")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")


def test_a_demo_request_whose_file_went_missing_gets_it_back(runner, db, upload_dir):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    first = demo_rows()[0]
    (attachment,) = Attachment.of(service.OWNER_TYPE, first.id)
    uploads.remove(attachment.key, upload_dir)
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    (restored,) = Attachment.of(service.OWNER_TYPE, first.id)
    assert uploads.path_for(restored.key, upload_dir).exists()
