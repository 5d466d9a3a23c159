"""Back office: an admin lists, creates and edits convenio entities and their sedes."""

import json

import pytest

from core import convenios_data as cd
from models import AuditEvent, Entidad, Sede
from tests.factories import make_staff, make_user

NEW = "/gestion/entidades/nueva"


@pytest.fixture
def admin(db, client, auth):
    account = make_staff(roles=("admin",))
    auth.login(client, account)
    return account


def make_entidad(nit="8901020441", nombre="Gimnasio Olas del Norte", estado="ACTIVA") -> Entidad:
    return cd.create_entidad(None, nit, nombre, estado)


def entidad_form(**over) -> dict:
    form = {"nit": "890.102.044-1", "nombre": "Gimnasio Olas del Norte", "estado": "ACTIVA"}
    form.update(over)
    return form


def sede_form(**over) -> dict:
    form = {
        "codigo": "gn-01",
        "nombre": "Sede Prado",
        "municipio": "08001",
        "direccion": "Carrera 54 # 64-120",
        "activa": "y",
    }
    form.update(over)
    return form


def audit_rows(action: str) -> list[AuditEvent]:
    query = AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(query)


# --- who may come in ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/gestion/entidades", NEW, "/gestion/entidades/1"])
def test_anonymous_is_sent_to_the_staff_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/gestion/ingresar")


def test_staff_of_another_role_get_404(db, client, auth):
    entidad = make_entidad()
    auth.login(client, make_staff(roles=("afiliaciones", "soporte")))

    assert client.get("/gestion/entidades").status_code == 404
    assert client.get(f"/gestion/entidades/{entidad.id}").status_code == 404
    response = client.post(NEW, data=entidad_form(nit="800123456-5"))
    assert response.status_code == 404
    assert Entidad.select().count() == 1


def test_the_convenios_role_manages_entities_too(db, client, auth):
    auth.login(client, make_staff(roles=("convenios",)))

    assert client.get("/gestion/entidades").status_code == 200
    response = client.post(NEW, data=entidad_form())
    assert response.status_code == 303
    assert Entidad.get().nombre == "Gimnasio Olas del Norte"
    assert len(audit_rows("entidad.crear")) == 1


def test_a_hanna_user_gets_404(db, client, auth):
    auth.login(client, make_user())

    assert client.get("/gestion/entidades").status_code == 404


def test_staff_without_the_second_factor_is_sent_to_the_login(db, client, auth):
    auth.login(client, make_staff(roles=("admin",)), second_factor=False)

    response = client.get("/gestion/entidades")

    assert response.status_code in (302, 303)
    assert "/gestion/" in response.headers["Location"]


# --- the list ------------------------------------------------------------------------------


def test_list_shows_entities_by_name_and_filters(admin, client):
    make_entidad()
    make_entidad("8001234565", "Colegio Mar de Letras", "INACTIVA")

    page = client.get("/gestion/entidades").get_data(as_text=True)
    assert page.index("Colegio Mar de Letras") < page.index("Gimnasio Olas del Norte")
    assert "890102044-1" in page

    by_nit = client.get("/gestion/entidades?q=890.102").get_data(as_text=True)
    assert "Gimnasio Olas" in by_nit and "Colegio Mar" not in by_nit
    by_state = client.get("/gestion/entidades?estado=INACTIVA").get_data(as_text=True)
    assert "Colegio Mar" in by_state and "Gimnasio Olas" not in by_state


def test_list_partial_for_htmx_varies_on_hx_request(admin, client, htmx):
    make_entidad()

    response = client.get("/gestion/entidades?q=olas", headers=htmx)

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="entidades-lista"' in body and "<html" not in body
    assert "HX-Request" in response.headers["Vary"]


def test_list_pages_by_keyset(admin, client, monkeypatch):
    from blueprints.gestion import entidades

    monkeypatch.setattr(entidades, "PER_PAGE", 2)
    for base in ("800123456", "860012345", "900300400"):
        make_entidad(base + cd.stdnum_nit.calc_check_digit(base), f"Entidad {base}")

    first = client.get("/gestion/entidades").get_data(as_text=True)
    assert "Entidad 800123456" in first and "Entidad 900300400" not in first
    assert "despues=" in first
    link = first.split('href="/gestion/entidades?despues=', 1)[1].split('"', 1)[0]
    second = client.get(f"/gestion/entidades?despues={link}").get_data(as_text=True)
    assert "Entidad 900300400" in second and "Entidad 800123456" not in second


