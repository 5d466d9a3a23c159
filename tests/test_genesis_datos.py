"""G5 from the member's side: "Actualización Datos Básicos" (the data, "Actualizar Información",
"mis datos están actualizados", the history of each change) and the "IPS de atención"."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest

import models
from core import genesis
from core.colombia import BOGOTA
from models import CambioDatosEps, EpsAfiliado, Message
from tests.factories import PASSWORD, make_eps_afiliado, make_eps_user, make_ips
from tests.test_genesis_oficina import make_family

UPDATED = "Sus datos han sido actualizados de forma correcta."
UNCHANGED = "No cambió ningún dato"
CONFIRMED = "Gracias por confirmar que sus datos están actualizados."
SUMMARY = "No se pudieron actualizar sus datos: revise los campos marcados."
LOCKED = "solo los puede cambiar ella misma"
TYPED_ADDRESS = "Calle 72 # 41-20 apto 301"


@pytest.fixture
def family(db):
    return make_family()


@pytest.fixture
def account(family):
    return make_eps_user(family[0])


@pytest.fixture
def signed_in(client, auth, account):
    return auth.login(client, account)


def edit_url(member) -> str:
    return f"/genesis/datos/{member.id}/editar"


def datos_form(**over) -> dict:
    data = dict(
        celular="300 123 4567",
        telefono="(605) 385 0000",
        email="Lucia.Diaz@Example.com",
        direccion=TYPED_ADDRESS,
        departamento="05",
        municipio="05001",
        accion="actualizar",
    )
    data.update(over)
    return data


def fresh(member) -> EpsAfiliado:
    with models.db.connection_context():
        return EpsAfiliado.get_by_id(member.id)


def history() -> list[CambioDatosEps]:
    with models.db.connection_context():
        return list(CambioDatosEps.select().order_by(CambioDatosEps.id))


def error_next_to(page: str, field: str) -> str:
    """The error text shown under one field (its id'd <p class="error">), or ""."""
    found = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', page)
    return found.group(1) if found else ""


# --- the office option, the núcleo and the member's page -----------------------------------------


def test_the_office_offers_actualizacion_datos_basicos(signed_in):
    page = signed_in.get("/genesis/oficina")
    assert re.search(
        r'href="/genesis/datos"><strong>Actualización Datos Básicos</strong>', page.text
    )


def test_the_nucleo_leads_each_member_to_their_data(signed_in, family):
    page = signed_in.get("/genesis/datos")
    assert page.status_code == 200
    assert "<h1>Actualización Datos Básicos</h1>" in page.text
    assert "Núcleo familiar" in page.text
    for member in family:
        assert f'href="/genesis/datos/{member.id}"' in page.text


def test_the_members_page_shows_their_data_and_the_four_options(app, signed_in, family):
    rosa = family[0]
    with models.db.connection_context():
        EpsAfiliado.update(telefono="6053850000").where(EpsAfiliado.id == rosa.id).execute()
    page = signed_in.get(f"/genesis/datos/{rosa.id}")
    assert page.status_code == 200
    for words in (
        "Información del afiliado",
        "Rosa Elena Díaz Mejía",
        "3004567101",
        "6053850000",
        "rosa@example.com",
        "Carrera 50 # 72-10",
        "BARRANQUILLA (ATLÁNTICO)",
        "Todavía no",  # never checked
    ):
        assert words in page.text, words
    assert f'href="/genesis/datos/{rosa.id}/editar">Actualizar Información</a>' in page.text
    assert re.search(
        rf'action="/genesis/datos/{rosa.id}/confirmar">\s*<input type="hidden" name="csrf_token"',
        page.text,
    )
    assert ">mis datos están actualizados</button>" in page.text
    with app.test_request_context():
        from flask import url_for

        certificados = url_for("genesis.certificados", member_id=rosa.id)
    assert f'href="{certificados}"><strong>Generar Certificados</strong>' in page.text
    assert f'href="/genesis/datos/{rosa.id}/ips"><strong>IPS de atención</strong>' in page.text


# --- "Actualizar Información" ----------------------------------------------------------------------


def test_the_form_marks_the_required_fields_and_states_the_manuals_note(signed_in, family):
    page = signed_in.get(edit_url(family[0]))
    assert page.status_code == 200
    assert "Los campos marcados con (*) son de carácter obligatorio" in page.text
    required = set(re.findall(r'<label class="req" for="(\w+)"', page.text))
    assert required == {"celular", "direccion", "departamento", "municipio"}
    for optional in ("telefono", "email"):
        assert re.search(rf'<label class="" for="{optional}"', page.text), optional
    assert 'value="Carrera 50 # 72-10"' in page.text  # starts with the data on file
    assert re.search(r'<option selected value="08001">BARRANQUILLA', page.text)


def test_updating_keeps_each_change_as_history_who_when_before_after(
    signed_in, family, account, clock
):
    rosa = family[0]
    clock.set(datetime(2026, 3, 9, 10, 30))
    answer = signed_in.post(edit_url(rosa), data=datos_form())
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/genesis/datos/{rosa.id}")
    member = fresh(rosa)
    assert (member.celular, member.telefono, member.email) == (
        "3001234567",
        "6053850000",
        "lucia.diaz@example.com",
    )
    assert (member.direccion, member.municipio) == (TYPED_ADDRESS, "05001")
    now = datetime(2026, 3, 9, 15, 30)  # 10:30 in Bogotá, stored in UTC
    assert member.datos_confirmados_at == now and member.contacto_confirmado_at == now
    rows = {c.campo: c for c in history()}
    assert {f: (c.antes, c.despues) for f, c in rows.items()} == {
        "celular": ("3004567101", "3001234567"),
        "telefono": ("", "6053850000"),
        "email": ("rosa@example.com", "lucia.diaz@example.com"),
        "direccion": ("Carrera 50 # 72-10", TYPED_ADDRESS),
        "municipio": ("08001", "05001"),
    }
    assert {c.account_id for c in rows.values()} == {account.id}
    assert {c.afiliado_id for c in rows.values()} == {rosa.id}
    assert {c.created_at for c in rows.values()} == {now}
    # The old channels hear of it: someone else of the family may have made the change.
    with models.db.connection_context():
        told = {(m.channel, m.recipient) for m in Message.select()}
    assert ("sms", "3004567101") in told and ("email", "rosa@example.com") in told
    page = signed_in.get(f"/genesis/datos/{rosa.id}")
    assert UPDATED in page.text
    assert "09/03/2026 10:30" in page.text  # "Datos revisados", in Bogotá time


def test_only_the_fields_that_changed_get_a_history_row(signed_in, family):
    lucia = family[2]  # a minor with no mobile or e-mail on file
    answer = signed_in.post(
        edit_url(lucia),
        data=datos_form(
            celular="3117654321",
            telefono="",
            email="",
            direccion=lucia.direccion,
            departamento="08",
            municipio=lucia.municipio,
        ),
    )
    assert answer.status_code == 303
    assert [(c.campo, c.antes, c.despues) for c in history()] == [("celular", "", "3117654321")]


def test_an_unchanged_form_says_so_and_writes_no_history(signed_in, family):
    rosa = family[0]
    same = datos_form(
        celular=rosa.celular,
        telefono="",
        email=rosa.email.upper(),  # the same address, as typed
        direccion=rosa.direccion,
        departamento="08",
        municipio=rosa.municipio,
    )
    answer = signed_in.post(edit_url(rosa), data=same)
    assert answer.status_code == 303
    assert history() == []
    assert fresh(rosa).datos_confirmados_at is not None  # the whole form was reviewed
    page = signed_in.get(f"/genesis/datos/{rosa.id}")
    assert UNCHANGED in page.text and UPDATED not in page.text


class _File:
    """A file part sent where a text field belongs."""


BAD_INPUT = [
    # (case, field with the error, what the form sends, the message next to the field)
    (
        "landline as mobile",
        "celular",
        {"celular": "6053714545"},
        "celular colombiano de 10 dígitos",
    ),
    ("short mobile", "celular", {"celular": "12"}, "celular colombiano de 10 dígitos"),
    ("letters as mobile", "celular", {"celular": "300-ABC-4567"}, "celular colombiano"),
    ("empty mobile", "celular", {"celular": ""}, "Este campo es obligatorio."),
    ("bad landline", "telefono", {"telefono": "12345"}, "Ingrese un teléfono colombiano"),
    ("bad e-mail", "email", {"email": "lucia@"}, "Escriba un correo electrónico válido"),
    ("e-mail with spaces", "email", {"email": "lu cia@correo.com"}, "correo electrónico válido"),
    ("empty address", "direccion", {"direccion": ""}, "Este campo es obligatorio."),
    ("short address", "direccion", {"direccion": "Cl"}, "Escriba la dirección completa"),
    (
        "no departamento",
        "departamento",
        {"departamento": "", "municipio": ""},
        "Elija el departamento",
    ),
    ("unknown departamento", "departamento", {"departamento": "XX"}, "Elija el departamento"),
    ("no municipio", "municipio", {"municipio": ""}, "Elija el municipio"),
    (
        "municipio of another departamento",
        "municipio",
        {"municipio": "08001"},
        "Elija el municipio",
    ),
    ("unknown municipio", "municipio", {"municipio": "99999"}, "Elija el municipio"),
    ("a file as address", "direccion", {"direccion": _File}, "Este campo es obligatorio."),
    ("a file as mobile", "celular", {"celular": _File}, "Este campo es obligatorio."),
]


@pytest.mark.parametrize(
    ("field", "over", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_saved(
    signed_in, family, field, over, message
):
    rosa = family[0]
    data = datos_form(**over)
    files = {k for k, v in data.items() if v is _File}
    for name in files:
        data[name] = (io.BytesIO(b"%PDF-1.4 not text"), "orden.pdf")
    answer = signed_in.post(
        edit_url(rosa), data=data, content_type="multipart/form-data" if files else None
    )
    assert answer.status_code == 422
    assert message in error_next_to(answer.text, field), answer.text
    assert SUMMARY in answer.text
    assert f'id="{field}"' in answer.text and 'aria-invalid="true"' in answer.text
    if field != "direccion":
        assert f'value="{TYPED_ADDRESS}"' in answer.text  # the rest of the input is kept
    if field != "telefono":
        assert 'value="6053850000"' in answer.text  # normalised, as it would be saved
    assert history() == []
    member = fresh(rosa)
    assert (member.celular, member.direccion, member.municipio) == (
        "3004567101",
        "Carrera 50 # 72-10",
        "08001",
    )
    assert member.datos_confirmados_at is None


def test_an_adults_own_account_keeps_their_mobile_and_email_theirs(signed_in, family):
    pedro = family[1]
    make_eps_user(pedro)  # Pedro signs in himself: his mobile is his way back in
    url = edit_url(pedro)
    page = signed_in.get(url)
    assert LOCKED in page.text
    assert re.search(r'id="celular"[^>]*readonly', page.text)
    assert re.search(r'id="email"[^>]*readonly', page.text)
    answer = signed_in.post(url, data=datos_form())
    assert answer.status_code == 422
    assert LOCKED in error_next_to(answer.text, "celular")
    assert history() == []
    assert fresh(pedro).celular == "3015550101"
    # His fixed line, address and town the cotizante may still update.
    keep = datos_form(celular=pedro.celular, email=pedro.email)
    assert signed_in.post(url, data=keep).status_code == 303
    assert {c.campo for c in history()} == {"telefono", "direccion", "municipio"}
    assert fresh(pedro).email == "pedro@example.com"


def test_an_adult_changes_their_own_mobile(client, auth, family):
    pedro = family[1]
    auth.login(client, make_eps_user(pedro))
    answer = client.post(edit_url(pedro), data=datos_form(email=pedro.email))
    assert answer.status_code == 303
    assert fresh(pedro).celular == "3001234567"


# --- Departamento → Municipio, with and without JavaScript ----------------------------------------


def test_the_municipio_list_swaps_for_htmx(signed_in, family, htmx):
    rosa = family[0]
    answer = signed_in.get(edit_url(rosa) + "?departamento=05", headers=htmx)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="municipio-campo">')
    assert "ENVIGADO" in answer.text and "BARRANQUILLA" not in answer.text
    assert "HX-Request" in answer.headers["Vary"]
    page = signed_in.get(edit_url(rosa))
    assert f'hx-get="{edit_url(rosa)}"' in page.text


def test_cargar_municipios_without_javascript_keeps_the_input_and_saves_nothing(signed_in, family):
    rosa = family[0]
    answer = signed_in.post(
        edit_url(rosa), data=datos_form(departamento="05", municipio="", accion="municipios")
    )
    assert answer.status_code == 200
    assert "ENVIGADO" in answer.text
    assert f'value="{TYPED_ADDRESS}"' in answer.text
    assert SUMMARY not in answer.text
    assert history() == [] and fresh(rosa).municipio == "08001"


# --- "mis datos están actualizados" ------------------------------------------------------------------


def test_mis_datos_estan_actualizados_records_the_check_without_history(signed_in, family, clock):
    lucia = family[2]
    clock.set(datetime(2026, 5, 4, 8, 15, tzinfo=BOGOTA))
    answer = signed_in.post(f"/genesis/datos/{lucia.id}/confirmar")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/genesis/datos/{lucia.id}")
    member = fresh(lucia)
    assert member.datos_confirmados_at == datetime(2026, 5, 4, 13, 15)
    assert member.contacto_confirmado_at == datetime(2026, 5, 4, 13, 15)
    assert history() == []
    page = signed_in.get(f"/genesis/datos/{lucia.id}")
    assert CONFIRMED in page.text
    assert "04/05/2026 08:15" in page.text
    # The request form of G3 opens now without asking for the contact data again.
    assert signed_in.get(f"/genesis/solicitud/{lucia.id}").status_code == 200


def test_the_posts_need_the_csrf_token(app, signed_in, family):
    app.config["WTF_CSRF_ENABLED"] = True
    rosa = family[0]
    assert signed_in.post(f"/genesis/datos/{rosa.id}/confirmar").status_code == 400
    assert signed_in.post(edit_url(rosa), data=datos_form()).status_code == 400
    assert history() == [] and fresh(rosa).datos_confirmados_at is None


def _sign_in(client, member) -> None:
    """Sign in through the "Afiliados" form (a test app of its own: its limits are on)."""
    answer = client.post(
        "/genesis/afiliados",
        data={
            "tipo_documento": member.tipo_documento,
            "numero_documento": member.numero_documento,
            "password": PASSWORD,
        },
    )
    assert answer.status_code == 303


def test_the_posts_are_limited_per_account_not_per_address(limited_app):
    with models.db.connection_context():
        rosa = make_family()[0]
        make_eps_user(rosa)
        marta = make_eps_afiliado(primer_nombre="MARTA")
        make_eps_user(marta)
    client = limited_app.test_client()
    _sign_in(client, rosa)
    answers = [client.post(f"/genesis/datos/{rosa.id}/confirmar").status_code for _ in range(31)]
    assert answers == [303] * 30 + [429]
    client.post("/genesis/salir")
    _sign_in(client, marta)  # the same address, another account: its own count
    assert client.post(f"/genesis/datos/{marta.id}/confirmar").status_code == 303


# --- IPS de atención ----------------------------------------------------------------------------------


def test_the_ips_page_shows_name_address_town_and_a_phone_link(signed_in, family):
    rosa = family[0]
    with models.db.connection_context():
        ips = make_ips(nombre="IPS Clínica del Norte S.A.S.", municipio="08758")
        EpsAfiliado.update(ips=ips).where(EpsAfiliado.id == rosa.id).execute()
    page = signed_in.get(f"/genesis/datos/{rosa.id}/ips")
    assert page.status_code == 200
    assert "IPS de atención de Rosa Elena Díaz Mejía" in page.text
    assert "IPS Clínica del Norte S.A.S." in page.text
    assert "Calle 44 # 45-57" in page.text
    assert "SOLEDAD (ATLÁNTICO)" in page.text
    assert '<a class="tel" href="tel:+576053714545">(605) 371 4545</a>' in page.text


def test_the_ips_page_says_so_when_the_eps_data_names_none(signed_in, family):
    lucia = family[2]
    assert lucia.ips_id is None
    page = signed_in.get(f"/genesis/datos/{lucia.id}/ips")
    assert page.status_code == 200
    assert "todavía no tiene registrada una IPS de atención" in page.text
    assert "tel:" not in page.text.split("<main", 1)[1].split("</main>")[0]


def test_the_ips_page_names_what_the_data_lacks(signed_in, family):
    rosa = family[0]
    with models.db.connection_context():
        ips = make_ips(telefono="", direccion="", municipio="")
        EpsAfiliado.update(ips=ips).where(EpsAfiliado.id == rosa.id).execute()
    page = signed_in.get(f"/genesis/datos/{rosa.id}/ips")
    assert "No registrada" in page.text and page.text.count("No registrado") == 2


@pytest.mark.parametrize(
    ("digits", "link", "shown"),
    [
        ("6053714545", "tel:+576053714545", "(605) 371 4545"),
        ("3001234567", "tel:+573001234567", "300 123 4567"),
        ("3714545", "tel:3714545", "371 4545"),
    ],
)
def test_phone_links_read_the_colombian_way(digits, link, shown):
    from blueprints.genesis.datos import phone_link

    assert phone_link(digits) == (link, shown)


def test_the_service_keeps_g3s_contact_update_to_its_four_fields(db, family, account):
    rosa = family[0]
    values = dict(
        celular=rosa.celular,
        email=rosa.email,
        direccion="Calle 1 # 2-3",
        municipio="08001",
        telefono="6053850000",  # not a G3 field: ignored there
    )
    genesis.update_contact(account, rosa, values)
    member = fresh(rosa)
    assert member.telefono == "" and member.datos_confirmados_at is None
    assert [c.campo for c in history()] == ["direccion"]
