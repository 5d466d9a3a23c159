"""H4 from the user's side: request CONVENIOS with a PDF, follow it, open the tile."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from factories import make_staff, make_user
from PIL import Image

import models
from blueprints.aplicaciones import service
from blueprints.aplicaciones.service import TileState
from core import audit
from core.permissions import Application
from models import Acceso, Attachment, SolicitudAplicacion

FORM_URL = "/aplicaciones/convenios/solicitar"
CAP = service.SOPORTE.max_bytes


def pdf_bytes(size: int | None = None) -> bytes:
    """Return a small one-page PDF, padded with a comment up to size bytes when given."""
    head = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    tail = (
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    if size is None:
        return head + tail
    pad = size - len(head) - len(tail) - 2
    return head + b"%" + b"x" * pad + b"\n" + tail


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = png_bytes()
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"This program cannot be run in DOS mode"


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    """Keep every test's uploads in its own folder."""
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


def files_on_disk(upload_dir) -> list[str]:
    if not upload_dir.exists():
        return []
    return sorted(str(p.relative_to(upload_dir)) for p in upload_dir.rglob("*") if p.is_file())


def form_key(client) -> str:
    page = client.get(FORM_URL)
    assert page.status_code == 200
    return re.search(r'name="form_key"[^>]*value="([^"]+)"', page.text).group(1)


def fields(key: str, **over) -> dict:
    data = dict(
        form_key=key,
        nit="890.102.044-1",
        entidad_nombre="Gimnasio Cuerpo Sano S.A.S.",
        sedes="Sede Centro\nSede Norte",
        telefono="6053714545",
    )
    data.update(over)
    if "soporte" not in data:
        data["soporte"] = (io.BytesIO(pdf_bytes()), "camara de comercio.pdf")
    elif data["soporte"] is None:
        del data["soporte"]
    return data


def send(client, key: str, **over):
    return client.post(FORM_URL, data=fields(key, **over), content_type="multipart/form-data")


@pytest.fixture
def user(db):
    return make_user(primer_nombre="MARTA", email="marta@example.com")


@pytest.fixture
def signed_in(client, auth, user):
    return auth.login(client, user)


# --- the form and a good request ------------------------------------------------------


def test_form_has_the_manual_labels_and_a_form_key(signed_in):
    page = signed_in.get(FORM_URL)
    assert page.status_code == 200
    for label in (
        "Solicitud de Aplicaciones",
        "CONVENIOS",
        "NIT de la entidad",
        "Nombre de la entidad",
        "Sede(s)",
        "Teléfono de contacto",
        "Documento soporte (PDF)",
        "Enviar Solicitud",
    ):
        assert label in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert re.search(r'name="form_key"[^>]*value="[A-Za-z0-9_-]{43}"', page.text)


def test_request_with_a_pdf_is_stored_pending_with_its_attachment(signed_in, user, upload_dir):
    response = send(signed_in, form_key(signed_in))
    assert response.status_code == 303
    with models.db.connection_context():
        solicitud = SolicitudAplicacion.get()
        attachment = service.attachment_of(solicitud)
    assert response.headers["Location"].endswith(f"/aplicaciones/solicitudes/{solicitud.id}")
    assert solicitud.account_id == user.id
    assert solicitud.aplicacion == "convenios"
    assert solicitud.estado == SolicitudAplicacion.PENDIENTE
    assert solicitud.nit == "8901020441"
    assert solicitud.telefono == "6053714545"
    assert solicitud.sedes.splitlines() == ["Sede Centro", "Sede Norte"]
    assert attachment.kind == "pdf" and attachment.created_by_id == user.id
    assert attachment.original_name == "camara de comercio.pdf"
    assert files_on_disk(upload_dir) == [_key_path(attachment.key)]
    page = signed_in.get(response.headers["Location"])
    assert "Recibimos su solicitud" in page.text
    assert "Estado: Pendiente" in page.text
    assert "890102044-1" in page.text


