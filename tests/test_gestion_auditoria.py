"""Audit search for admins (SPEC S1): who may open it, what each filter finds, its pages, its plans."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

import models
from blueprints import queue
from blueprints.gestion import auditoria
from core import audit
from core import db as dbmod
from core.audit import Action
from models import AuditEvent
from tests import test_audit
from tests.factories import make_staff, make_user

# The audit log's own 100 000-row data set (a fixture) and its EXPLAIN reader:
# the same rows and the same reading, so both files judge one plan.
bulk = test_audit.bulk
_plan = test_audit._plan

URL = "/gestion/auditoria"
ADMIN = "jefa.auditoria@cajacopi.example"


@pytest.fixture
def admin(db, client, auth):
    account = make_staff(roles=("admin",), email=ADMIN)
    auth.login(client, account)
    return account


@pytest.fixture
def history(admin, clock):
    """Five changes, a day apart from 10/03/2026 07:00 in Bogotá: four by the admin, one by another."""
    other = make_staff(roles=("afiliaciones",), email="otro@cajacopi.example")
    clock.set(datetime(2026, 3, 10, 7, 0))
    spec = [
        (admin, Action.USUARIO_DESBLOQUEAR, "usuario", 5),
        (admin, Action.USUARIO_ACTIVAR, "usuario", 6),
        (other, Action.USUARIO_DESBLOQUEAR, "usuario", 5),
        (admin, Action.SOLICITUD_APROBAR, "solicitud", 5),
        (admin, Action.STAFF_CREAR, "staff", 9),
    ]
    with models.db.atomic():
        for actor, action, target_type, target_id in spec:
            audit.record(
                actor,
                action,
                target_type,
                target_id,
                before={"status": "bloqueado"},
                after={"status": "activo", "quiz_failures": 0},
                ip="203.0.113.9",
            )
            clock.advance(days=1)
    return spec


def _targets(html: str) -> list[str]:
    """Return "type id" of each row shown, in order."""
    return re.findall(r"<td>([A-Za-zó ]+) n\.º (\d+)</td>", html)


def _rows(html: str) -> int:
    return len(_targets(html))


# --- who may open it ------------------------------------------------------------


def test_an_admin_sees_the_audit_page(client, history):
    response = client.get(URL)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Auditoría</h1>" in html and "5 resultados" in html
    for heading in ("Fecha", "Funcionario", "Acción", "Objeto", "Antes → Después", "IP"):
        assert f'<th scope="col">{heading}</th>' in html
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"


def test_rows_show_bogota_time_names_and_the_change(client, history):
    html = client.get(URL).get_data(as_text=True)
    newest = html.index("<tbody")
    row = html[newest : html.index("</tr>", newest)]
    assert "<td>14/03/2026 07:00</td>" in row  # the fifth change, 12:00 UTC
    assert f"<td>{ADMIN}</td>" in row and "<td>Crear funcionario</td>" in row
    assert "<td>Funcionario n.º 9</td>" in row and "<td>203.0.113.9</td>" in row
    assert "quiz_failures: — → 0<br>status: bloqueado → activo" in row


def test_another_staff_member_gets_404(db, client, auth):
    auth.login(client, make_staff(roles=("afiliaciones", "convenios", "soporte")))
    assert client.get(URL).status_code == 404


def test_a_hanna_user_gets_404(db, client, auth):
    auth.login(client, make_user())
    assert client.get(URL).status_code == 404


def test_the_anonymous_go_to_the_staff_login(db, client):
    response = client.get(URL + "?accion=staff.crear")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/gestion/ingresar")


def test_staff_without_the_second_factor_go_to_it(db, client, auth):
    auth.login(client, make_staff(roles=("admin",)), second_factor=False)
    response = client.get(URL)
    assert response.status_code in (302, 303)
    assert "/gestion/" in response.headers["Location"]
    assert not response.headers["Location"].endswith(URL)


# --- the filters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Funcionario 9", "Solicitud de aplicación 5", "Usuario 5", "Usuario 6", "Usuario 5"]),
        (
            f"funcionario={ADMIN}",
            ["Funcionario 9", "Solicitud de aplicación 5", "Usuario 6", "Usuario 5"],
        ),
        (
            f"funcionario=+{ADMIN.upper()}+",
            ["Funcionario 9", "Solicitud de aplicación 5", "Usuario 6", "Usuario 5"],
        ),
        ("accion=usuario.desbloquear", ["Usuario 5", "Usuario 5"]),
        ("objeto=usuario", ["Usuario 5", "Usuario 6", "Usuario 5"]),
        ("objeto=usuario&objeto_id=5", ["Usuario 5", "Usuario 5"]),
        ("desde=11/03/2026&hasta=12/03/2026", ["Usuario 5", "Usuario 6"]),
        ("desde=2026-03-13", ["Funcionario 9", "Solicitud de aplicación 5"]),
        ("hasta=10/03/2026", ["Usuario 5"]),
        (f"funcionario={ADMIN}&accion=usuario.desbloquear", ["Usuario 5"]),
        ("funcionario=nadie@cajacopi.example", []),
        (
            "funcionario=&accion=&objeto=&objeto_id=&desde=&hasta=",
            ["Funcionario 9", "Solicitud de aplicación 5", "Usuario 5", "Usuario 6", "Usuario 5"],
        ),
    ],
)
def test_each_filter_finds_its_rows(client, history, query, expected):
    response = client.get(f"{URL}?{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert [f"{kind} {n}" for kind, n in _targets(html)] == expected
    assert f"{len(expected)} resultado" in html


def test_an_unknown_staff_email_finds_nothing_and_says_so(client, history):
    html = client.get(f"{URL}?funcionario=nadie@cajacopi.example").get_data(as_text=True)
    assert (
        "0 resultados" in html
        and "Ningún funcionario tiene el correo nadie@cajacopi.example" in html
    )
    assert "No hay registros con esos filtros." in html


def test_the_action_list_names_every_action_in_spanish(client, admin):
    html = client.get(URL).get_data(as_text=True)
    for action in Action:
        assert f'<option value="{action.value}">' in html
    assert '<option value="usuario.desbloquear">Desbloquear usuario</option>' in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("desde=31/02/2026", "desde", "La fecha 31/02/2026 no existe."),
        ("hasta=marzo", "hasta", "Escriba la fecha como dd/mm/aaaa."),
        ("hasta=31/12/9999", "hasta", "Revise el año: escriba uno entre 1900 y 2100."),
        ("desde=12/03/2026&hasta=11/03/2026", "hasta", "La fecha final es anterior a la inicial."),
        ("objeto_id=5", "objeto_id", "Elija también el tipo de objeto."),
        ("objeto=usuario&objeto_id=cinco", "objeto_id", "No es un valor entero válido."),
        ("objeto=usuario&objeto_id=0", "objeto_id", "Revise el número."),
        ("accion=usuario.borrar_todo", "accion", "Opción inválida."),
        ("objeto=planeta", "objeto", "Opción inválida."),
        ("funcionario=" + "a" * 255, "funcionario", "254"),
    ],
)
def test_bad_filters_answer_422_with_the_message_by_the_field(
    client, history, query, field, message
):
    response = client.get(f"{URL}?{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    assert error and message in error.group(1)
    assert _rows(html) == 0  # no rows that the filter did not ask for


def test_bad_filters_keep_what_was_typed(client, history):
    html = client.get(f"{URL}?desde=31/02/2026&funcionario=ana@x.co").get_data(as_text=True)
    assert 'value="31/02/2026"' in html and 'value="ana@x.co"' in html


# --- pages ----------------------------------------------------------------------


@pytest.fixture
def sixty(admin, clock):
    clock.set(datetime(2026, 3, 10, 7, 0))
    with models.db.atomic():
        for n in range(1, 61):
            audit.record(admin, Action.USUARIO_ACTIVAR, "usuario", n)
            clock.advance(minutes=1)


def _more_url(html: str) -> str | None:
    found = re.search(r'<tr id="mas-auditoria"><td colspan="6"><a [^>]*href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_first_page_shows_fifty_and_a_link_to_more(client, sixty):
    html = client.get(URL).get_data(as_text=True)
    assert _rows(html) == 50 and "60 resultados" in html
    assert [int(n) for _, n in _targets(html)] == list(range(60, 10, -1))
    more = _more_url(html)
    assert more.startswith(URL + "?despues=")
    assert f'hx-get="{more}"' in html and 'hx-target="#mas-auditoria"' in html


def test_without_javascript_the_link_opens_the_next_page(client, sixty):
    html = client.get(_more_url(client.get(URL).get_data(as_text=True))).get_data(as_text=True)
    assert "<h1>Auditoría</h1>" in html and "60 resultados" in html
    assert [int(n) for _, n in _targets(html)] == list(range(10, 0, -1))
    assert _more_url(html) is None and "Volver a la primera página" in html


def test_htmx_gets_only_the_next_rows_and_vary(client, sixty, htmx):
    more = _more_url(client.get(URL).get_data(as_text=True))
    response = client.get(more, headers=htmx)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert html.lstrip().startswith("<tr>") and "<h1" not in html and "resultados" not in html
    assert [int(n) for _, n in _targets(html)] == list(range(10, 0, -1))


def test_the_next_page_keeps_the_filters(client, sixty):
    html = client.get(f"{URL}?accion=usuario.activar&objeto=usuario&desde=").get_data(as_text=True)
    more = _more_url(html)
    assert "accion=usuario.activar" in more and "objeto=usuario" in more and "desde" not in more
    assert _rows(client.get(more).get_data(as_text=True)) == 10


def test_a_tampered_cursor_goes_back_to_page_one(client, sixty, htmx):
    response = client.get(f"{URL}?accion=usuario.activar&despues=bm9wZQ")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{URL}?accion=usuario.activar"
    response = client.get(f"{URL}?despues=%C3%B1and%C3%BA", headers=htmx)
    assert (response.status_code, response.headers["HX-Redirect"]) == (204, URL)


# --- 100 000 rows: every page and count reads an index --------------------------

FILTERS = {
    "default": {},
    "funcionario": dict(actor_id=17),
    "acción": dict(accion=Action.STAFF_CREAR.value),
    "objeto": dict(objeto="solicitud"),
    "objeto y número": dict(objeto="usuario", objeto_id=4242),
    "fechas": dict(desde=date(2026, 2, 1), hasta=date(2026, 2, 7)),
    "funcionario y fechas": dict(actor_id=17, desde=date(2026, 2, 1), hasta=date(2026, 4, 1)),
    "acción y objeto": dict(accion=Action.STAFF_CREAR.value, objeto="staff"),
}


def _reads(plan: str) -> list[str]:
    """Return the lines of a SQLite plan that read a table (not the count's subquery)."""
    return [
        line
        for line in plan.splitlines()
        if line.startswith(("SCAN", "SEARCH")) and "filtrado" not in line
    ]


def test_at_100k_rows_every_page_and_count_reads_an_index_and_pages_stay_small(bulk, client, auth):
    deep = AuditEvent.select(AuditEvent.at, AuditEvent.id).where(AuditEvent.id == 40_000)
    deep = deep.dicts().get()
    for name, filters in FILTERS.items():
        query = auditoria.search_query(**filters)
        pages = {
            "page 1": queue.keyset(query, auditoria.ORDER),
            "deep page": queue.keyset(query, auditoria.ORDER, after=(deep["at"], deep["id"])),
        }
        for which, page in pages.items():
            plan = _plan(bulk, page)
            if dbmod.is_sqlite(bulk):
                assert "TEMP B-TREE" not in plan, (name, which, plan)
                assert all("INDEX" in line for line in _reads(plan)), (name, which, plan)
            else:
                assert "Index" in plan, (name, which, plan)
                assert not ("Sort" in plan and "Seq Scan" in plan), (name, which, plan)
        plan = _plan(bulk, queue.count_query(query))
        if dbmod.is_sqlite(bulk):
            reads = _reads(plan)
            assert reads and all("INDEX" in line for line in reads), (name, plan)
        else:
            # A broad filter may scan, but under the LIMIT: at most COUNT_CAP + 1 rows.
            assert "Limit" in plan.splitlines()[1], (name, plan)

    # The page itself, through HTTP: 50 rows, the count stopped at its cap, a few KB.
    auth.login(client, make_staff(roles=("admin",)))
    response = client.get(URL)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and _rows(html) == 50
    assert "Más de 10.000 resultados" in html
    # HTML bytes before compression (14 KB when written; these rows hold no changes).
    assert len(response.data) < 20_000, len(response.data)
    partial = client.get(_more_url(html), headers={"HX-Request": "true"})
    assert _rows(partial.get_data(as_text=True)) == 50 and len(partial.data) < 13_000
