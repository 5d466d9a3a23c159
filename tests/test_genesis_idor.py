"""The IDOR matrix of the virtual office: every route that takes a member id or a request number,
for every kind of visitor. Outside the family group it does not exist (404), and nothing changes.
"""

from __future__ import annotations

import io
import itertools
from datetime import date

import pytest

import models
from core import genesis
from models import Attachment, CambioDatosEps, EpsAfiliado, SolicitudAutorizacion
from tests.factories import make_eps_afiliado, make_eps_user, make_staff, make_user
from tests.test_genesis_oficina import files_on_disk, pdf_bytes

_keys = itertools.count()


def _form_key() -> str:
    return f"{next(_keys):043d}"


def _contact_data() -> dict:
    return dict(
        celular="3001234567",
        email="nuevo@example.com",
        direccion="Calle 1 # 2-3",
        departamento="08",
        municipio="08001",
        accion="confirmar",
    )


def _datos_data() -> dict:
    return dict(
        celular="3001234567",
        telefono="6053850000",
        email="nuevo@example.com",
        direccion="Calle 1 # 2-3",
        departamento="08",
        municipio="08001",
        accion="actualizar",
    )


def _request_data() -> dict:
    return dict(
        form_key=_form_key(),
        departamento="08",
        municipio="08001",
        observacion="Consulta de control",
        soporte=(io.BytesIO(pdf_bytes()), "orden.pdf"),
    )


# (name, method, path, what the path takes, request body) — every office route with an object.
ROUTES = [
    ("contacto", "GET", "/genesis/solicitud/{}/contacto", "member", None),
    ("contacto_correctos", "POST", "/genesis/solicitud/{}/contacto", "member", dict),
    ("contacto_editar", "GET", "/genesis/solicitud/{}/contacto/editar", "member", None),
    (
        "contacto_editar_post",
        "POST",
        "/genesis/solicitud/{}/contacto/editar",
        "member",
        _contact_data,
    ),
    ("solicitud_miembro", "GET", "/genesis/solicitud/{}", "member", None),
    ("municipios_htmx", "GET", "/genesis/solicitud/{}?departamento=05", "member", None),
    ("solicitud_nueva", "POST", "/genesis/solicitud/{}", "member", _request_data),
    ("consulta_miembro", "GET", "/genesis/consulta/{}", "member", None),
    ("consulta_solicitudes", "GET", "/genesis/consulta/{}?pestana=solicitudes", "member", None),
    ("solicitud_enviada", "GET", "/genesis/solicitudes/{}", "numero", None),
    ("solicitud_soporte", "GET", "/genesis/solicitudes/{}/soporte", "numero", None),
    ("datos_miembro", "GET", "/genesis/datos/{}", "member", None),
    ("datos_confirmar", "POST", "/genesis/datos/{}/confirmar", "member", dict),
    ("datos_editar", "GET", "/genesis/datos/{}/editar", "member", None),
    ("datos_municipios_htmx", "GET", "/genesis/datos/{}/editar?departamento=05", "member", None),
    ("datos_editar_post", "POST", "/genesis/datos/{}/editar", "member", _datos_data),
    ("ips_atencion", "GET", "/genesis/datos/{}/ips", "member", None),
    ("certificados", "GET", "/genesis/datos/{}/certificados", "member", None),
    ("certificados_generar", "POST", "/genesis/datos/{}/certificados", "member", dict),
]

# Who asks, for whose object, and whether it is theirs to see (family A, family B).
#   A: Rosa (cotizante, account), Pedro (spouse, own account), Lucía (minor), Andrés (adult son).
#   B: Marta (cotizante, account), Nico (minor).
MEMBER_CASES = [
    ("rosa", "rosa", True),
    ("rosa", "lucia", True),
    ("rosa", "andres", True),
    ("rosa", "marta", False),
    ("rosa", "nico", False),
    ("pedro", "pedro", True),
    ("pedro", "lucia", True),  # a beneficiary adult acts for the group's minors
    ("pedro", "rosa", False),  # … never for the cotizante
    ("pedro", "andres", False),  # … nor another adult
    ("pedro", "nico", False),
    ("marta", "lucia", False),
    ("marta", "rosa", False),
    ("hanna", "rosa", False),
    ("staff", "rosa", False),
    ("rosa", "nadie", False),  # no such member
]
NUMERO_CASES = [
    ("rosa", "req_rosa", True),
    ("rosa", "req_lucia", True),
    ("rosa", "req_nico", False),
    ("pedro", "req_lucia", True),
    ("pedro", "req_rosa", False),
    ("marta", "req_lucia", False),
    ("marta", "req_nico", True),
    ("hanna", "req_rosa", False),
    ("staff", "req_rosa", False),
    ("rosa", "req_nadie", False),  # a well-formed number nobody has
]


