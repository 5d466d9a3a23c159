"""G3 and G4 from the member's side: the office, contact data, a request with its support, the consulta."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta

import pikepdf
import pytest
from PIL import Image

import models
from core import genesis, uploads
from core.clock import utcnow
from models import (
    Attachment,
    Autorizacion,
    CambioDatosEps,
    EpsAfiliado,
    Message,
    SolicitudAutorizacion,
)
from tests.factories import make_eps_afiliado, make_eps_user, make_ips
from tests.sample_files import pdf_bytes

# --- helpers the other Génesis office tests import ----------------------------------------


def photo_bytes(fmt: str = "JPEG", size=(60, 80), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def files_on_disk(upload_dir) -> list[str]:
    """Every file under UPLOAD_DIR (a refused upload leaves none, not even in tmp/)."""
    if not upload_dir.exists():
        return []
    return sorted(str(p.relative_to(upload_dir)) for p in upload_dir.rglob("*") if p.is_file())


def form_url(member) -> str:
    return f"/genesis/solicitud/{member.id}"


def form_key(client, member) -> str:
    page = client.get(form_url(member))
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return re.search(r'name="form_key"[^>]*value="([^"]+)"', page.text).group(1)


def send(client, member, key: str, soporte=None, **over):
    """Post the new-request form; soporte: a list of (bytes, name), None for the default PDF."""
    data = dict(
        form_key=key,
        departamento="08",
        municipio="08001",
        observacion="Resonancia magnética de rodilla ordenada por ortopedia.",
        accion="enviar",
    )
    data.update(over)
    if soporte is None:
        soporte = [(pdf_bytes(), "orden medica.pdf")]
    if soporte:
        data["soporte"] = [(io.BytesIO(content), name) for content, name in soporte]
    return client.post(form_url(member), data=data, content_type="multipart/form-data")


def make_family():
    """A cotizante, her adult spouse, a child and a retired child."""
    rosa = make_eps_afiliado(primer_nombre="ROSA", fecha_nacimiento=date(1985, 3, 14))
    pedro = make_eps_afiliado(
        cabeza=rosa,
        parentesco="CONYUGE",
        primer_nombre="PEDRO",
        segundo_nombre="",
        primer_apellido="RUIZ",
        fecha_nacimiento=date(1983, 8, 2),
        celular="3015550101",
        email="pedro@example.com",
    )
    lucia = make_eps_afiliado(
        cabeza=rosa,
        parentesco="HIJO",
        tipo_documento="TI",
        primer_nombre="LUCÍA",
        segundo_nombre="",
        fecha_nacimiento=date(2015, 6, 1),
        celular="",
        email="",
    )
    tomas = make_eps_afiliado(
        cabeza=rosa,
        parentesco="HIJO",
        primer_nombre="TOMÁS",
        segundo_nombre="",
        fecha_nacimiento=date(2012, 1, 9),
        estado="RETIRADO",
    )
    return rosa, pedro, lucia, tomas


def confirmed(member) -> None:
    """Mark member's contact data as just confirmed (the step before the request form)."""
    genesis.confirm_contact(member)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def family(db):
    return make_family()


@pytest.fixture
def account(family):
    return make_eps_user(family[0])


@pytest.fixture
def signed_in(client, auth, account):
    return auth.login(client, account)


@pytest.fixture
def ready(family):
    """Every member's contact data confirmed: the request form opens."""
    for member in family:
        confirmed(member)
    return family


# --- the office and the núcleo ---------------------------------------------------------------


def test_office_greets_by_name_and_offers_the_two_options(signed_in):
    page = signed_in.get("/genesis/oficina")
    assert page.status_code == 200
    assert "Oficina Virtual Cajacopi EPS" in page.text
    assert "Rosa Díaz" in page.text
    assert 'href="/genesis/solicitud"' in page.text and "Solicitud de Autorizaciones" in page.text
    assert 'href="/genesis/consulta"' in page.text and "Consulta Autorizaciones" in page.text
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "link"), [("/genesis/solicitud", "/contacto"), ("/genesis/consulta", "")]
)
def test_nucleo_lists_the_family_with_document_parentesco_age_and_state(
    signed_in, family, path, link
):
    rosa, pedro, lucia, tomas = family
    page = signed_in.get(path)
    assert page.status_code == 200
    assert "Núcleo familiar" in page.text
    for member in family:
        assert member.numero_documento in page.text
    base = "/genesis/solicitud/" if path.endswith("solicitud") else "/genesis/consulta/"
    assert f'href="{base}{lucia.id}{link}"' in page.text
    assert "Cónyuge o compañero(a) permanente" in page.text
    assert "Hijo(a)" in page.text
    assert "Retirado" in page.text
    assert "Lucía Díaz Mejía" in page.text
    assert page.text.index("Rosa") < page.text.index("Pedro")  # the account's own first


