"""Convenios (H6) at the desk: the sede, the look-up, "Reportar Uso", quotas and what never shows."""

from __future__ import annotations

import re
import threading
from datetime import date

import pytest

import models
from core import convenios
from models import ConsultaConvenio, UserSession, UsoConvenio
from tests.factories import grant_convenios, make_afiliado, make_entidad, make_staff, make_user


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture()
def desk(app, client, auth):
    """A front-desk user granted two sedes of an entity, signed in, the first sede chosen."""
    entidad, (norte, sur, ajena) = make_entidad(nombre="Gimnasio Brío", sedes=3)
    user = make_user(email="mostrador@example.com")
    grant_convenios(user, [norte, sur])
    auth.login(client, user)
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post("/convenios/sede", data={"sede": norte.id, "csrf_token": csrf(page)})
    assert response.status_code == 303
    return type(
        "Desk", (), {"user": user, "norte": norte, "sur": sur, "ajena": ajena, "entidad": entidad}
    )


def token(client) -> str:
    return csrf(client.get("/convenios/").get_data(as_text=True))


def consultar(client, documento: str, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        "/convenios/consultar",
        data={"documento": documento, "csrf_token": token(client)},
        headers=headers,
    )


def clave_of(page: str) -> str:
    return re.search(r'name="clave"[^>]*value="([^"]+)"', page).group(1)


# --- access --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/convenios/", "/convenios/sede"])
def test_a_user_without_the_grant_gets_404(client, auth, path):
    auth.login(client, make_user())
    assert client.get(path).status_code == 404


def test_staff_get_404_and_the_anonymous_go_to_the_login(client, auth):
    assert client.get("/convenios/").status_code == 302
    auth.login(client, make_staff(roles=("convenios",)))
    assert client.get("/convenios/").status_code == 404


def test_several_sedes_ask_which_one_and_show_only_the_granted(app, client, auth):
    entidad, (a, b, c) = make_entidad(sedes=3)
    user = make_user()
    grant_convenios(user, [a, b])
    auth.login(client, user)
    response = client.get("/convenios/")
    assert response.status_code == 302 and response.location.endswith("/convenios/sede")
    page = client.get("/convenios/sede").get_data(as_text=True)
    assert "Elija el nombre de su sede en convenio" in page
    assert "Sede 1" in page and "Sede 2" in page and "Sede 3" not in page


def test_one_sede_is_chosen_without_asking(client, auth):
    _, (only,) = make_entidad(sedes=1)
    user = make_user()
    grant_convenios(user, [only])
    auth.login(client, user)
    page = client.get("/convenios/").get_data(as_text=True)
    assert "EMPRESAS EN CONVENIOS" in page and "Uso de Convenio!" in page
    assert "Sede 1" in page and "Cambiar sede" not in page
    assert UserSession.get(UserSession.account == user).convenio_sede_id == only.id


def test_the_chosen_sede_is_shown_on_every_page(desk, client):
    make_afiliado(numero_documento="71234599")
    clave = clave_of(consultar(client, "71234599").get_data(as_text=True))
    receipt = client.post("/convenios/reportar", data={"clave": clave, "csrf_token": token(client)})
    paths = ["/convenios/", "/convenios/sede", "/convenios/reporte", receipt.location]
    for path in paths:
        page = client.get(path).get_data(as_text=True)
        assert "Sede en convenio: <strong>Gimnasio Brío · Sede 1</strong>" in page, path


def test_choosing_a_sede_not_granted_is_404(desk, client):
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post(
        "/convenios/sede", data={"sede": desk.ajena.id, "csrf_token": csrf(page)}
    )
    assert response.status_code == 404
    assert UserSession.get(UserSession.account == desk.user).convenio_sede_id == desk.norte.id


@pytest.mark.parametrize("value", ["²", "١", "abc", "-1", "9" * 40])
def test_a_sede_that_is_no_number_is_refused_without_a_500(desk, client, value):
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post("/convenios/sede", data={"sede": value, "csrf_token": csrf(page)})
    assert response.status_code in (404, 422)


def test_choosing_no_sede_says_so(desk, client):
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post("/convenios/sede", data={"csrf_token": csrf(page)})
    assert response.status_code == 422
    assert "Elija la sede en la que está atendiendo." in response.get_data(as_text=True)


def test_choosing_a_sede_needs_the_csrf_token(app, desk, client):
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/convenios/sede", data={"sede": desk.sur.id}).status_code == 400


