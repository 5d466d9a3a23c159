"""H4/S1 from staff's side: the queue of application requests, approving and rejecting."""

from __future__ import annotations

import io
import json
import re
import threading
from urllib.parse import urlsplit

import pytest
from factories import make_staff, make_user

import models
from blueprints.aplicaciones import service
from blueprints.gestion import solicitudes as views
from core import audit, uploads
from models import Acceso, AccesoSede, AuditEvent, Entidad, Message, Sede, SolicitudAplicacion
from tests.sample_files import pdf_bytes

BASE = "http://localhost"


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


_keys = iter(range(10**6))


def make_request(account=None, upload_dir=None, **over) -> SolicitudAplicacion:
    """A pending CONVENIOS request with its PDF, made through the service."""
    account = account or make_user()
    data = service.RequestData(
        nit=over.pop("nit", "8901020441"),
        entidad_nombre=over.pop("entidad_nombre", "Gimnasio Cuerpo Sano S.A.S."),
        sedes="Sede Centro",
        telefono="6053714545",
    )
    key = f"{next(_keys):043d}"
    return service.submit_request(
        account,
        service.Application.CONVENIOS,
        data,
        key,
        io.BytesIO(pdf_bytes()),
        "soporte.pdf",
        upload_dir,
    )


@pytest.fixture
def entidad(db):
    entidad = Entidad.create(nit="8901020441", nombre="Gimnasio Cuerpo Sano S.A.S.")
    Sede.create(entidad=entidad, codigo="01", nombre="Sede Centro")
    Sede.create(entidad=entidad, codigo="02", nombre="Sede Norte")
    Sede.create(entidad=entidad, codigo="03", nombre="Sede Cerrada", activa=False)
    return entidad


@pytest.fixture
def user(db):
    return make_user(primer_nombre="MARTA", email="marta@example.com")


@pytest.fixture
def pending(user, upload_dir, entidad):
    return make_request(user, upload_dir)


@pytest.fixture
def staff(db):
    return make_staff(roles=("convenios",), email="laura@cajacopi.example")


@pytest.fixture
def staff_client(client, auth, staff):
    return auth.login(client, staff)


def sede_ids(entidad, *names):
    return [s.id for s in Sede.select().where((Sede.entidad == entidad) & Sede.nombre.in_(names))]


# --- who may see the queue -----------------------------------------------------------------


def test_anonymous_goes_to_the_staff_login(client):
    response = client.get("/gestion/solicitudes")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/gestion/ingresar"


def test_staff_of_another_role_get_404(client, auth, db):
    auth.login(client, make_staff(roles=("afiliaciones",)))
    assert client.get("/gestion/solicitudes").status_code == 404
    assert client.get("/gestion/solicitudes/1").status_code == 404


def test_a_hanna_user_gets_404(client, auth, user, pending):
    auth.login(client, user)
    assert client.get("/gestion/solicitudes").status_code == 404
    assert client.get(f"/gestion/solicitudes/{pending.id}").status_code == 404
    response = client.post(
        f"/gestion/solicitudes/{pending.id}/rechazar", data={"motivo": "No cumple requisitos."}
    )
    assert response.status_code == 404
    assert SolicitudAplicacion.get_by_id(pending.id).estado == SolicitudAplicacion.PENDIENTE


def test_staff_without_the_second_factor_is_sent_to_sign_in(client, auth, staff):
    auth.login(client, staff, second_factor=False)
    response = client.get("/gestion/solicitudes")
    assert response.status_code in (302, 303)


# --- the queue ----------------------------------------------------------------------------------


def test_queue_lists_pending_oldest_first_with_counts(staff_client, upload_dir, entidad, clock):
    first = make_request(upload_dir=upload_dir, entidad_nombre="Primera Entidad")
    clock.advance(minutes=5)
    second = make_request(upload_dir=upload_dir, entidad_nombre="Segunda Entidad")
    decided = make_request(upload_dir=upload_dir, entidad_nombre="Ya Decidida")
    service.reject(decided.id, make_staff(roles=("convenios",)), "No cumple requisitos.", BASE)
    page = staff_client.get("/gestion/solicitudes")
    assert page.status_code == 200
    text = page.text
    assert text.index("Primera Entidad") < text.index("Segunda Entidad")
    assert "Ya Decidida" not in text
    assert "Pendientes (2)" in text and "Rechazadas (1)" in text and "Aprobadas (0)" in text
    assert (
        f"/gestion/solicitudes/{first.id}" in text and f"/gestion/solicitudes/{second.id}" in text
    )
    rejected = staff_client.get("/gestion/solicitudes?estado=rechazada")
    assert "Ya Decidida" in rejected.text and "Primera Entidad" not in rejected.text