def test_bad_filter_answers_422(admin, client):
    response = client.get("/gestion/entidades?estado=BORRADA")

    assert response.status_code == 422


# --- create ------------------------------------------------------------------------------


def test_new_entity_form_has_its_fields(admin, client):
    page = client.get(NEW).get_data(as_text=True)

    assert 'name="nit"' in page and 'name="nombre"' in page and 'name="estado"' in page


def test_create_entity_redirects_to_it_and_audits(admin, client):
    response = client.post(NEW, data=entidad_form())

    assert response.status_code == 303
    entidad = Entidad.get(Entidad.nit == "8901020441")
    assert response.headers["Location"].endswith(f"/gestion/entidades/{entidad.id}")
    [event] = audit_rows("entidad.crear")
    assert (event.actor_id, event.target_id) == (admin.id, entidad.id)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Gimnasio Olas del Norte" in page and "registrada" in page


def test_create_entity_with_htmx_answers_hx_redirect(admin, client, htmx):
    response = client.post(NEW, data=entidad_form(), headers=htmx)

    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/gestion/entidades/")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"nit": "890102044-2"}, "El dígito de verificación del NIT no es válido."),
        ({"nit": "89O102044-1"}, "El NIT solo lleva números"),
        ({"nit": ""}, "Este campo es obligatorio."),
        ({"nombre": ""}, "Este campo es obligatorio."),
        ({"estado": "BORRADA"}, "Elija el estado: Activa o Inactiva."),
    ],
)
def test_bad_entity_answers_422_with_the_message_and_input_kept(admin, client, over, message):
    form = entidad_form(nombre="Gimnasio «Olas» & Cía")
    form.update(over)

    response = client.post(NEW, data=form)

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page
    assert 'aria-invalid="true"' in page
    if "nombre" not in over:
        assert "Gimnasio «Olas» &amp; Cía" in page
    if over.get("nit"):
        assert f'value="{over["nit"]}"' in page
    assert Entidad.select().count() == 0


def test_bad_entity_with_htmx_answers_the_form_partial(admin, client, htmx):
    response = client.post(NEW, data=entidad_form(nit="890102044-2"), headers=htmx)

    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="entidad-datos"' in body and "<html" not in body
    assert "dígito de verificación" in body


def test_duplicate_nit_is_refused_next_to_the_field(admin, client):
    make_entidad()

    response = client.post(NEW, data=entidad_form(nit="8901020441", nombre="Otra"))

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="nit-error"' in page
    assert "Ya hay una entidad registrada con este NIT." in page
    assert 'value="Otra"' in page
    assert Entidad.select().count() == 1


# --- edit ---------------------------------------------------------------------------------


def test_edit_entity_saves_and_audits_before_and_after(admin, client):
    entidad = make_entidad()
    url = f"/gestion/entidades/{entidad.id}"

    response = client.post(url, data={"nombre": "Gimnasio Olas S.A.S.", "estado": "INACTIVA"})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(url)
    changed = Entidad.get_by_id(entidad.id)
    assert (changed.nombre, changed.estado, changed.nit) == (
        "Gimnasio Olas S.A.S.",
        "INACTIVA",
        "8901020441",
    )
    [event] = audit_rows("entidad.editar")
    assert event.actor_id == admin.id
    assert json.loads(event.before) == {"nombre": "Gimnasio Olas del Norte", "estado": "ACTIVA"}
    assert json.loads(event.after) == {"nombre": "Gimnasio Olas S.A.S.", "estado": "INACTIVA"}


def test_edit_entity_cannot_change_the_nit(admin, client):
    entidad = make_entidad()

    client.post(
        f"/gestion/entidades/{entidad.id}",
        data={"nit": "8001234565", "nombre": "Otro", "estado": "ACTIVA"},
    )

    assert Entidad.get_by_id(entidad.id).nit == "8901020441"


def test_edit_entity_with_empty_name_answers_422(admin, client):
    entidad = make_entidad()

    response = client.post(
        f"/gestion/entidades/{entidad.id}", data={"nombre": " ", "estado": "ACTIVA"}
    )

    assert response.status_code == 422
    assert "Este campo es obligatorio." in response.get_data(as_text=True)
    assert audit_rows("entidad.editar") == []