def test_a_sede_taken_away_sends_the_desk_back_to_the_picker(desk, client):
    models.AccesoSede.delete().where(models.AccesoSede.sede == desk.norte).execute()
    response = client.get("/convenios/")
    # Only one sede left: chosen for them.
    assert response.status_code == 200
    assert "Gimnasio Brío · Sede 2" in response.get_data(as_text=True)


def test_a_revoked_access_ends_the_convenios_work_at_the_next_click(desk, client):
    models.Acceso.delete().where(models.Acceso.account == desk.user).execute()
    assert client.get("/convenios/").status_code == 404
    assert client.post("/convenios/consultar", data={"documento": "123"}).status_code == 404
    assert ConsultaConvenio.select().count() == 0


# --- the look-up ---------------------------------------------------------------


def test_an_active_worker_shows_the_manuals_fields_in_order_and_the_button(desk, client):
    make_afiliado(
        numero_documento="71234567",
        primer_nombre="JOSÉ",
        segundo_nombre="LUIS",
        primer_apellido="ARIZA",
        segundo_apellido="DÍAZ",
        categoria="B",
        empresa_nombre="Comercial Andina S.A.S.",
    )
    response = consultar(client, "71.234.567")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    labels = [
        "INFORMACIÓN TRABAJADOR",
        "Cédula",
        "Nombre",
        "Primer Apellido",
        "Segundo Apellido",
        "Primer Nombre",
        "Segundo Nombre",
        "Estado Afiliado",
        "Tarifa",
        "INFORMACIÓN EMPRESA",
        "Nombre Empresa",
        "Estado Empresa",
        "Reportar Uso",
    ]
    result = page[page.index('id="resultado"') :]
    positions = [result.index(label) for label in labels]
    assert positions == sorted(positions)
    assert "JOSÉ LUIS ARIZA DÍAZ" in result and "Comercial Andina S.A.S." in result
    assert re.search(r"<dt>Tarifa</dt><dd><strong>B</strong>", result)
    assert 'value="71234567"' in page  # the input kept (normalised)


def test_htmx_gets_only_the_look_up_section(desk, client):
    make_afiliado(numero_documento="71234568")
    response = consultar(client, "71234568", htmx=True)
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<section class="panel" id="consulta"')
    assert "<html" not in page and "Uso de Convenio!" not in page
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize(
    ("fields", "estado", "why"),
    [
        ({"estado": "INACTIVO"}, "INACTIVO", "estado INACTIVO"),
        ({"estado": "RETIRADO"}, "RETIRADO", "estado RETIRADO"),
        ({"estado": "ACTIVO", "empresa_estado": "MORA"}, "ACTIVO", "inactiva o en mora"),
        ({"estado": "ACTIVO", "empresa_estado": "INACTIVA"}, "ACTIVO", "estado INACTIVA"),
    ],
)
def test_without_the_benefit_an_alert_says_why_and_there_is_no_button(
    desk, client, fields, estado, why
):
    make_afiliado(numero_documento="72000001", categoria="A", **fields)
    page = consultar(client, "72000001").get_data(as_text=True)
    assert "No se prestará el servicio bajo tarifas preferenciales." in page
    assert why in page
    assert re.search(rf"<dt>Estado Afiliado</dt><dd><strong>{estado}</strong>", page)
    assert re.search(r"<dt>Tarifa</dt><dd><strong>D</strong>", page)
    assert "Reportar Uso</button>" not in page and 'name="clave"' not in page


def test_a_document_not_in_the_caja_is_tarifa_d_plainly(desk, client):
    page = consultar(client, "99999999").get_data(as_text=True)
    assert "no se encuentra afiliada a la Caja de Compensación Familiar" in page
    assert re.search(r"<dt>Tarifa</dt><dd><strong>D</strong>", page)
    assert "NO AFILIADO" in page and "Reportar Uso</button>" not in page
    assert "INFORMACIÓN EMPRESA" not in page


def test_an_active_worker_without_a_category_still_gets_d_not_a_blank(desk, client):
    make_afiliado(numero_documento="72000002", categoria="")
    page = consultar(client, "72000002").get_data(as_text=True)
    assert re.search(r"<dt>Tarifa</dt><dd><strong>D</strong>", page)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Este campo es obligatorio."),
        ("12ab45", "La cédula debe tener solo números"),
        ("1" * 16, "La cédula debe tener solo números"),
        ("<script>", "La cédula debe tener solo números"),
    ],
)
def test_a_bad_cedula_is_told_next_to_the_field_and_kept(desk, client, typed, message):
    response = consultar(client, typed)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page and 'id="documento-error"' in page
    assert "<script>" not in page.split('id="consulta"')[1]
    assert ConsultaConvenio.select().count() == 0