def test_queue_search_by_nit_prefix_and_by_name(staff_client, upload_dir, db):
    make_request(upload_dir=upload_dir, nit="8901020441", entidad_nombre="Gimnasio Uno")
    make_request(upload_dir=upload_dir, nit="8600697950", entidad_nombre="Panadería La Espiga")
    by_nit = staff_client.get("/gestion/solicitudes?q=890.102")
    assert "Gimnasio Uno" in by_nit.text and "Panadería" not in by_nit.text
    by_name = staff_client.get("/gestion/solicitudes?q=espiga")
    assert "Panadería La Espiga" in by_name.text and "Gimnasio Uno" not in by_name.text
    wildcard = staff_client.get("/gestion/solicitudes?q=%25")
    assert "Gimnasio Uno" not in wildcard.text  # % is a character, not a wildcard


def test_queue_pages_with_ver_mas(staff_client, upload_dir, db, monkeypatch, clock, htmx):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for name in ("Entidad A", "Entidad B", "Entidad C"):
        make_request(upload_dir=upload_dir, entidad_nombre=name)
        clock.advance(minutes=1)
    first = staff_client.get("/gestion/solicitudes")
    assert "Entidad A" in first.text and "Entidad B" in first.text
    assert "Entidad C" not in first.text
    assert "3 resultados" in first.text
    more = re.search(r'href="(/gestion/solicitudes\?[^"]*despues=[^"]+)"', first.text).group(1)
    more = more.replace("&amp;", "&")
    rest = staff_client.get(more)
    assert "Entidad C" in rest.text and "Entidad A" not in rest.text
    assert "Ver más" not in rest.text
    rows = staff_client.get(more, headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert "Entidad C" in rows.text
    assert "HX-Request" in rows.headers["Vary"]


def test_queue_with_a_bad_filter_is_422_and_a_bad_cursor_goes_to_page_one(staff_client, db):
    assert staff_client.get("/gestion/solicitudes?estado=borrada").status_code == 422
    assert staff_client.get("/gestion/solicitudes?q=" + "x" * 101).status_code == 422
    bad = staff_client.get("/gestion/solicitudes?despues=nada")
    assert bad.status_code == 303


# --- the detail ------------------------------------------------------------------------------------


def test_detail_prefills_the_entity_of_the_nit_and_its_active_sedes(staff_client, pending, entidad):
    page = staff_client.get(f"/gestion/solicitudes/{pending.id}")
    assert page.status_code == 200
    text = page.text
    assert "Gimnasio Cuerpo Sano S.A.S." in text and "890102044-1" in text
    assert f'<option selected value="{entidad.id}">' in text or (
        f'value="{entidad.id}" selected' in text
    )
    assert "Sede Centro" in text and "Sede Norte" in text
    assert "Sede Cerrada" not in text
    assert "Aprobar" in text and "Rechazar" in text
    assert f"/gestion/solicitudes/{pending.id}/soporte" in text


def test_staff_downloads_the_supporting_pdf(staff_client, pending):
    response = staff_client.get(f"/gestion/solicitudes/{pending.id}/soporte")
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_request_is_404(staff_client, db):
    assert staff_client.get("/gestion/solicitudes/424242").status_code == 404
    assert staff_client.get("/gestion/solicitudes/424242/soporte").status_code == 404


def test_choosing_another_entity_shows_its_sedes(staff_client, pending, htmx, db):
    other = Entidad.create(nit="8600697950", nombre="Panadería La Espiga")
    Sede.create(entidad=other, codigo="01", nombre="Sede Única")
    url = f"/gestion/solicitudes/{pending.id}/sedes?entidad={other.id}"
    partial = staff_client.get(url, headers=htmx)
    assert partial.text.lstrip().startswith('<fieldset id="sedes-aprobar"')
    assert "Sede Única" in partial.text and "Sede Centro" not in partial.text
    assert f'name="entidad" value="{other.id}"' in partial.text
    plain = staff_client.get(f"/gestion/solicitudes/{pending.id}?entidad={other.id}")
    assert "<html" in plain.text and "Sede Única" in plain.text


# --- approving ------------------------------------------------------------------------------------------


def test_approve_grants_sedes_audits_mails_and_shows_the_tile(
    staff_client, staff, pending, entidad, user, outbox, auth, app
):
    chosen = sede_ids(entidad, "Sede Centro", "Sede Norte")
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/aprobar",
        data={"entidad": str(entidad.id), "sedes": [str(i) for i in chosen]},
    )
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/gestion/solicitudes"
    with models.db.connection_context():
        solicitud = SolicitudAplicacion.get_by_id(pending.id)
        acceso = Acceso.get(Acceso.account == user.id)
        granted = sorted(
            row.sede_id for row in AccesoSede.select().where(AccesoSede.acceso == acceso)
        )
        (event,) = AuditEvent.select().where(AuditEvent.action == audit.Action.SOLICITUD_APROBAR)
    assert solicitud.estado == SolicitudAplicacion.APROBADA
    assert solicitud.entidad_id == entidad.id and solicitud.decided_by_id == staff.id
    assert solicitud.decided_at is not None
    assert acceso.aplicacion == "convenios" and acceso.entidad_id == entidad.id
    assert granted == sorted(chosen)
    assert event.actor_id == staff.id and event.target_type == "solicitud"
    assert event.target_id == pending.id
    assert json.loads(event.before) == {"estado": "pendiente"}
    assert json.loads(event.after)["estado"] == "aprobada"
    (mail,) = outbox.all("email")
    assert mail.recipient == "marta@example.com"
    assert "aprobada" in mail.subject and "CONVENIOS" in mail.subject
    assert "Sede Centro" in mail.body_text and "Marta" in mail.body_text
    assert "Solicitud" in staff_client.get(response.headers["Location"]).text
    user_client = auth.login(app.test_client(), user)
    home = user_client.get("/aplicaciones/")
    assert ">Acceder</a>" in home.text
    assert "Acceda aquí a la plataforma de convenios de cajacopi" in home.text
    detail = user_client.get(f"/aplicaciones/solicitudes/{pending.id}")
    assert "Aprobada" in detail.text and "Sede Norte" in detail.text


