"""H6 from staff's side (role convenios): who is granted CONVENIOS, revoking a grant, the look-up log."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta

import pytest

import models
from blueprints.gestion import convenios as views
from blueprints.gestion import convenios_service as service
from blueprints.queue import keyset
from core import audit, colombia, convenios
from core.db import is_sqlite
from models import (
    Acceso,
    AccesoSede,
    AuditEvent,
    ConsultaConvenio,
    Message,
    UserSession,
)
from tests.factories import grant_convenios, make_afiliado, make_entidad, make_staff, make_user

ACCESOS = "/gestion/convenios/accesos"
CONSULTAS = "/gestion/convenios/consultas"
BASE = "http://localhost"
MOTIVO = "La entidad terminó el convenio con la Caja."
LIMITS = convenios.Limits(
    user_burst=10_000, user_day=10_000, entity_burst=10_000, entity_day=10_000
)


@pytest.fixture
def staff(db):
    return make_staff(roles=("convenios",), email="carla@cajacopi.example", nombre="Carla Ruiz")


@pytest.fixture
def staff_client(client, auth, staff):
    return auth.login(client, staff)


@pytest.fixture
def desk(db):
    """Marta, granted two of the three sedes of Gimnasio Brío."""
    entidad, (norte, sur, ajena) = make_entidad(nombre="Gimnasio Brío", sedes=3)
    user = make_user(primer_nombre="MARTA", primer_apellido="ROJAS", email="marta@example.com")
    grant_convenios(user, [norte, sur])
    acceso = Acceso.get(Acceso.account == user)
    return type(
        "Desk",
        (),
        {"user": user, "entidad": entidad, "norte": norte, "sur": sur, "acceso": acceso},
    )


def grant_page(client, acceso_id):
    return client.get(f"{ACCESOS}/{acceso_id}")


def retirar(client, acceso_id, motivo=MOTIVO, **extra):
    return client.post(f"{ACCESOS}/{acceso_id}/retirar", data={"motivo": motivo, **extra})


def audit_rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def look_up(user, sede, cedula: str) -> ConsultaConvenio:
    """A look-up at a desk through core.convenios, logged as the desk logs it."""
    consulta, _ = convenios.lookup(user, sede, cedula, LIMITS)
    return consulta


# --- who may come in ------------------------------------------------------------------


def _paths(desk) -> list[tuple[str, str]]:
    return [
        ("get", ACCESOS),
        ("get", f"{ACCESOS}/{desk.acceso.id}"),
        ("post", f"{ACCESOS}/{desk.acceso.id}/retirar"),
        ("get", CONSULTAS),
        ("get", f"{CONSULTAS}?cedula=71234567"),
    ]


def test_the_anonymous_go_to_the_staff_login(client, desk):
    for method, path in _paths(desk):
        response = getattr(client, method)(path, data={"motivo": MOTIVO})
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/gestion/ingresar"), path


@pytest.mark.parametrize("who", ["admin", "afiliaciones", "hanna", "granted_hanna"])
def test_everyone_but_the_convenios_role_gets_404_and_changes_nothing(client, auth, desk, who):
    if who == "hanna":
        auth.login(client, make_user())
    elif who == "granted_hanna":
        auth.login(client, desk.user)  # the granted user themself
    else:
        auth.login(client, make_staff(roles=(who,)))
    for method, path in _paths(desk):
        response = getattr(client, method)(path, data={"motivo": MOTIVO})
        assert response.status_code == 404, (who, path)
    assert Acceso.select().count() == 1
    assert AuditEvent.select().count() == 0
    assert Message.select().count() == 0


def test_staff_without_the_second_factor_are_sent_to_sign_in(client, auth, staff, desk):
    auth.login(client, staff, second_factor=False)
    assert client.get(ACCESOS).status_code in (302, 303)
    assert retirar(client, desk.acceso.id).status_code in (302, 303)
    assert Acceso.select().count() == 1


def test_the_convenios_role_sees_both_sections_and_the_entities_in_the_menu(staff_client):
    page = staff_client.get("/gestion/").text
    for label in ("Accesos a Convenios", "Consultas de convenio", "Entidades en convenio"):
        assert label in page
    assert staff_client.get("/gestion/entidades").status_code == 200


def test_admins_manage_entities_but_not_the_grants_or_the_log(client, auth, desk):
    auth.login(client, make_staff(roles=("admin",)))
    page = client.get("/gestion/").text
    assert "Entidades en convenio" in page
    assert "Accesos a Convenios" not in page and "Consultas de convenio" not in page
    entity = client.get(f"/gestion/entidades/{desk.entidad.id}").text
    # The entity's users are listed, without links to a page the admin may not open.
    assert "Usuarios con acceso" in entity and "marta@example.com" in entity
    assert f"{ACCESOS}/{desk.acceso.id}" not in entity


# --- the grants list --------------------------------------------------------------------


def test_the_list_shows_user_entity_sedes_and_date_newest_first(staff_client, desk, clock):
    Acceso.update(created_at=datetime(2026, 3, 1, 12, 0)).execute()  # Marta's, the older one
    clock.set(datetime(2026, 3, 14, 9, 30))
    other_entidad, (centro,) = make_entidad(nombre="Colegio Andino", sedes=1)
    newer = make_user(primer_nombre="LUIS", primer_apellido="PAZ", email="luis@example.com")
    grant_convenios(newer, [centro])
    page = staff_client.get(ACCESOS)
    assert page.status_code == 200
    text = page.text
    assert "2 resultados" in text
    assert text.index("luis@example.com") < text.index("marta@example.com")
    row = text[text.index("luis@example.com") - 200 : text.index("luis@example.com") + 600]
    assert "Luis Paz" in row and "Colegio Andino" in row and "14/03/2026 09:30" in row
    marta = text[text.index("marta@example.com") :]
    assert "Sede 1<br>Sede 2" in marta and "Sede 3" not in marta
    assert f'href="{ACCESOS}/{desk.acceso.id}"' in text


def test_the_list_filters_by_entity_and_by_email_or_name(staff_client, desk):
    _, (centro,) = make_entidad(nombre="Colegio Andino", sedes=1)
    luis = make_user(primer_nombre="LUIS", primer_apellido="PAZ", email="luis@example.com")
    grant_convenios(luis, [centro])

    by_entity = staff_client.get(f"{ACCESOS}?entidad={desk.entidad.id}").text
    assert "marta@example.com" in by_entity and "luis@example.com" not in by_entity
    for q in ("marta@", "rojas", "Marta Rojas"):
        found = staff_client.get(ACCESOS, query_string={"q": q}).text
        assert "marta@example.com" in found and "luis@example.com" not in found, q
    nothing = staff_client.get(ACCESOS, query_string={"q": "%"}).text
    assert "No hay usuarios con acceso a Convenios con esos filtros." in nothing


def test_a_grant_with_sedes_of_a_second_entity_is_listed_under_both(staff_client, desk):
    other, (centro,) = make_entidad(nombre="Colegio Andino", sedes=1)
    AccesoSede.create(acceso=desk.acceso, sede=centro)  # a later approval adds its sedes
    listed = staff_client.get(f"{ACCESOS}?entidad={other.id}").text
    assert "marta@example.com" in listed and "Colegio Andino · Sede 1" in listed


@pytest.mark.parametrize(
    "query, message",
    [
        ("entidad=abc", "Elija una entidad de la lista."),
        ("entidad=999999", "Elija una entidad de la lista."),
        ("q=" + "x" * 101, "El campo no puede tener más de 100 caracteres."),
    ],
)
def test_bad_list_filters_are_422_next_to_the_field(staff_client, desk, query, message):
    response = staff_client.get(f"{ACCESOS}?{query}")
    assert response.status_code == 422
    field = query.split("=")[0]
    assert f'<p class="error" id="{field}-error">{message}</p>' in response.text
    assert f'value="{query.split("=")[1]}"' in response.text or field == "entidad"
    assert "marta@example.com" not in response.text


def test_the_list_pages_with_ver_mas(staff_client, db, monkeypatch, clock, htmx):
    monkeypatch.setattr(views, "GRANTS_PER_PAGE", 2)
    _, (sede,) = make_entidad(sedes=1)
    for name in ("ana", "beto", "caro"):
        grant_convenios(make_user(email=f"{name}@example.com"), [sede])
        clock.advance(minutes=1)
    first = staff_client.get(ACCESOS).text
    assert "caro@example.com" in first and "beto@example.com" in first
    assert "ana@example.com" not in first and "3 resultados" in first
    more = re.search(r'href="(/gestion/convenios/accesos\?[^"]*despues=[^"]+)"', first).group(1)
    rows = staff_client.get(more.replace("&amp;", "&"), headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert "ana@example.com" in rows.text and "caro@example.com" not in rows.text
    assert "HX-Request" in rows.headers["Vary"]
    assert staff_client.get(f"{ACCESOS}?despues=nada").status_code == 303


def test_the_entity_page_lists_its_users_linking_to_each_grant(staff_client, desk):
    page = staff_client.get(f"/gestion/entidades/{desk.entidad.id}").text
    section = page[page.index("Usuarios con acceso") :]
    assert f'href="{ACCESOS}/{desk.acceso.id}"' in section
    assert "Marta Rojas" in section and "Sede 1, Sede 2" in section


# --- one grant ----------------------------------------------------------------------------


def test_the_grant_page_shows_the_user_the_sedes_and_the_form(staff_client, desk):
    page = grant_page(staff_client, desk.acceso.id)
    assert page.status_code == 200
    text = page.text
    assert "Marta Rojas" in text and "marta@example.com" in text and "Gimnasio Brío" in text
    assert "Sede 1<br>Sede 2" in text and "Sede 3" not in text
    assert "Retirar acceso" in text and 'name="motivo"' in text
    assert f'name="cuenta" type="hidden" value="{desk.user.id}"' in text


def test_an_unknown_grant_is_404(staff_client, db):
    assert grant_page(staff_client, 999).status_code == 404
    assert retirar(staff_client, 999).status_code == 404
    assert AuditEvent.select().count() == 0


def test_a_grant_of_another_application_is_404(staff_client, db):
    other = Acceso.create(account=make_user(), aplicacion="otra")
    assert grant_page(staff_client, other.id).status_code == 404
    assert retirar(staff_client, other.id).status_code == 404
    assert Acceso.get_or_none(Acceso.id == other.id) is not None


# --- revoking --------------------------------------------------------------------------------


def desk_session(app, auth, desk):
    """Marta signed in on her own browser, working for Sede 1 in Convenios."""
    browser = app.test_client()
    auth.login(browser, desk.user)
    session = UserSession.get(UserSession.account == desk.user)
    convenios.choose_sede(session.id, desk.norte)
    assert browser.get("/convenios/").status_code == 200
    return browser


def test_revoking_removes_the_grant_and_ends_the_convenios_work(app, auth, staff_client, desk):
    browser = desk_session(app, auth, desk)
    other_browser = app.test_client()
    auth.login(other_browser, desk.user)
    shown = grant_page(staff_client, desk.acceso.id).text
    assert "<dt>Sesiones abiertas en Convenios</dt><dd>1</dd>" in shown

    response = retirar(staff_client, desk.acceso.id, cuenta=str(desk.user.id))

    assert response.status_code == 303
    assert response.headers["Location"].endswith(ACCESOS)
    assert Acceso.select().count() == 0
    assert AccesoSede.select().count() == 0
    sessions = list(UserSession.select().where(UserSession.account == desk.user))
    assert len(sessions) == 2 and all(s.convenio_sede_id is None for s in sessions)
    assert convenios.granted_sedes(desk.user) == []
    assert browser.get("/convenios/").status_code == 404
    assert browser.post("/convenios/consultar", data={"documento": "71234567"}).status_code == 404
    assert ConsultaConvenio.select().count() == 0
    # Hanna itself keeps working: only Convenios ended.
    assert browser.get("/inicio").status_code == 200
    listed = staff_client.get(ACCESOS).text
    assert "Acceso retirado: marta@example.com" in listed
    assert f'href="{ACCESOS}/{desk.acceso.id}"' not in listed
    (row,) = audit_rows("convenio.acceso.retirar")
    assert json.loads(row.after)["sesiones_en_convenios"] == 1


def test_the_revocation_is_audited_with_entity_sedes_and_motivo_and_no_secrets(
    staff_client, staff, desk
):
    retirar(staff_client, desk.acceso.id, cuenta=str(desk.user.id))

    (row,) = audit_rows("convenio.acceso.retirar")
    assert row.actor_id == staff.id and row.actor_label == "carla@cajacopi.example"
    assert (row.target_type, row.target_id) == ("acceso", desk.acceso.id)
    before, after = json.loads(row.before), json.loads(row.after)
    assert before["usuario_id"] == desk.user.id and before["usuario"] == "marta@example.com"
    assert before["entidad_id"] == desk.entidad.id and before["entidad"] == "Gimnasio Brío"
    assert before["sedes"] == ["Sede 1", "Sede 2"]
    assert before["sede_ids"] == [desk.norte.id, desk.sur.id]
    assert after == {"motivo": MOTIVO, "sesiones_en_convenios": 0}
    assert not any(audit.is_secret(k) for k in (*before, *after))
    stored = row.before + row.after
    assert desk.user.session_token not in stored and desk.user.password_hash not in stored
    assert row.ip == "127.0.0.1"


def test_the_user_is_told_by_email_why(staff_client, desk, outbox):
    retirar(staff_client, desk.acceso.id)

    (mail,) = outbox.all("email")
    assert mail.recipient == "marta@example.com"
    assert mail.subject == "Su acceso a la aplicación CONVENIOS fue retirado"
    assert "Estimado(a) Marta:" in mail.body_text
    assert "Gimnasio Brío" in mail.body_text and f"Motivo: {MOTIVO}" in mail.body_text
    assert "http://localhost/" in mail.body_text


def test_a_second_revoke_says_it_was_already_revoked(staff_client, desk, outbox):
    assert retirar(staff_client, desk.acceso.id).status_code == 303
    again = retirar(staff_client, desk.acceso.id)

    assert again.status_code == 410
    assert "Este acceso ya fue retirado" in again.text
    assert "carla@cajacopi.example" in again.text and MOTIVO in again.text
    assert "Sede 1, Sede 2" in again.text
    assert grant_page(staff_client, desk.acceso.id).status_code == 410
    assert len(audit_rows("convenio.acceso.retirar")) == 1
    assert len(outbox.all("email")) == 1


def test_a_replayed_form_never_revokes_a_newer_grant_for_someone_else(staff_client, desk):
    stranger = make_user(email="otro@example.com")
    response = retirar(staff_client, desk.acceso.id, cuenta=str(stranger.id))
    assert response.status_code == 404  # the form was shown for another account's grant
    assert Acceso.select().count() == 1
    assert AuditEvent.select().count() == 0


def test_two_staff_revoking_at_once_revoke_once(app, db, desk):
    """Two threads, each with its own connection, race the same grant."""
    actors = [make_staff(roles=("convenios",)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def revoke(actor):
        models.db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=5)
            service.revoke(actor, desk.acceso.id, MOTIVO, base_url=BASE)
            outcomes.append("won")
        except service.AccessGone:
            outcomes.append("gone")
        finally:
            models.db.close()

    threads = [threading.Thread(target=revoke, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["gone", "won"]
    with models.db.connection_context():
        assert Acceso.select().count() == 0
        assert len(audit_rows("convenio.acceso.retirar")) == 1
        assert Message.select().count() == 1


@pytest.mark.parametrize(
    "motivo, message",
    [
        ("", "Escriba el motivo del retiro."),
        ("   ", "Escriba el motivo del retiro."),
        ("Corto", "El motivo debe tener entre 10 y 500 caracteres."),
        ("x" * 501, "El motivo debe tener entre 10 y 500 caracteres."),
    ],
)
def test_a_bad_motivo_is_422_next_to_the_field_with_the_input_kept(
    staff_client, desk, outbox, motivo, message
):
    response = retirar(staff_client, desk.acceso.id, motivo=motivo)
    assert response.status_code == 422
    assert f'<p class="error" id="motivo-error">{message}</p>' in response.text
    if motivo.strip():
        assert re.search(rf">\s*{motivo}</textarea>", response.text)
    assert f'name="cuenta" type="hidden" value="{desk.user.id}"' in response.text
    assert Acceso.select().count() == 1
    assert AuditEvent.select().count() == 0 and outbox.all() == []


def test_the_service_refuses_a_bad_motivo_too(db, staff, desk):
    with pytest.raises(service.InvalidMotivo):
        service.revoke(staff, desk.acceso.id, "corto", base_url=BASE)
    assert Acceso.select().count() == 1


def test_revoking_needs_the_csrf_token(app, staff_client, desk):
    app.config["WTF_CSRF_ENABLED"] = True
    assert retirar(staff_client, desk.acceso.id).status_code == 400
    assert Acceso.select().count() == 1


def test_revoking_with_the_token_of_the_page_works(app, staff_client, desk):
    app.config["WTF_CSRF_ENABLED"] = True
    page = grant_page(staff_client, desk.acceso.id).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = retirar(staff_client, desk.acceso.id, csrf_token=token, cuenta=str(desk.user.id))
    assert response.status_code == 303 and Acceso.select().count() == 0


def test_a_revoked_user_sees_the_tile_to_request_again(app, auth, staff_client, desk):
    retirar(staff_client, desk.acceso.id)
    browser = app.test_client()
    auth.login(browser, desk.user)
    assert ">Solicitar</a>" in browser.get("/inicio").text


# --- the look-up log ----------------------------------------------------------------------


@pytest.fixture
def log(desk, clock):
    """Look-ups at two entities: two of the same cédula, one with a reported use."""
    make_afiliado(numero_documento="71234567")
    make_afiliado(numero_documento="80000001", estado="INACTIVO")
    clock.set(datetime(2026, 3, 10, 8, 15))
    first = look_up(desk.user, desk.norte, "71234567")
    clock.set(datetime(2026, 3, 12, 17, 45))
    used = look_up(desk.user, desk.sur, "71.234.567")
    uso, _ = convenios.report_use(used)
    other_entidad, (centro,) = make_entidad(nombre="Colegio Andino", sedes=1)
    luis = make_user(email="luis@example.com")
    grant_convenios(luis, [centro])
    clock.set(datetime(2026, 3, 13, 10, 0))
    inactive = look_up(luis, centro, "80000001")
    return type(
        "Log",
        (),
        {
            "first": first,
            "used": used,
            "uso": uso,
            "inactive": inactive,
            "other": other_entidad,
            "luis": luis,
        },
    )


def rows_of(html: str) -> list[str]:
    body = html[html.index('<tbody id="filas-consultas">') : html.index("</tbody>")]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_the_log_lists_every_look_up_newest_first_in_bogota_time(staff_client, log):
    page = staff_client.get(CONSULTAS)
    assert page.status_code == 200
    fields = ("cedula", "entidad", "operador", "resultado", "desde", "hasta")
    at = [page.text.index(f'for="{name}"') for name in fields]
    assert at == sorted(at)  # the filters in the order staff ask the question
    rows = rows_of(page.text)
    assert len(rows) == 3 and "3 resultados" in page.text
    assert "80000001" in rows[0] and "Colegio Andino" in rows[0] and "luis@example.com" in rows[0]
    assert "Afiliado no activo" in rows[0] and "<td>—</td>" in rows[0]
    cells = re.findall(r"<td>(.*?)</td>", rows[1])
    assert cells == [
        "12/03/2026 17:45",
        "Gimnasio Brío",
        "Sede 2",
        "marta@example.com",
        "71234567",
        "Con beneficio",
        log.uso.numero,
    ]
    assert "10/03/2026 08:15" in rows[2] and "<td>—</td>" in rows[2]


def test_the_log_searched_by_cedula_shows_who_consulted_it(staff_client, log):
    page = staff_client.get(CONSULTAS, query_string={"cedula": "71.234.567"})
    rows = rows_of(page.text)
    assert len(rows) == 2 and all("71234567" in r and "marta@example.com" in r for r in rows)
    assert 'value="71234567"' in page.text  # normalised and kept


def test_a_search_by_cedula_is_audited_and_so_is_browsing_with_the_cedulas_shown(
    staff_client, staff, log
):
    staff_client.get(CONSULTAS, query_string={"entidad": log.other.id})
    (browse,) = audit_rows("convenio.consultas.buscar")
    assert (browse.target_type, browse.target_id) == ("consultas_convenio", 0)
    shown = json.loads(browse.after)
    assert shown["filas_mostradas"] >= 1 and shown["cedulas_mostradas"]
    assert all(c.isdigit() for c in shown["cedulas_mostradas"])
    browse_id = browse.id

    staff_client.get(CONSULTAS, query_string={"cedula": "71234567", "desde": "01/03/2026"})

    (row,) = [r for r in audit_rows("convenio.consultas.buscar") if r.id != browse_id]
    assert row.actor_id == staff.id and row.actor_label == "carla@cajacopi.example"
    assert (row.target_type, row.target_id) == ("cedula", 71234567)
    assert json.loads(row.after) == {
        "cedula": "71234567",
        "desde": "2026-03-01",
        "filas_mostradas": 2,
    }
    assert row.before is None and row.ip == "127.0.0.1"


def test_a_cedula_too_long_for_the_target_id_is_audited_in_full(staff_client, log):
    staff_client.get(CONSULTAS, query_string={"cedula": "123456789012345"})
    (row,) = audit_rows("convenio.consultas.buscar")
    assert row.target_id == 0 and json.loads(row.after)["cedula"] == "123456789012345"


@pytest.mark.parametrize(
    "query, count",
    [
        ({"entidad": "other"}, 1),
        ({"operador": "MARTA@example.com "}, 2),
        ({"resultado": "activo"}, 2),
        ({"resultado": "afiliado_inactivo"}, 1),
        ({"desde": "12/03/2026"}, 2),
        ({"hasta": "12/03/2026"}, 2),
        ({"desde": "11/03/2026", "hasta": "12/03/2026"}, 1),
        ({"cedula": "71234567", "entidad": "other"}, 0),
    ],
)
def test_the_log_filters(staff_client, log, query, count):
    if query.get("entidad") == "other":
        query = {**query, "entidad": log.other.id}
    page = staff_client.get(CONSULTAS, query_string=query)
    assert page.status_code == 200
    found = rows_of(page.text) if count else []
    assert len(found) == count
    if not count:
        assert "No hay consultas con esos filtros." in page.text


def test_an_operator_nobody_has_says_so(staff_client, log):
    page = staff_client.get(CONSULTAS, query_string={"operador": "nadie@example.com"})
    assert page.status_code == 200
    assert "Ningún usuario tiene el correo nadie@example.com." in page.text
    assert "No hay consultas con esos filtros." in page.text


@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"cedula": "71a34567"}, "cedula", "La cédula debe tener solo números, entre 3 y 15"),
        ({"cedula": "12"}, "cedula", "La cédula debe tener solo números, entre 3 y 15"),
        ({"cedula": "9" * 40}, "cedula", "La cédula debe tener solo números, entre 3 y 15"),
        ({"cedula": "٣٣٣٣٣"}, "cedula", "La cédula debe tener solo números, entre 3 y 15"),
        ({"entidad": "x"}, "entidad", "Elija una entidad de la lista."),
        ({"resultado": "borrado"}, "resultado", ""),
        ({"desde": "31/02/2026"}, "desde", ""),
        ({"hasta": "01/01/9999"}, "hasta", "Revise el año"),
        (
            {"desde": "12/03/2026", "hasta": "10/03/2026"},
            "hasta",
            "La fecha final es anterior a la inicial.",
        ),
        ({"operador": "x" * 255}, "operador", ""),
    ],
)
def test_bad_log_filters_are_422_next_to_the_field(staff_client, log, query, field, message):
    response = staff_client.get(CONSULTAS, query_string=query)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', response.text)
    assert error is not None, response.text
    assert message in error.group(1)
    assert '<tbody id="filas-consultas">' not in response.text
    assert audit_rows("convenio.consultas.buscar") == []


def test_the_log_pages_with_ver_mas_and_audits_each_page(
    staff_client, desk, monkeypatch, clock, htmx
):
    monkeypatch.setattr(views, "LOG_PER_PAGE", 2)
    for _ in range(3):
        look_up(desk.user, desk.norte, "71234567")
        clock.advance(minutes=1)
    oldest = ConsultaConvenio.select().order_by(ConsultaConvenio.id).first()
    first = staff_client.get(CONSULTAS, query_string={"cedula": "71234567"})
    assert "3 resultados" in first.text and len(rows_of(first.text)) == 2
    more = re.search(r'href="(/gestion/convenios/consultas\?[^"]*despues=[^"]+)"', first.text)
    rows = staff_client.get(more.group(1).replace("&amp;", "&"), headers=htmx)
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text
    assert rows.text.count("<tr>") == 1 and "Ver más" not in rows.text
    assert colombia.format_datetime(oldest.created_at) in rows.text
    assert "HX-Request" in rows.headers["Vary"]
    searches = audit_rows("convenio.consultas.buscar")
    assert [json.loads(r.after)["filas_mostradas"] for r in searches] == [2, 1]


def _other_cedulas(row, n: int) -> None:
    """Add n look-ups of other cédulas like row: the cédula is then a selective filter."""
    data = (
        models.ConsultaConvenio.select().where(models.ConsultaConvenio.id == row.id).dicts().get()
    )
    del data["id"]
    models.ConsultaConvenio.insert_many(
        [
            {
                **data,
                "numero_documento": f"9{i:07d}",
                "clave": f"otra-{i}",
                "created_at": datetime(2026, 1, 1) + timedelta(minutes=i),  # before every page
            }
            for i in range(n)
        ]
    ).execute()


def test_the_cedula_search_reads_the_cedula_index_in_order(app, db, log):
    """Every page of a cédula's look-ups is a range of (numero_documento, created_at, id)."""
    query = service.lookups_query(cedula="71234567")
    index = "consulta_convenio_numero_documento_created_at_id"
    if not is_sqlite(models.db):
        _other_cedulas(log.inactive, 400)
    for after in (None, (log.used.created_at, log.used.id)):
        sql, params = keyset(query, service.LOOKUPS_ORDER, after=after).sql()
        if is_sqlite(models.db):
            plan = models.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            text = " ".join(str(step[-1]) for step in plan)
            assert "TEMP B-TREE" not in text, text  # no sort: the index gives the order
        else:
            # Statistics of these rows, not an earlier test's (the schema is emptied
            # with DELETE between tests, which keeps the old ones).
            models.db.execute_sql("ANALYZE consulta_convenio")
            with models.db.atomic():
                # A table this small is read whole; forbid that to see which index it takes.
                models.db.execute_sql("SET LOCAL enable_seqscan = off")
                models.db.execute_sql("SET LOCAL enable_bitmapscan = off")  # no order kept
                plan = models.db.execute_sql("EXPLAIN " + sql, params).fetchall()
            text = "\n".join(step[0] for step in plan)
            assert "Sort" not in text, text
        assert index in text, text