# --- contact data first ------------------------------------------------------------------------


def test_the_request_page_asks_for_the_contact_data_first(signed_in, family):
    lucia = family[2]
    page = signed_in.get(form_url(lucia))
    assert page.status_code == 303
    assert page.headers["Location"].endswith(f"/genesis/solicitud/{lucia.id}/contacto")
    contact = signed_in.get(f"/genesis/solicitud/{lucia.id}/contacto")
    assert contact.status_code == 200
    for word in ("Celular", "Correo electrónico", "Dirección", "Municipio", "Actualizar"):
        assert word in contact.text
    assert "Mis datos son correctos" in contact.text
    assert "Carrera 50 # 72-10" in contact.text
    assert "BARRANQUILLA" in contact.text


def test_confirming_the_contact_data_records_it_and_opens_the_form(signed_in, family):
    pedro = family[1]
    answer = signed_in.post(f"/genesis/solicitud/{pedro.id}/contacto")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(form_url(pedro))
    with models.db.connection_context():
        assert EpsAfiliado.get_by_id(pedro.id).contacto_confirmado_at is not None
        assert CambioDatosEps.select().count() == 0
    page = signed_in.get(form_url(pedro))
    assert page.status_code == 200
    assert "Enviar Solicitud" in page.text


def contact_form(**over) -> dict:
    data = dict(
        celular="300 123 4567",
        email="Lucia.Diaz@Example.com",
        direccion="Calle 72 # 41-20 apto 301",
        departamento="05",
        municipio="05001",
        accion="actualizar",
    )
    data.update(over)
    return data


def test_updating_contact_asks_to_confirm_then_saves_with_history(signed_in, family, account):
    rosa = family[0]
    url = f"/genesis/solicitud/{rosa.id}/contacto/editar"
    assert signed_in.get(url).status_code == 200
    asked = signed_in.post(url, data=contact_form())
    assert asked.status_code == 200
    assert "¿Confirma la actualización de los datos?" in asked.text
    assert "3001234567" in asked.text and "MEDELLÍN" in asked.text
    with models.db.connection_context():
        assert CambioDatosEps.select().count() == 0  # nothing saved before "Confirmar"
    saved = signed_in.post(url, data=contact_form(accion="confirmar"))
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith(form_url(rosa))
    with models.db.connection_context():
        member = EpsAfiliado.get_by_id(rosa.id)
        assert (member.celular, member.email, member.municipio) == (
            "3001234567",
            "lucia.diaz@example.com",
            "05001",
        )
        assert member.direccion == "Calle 72 # 41-20 apto 301"
        assert member.contacto_confirmado_at is not None
        rows = {c.campo: c for c in CambioDatosEps.select()}
        assert set(rows) == {"celular", "email", "direccion", "municipio"}
        assert (rows["celular"].antes, rows["celular"].despues) == ("3004567101", "3001234567")
        assert rows["municipio"].antes == "08001"
        assert all(c.account_id == account.id for c in rows.values())
        # The old channels hear of it: someone else of the family may have made the change.
        told = {(m.channel, m.recipient) for m in Message.select()}
        assert ("sms", "3004567101") in told and ("email", "rosa@example.com") in told
    follow = signed_in.get(form_url(rosa))
    assert "Los datos de contacto quedaron actualizados." in follow.text