@pytest.mark.parametrize(
    ("sedes", "message"),
    [
        ([], "Elija al menos una sede."),
        (["999999"], "Elija sedes activas de la entidad elegida."),
        (["abc"], "Elija sedes activas de la entidad elegida."),
    ],
    ids=["none", "unknown", "not_a_number"],
)
def test_approve_needs_sedes_of_the_entity(staff_client, pending, entidad, sedes, message):
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/aprobar",
        data={"entidad": str(entidad.id), "sedes": sedes},
    )
    assert response.status_code == 422
    assert message in response.text
    assert SolicitudAplicacion.get_by_id(pending.id).estado == SolicitudAplicacion.PENDIENTE
    assert Acceso.select().count() == 0 and Message.select().count() == 0


def test_approve_refuses_a_sede_of_another_entity_or_an_inactive_one(
    staff_client, pending, entidad, db
):
    other = Entidad.create(nit="8600697950", nombre="Panadería La Espiga")
    foreign = Sede.create(entidad=other, codigo="01", nombre="Sede Ajena")
    closed = sede_ids(entidad, "Sede Cerrada")[0]
    for sede in (foreign.id, closed):
        response = staff_client.post(
            f"/gestion/solicitudes/{pending.id}/aprobar",
            data={"entidad": str(entidad.id), "sedes": [str(sede)]},
        )
        assert response.status_code == 422
    with pytest.raises(service.InvalidChoice):
        service.approve(
            pending.id, make_staff(roles=("convenios",)), entidad.id, [foreign.id], BASE
        )
    assert Acceso.select().count() == 0


def test_approve_refuses_an_inactive_entity(staff_client, pending, entidad):
    Entidad.update(estado=Entidad.INACTIVA).where(Entidad.id == entidad.id).execute()
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/aprobar",
        data={
            "entidad": str(entidad.id),
            "sedes": [str(i) for i in sede_ids(entidad, "Sede Centro")],
        },
    )
    assert response.status_code == 422
    assert "Elija una entidad activa de la lista." in response.text


def test_deciding_twice_decides_once(staff_client, pending, entidad, outbox):
    data = {"entidad": str(entidad.id), "sedes": [str(i) for i in sede_ids(entidad, "Sede Centro")]}
    url = f"/gestion/solicitudes/{pending.id}/aprobar"
    assert staff_client.post(url, data=data).status_code == 303
    again = staff_client.post(url, data=data)
    assert again.status_code == 303
    assert urlsplit(again.headers["Location"]).path == f"/gestion/solicitudes/{pending.id}"
    assert "ya fue decidida" in staff_client.get(again.headers["Location"]).text
    late_reject = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/rechazar", data={"motivo": "Llegó tarde este rechazo."}
    )
    assert late_reject.status_code == 303
    with models.db.connection_context():
        assert SolicitudAplicacion.get_by_id(pending.id).estado == SolicitudAplicacion.APROBADA
        assert AuditEvent.select().count() == 1
    assert len(outbox.all("email")) == 1