def _matrix():
    for route in ROUTES:
        cases = MEMBER_CASES if route[3] == "member" else NUMERO_CASES
        for actor, target, allowed in cases:
            yield pytest.param(route, actor, target, allowed, id=f"{route[0]}-{actor}-{target}")


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def world(db, upload_dir):
    """Two families, their accounts, a Hanna user, a staff member, and requests of both families."""
    rosa = make_eps_afiliado(primer_nombre="ROSA")
    pedro = make_eps_afiliado(cabeza=rosa, parentesco="CONYUGE", fecha_nacimiento=date(1983, 1, 2))
    lucia = make_eps_afiliado(cabeza=rosa, parentesco="HIJO", fecha_nacimiento=date(2016, 4, 4))
    andres = make_eps_afiliado(cabeza=rosa, parentesco="HIJO", fecha_nacimiento=date(2001, 7, 7))
    marta = make_eps_afiliado(primer_nombre="MARTA")
    nico = make_eps_afiliado(cabeza=marta, parentesco="HIJO", fecha_nacimiento=date(2018, 9, 9))
    accounts = {
        "rosa": make_eps_user(rosa),
        "pedro": make_eps_user(pedro),
        "marta": make_eps_user(marta),
        "hanna": make_user(),
        "staff": make_staff(roles=("admin", "autorizaciones")),
    }
    members = dict(rosa=rosa, pedro=pedro, lucia=lucia, andres=andres, marta=marta, nico=nico)

    def filed(account, member) -> str:
        part = genesis.Upload(io.BytesIO(pdf_bytes()), "orden.pdf")
        made = genesis.submit_request(
            account, member, "08001", "Control", _form_key(), [part], upload_dir
        )
        return made.numero

    numeros = {
        "req_rosa": filed(accounts["rosa"], rosa),
        "req_lucia": filed(accounts["rosa"], lucia),
        "req_nico": filed(accounts["marta"], nico),
        "req_nadie": "2222-2222",
    }
    for member in members.values():
        genesis.confirm_contact(member)
    ids = {name: m.id for name, m in members.items()} | {"nadie": 987654}
    return accounts, ids, numeros


def _call(client, route, target: str, ids, numeros, headers=None):
    _name, method, path, takes, body = route
    url = path.format(ids[target] if takes == "member" else numeros[target])
    if method == "GET":
        return client.get(url, headers=headers)
    data = body() if body else {}
    kind = "multipart/form-data" if "soporte" in data else None
    return client.post(url, data=data, content_type=kind, headers=headers)


def _snapshot(upload_dir):
    with models.db.connection_context():
        return (
            SolicitudAutorizacion.select().count(),
            Attachment.select().count(),
            CambioDatosEps.select().count(),
            sorted(
                (m.id, str(m.contacto_confirmado_at), str(m.datos_confirmados_at), m.celular)
                for m in EpsAfiliado.select()
            ),
            files_on_disk(upload_dir),
        )


@pytest.mark.parametrize(("route", "actor", "target", "allowed"), list(_matrix()))
def test_the_office_answers_only_inside_the_family_group(
    client, auth, world, upload_dir, route, actor, target, allowed
):
    accounts, ids, numeros = world
    auth.login(client, accounts[actor])
    before = _snapshot(upload_dir)
    answer = _call(client, route, target, ids, numeros)
    if allowed:
        assert answer.status_code in (200, 303), answer.status_code
        return
    assert answer.status_code == 404, answer.status_code
    assert "Content-Disposition" not in answer.headers
    assert _snapshot(upload_dir) == before  # a refused POST changed nothing


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_the_anonymous_are_sent_to_the_afiliados_login(client, world, upload_dir, route, htmx):
    _accounts, ids, numeros = world
    before = _snapshot(upload_dir)
    target = "rosa" if route[3] == "member" else "req_rosa"
    answer = _call(client, route, target, ids, numeros)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/genesis/afiliados?next=")
    partial = _call(client, route, target, ids, numeros, headers=htmx)
    assert partial.status_code == 401
    assert partial.headers["HX-Redirect"].startswith("/genesis/afiliados")
    assert _snapshot(upload_dir) == before


@pytest.mark.parametrize(
    "path", ["/genesis/oficina", "/genesis/solicitud", "/genesis/consulta", "/genesis/datos"]
)
@pytest.mark.parametrize("actor", ["hanna", "staff"])
def test_other_kinds_of_account_get_404_on_the_office(client, auth, world, actor, path):
    accounts, _ids, _numeros = world
    auth.login(client, accounts[actor])
    assert client.get(path).status_code == 404


def test_the_beneficiarys_nucleo_lists_only_themselves_and_the_minors(client, auth, world):
    accounts, ids, _numeros = world
    auth.login(client, accounts["pedro"])
    page = client.get("/genesis/consulta")
    links = {name for name, i in ids.items() if f'href="/genesis/consulta/{i}"' in page.text}
    assert links == {"pedro", "lucia"}


def test_the_matrix_covers_every_office_route_with_an_object(app):
    covered = {path.split("?")[0].replace("{}", "<>") for _n, _m, path, _t, _b in ROUTES}
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("genesis.") and ({"member_id", "numero"} & rule.arguments):
            path = rule.rule.replace("<int:member_id>", "<>").replace("<numero>", "<>")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                found.add((method, path))
    routes = {(m, p.split("?")[0].replace("{}", "<>")) for _n, m, p, _t, _b in ROUTES}
    assert found <= routes, found - routes
    assert covered  # and every route of the table exists
    assert routes <= found, routes - found


@pytest.mark.parametrize("bad", ["0", "-1", "99999999999999999999", "abc", "1.5"])
def test_malformed_member_ids_are_404(client, auth, world, bad):
    accounts, _ids, _numeros = world
    auth.login(client, accounts["rosa"])
    assert client.get(f"/genesis/consulta/{bad}").status_code == 404
    assert client.get(f"/genesis/solicitud/{bad}/contacto").status_code == 404
    assert client.get(f"/genesis/datos/{bad}").status_code == 404


@pytest.mark.parametrize("bad", ["X", "2222-22222", "../../etc/passwd", "IIII-OOOO", "2222-222%25"])
def test_malformed_request_numbers_are_404(client, auth, world, bad):
    accounts, _ids, _numeros = world
    auth.login(client, accounts["rosa"])
    assert client.get(f"/genesis/solicitudes/{bad}").status_code == 404
    assert client.get(f"/genesis/solicitudes/{bad}/soporte").status_code == 404