def test_unknown_entity_is_404(admin, client):
    assert client.get("/gestion/entidades/999").status_code == 404
    assert client.get("/gestion/entidades/999/sedes/nueva").status_code == 404


# --- sedes ---------------------------------------------------------------------------------


def test_sede_form_groups_municipalities_by_department(admin, client):
    entidad = make_entidad()

    page = client.get(f"/gestion/entidades/{entidad.id}/sedes/nueva").get_data(as_text=True)

    assert '<optgroup label="ATLÁNTICO">' in page
    assert '<option value="08001">BARRANQUILLA</option>' in page
    assert "DANE" in page


def test_add_sede_then_edit_and_deactivate_it(admin, client):
    entidad = make_entidad()
    base = f"/gestion/entidades/{entidad.id}"

    response = client.post(f"{base}/sedes/nueva", data=sede_form())
    assert response.status_code == 303
    sede = Sede.get(Sede.entidad == entidad.id)
    assert (sede.codigo, sede.municipio, sede.activa) == ("GN-01", "08001", True)
    detail = client.get(base).get_data(as_text=True)
    assert "BARRANQUILLA (ATLÁNTICO)" in detail and "Sede Prado" in detail

    form = sede_form(codigo="GN-01", municipio="08758")
    assert client.post(f"{base}/sedes/{sede.id}", data=form).status_code == 303
    assert client.post(f"{base}/sedes/{sede.id}/desactivar").status_code == 303

    assert Sede.get_by_id(sede.id).municipio == "08758"
    assert Sede.get_by_id(sede.id).activa is False
    edits = audit_rows("sede.editar")
    assert [json.loads(e.after) for e in edits] == [{"municipio": "08758"}, {"activa": False}]
    assert len(audit_rows("sede.crear")) == 1

    assert client.post(f"{base}/sedes/{sede.id}/activar").status_code == 303
    assert Sede.get_by_id(sede.id).activa is True


def test_unchecked_box_saves_an_inactive_sede(admin, client):
    entidad = make_entidad()
    form = sede_form()
    del form["activa"]

    client.post(f"/gestion/entidades/{entidad.id}/sedes/nueva", data=form)

    assert Sede.get().activa is False


@pytest.mark.parametrize(
    ("over", "field_id", "message"),
    [
        ({"codigo": ""}, "codigo", "Este campo es obligatorio."),
        ({"codigo": "SEDE 1"}, "codigo", "sin espacios"),
        ({"nombre": ""}, "nombre", "Este campo es obligatorio."),
        ({"municipio": ""}, "municipio", "Seleccione el municipio."),
        ({"municipio": "99999"}, "municipio", "no es un municipio de la DIVIPOLA"),
        ({"direccion": "X" * 161}, "direccion", "160"),
    ],
)
def test_bad_sede_answers_422_next_to_the_field(admin, client, over, field_id, message):
    entidad = make_entidad()

    form = sede_form(nombre="Sede «Prado»")
    form.update(over)

    response = client.post(f"/gestion/entidades/{entidad.id}/sedes/nueva", data=form)

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field_id}-error"' in page
    assert message in page
    if "nombre" not in over:
        assert 'value="Sede «Prado»"' in page
    assert Sede.select().count() == 0


def test_duplicate_sede_code_is_refused_next_to_the_field(admin, client):
    entidad = make_entidad()
    cd.create_sede(None, entidad.id, "GN-01", "Sede Prado", "08001")

    response = client.post(f"/gestion/entidades/{entidad.id}/sedes/nueva", data=sede_form())

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="codigo-error"' in page
    assert "Esta entidad ya tiene una sede con este código." in page
    assert Sede.select().count() == 1


def test_sede_of_another_entity_is_404(admin, client):
    one = make_entidad()
    two = make_entidad("8001234565", "Colegio")
    sede = cd.create_sede(None, two.id, "S-1", "Principal", "13001")

    assert client.get(f"/gestion/entidades/{one.id}/sedes/{sede.id}").status_code == 404
    response = client.post(f"/gestion/entidades/{one.id}/sedes/{sede.id}/desactivar")
    assert response.status_code == 404
    assert Sede.get_by_id(sede.id).activa is True