def test_two_staff_approving_at_once_decide_once(app, db, pending, entidad):
    """Two threads, each with its own connection to the file database, race the same request."""
    deciders = [make_staff(roles=("convenios",)) for _ in range(2)]
    sedes = sede_ids(entidad, "Sede Centro")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(actor):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            service.approve(pending.id, actor, entidad.id, sedes, BASE)
            outcomes.append("won")
        except service.AlreadyDecided:
            outcomes.append("already")
        finally:
            models.db.close()

    threads = [threading.Thread(target=decide, args=(a,)) for a in deciders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["already", "won"]
    with models.db.connection_context():
        assert Acceso.select().count() == 1
        assert AccesoSede.select().count() == 1
        assert AuditEvent.select().count() == 1
        assert Message.select().count() == 1


def test_a_second_approval_for_the_same_application_adds_its_sedes(db, user, upload_dir, entidad):
    actor = make_staff(roles=("convenios",))
    first = make_request(user, upload_dir)
    service.approve(first.id, actor, entidad.id, sede_ids(entidad, "Sede Centro"), BASE)
    second = make_request(user, upload_dir)
    service.approve(second.id, actor, entidad.id, sede_ids(entidad, "Sede Norte"), BASE)
    assert Acceso.select().count() == 1
    assert AccesoSede.select().count() == 2


# --- rejecting ------------------------------------------------------------------------------------------------


def test_reject_with_a_reason_mails_the_user_and_shows_the_state(
    staff_client, staff, pending, user, outbox, auth, app
):
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/rechazar",
        data={"motivo": "El certificado de la cámara de comercio está vencido."},
    )
    assert response.status_code == 303
    with models.db.connection_context():
        solicitud = SolicitudAplicacion.get_by_id(pending.id)
        (event,) = AuditEvent.select().where(AuditEvent.action == audit.Action.SOLICITUD_RECHAZAR)
    assert solicitud.estado == SolicitudAplicacion.RECHAZADA
    assert solicitud.motivo == "El certificado de la cámara de comercio está vencido."
    assert event.actor_id == staff.id
    assert json.loads(event.after)["estado"] == "rechazada"
    assert Acceso.select().count() == 0
    (mail,) = outbox.all("email")
    assert mail.recipient == "marta@example.com" and "no fue aprobada" in mail.subject
    assert "cámara de comercio está vencido" in mail.body_text
    assert "cámara de comercio está vencido" in mail.body_html
    user_client = auth.login(app.test_client(), user)
    mine = user_client.get("/aplicaciones/")
    assert "Rechazada" in mine.text and "cámara de comercio está vencido" in mine.text


@pytest.mark.parametrize(
    ("motivo", "message"),
    [
        ("", "Escriba el motivo del rechazo."),
        ("   ", "Escriba el motivo del rechazo."),
        ("Vencido", "El motivo debe tener entre 10 y 1000 caracteres."),
        ("x" * 1001, "El motivo debe tener entre 10 y 1000 caracteres."),
    ],
    ids=["empty", "blank", "short", "long"],
)
def test_reject_needs_a_reason_of_ten_characters(staff_client, pending, motivo, message):
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/rechazar", data={"motivo": motivo}
    )
    assert response.status_code == 422
    assert message in response.text
    assert SolicitudAplicacion.get_by_id(pending.id).estado == SolicitudAplicacion.PENDIENTE
    assert Message.select().count() == 0


def test_reject_service_refuses_a_short_reason(db, pending):
    with pytest.raises(service.InvalidChoice):
        service.reject(pending.id, make_staff(roles=("convenios",)), "corto", BASE)


def test_decided_request_shows_no_forms(staff_client, pending, staff):
    service.reject(pending.id, staff, "No cumple requisitos.", BASE)
    page = staff_client.get(f"/gestion/solicitudes/{pending.id}")
    assert "No cumple requisitos." in page.text
    assert "/aprobar" not in page.text and "/rechazar" not in page.text
    assert staff.email in page.text


def test_upload_policy_is_pdf_only_five_megabytes():
    assert service.SOPORTE.kinds == frozenset({uploads.Kind.PDF})
    assert service.SOPORTE.max_bytes == 5 * uploads.MB


def test_an_entity_past_the_lists_cap_can_still_be_approved(
    staff_client, pending, entidad, monkeypatch
):
    monkeypatch.setattr(service, "active_entities", lambda limit=2000: [])
    page = staff_client.get(f"/gestion/solicitudes/{pending.id}")
    assert f'<option selected value="{entidad.id}">' in page.text
    response = staff_client.post(
        f"/gestion/solicitudes/{pending.id}/aprobar",
        data={
            "entidad": str(entidad.id),
            "sedes": [str(i) for i in sede_ids(entidad, "Sede Centro")],
        },
    )
    assert response.status_code == 303
    assert Acceso.select().count() == 1