def test_correcting_from_the_confirmation_keeps_the_typed_values(signed_in, family):
    rosa = family[0]
    url = f"/genesis/solicitud/{rosa.id}/contacto/editar"
    back = signed_in.post(url, data=contact_form(accion="corregir"))
    assert back.status_code == 200
    assert 'value="Calle 72 # 41-20 apto 301"' in back.text
    with models.db.connection_context():
        assert CambioDatosEps.select().count() == 0


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"celular": "6053714545"}, "celular colombiano de 10 dígitos"),
        ({"celular": ""}, "Este campo es obligatorio."),
        ({"email": "lucia@"}, "Escriba un correo electrónico válido"),
        ({"direccion": "Cl"}, "Escriba la dirección completa"),
        ({"municipio": "08001"}, "Elija el municipio de la lista del departamento."),
        ({"municipio": "99999"}, "Elija el municipio de la lista del departamento."),
        ({"departamento": "XX"}, "Elija el departamento de la lista."),
    ],
)
def test_contact_update_refuses_bad_input_with_its_message(signed_in, family, over, message):
    rosa = family[0]
    for accion in ("actualizar", "confirmar"):
        answer = signed_in.post(
            f"/genesis/solicitud/{rosa.id}/contacto/editar",
            data=contact_form(accion=accion, **over),
        )
        assert answer.status_code == 422
        assert message in answer.text
    assert 'value="Calle 72 # 41-20 apto 301"' in answer.text or "direccion" in over
    with models.db.connection_context():
        assert CambioDatosEps.select().count() == 0
        assert EpsAfiliado.get_by_id(rosa.id).celular == "3004567101"


def test_unchanged_contact_data_is_confirmed_without_history(signed_in, family):
    rosa = family[0]
    same = dict(
        celular=rosa.celular,
        email=rosa.email,
        direccion=rosa.direccion,
        departamento="08",
        municipio="08001",
    )
    answer = signed_in.post(f"/genesis/solicitud/{rosa.id}/contacto/editar", data=same)
    assert answer.status_code == 303
    with models.db.connection_context():
        assert CambioDatosEps.select().count() == 0
        assert EpsAfiliado.get_by_id(rosa.id).contacto_confirmado_at is not None


def test_an_adults_own_account_keeps_their_mobile_and_email_theirs(signed_in, family):
    pedro = family[1]
    make_eps_user(pedro)  # Pedro signs in himself: his mobile is his way back in
    url = f"/genesis/solicitud/{pedro.id}/contacto/editar"
    assert "solo los puede cambiar ella misma" in signed_in.get(url).text
    answer = signed_in.post(url, data=contact_form(accion="confirmar"))
    assert answer.status_code == 422
    assert "solo los puede cambiar ella misma" in answer.text
    with models.db.connection_context():
        assert EpsAfiliado.get_by_id(pedro.id).celular == "3015550101"
    # His address and town the cotizante may still update.
    keep = contact_form(accion="confirmar", celular=pedro.celular, email=pedro.email)
    assert signed_in.post(url, data=keep).status_code == 303


# --- Departamento → Municipio ----------------------------------------------------------------------


def test_municipio_partial_swaps_the_list_for_htmx(signed_in, ready, htmx):
    rosa = ready[0]
    answer = signed_in.get(form_url(rosa) + "?departamento=05", headers=htmx)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="municipio-campo">')
    assert "MEDELLÍN" in answer.text and "BARRANQUILLA" not in answer.text
    assert "<html" not in answer.text
    assert "HX-Request" in answer.headers["Vary"]
    page = signed_in.get(
        f"/genesis/solicitud/{rosa.id}/contacto/editar?departamento=05", headers=htmx
    )
    assert page.text.lstrip().startswith('<div id="municipio-campo">') and "ENVIGADO" in page.text


def test_the_form_starts_with_the_members_town_and_a_get_lists_another_departments(
    signed_in, ready
):
    rosa = ready[0]
    page = signed_in.get(form_url(rosa))
    assert re.search(r'<option selected value="08001">BARRANQUILLA', page.text)
    assert f'hx-get="/genesis/solicitud/{rosa.id}"' in page.text
    other = signed_in.get(form_url(rosa) + "?departamento=05")
    assert other.status_code == 200
    assert "ENVIGADO" in other.text and "SOLEDAD" not in other.text
    assert re.search(r'<option selected value="05">', other.text)