def _key_path(key: str) -> str:
    return f"{key[:2]}/{key[2:4]}/{key}"


# --- refusals: 422, the Spanish message, input kept, nothing stored ---------------------


REFUSALS = [
    ("bad_check_digit", {"nit": "890102044-2"}, "El dígito de verificación del NIT no es válido."),
    ("nit_letters", {"nit": "89O1020441"}, "El NIT solo lleva números"),
    ("missing_nit", {"nit": ""}, "Este campo es obligatorio."),
    ("missing_name", {"entidad_nombre": "  "}, "Este campo es obligatorio."),
    ("missing_sedes", {"sedes": ""}, "Este campo es obligatorio."),
    ("missing_phone", {"telefono": ""}, "Este campo es obligatorio."),
    ("bad_phone", {"telefono": "12345"}, "Ingrese un teléfono colombiano"),
    ("missing_file", {"soporte": None}, "Adjunte el documento soporte en PDF"),
    (
        "png_named_pdf",
        {"soporte": (io.BytesIO(PNG), "soporte.pdf")},
        "Solo se aceptan archivos PDF.",
    ),
    (
        "exe_named_pdf",
        {"soporte": (io.BytesIO(EXE), "soporte.pdf")},
        "Solo se aceptan archivos PDF.",
    ),
    ("empty_file", {"soporte": (io.BytesIO(b""), "soporte.pdf")}, "El archivo está vacío."),
    (
        "cap_plus_one",
        {"soporte": (io.BytesIO(pdf_bytes(CAP + 1)), "soporte.pdf")},
        "El archivo supera 5 MB.",
    ),
    ("path_as_name", {"soporte": (io.BytesIO(pdf_bytes()), "../../x.pdf")}, "no es válido"),
]