def test_every_look_up_is_logged_with_operator_sede_document_result(desk, client):
    make_afiliado(numero_documento="73000001", estado="RETIRADO")
    consultar(client, "73000001")
    consultar(client, "1234567")
    rows = list(ConsultaConvenio.select().order_by(ConsultaConvenio.id))
    assert [(r.numero_documento, r.resultado) for r in rows] == [
        ("73000001", ConsultaConvenio.AFILIADO_INACTIVO),
        ("1234567", ConsultaConvenio.NO_AFILIADO),
    ]
    assert {(r.account_id, r.sede_id, r.entidad_id) for r in rows} == {
        (desk.user.id, desk.norte.id, desk.entidad.id)
    }


def test_the_look_up_log_cannot_be_changed(desk, client):
    consultar(client, "1234567")
    row = ConsultaConvenio.get()
    row.resultado = ConsultaConvenio.ACTIVO
    with pytest.raises(PermissionError):
        row.save()


# What the partner must never see of an affiliate (table-driven over the private fields).
PRIVATE = {
    "fecha_nacimiento": date(1977, 3, 19),
    "email": "secreto.privado@example.org",
    "celular": "3119876501",
    "telefono": "6054443322",
    "profesion": "Astrofísico nuclear",
    "conyuge_celular": "3128887766",
    "conyuge_profesion": "Domadora de leones",
    "conyuge_cargo": "Jefa de pista",
    "fecha_ingreso_empresa": date(2011, 8, 23),
    "empresa_nit": "8605551239",
}


def _shapes(name: str, value) -> list[str]:
    if isinstance(value, date):
        return [value.strftime("%d/%m/%Y"), value.isoformat(), value.strftime("%Y")]
    return [value]


@pytest.mark.parametrize("field", sorted(PRIVATE))
@pytest.mark.parametrize("estado", ["ACTIVO", "RETIRADO"])
def test_the_page_never_shows_a_private_field(desk, client, field, estado):
    make_afiliado(numero_documento="74000001", estado=estado, **PRIVATE)
    pages = [consultar(client, "74000001", htmx=h).get_data(as_text=True) for h in (False, True)]
    if estado == "ACTIVO":
        reply = client.post(
            "/convenios/reportar",
            data={"clave": clave_of(pages[0]), "csrf_token": token(client)},
            follow_redirects=True,
        )
        pages.append(reply.get_data(as_text=True))
    for page in pages:
        for shape in _shapes(field, PRIVATE[field]):
            assert shape not in page, (field, shape)


# --- Reportar Uso --------------------------------------------------------------


def test_reportar_uso_records_one_use_and_shows_a_receipt(desk, client):
    make_afiliado(numero_documento="75000001", primer_nombre="MARTA", categoria="C")
    page = consultar(client, "75000001").get_data(as_text=True)
    response = client.post(
        "/convenios/reportar", data={"clave": clave_of(page), "csrf_token": token(client)}
    )
    assert response.status_code == 303
    uso = UsoConvenio.get()
    assert response.location.endswith(f"/convenios/recibo/{uso.numero}?repetido=0")
    receipt = client.get(response.location).get_data(as_text=True)
    assert "Uso de convenio registrado" in receipt and uso.numero in receipt
    assert "Se registró el uso del convenio." in receipt
    assert (uso.account_id, uso.sede_id, uso.entidad_id) == (
        desk.user.id,
        desk.norte.id,
        desk.entidad.id,
    )
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", uso.numero)