def test_loading_municipios_without_javascript_keeps_the_other_inputs(signed_in, ready):
    rosa = ready[0]
    key = form_key(signed_in, rosa)
    answer = send(
        signed_in,
        rosa,
        key,
        soporte=[],
        departamento="05",
        municipio="",
        observacion="Terapia física, 10 sesiones.",
        accion="municipios",
    )
    assert answer.status_code == 200
    assert "ENVIGADO" in answer.text
    assert "Terapia física, 10 sesiones." in answer.text
    assert key in answer.text  # the same form: one request out of it still
    assert "Revise los campos marcados" not in answer.text
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0


def test_contact_form_loads_municipios_without_javascript(signed_in, family):
    rosa = family[0]
    answer = signed_in.post(
        f"/genesis/solicitud/{rosa.id}/contacto/editar",
        data=contact_form(departamento="05", municipio="", accion="municipios"),
    )
    assert answer.status_code == 200
    assert "ENVIGADO" in answer.text and 'value="Calle 72 # 41-20 apto 301"' in answer.text


# --- the request --------------------------------------------------------------------------------------


def test_the_form_states_the_limit_and_the_manuals_note(signed_in, ready):
    page = signed_in.get(form_url(ready[2]))
    for words in (
        "Departamento",
        "Municipio",
        "Observación",
        "Soporte",
        "PDF de máximo 15 MB, o fotos JPG/PNG",
        "Al usar esta opción, se enviará la información de autorizaciones a tu número celular",
        "entre 2 y 5 días hábiles",
        "Enviar Solicitud",
        'enctype="multipart/form-data"',
        "data-progress",
        "<progress",
    ):
        assert words in page.text
    assert "Lucía Díaz Mejía" in page.text and "Tarjeta de identidad" in page.text


def test_a_request_with_a_pdf_is_pending_with_its_file_and_an_sms(
    signed_in, ready, account, upload_dir
):
    lucia = ready[2]
    answer = send(signed_in, lucia, form_key(signed_in, lucia))
    assert answer.status_code == 303
    numero = answer.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", numero)
    with models.db.connection_context():
        made = SolicitudAutorizacion.get(SolicitudAutorizacion.numero == numero)
        assert (made.afiliado_id, made.account_id, made.estado) == (
            lucia.id,
            account.id,
            SolicitudAutorizacion.PENDIENTE,
        )
        assert made.municipio == "08001"
        assert made.observacion.startswith("Resonancia magnética")
        attachment = Attachment.get(
            (Attachment.owner_type == "solicitud_autorizacion") & (Attachment.owner_id == made.id)
        )
        assert attachment.kind == "pdf" and attachment.original_name == "orden medica.pdf"
        assert uploads.path_for(attachment.key, upload_dir).read_bytes() == pdf_bytes()
        # Lucía has no mobile of her own: the SMS goes to the account's.
        sms = Message.get(Message.channel == "sms")
        assert sms.recipient == account.celular and numero in sms.body_text
        assert made.due_on > made.created_at.date()


def test_two_photos_become_one_pdf_of_two_pages(signed_in, ready, upload_dir):
    rosa = ready[0]
    photos = [
        (photo_bytes("JPEG", (600, 800)), "orden-1.jpg"),
        (photo_bytes("PNG", (800, 600), (20, 90, 200)), "orden-2.png"),
    ]
    answer = send(signed_in, rosa, form_key(signed_in, rosa), soporte=photos)
    assert answer.status_code == 303
    with models.db.connection_context():
        attachment = Attachment.get(Attachment.owner_type == "solicitud_autorizacion")
        assert attachment.kind == "pdf" and attachment.original_name == "orden-1.pdf"
    stored = uploads.path_for(attachment.key, upload_dir).read_bytes()
    assert stored.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(stored)) as pdf:
        assert len(pdf.pages) == 2
    assert files_on_disk(upload_dir) == [
        str(uploads.path_for(attachment.key, upload_dir).relative_to(upload_dir))
    ]


def test_the_confirmation_shows_number_member_date_and_note(signed_in, ready, clock):
    clock.set(datetime(2026, 3, 10, 9, 30))
    pedro = ready[1]
    confirmed(pedro)
    answer = send(signed_in, pedro, form_key(signed_in, pedro))
    numero = answer.headers["Location"].rsplit("/", 1)[1]
    page = signed_in.get(answer.headers["Location"])
    assert page.status_code == 200
    assert numero in page.text
    assert "Pedro Ruiz Mejía" in page.text
    assert "10/03/2026 09:30" in page.text
    assert "entre 2 y 5 días hábiles" in page.text
    assert f'href="/genesis/solicitudes/{numero}/soporte"' in page.text