@pytest.mark.parametrize(
    ("over", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_bad_input_is_refused_with_the_message_and_nothing_stored(
    signed_in, upload_dir, over, message
):
    over = {
        k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v
        for k, v in over.items()
    }
    response = send(signed_in, form_key(signed_in), **over)
    assert response.status_code == 422
    assert message in response.text
    if "entidad_nombre" not in over:
        assert 'value="Gimnasio Cuerpo Sano S.A.S."' in response.text  # input kept
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 0
        assert Attachment.select().count() == 0
    assert files_on_disk(upload_dir) == []


def test_pdf_exactly_at_the_cap_is_accepted(signed_in, upload_dir):
    data = pdf_bytes(CAP)
    assert len(data) == CAP
    response = send(signed_in, form_key(signed_in), soporte=(io.BytesIO(data), "grande.pdf"))
    assert response.status_code == 303
    assert len(files_on_disk(upload_dir)) == 1


def test_a_file_sent_under_a_text_field_is_refused_not_a_500(signed_in, upload_dir):
    response = send(signed_in, form_key(signed_in), nit=(io.BytesIO(b"8901020441"), "nit.txt"))
    assert response.status_code == 422
    assert "Este campo es obligatorio." in response.text
    assert files_on_disk(upload_dir) == []


def test_form_without_a_valid_key_is_refused_and_given_a_new_one(signed_in, upload_dir):
    response = send(signed_in, "not-a-key")
    assert response.status_code == 422
    assert "El formulario venció" in response.text
    assert re.search(r'name="form_key"[^>]*value="[A-Za-z0-9_-]{43}"', response.text)
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 0


def test_the_solicitar_view_declares_its_body_cap(app):
    view = app.view_functions["aplicaciones.solicitar"]
    assert view.max_content_length == service.MAX_BODY
    assert service.MAX_BODY < app.config["MAX_CONTENT_LENGTH"]


def test_a_body_far_above_the_cap_stores_nothing(signed_in, upload_dir):
    # 413 once app.py applies the view's cap before the body is read; 422 until then.
    big = io.BytesIO(b"%PDF-1.4\n" + b"0" * (7 * 1024 * 1024))
    response = send(signed_in, form_key(signed_in), soporte=(big, "soporte.pdf"))
    assert response.status_code in (413, 422)
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 0
    assert files_on_disk(upload_dir) == []


# --- one request per form, one pending request per application ------------------------------


def test_double_submit_with_the_same_form_key_makes_one_request(signed_in, upload_dir):
    key = form_key(signed_in)
    first = send(signed_in, key)
    second = send(signed_in, key)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 1
        assert Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_the_unique_form_key_decides_when_the_checks_are_raced(
    signed_in, user, upload_dir, monkeypatch
):
    key = form_key(signed_in)
    assert send(signed_in, key).status_code == 303
    # As if the second submit had passed both checks before the first committed.
    monkeypatch.setattr(service, "_check_new", lambda *a: None)
    again = send(signed_in, key)
    assert again.status_code == 303
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 1
        assert Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_a_new_request_while_one_is_pending_is_refused(signed_in, upload_dir):
    first_key = form_key(signed_in)
    assert send(signed_in, first_key).status_code == 303
    page = signed_in.get(FORM_URL)
    assert page.status_code == 200
    assert "Ya tiene una solicitud pendiente" in page.text
    assert 'name="form_key"' not in page.text
    other = send(signed_in, "k" * 43)
    assert other.status_code == 409
    assert "Ya tiene una solicitud pendiente" in other.text
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_a_form_key_replayed_by_another_account_shows_nothing_of_the_first(
    signed_in, auth, app, upload_dir
):
    key = form_key(signed_in)
    assert send(signed_in, key).status_code == 303
    with models.db.connection_context():
        stranger = make_user()
    other = auth.login(app.test_client(), stranger)
    response = send(other, key, entidad_nombre="Panadería La Espiga")
    assert response.status_code == 422
    assert "El formulario venció" in response.text
    assert "Gimnasio Cuerpo Sano" not in response.text
    assert "/aplicaciones/solicitudes/" not in response.text
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


# --- Mis solicitudes and the attachment --------------------------------------------------------


def _submitted(client) -> int:
    response = send(client, form_key(client))
    assert response.status_code == 303
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_mis_solicitudes_lists_state_and_date(signed_in):
    _submitted(signed_in)
    page = signed_in.get("/aplicaciones/")
    assert page.status_code == 200
    assert "Mis solicitudes" in page.text
    assert "Pendiente" in page.text
    assert "Gimnasio Cuerpo Sano S.A.S." in page.text
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", page.text)


def test_owner_downloads_the_attachment_as_an_attachment(signed_in):
    solicitud_id = _submitted(signed_in)
    response = signed_in.get(f"/aplicaciones/solicitudes/{solicitud_id}/soporte")
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_someone_elses_request_and_attachment_are_404(signed_in, auth, app):
    solicitud_id = _submitted(signed_in)
    with models.db.connection_context():
        stranger = make_user()
    other = auth.login(app.test_client(), stranger)
    assert other.get(f"/aplicaciones/solicitudes/{solicitud_id}").status_code == 404
    assert other.get(f"/aplicaciones/solicitudes/{solicitud_id}/soporte").status_code == 404
    assert other.get("/aplicaciones/solicitudes/999999/soporte").status_code == 404
    assert "Gimnasio" not in other.get("/aplicaciones/").text


def test_anonymous_is_sent_to_the_hanna_login(client):
    for url in (FORM_URL, "/aplicaciones/", "/aplicaciones/solicitudes/1"):
        response = client.get(url)
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/"


def test_anonymous_htmx_gets_401_with_hx_redirect(client, htmx):
    response = client.get(FORM_URL, headers=htmx)
    assert response.status_code == 401
    assert "HX-Redirect" in response.headers


def test_staff_and_unknown_applications_get_404(client, auth, db, signed_in):
    assert signed_in.get("/aplicaciones/gimnasio/solicitar").status_code == 404
    staff = make_staff(roles=("convenios",))
    auth.login(client, staff)
    assert client.get(FORM_URL).status_code == 404
    assert client.get("/aplicaciones/").status_code == 404


# --- tiles ------------------------------------------------------------------------------------


def _grant(account, **entity):
    entidad = models.Entidad.create(nit=entity.get("nit", "8901020441"), nombre="Gimnasio")
    sede = models.Sede.create(entidad=entidad, codigo="01", nombre="Sede Centro")
    acceso = Acceso.create(account=account.id, aplicacion="convenios", entidad=entidad)
    models.AccesoSede.create(acceso=acceso, sede=sede)
    return acceso


def test_tiles_offer_the_request_then_show_it_pending(db, signed_in, user):
    assert service.tiles_for(user) == [service.Tile(Application.CONVENIOS, TileState.AVAILABLE)]
    page = signed_in.get("/aplicaciones/")
    assert "CONVENIOS" in page.text and "Solicitar" in page.text
    assert "Acceder" not in page.text
    _submitted(signed_in)
    (tile,) = service.tiles_for(user)
    assert tile.state is TileState.PENDING and tile.solicitud_id
    assert "pendiente de revisión" in signed_in.get("/aplicaciones/").text


def test_granted_tile_has_the_manual_text_and_acceder(db, signed_in, user):
    _grant(user)
    (tile,) = service.tiles_for(user)
    assert tile.state is TileState.GRANTED
    page = signed_in.get("/aplicaciones/")
    assert (
        "Acceda aquí a la plataforma de convenios de cajacopi, donde podrá consultar a "
        "nuestros trabajadores." in page.text
    )
    assert ">Acceder</a>" in page.text
    assert 'href="/aplicaciones/convenios/acceder"' in page.text


def test_rejected_request_shows_its_reason_and_offers_a_new_one(db, signed_in, user):
    _submitted(signed_in)
    staff = make_staff(roles=("convenios",))
    solicitud = SolicitudAplicacion.get()
    service.reject(solicitud.id, staff, "El certificado está vencido.", "http://localhost")
    (tile,) = service.tiles_for(user)
    assert tile.state is TileState.AVAILABLE and tile.rejected
    page = signed_in.get("/aplicaciones/")
    assert "Rechazada" in page.text
    assert "El certificado está vencido." in page.text
    assert signed_in.get(FORM_URL).status_code == 200  # may ask again


def test_tiles_for_other_kinds_are_empty(db):
    assert service.tiles_for(make_staff(roles=("convenios",))) == []
    assert service.tiles_for(None) == []


def test_acceder_opens_convenios_only_when_granted(db, signed_in, user):
    refused = signed_in.get("/aplicaciones/convenios/acceder")
    assert refused.status_code == 302
    assert refused.headers["Location"].endswith("/aplicaciones/")
    assert "Aún no tiene acceso a CONVENIOS" in signed_in.get("/aplicaciones/").text
    _grant(user)
    opened = signed_in.get("/aplicaciones/convenios/acceder")
    assert opened.status_code == 302
    assert urlsplit(opened.headers["Location"]).path.startswith("/convenios")


def test_submitting_writes_no_audit_row(signed_in):
    # The audit log is for staff decisions; a user's own request is its own record.
    _submitted(signed_in)
    with models.db.connection_context():
        assert not audit.search_query(target="solicitud").exists()


def test_two_tabs_submitting_at_once_make_one_pending_request(app, db, user, upload_dir):
    """Two forms (two keys) sent at the same moment: one request, the other told it is pending."""
    import threading

    data = service.RequestData("8901020441", "Gimnasio", "Sede Centro", "6053714545")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(key: str) -> None:
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            service.submit_request(
                user, Application.CONVENIOS, data, key, io.BytesIO(pdf_bytes()), "a.pdf", upload_dir
            )
            outcomes.append("made")
        except service.AlreadyPending:
            outcomes.append("pending")
        finally:
            models.db.close()

    threads = [threading.Thread(target=submit, args=(c * 43,)) for c in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["made", "pending"]
    with models.db.connection_context():
        assert SolicitudAplicacion.select().count() == 1
        assert Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1