def test_htmx_swaps_the_receipt_in_place(desk, client):
    make_afiliado(numero_documento="75000002")
    page = consultar(client, "75000002", htmx=True).get_data(as_text=True)
    response = client.post(
        "/convenios/reportar",
        data={"clave": clave_of(page), "csrf_token": token(client)},
        headers={"HX-Request": "true"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Recibo N.º" in body and "<html" not in body


def test_a_resubmit_after_the_back_button_records_nothing_more(desk, client):
    make_afiliado(numero_documento="75000003")
    page = consultar(client, "75000003").get_data(as_text=True)
    form = {"clave": clave_of(page), "csrf_token": token(client)}
    first = client.post("/convenios/reportar", data=form)
    again = client.post("/convenios/reportar", data=form)
    assert UsoConvenio.select().count() == 1
    numero = UsoConvenio.get().numero
    assert again.location.endswith(f"/convenios/recibo/{numero}?repetido=1")
    assert first.location.split("?")[0] == again.location.split("?")[0]
    assert "Este uso ya estaba registrado" in client.get(again.location).get_data(as_text=True)


def test_a_replay_from_a_fresh_session_of_another_operator_is_404(desk, app, client, auth):
    make_afiliado(numero_documento="75000004")
    page = consultar(client, "75000004").get_data(as_text=True)
    clave = clave_of(page)
    other = make_user()
    grant_convenios(other, [desk.norte])
    other_client = app.test_client()
    auth.login(other_client, other)
    other_client.get("/convenios/sede")
    form_page = other_client.get("/convenios/sede").get_data(as_text=True)
    other_client.post(
        "/convenios/sede", data={"sede": desk.norte.id, "csrf_token": csrf(form_page)}
    )
    response = other_client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": token(other_client)}
    )
    assert response.status_code == 404 and UsoConvenio.select().count() == 0


def test_a_look_up_at_one_sede_cannot_be_reported_at_another(desk, client):
    make_afiliado(numero_documento="75000005")
    clave = clave_of(consultar(client, "75000005").get_data(as_text=True))
    page = client.get("/convenios/sede").get_data(as_text=True)
    client.post("/convenios/sede", data={"sede": desk.sur.id, "csrf_token": csrf(page)})
    response = client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": token(client)}
    )
    assert response.status_code == 404 and UsoConvenio.select().count() == 0


def test_a_made_up_key_or_no_key_is_404(desk, client):
    for clave in ("x" * 22, "", "y" * 300):
        response = client.post(
            "/convenios/reportar", data={"clave": clave, "csrf_token": token(client)}
        )
        assert response.status_code == 404
    assert UsoConvenio.select().count() == 0


def test_reportar_uso_needs_the_csrf_token(app, desk, client):
    make_afiliado(numero_documento="75000006")
    clave = clave_of(consultar(client, "75000006").get_data(as_text=True))
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/convenios/reportar", data={"clave": clave}).status_code == 400
    assert UsoConvenio.select().count() == 0


def test_a_key_of_a_look_up_without_benefit_records_nothing(desk, client):
    make_afiliado(numero_documento="75000007", estado="INACTIVO")
    consultar(client, "75000007")
    clave = ConsultaConvenio.get().clave
    response = client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": token(client)}
    )
    assert response.status_code == 409
    assert "no se puede reportar uso" in response.get_data(as_text=True)
    assert UsoConvenio.select().count() == 0


def test_an_old_look_up_asks_for_a_new_one(desk, client, clock):
    make_afiliado(numero_documento="75000008")
    clave = clave_of(consultar(client, "75000008").get_data(as_text=True))
    consulta = ConsultaConvenio.get(ConsultaConvenio.clave == clave)
    clock.advance(seconds=convenios.USE_WINDOW.total_seconds() + 60)
    with pytest.raises(convenios.UseRefused, match="Consulte de nuevo"):
        convenios.report_use(consulta)
    assert UsoConvenio.select().count() == 0


def test_a_receipt_is_only_its_operators(desk, app, client, auth):
    make_afiliado(numero_documento="75000009")
    clave = clave_of(consultar(client, "75000009").get_data(as_text=True))
    client.post("/convenios/reportar", data={"clave": clave, "csrf_token": token(client)})
    numero = UsoConvenio.get().numero
    other = make_user()
    grant_convenios(other, [desk.norte])
    other_client = app.test_client()
    auth.login(other_client, other)
    assert other_client.get(f"/convenios/recibo/{numero}").status_code == 404
    assert client.get(f"/convenios/recibo/{numero}").status_code == 200
    assert client.get("/convenios/recibo/ZZZZ-ZZZZ").status_code == 404


def _race(step, threads: int = 8, own_connection: bool = True) -> list:
    """Run step in threads started together; own_connection: each opens its own (the app does
    that itself for a request)."""
    start = threading.Barrier(threads, timeout=30)
    answers, errors = [], []

    def run() -> None:
        try:
            start.wait()
            if not own_connection:
                answers.append(step())
                return
            with models.db.connection_context():
                answers.append(step())
        except Exception as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    return answers