def test_the_term_is_five_working_days_across_a_holiday(signed_in, ready, clock):
    # Thursday 2 April 2026 (Jueves Santo) and Friday 3 (Viernes Santo) are holidays.
    clock.set(datetime(2026, 4, 1, 10, 0))
    rosa = ready[0]
    confirmed(rosa)
    send(signed_in, rosa, form_key(signed_in, rosa))
    with models.db.connection_context():
        assert SolicitudAutorizacion.get().due_on == date(2026, 4, 10)


def test_a_double_submit_makes_one_request_and_keeps_one_file(signed_in, ready, upload_dir):
    rosa = ready[0]
    key = form_key(signed_in, rosa)
    first = send(signed_in, rosa, key)
    again = send(signed_in, rosa, key)
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 1
        assert Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_a_submit_that_lost_the_race_removes_its_file(db, ready, account, upload_dir, monkeypatch):
    rosa = ready[0]
    key = "k" * 43
    first = genesis.submit_request(
        account,
        rosa,
        "08001",
        "Consulta",
        key,
        [genesis.Upload(io.BytesIO(pdf_bytes()), "o.pdf")],
        upload_dir,
    )
    # The second submit passed both checks before the first committed: the unique key decides.
    monkeypatch.setattr(genesis, "_check_new", lambda *args: None)
    with pytest.raises(genesis.DuplicateSubmit) as sent:
        genesis.submit_request(
            account,
            rosa,
            "08001",
            "Consulta",
            key,
            [genesis.Upload(io.BytesIO(pdf_bytes()), "o.pdf")],
            upload_dir,
        )
    assert sent.value.solicitud.id == first.id
    assert SolicitudAutorizacion.select().count() == 1
    assert Attachment.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


def test_a_form_key_of_another_account_shows_the_form_again(signed_in, ready, db, upload_dir):
    rosa = ready[0]
    stranger = make_eps_user(make_eps_afiliado(primer_nombre="OTRA"))
    key = "s" * 43
    genesis.submit_request(
        stranger,
        stranger.eps.afiliado,
        "08001",
        "Consulta",
        key,
        [genesis.Upload(io.BytesIO(pdf_bytes()), "orden.pdf")],
        upload_dir,
    )
    answer = send(signed_in, rosa, key)
    assert answer.status_code == 422
    assert "El formulario venció" in answer.text
    assert stranger.eps.afiliado.numero_documento not in answer.text
    assert SolicitudAutorizacion.select().count() == 1
    assert len(files_on_disk(upload_dir)) == 1


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"observacion": "   "}, "Escriba la observación"),
        ({"observacion": "x" * 1001}, "hasta 1000 caracteres"),
        ({"municipio": ""}, "Elija el municipio de la lista del departamento."),
        ({"municipio": "05001"}, "Elija el municipio de la lista del departamento."),
        ({"departamento": "XX", "municipio": ""}, "Elija el departamento de la lista."),
        ({"form_key": "hecha-a-mano"}, "El formulario venció"),
        ({"form_key": ""}, "El formulario venció"),
    ],
)
def test_a_request_refuses_bad_fields_and_keeps_the_input(
    signed_in, ready, upload_dir, over, message
):
    rosa = ready[0]
    answer = send(signed_in, rosa, form_key(signed_in, rosa), **over)
    assert answer.status_code == 422
    assert message in answer.text
    if "observacion" not in over:
        assert "Resonancia magnética de rodilla" in answer.text
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0
    assert files_on_disk(upload_dir) == []


def test_an_inactive_member_gets_no_request(signed_in, ready, upload_dir):
    tomas = ready[3]
    page = signed_in.get(form_url(tomas))
    assert page.status_code == 200
    assert "no tiene la afiliación activa" in page.text
    assert "Enviar Solicitud" not in page.text
    answer = send(signed_in, tomas, "t" * 43)
    assert answer.status_code == 409
    assert "no tiene la afiliación activa" in answer.text
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0
    assert files_on_disk(upload_dir) == []


def test_requests_are_limited_per_account_and_hour(
    signed_in, ready, clock, upload_dir, auth, account
):
    rosa = ready[0]
    for _ in range(genesis.REQUESTS_PER_HOUR):
        assert send(signed_in, rosa, form_key(signed_in, rosa)).status_code == 303
    refused = send(signed_in, rosa, form_key(signed_in, rosa))
    assert refused.status_code == 429
    assert "Espere un poco" in refused.text
    assert len(files_on_disk(upload_dir)) == genesis.REQUESTS_PER_HOUR
    clock.advance(hours=1, minutes=1)
    auth.login(signed_in, account)  # the session went idle meanwhile
    assert send(signed_in, rosa, form_key(signed_in, rosa)).status_code == 303


def test_the_member_downloads_the_support_as_an_attachment(signed_in, ready):
    rosa = ready[0]
    numero = send(signed_in, rosa, form_key(signed_in, rosa)).headers["Location"].rsplit("/", 1)[1]
    file = signed_in.get(f"/genesis/solicitudes/{numero}/soporte")
    assert file.status_code == 200
    assert file.data == pdf_bytes()
    assert file.headers["Content-Disposition"].startswith("attachment;")
    assert file.headers["X-Content-Type-Options"] == "nosniff"
    assert file.headers["Cache-Control"] == "no-store"
    lower = signed_in.get(f"/genesis/solicitudes/{numero.lower()}")
    assert lower.status_code == 200


def test_posts_need_the_csrf_token(app, signed_in, ready):
    app.config["WTF_CSRF_ENABLED"] = True
    rosa = ready[0]
    assert signed_in.post(f"/genesis/solicitud/{rosa.id}/contacto").status_code == 400
    answer = send(signed_in, rosa, "c" * 43)
    assert answer.status_code == 400
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0


# --- G4: Consulta Autorizaciones ---------------------------------------------------------------------


def _authorizations(member, ips):
    rows = [
        ("A-1001", "883512", "RESONANCIA MAGNÉTICA DE RODILLA", date(2026, 1, 20), "APROBADA"),
        (
            "A-1002",
            "890201",
            "CONSULTA DE PRIMERA VEZ POR MEDICINA GENERAL",
            date(2026, 2, 3),
            "PENDIENTE",
        ),
        ("A-1003", "903841", "GLUCOSA EN SUERO", date(2025, 11, 5), "NEGADA"),
    ]
    for numero, codigo, nombre, fecha, estado in rows:
        Autorizacion.create(
            numero=numero,
            afiliado=member,
            codigo_servicio=codigo,
            nombre_servicio=nombre,
            fecha=fecha,
            estado=estado,
            ips=ips,
        )


def test_the_autorizaciones_tab_shows_history_and_pending_requests(signed_in, ready, db):
    lucia = ready[2]
    _authorizations(lucia, make_ips(nombre="Clínica del Caribe"))
    pending = genesis.submit_request(
        signed_in_account(lucia),
        lucia,
        "08001",
        "Control de pediatría",
        "p" * 43,
        [genesis.Upload(io.BytesIO(pdf_bytes()), "orden.pdf")],
        str(signed_in.application.config["UPLOAD_DIR"]),
    )
    page = signed_in.get(f"/genesis/consulta/{lucia.id}")
    assert page.status_code == 200
    assert "Lucía Díaz Mejía" in page.text
    assert 'aria-current="page">Autorizaciones' in page.text
    assert f'href="/genesis/consulta/{lucia.id}?pestana=solicitudes"' in page.text
    for words in ("A-1001", "883512", "RESONANCIA MAGNÉTICA DE RODILLA", "20/01/2026", "Aprobada"):
        assert words in page.text
    assert "Clínica del Caribe" in page.text and "Negada" in page.text
    assert page.text.index("A-1002") < page.text.index("A-1001") < page.text.index("A-1003")
    assert "Pendientes por procesar" in page.text and pending.numero in page.text
    assert "Buscar por código o nombre del servicio" in page.text


def signed_in_account(member):
    """The account of the test family's cotizante (who filed for member)."""
    head = member.cabeza_id or member.id
    return models.EpsUser.get(models.EpsUser.afiliado == head).account