def test_concurrent_submits_of_one_form_record_one_use(desk, app, client):
    make_afiliado(numero_documento="75000010")
    clave = clave_of(consultar(client, "75000010").get_data(as_text=True))
    consulta = ConsultaConvenio.get(ConsultaConvenio.clave == clave)
    models.db.close()
    answers = _race(lambda: convenios.report_use(consulta))
    assert UsoConvenio.select().count() == 1
    assert len({uso.numero for uso, _ in answers}) == 1
    assert [created for _, created in answers].count(True) == 1


def test_concurrent_http_submits_of_one_form_record_one_use(desk, app, client):
    make_afiliado(numero_documento="75000011")
    clave = clave_of(consultar(client, "75000011").get_data(as_text=True))
    form = {"clave": clave, "csrf_token": token(client)}
    with client.session_transaction() as s:
        cookie_session = dict(s)
    models.db.close()

    def submit():
        c = app.test_client()
        with c.session_transaction() as s:
            s.update(cookie_session)
        return c.post("/convenios/reportar", data=form).status_code

    assert set(_race(submit, threads=6, own_connection=False)) == {303}
    assert UsoConvenio.select().count() == 1


# --- quotas ----------------------------------------------------------------------


def test_the_operators_burst_quota_stops_look_ups_with_when_to_try_again(app, desk, client):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 3
    for i in range(3):
        assert consultar(client, f"1000{i}").status_code == 200
    response = consultar(client, "10009")
    page = response.get_data(as_text=True)
    assert response.status_code == 429
    assert "Se alcanzó el límite de consultas" in page and "Podrá consultar de nuevo a las" in page
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert "INFORMACIÓN TRABAJADOR" not in page
    refused = ConsultaConvenio.select().order_by(ConsultaConvenio.id.desc()).first()
    assert refused.resultado == ConsultaConvenio.LIMITE and refused.numero_documento == "10009"


def test_the_quota_comes_back_after_its_window(app, desk, client, clock):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 1
    assert consultar(client, "20001").status_code == 200
    assert consultar(client, "20002").status_code == 429
    clock.advance(seconds=61)
    assert consultar(client, "20003").status_code == 200


def test_the_daily_quota_names_the_hour(app, desk, client):
    app.config["CONVENIOS_LOOKUPS_USER_DAY"] = 2
    consultar(client, "30001")
    consultar(client, "30002")
    page = consultar(client, "30003").get_data(as_text=True)
    assert "horas" in page or "minutos" in page


def test_the_entitys_quota_is_shared_by_all_its_desks(app, desk, client, auth):
    app.config["CONVENIOS_LOOKUPS_ENTITY_MINUTE"] = 2
    other = make_user()
    grant_convenios(other, [desk.sur])
    other_client = app.test_client()
    auth.login(other_client, other)
    assert consultar(client, "40001").status_code == 200
    assert consultar(other_client, "40002").status_code == 200
    assert consultar(other_client, "40003").status_code == 429
    assert consultar(client, "40004").status_code == 429


def test_another_entitys_desks_have_their_own_budget(app, desk, client, auth):
    app.config["CONVENIOS_LOOKUPS_ENTITY_MINUTE"] = 1
    _, (lejana,) = make_entidad(nombre="Colegio Otro", sedes=1)
    other = make_user()
    grant_convenios(other, [lejana])
    other_client = app.test_client()
    auth.login(other_client, other)
    assert consultar(client, "50001").status_code == 200
    assert consultar(other_client, "50002").status_code == 200


def test_a_session_signed_in_before_the_grant_gets_the_shared_pc_idle_limit(app, client, auth):
    user = make_user()
    auth.login(client, user)  # not yet granted: the personal idle limit
    row = UserSession.get(UserSession.account == user)
    assert row.idle_seconds == app.config["IDLE_MINUTES"] * 60
    _, (only,) = make_entidad(sedes=1)
    grant_convenios(user, [only])
    assert client.get("/convenios/").status_code == 200
    row = UserSession.get_by_id(row.id)
    assert row.idle_seconds == app.config["IDLE_MINUTES_SHARED"] * 60
    assert row.convenio_sede_id == only.id


def test_a_file_where_the_cedula_belongs_is_refused_plainly(desk, client):
    import io

    response = client.post(
        "/convenios/consultar",
        data={"documento": (io.BytesIO(b"71234567"), "cedulas.csv"), "csrf_token": token(client)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Este campo es obligatorio." in response.get_data(as_text=True)
    assert ConsultaConvenio.select().count() == 0