@pytest.mark.parametrize(
    ("q", "found", "missing"),
    [
        ("magnetica", ["A-1001"], ["A-1002", "A-1003"]),
        ("RESONANCIA magnética", ["A-1001"], ["A-1002"]),
        ("890201", ["A-1002"], ["A-1001"]),
        ("  glucosa   en suero ", ["A-1003"], ["A-1001"]),
        ("medicina", ["A-1002"], ["A-1003"]),
        ("%", [], ["A-1001", "A-1002", "A-1003"]),
        ("_", [], ["A-1001"]),
        ("radiografía", [], ["A-1001", "A-1002", "A-1003"]),
    ],
)
def test_the_filter_finds_by_code_or_name_ignoring_case_and_accents(
    signed_in, ready, db, q, found, missing
):
    lucia = ready[2]
    _authorizations(lucia, None)
    page = signed_in.get(f"/genesis/consulta/{lucia.id}", query_string={"q": q})
    assert page.status_code == 200
    for numero in found:
        assert numero in page.text
    for numero in missing:
        assert numero not in page.text
    if not found:
        assert "No hay autorizaciones con" in page.text


def test_the_solicitudes_tab_shows_justification_date_state_and_rejection_reason(
    signed_in, ready, db, upload_dir, clock
):
    clock.set(datetime(2026, 5, 4, 11, 15))
    rosa = ready[0]
    account = signed_in_account(rosa)
    made = [
        genesis.submit_request(
            account,
            rosa,
            "08001",
            text,
            key * 43,
            [genesis.Upload(io.BytesIO(pdf_bytes()), "orden.pdf")],
            upload_dir,
        )
        for text, key in (("Ecografía abdominal total", "a"), ("Cirugía de menisco", "b"))
    ]
    SolicitudAutorizacion.update(
        estado=SolicitudAutorizacion.RECHAZADA,
        motivo_rechazo="La orden médica está vencida: pida una nueva a su médico.",
    ).where(SolicitudAutorizacion.id == made[1].id).execute()
    page = signed_in.get(f"/genesis/consulta/{rosa.id}?pestana=solicitudes")
    assert page.status_code == 200
    assert 'aria-current="page">Solicitudes' in page.text
    for words in (
        "Justificación",
        "Ecografía abdominal total",
        "Fecha de creación",
        "04/05/2026 11:15",
        "Pendiente",
        "Rechazada",
        "Motivo de rechazo",
        "La orden médica está vencida",
        f"/genesis/solicitudes/{made[0].numero}/soporte",
    ):
        assert words in page.text
    assert page.text.count("Motivo de rechazo") == 1


def test_a_tab_answers_htmx_with_its_panel_only(signed_in, ready, htmx):
    rosa = ready[0]
    full = signed_in.get(f"/genesis/consulta/{rosa.id}?pestana=solicitudes")
    part = signed_in.get(f"/genesis/consulta/{rosa.id}?pestana=solicitudes", headers=htmx)
    assert "<html" in full.text and "Información del afiliado" in full.text
    assert part.text.lstrip().startswith('<div id="consulta-panel">')
    assert "<html" not in part.text and "Información del afiliado" not in part.text
    assert "HX-Request" in part.headers["Vary"] and "HX-Request" in full.headers["Vary"]
    odd = signed_in.get(f"/genesis/consulta/{rosa.id}?pestana=<script>")
    assert odd.status_code == 200 and 'aria-current="page">Autorizaciones' in odd.text


def test_a_tab_lists_at_most_the_newest_fifty(signed_in, ready, db):
    lucia = ready[2]
    start = date(2020, 1, 1)
    Autorizacion.insert_many(
        [
            dict(
                numero=f"N-{i:04d}",
                afiliado=lucia.id,
                codigo_servicio="890201",
                nombre_servicio="CONSULTA",
                fecha=start + timedelta(days=i),
                estado="APROBADA",
            )
            for i in range(60)
        ]
    ).execute()
    page = signed_in.get(f"/genesis/consulta/{lucia.id}")
    assert page.text.count("N.º N-") == genesis.LIST_LIMIT
    assert "N-0059" in page.text and "N-0009" not in page.text
    assert utcnow()  # the clock is the real one here
