"""Convenios (H6) under attack: each test tries one way in and asserts the safe answer.

Reading another entity's data, getting past the look-up quotas, replaying a
"Reportar Uso" key, leaking an affiliate's private fields through the report,
formula and script injection through names, odd input that could 500, CSRF,
what a revoked or idle desk can still do, and the staff log's audit.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from datetime import date, datetime

import openpyxl
import pytest

import models
from core import svg_chart
from models import Acceso, AccesoSede, AuditEvent, ConsultaConvenio, Entidad, Sede, UsoConvenio
from tests.factories import grant_convenios, make_afiliado, make_entidad, make_staff, make_user

CONSULTAS = "/gestion/convenios/consultas"


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def token(client) -> str:
    return csrf(client.get("/convenios/").get_data(as_text=True))


def consultar(client, documento, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        "/convenios/consultar",
        data={"documento": documento, "csrf_token": token(client)},
        headers=headers,
    )


def clave_of(page: str) -> str:
    return re.search(r'name="clave"[^>]*value="([^"]+)"', page).group(1)


def reportar(client, clave, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": token(client)}, headers=headers
    )


def choose(client, sede) -> None:
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post("/convenios/sede", data={"sede": sede.id, "csrf_token": csrf(page)})
    assert response.status_code == 303


@pytest.fixture()
def two(app, client, auth):
    """Marta at Gimnasio Brío (Sede 1 and 2, Sede 1 chosen), Luis at Colegio Andino (one sede)."""
    brio, (norte, sur, ajena) = make_entidad(nombre="Gimnasio Brío", sedes=3)
    andino, (centro,) = make_entidad(nombre="Colegio Andino", sedes=1)
    marta = make_user(email="marta@example.com")
    grant_convenios(marta, [norte, sur])
    luis = make_user(email="luis@example.com")
    grant_convenios(luis, [centro])
    auth.login(client, marta)
    choose(client, norte)
    luis_client = app.test_client()
    auth.login(luis_client, luis)
    return type(
        "Two",
        (),
        {
            "marta": marta,
            "luis": luis,
            "luis_client": luis_client,
            "brio": brio,
            "andino": andino,
            "norte": norte,
            "sur": sur,
            "ajena": ajena,
            "centro": centro,
        },
    )


# --- another entity's data ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/convenios/reporte", "/convenios/reporte.csv", "/convenios/reporte.xlsx"],
)
def test_another_entitys_sede_in_the_report_is_404(two, client, path):
    assert client.get(path, query_string={"sede": two.centro.id}).status_code == 404
    assert client.get(path, query_string={"sede": two.ajena.id}).status_code == 404
    assert client.get(path, query_string={"sede": f" {two.centro.id} "}).status_code == 404


def test_choosing_another_entitys_sede_is_404_and_changes_nothing(two, client):
    page = client.get("/convenios/sede").get_data(as_text=True)
    response = client.post(
        "/convenios/sede", data={"sede": two.centro.id, "csrf_token": csrf(page)}
    )
    assert response.status_code == 404
    row = models.UserSession.get(models.UserSession.account == two.marta)
    assert row.convenio_sede_id == two.norte.id


def test_another_entitys_receipt_is_404(two, client):
    make_afiliado(numero_documento="71000001")
    page = consultar(two.luis_client, "71000001").get_data(as_text=True)
    reportar(two.luis_client, clave_of(page))
    uso = UsoConvenio.get()
    assert client.get(f"/convenios/recibo/{uso.numero}").status_code == 404
    assert client.get(f"/convenios/recibo/{uso.numero.lower()}").status_code == 404
    assert client.get(f"/convenios/recibo/{uso.numero}%20").status_code == 404


def test_another_entitys_key_records_nothing(two, client):
    make_afiliado(numero_documento="71000002")
    page = consultar(two.luis_client, "71000002").get_data(as_text=True)
    assert reportar(client, clave_of(page)).status_code == 404
    assert reportar(client, clave_of(page), htmx=True).status_code == 404
    assert UsoConvenio.select().count() == 0


def test_todas_never_carries_another_entitys_or_an_ungranted_sedes_rows(two, client):
    make_afiliado(numero_documento="71000003", primer_nombre="SECRETA")
    consultar(two.luis_client, "71000003")
    # A look-up at Brío's Sede 3 (not granted to Marta) by another operator of Brío.
    other = make_user()
    grant_convenios(other, [two.ajena])
    from core import convenios

    convenios.lookup(other, two.ajena, "71000003", convenios.Limits())
    for path in ("/convenios/reporte", "/convenios/reporte.csv"):
        body = client.get(path, query_string={"sede": "todas"}).get_data(as_text=True)
        assert "SECRETA" not in body and "71000003" not in body and "luis@" not in body
    xlsx = client.get("/convenios/reporte.xlsx", query_string={"sede": "todas"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet.max_row == 1


# --- the quotas -------------------------------------------------------------------


def test_switching_to_another_sede_of_the_entity_spends_the_same_budget(app, two, client):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 3
    assert consultar(client, "10001").status_code == 200
    assert consultar(client, "10002").status_code == 200
    choose(client, two.sur)
    assert consultar(client, "10003").status_code == 200
    assert consultar(client, "10004").status_code == 429


def test_the_entity_budget_is_shared_across_its_sedes(app, two, client, auth):
    app.config["CONVENIOS_LOOKUPS_ENTITY_MINUTE"] = 2
    other = make_user()
    grant_convenios(other, [two.ajena])
    other_client = app.test_client()
    auth.login(other_client, other)
    assert consultar(client, "10011").status_code == 200
    assert consultar(other_client, "10012").status_code == 200
    assert consultar(other_client, "10013").status_code == 429
    choose(client, two.sur)
    assert consultar(client, "10014").status_code == 429


def test_htmx_and_plain_posts_spend_one_budget(app, two, client):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 2
    assert consultar(client, "10021", htmx=True).status_code == 200
    assert consultar(client, "10022").status_code == 200
    assert consultar(client, "10023", htmx=True).status_code == 429
    assert consultar(client, "10024").status_code == 429


def test_many_sessions_of_one_user_spend_one_budget(app, two, client, auth):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 3
    clients = [client]
    for _ in range(3):
        c = app.test_client()
        auth.login(c, two.marta)
        choose(c, two.norte)
        clients.append(c)
    answers = [consultar(c, f"1003{i}").status_code for i, c in enumerate(clients)]
    assert answers.count(200) == 3 and answers.count(429) == 1


def test_refused_look_ups_show_nothing_and_keep_refusing(app, two, client):
    make_afiliado(numero_documento="10041", primer_nombre="OCULTA")
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 1
    assert consultar(client, "10040").status_code == 200
    for _ in range(5):
        response = consultar(client, "10041")
        assert response.status_code == 429
        page = response.get_data(as_text=True)
        assert "OCULTA" not in page and 'name="clave"' not in page
    refused = ConsultaConvenio.select().where(ConsultaConvenio.resultado == "limite")
    assert refused.count() == 5 and all(r.nombre == "" for r in refused)


def test_a_refused_look_ups_key_records_no_use(app, two, client):
    make_afiliado(numero_documento="10051")
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 1
    consultar(client, "10050")
    consultar(client, "10051")
    refused = ConsultaConvenio.get(ConsultaConvenio.resultado == "limite")
    assert reportar(client, refused.clave).status_code in (404, 409)
    assert UsoConvenio.select().count() == 0


def test_concurrent_look_ups_cannot_race_past_the_quota(app, two, client):
    app.config["CONVENIOS_LOOKUPS_USER_MINUTE"] = 3
    tok = token(client)
    with client.session_transaction() as s:
        cookie_session = dict(s)
    models.db.close()
    start = threading.Barrier(8)
    answers, errors = [], []

    def run(i):
        try:
            c = app.test_client()
            with c.session_transaction() as s:
                s.update(cookie_session)
            start.wait()
            r = c.post("/convenios/consultar", data={"documento": f"1006{i}", "csrf_token": tok})
            answers.append(r.status_code)
        except Exception as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert 500 not in answers
    assert answers.count(200) <= 3
    looked = ConsultaConvenio.select().where(ConsultaConvenio.resultado != "limite").count()
    assert looked <= 3


# --- replaying "Reportar Uso" ------------------------------------------------------


def test_a_key_from_another_session_at_another_sede_is_404(app, two, client, auth):
    make_afiliado(numero_documento="71000010")
    clave = clave_of(consultar(client, "71000010").get_data(as_text=True))
    other = app.test_client()
    auth.login(other, two.marta)
    choose(other, two.sur)
    assert reportar(other, clave).status_code == 404
    assert UsoConvenio.select().count() == 0


def test_a_key_after_the_sede_was_taken_away_is_404(two, client):
    make_afiliado(numero_documento="71000011")
    clave = clave_of(consultar(client, "71000011").get_data(as_text=True))
    AccesoSede.delete().where(AccesoSede.sede == two.norte).execute()
    response = reportar(client, clave)
    assert response.status_code == 404
    assert UsoConvenio.select().count() == 0


def test_a_key_after_the_sede_was_closed_is_refused(two, client):
    make_afiliado(numero_documento="71000012")
    clave = clave_of(consultar(client, "71000012").get_data(as_text=True))
    Sede.update(activa=False).where(Sede.id == two.norte.id).execute()
    assert reportar(client, clave).status_code in (303, 404)
    assert UsoConvenio.select().where(UsoConvenio.sede == two.norte.id).count() == 0


def test_a_key_after_the_entity_was_deactivated_records_nothing(two, client):
    make_afiliado(numero_documento="71000013")
    clave = clave_of(consultar(client, "71000013").get_data(as_text=True))
    Entidad.update(estado="inactiva").where(Entidad.id == two.brio.id).execute()
    reportar(client, clave)
    assert UsoConvenio.select().count() == 0


def test_a_key_after_revocation_is_404(app, two, client):
    make_afiliado(numero_documento="71000014")
    clave = clave_of(consultar(client, "71000014").get_data(as_text=True))
    tok = token(client)
    Acceso.delete().where(Acceso.account == two.marta).execute()
    response = client.post("/convenios/reportar", data={"clave": clave, "csrf_token": tok})
    assert response.status_code == 404
    assert UsoConvenio.select().count() == 0


def test_a_key_after_two_hours_records_nothing(two, client, clock):
    make_afiliado(numero_documento="71000015")
    clave = clave_of(consultar(client, "71000015").get_data(as_text=True))
    clock.advance(hours=2, seconds=1)
    # The session would be idle by now: keep it alive as a busy desk would.
    from core.clock import utcnow

    models.UserSession.update(last_seen=utcnow()).execute()
    response = reportar(client, clave)
    assert response.status_code == 409
    assert UsoConvenio.select().count() == 0


def test_a_key_of_a_look_up_without_benefit_records_nothing(two, client):
    make_afiliado(numero_documento="71000016", empresa_estado="MORA")
    consultar(client, "71000016")
    consulta = ConsultaConvenio.get(ConsultaConvenio.numero_documento == "71000016")
    assert reportar(client, consulta.clave).status_code == 409
    assert UsoConvenio.select().count() == 0


@pytest.mark.parametrize(
    "clave", ["", " ", "x" * 33, "x" * 5000, ["a", "b"], "' OR 1=1 --", "%", "_" * 22]
)
def test_made_up_keys_are_404_never_a_500(two, client, clave):
    response = client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": token(client)}
    )
    assert response.status_code == 404


def test_two_keys_in_one_form_record_at_most_one_use(two, client):
    make_afiliado(numero_documento="71000017")
    make_afiliado(numero_documento="71000018")
    a = clave_of(consultar(client, "71000017").get_data(as_text=True))
    b = clave_of(consultar(client, "71000018").get_data(as_text=True))
    client.post("/convenios/reportar", data={"clave": [a, b], "csrf_token": token(client)})
    assert UsoConvenio.select().count() <= 1


# --- the report never leaks private fields -----------------------------------------

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


def _shapes(value) -> list[str]:
    if isinstance(value, date):
        return [value.strftime("%d/%m/%Y"), value.isoformat()]
    return [value]


def _xlsx_text(data: bytes) -> str:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return "\n".join(
        ";".join("" if v is None else str(v) for v in row)
        for row in sheet.iter_rows(values_only=True)
    )


@pytest.mark.parametrize("estado", ["ACTIVO", "INACTIVO"])
def test_the_report_never_carries_a_private_field(two, client, estado):
    make_afiliado(numero_documento="74000001", estado=estado, **PRIVATE)
    page = consultar(client, "74000001").get_data(as_text=True)
    if estado == "ACTIVO":
        reportar(client, clave_of(page))
    bodies = [
        client.get("/convenios/reporte").get_data(as_text=True),
        client.get("/convenios/reporte.csv").get_data().decode("utf-8-sig"),
        _xlsx_text(client.get("/convenios/reporte.xlsx").data),
    ]
    assert "74000001" in bodies[1]  # the report does carry the look-up
    for body in bodies:
        for field, value in PRIVATE.items():
            for shape in _shapes(value):
                assert shape not in body, (field, shape)


# --- formula injection ---------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
    '=cmd|" /C calc"!A0',
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_in_any_name_reaches_the_csv_and_xlsx_as_text(app, two, client, auth, formula):
    Sede.update(nombre=formula[:100]).where(Sede.id == two.norte.id).execute()
    make_afiliado(numero_documento="75000001", primer_nombre=formula, estado="ACTIVO")
    page = consultar(client, "75000001").get_data(as_text=True)
    reportar(client, clave_of(page))
    text = client.get("/convenios/reporte.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert len(rows) == 2
    for cell in rows[1]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    xlsx = openpyxl.load_workbook(io.BytesIO(client.get("/convenios/reporte.xlsx").data)).active
    for cell in next(xlsx.iter_rows(min_row=2, max_row=2)):
        assert cell.data_type != "f", cell.value


def test_an_operator_login_that_looks_like_a_formula_is_neutralised(app, two, client, auth):
    evil = make_user(email="=1+1@example.com")
    grant_convenios(evil, [two.norte])
    c = app.test_client()
    auth.login(c, evil)
    choose(c, two.norte)
    consultar(c, "75000002")
    text = client.get("/convenios/reporte.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert all(not cell.startswith("=") for row in rows[1:] for cell in row)


# --- script injection ------------------------------------------------------------------

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def test_names_never_reach_the_pages_as_markup(two, client):
    Entidad.update(nombre=f"Brío {XSS}").where(Entidad.id == two.brio.id).execute()
    Sede.update(nombre=f"Norte {XSS}").where(Sede.id == two.norte.id).execute()
    make_afiliado(
        numero_documento="76000001",
        primer_nombre=XSS,
        empresa_nombre=XSS,
        estado="ACTIVO",
    )
    pages = []
    pages.append(client.get("/convenios/sede").get_data(as_text=True))
    pages.append(client.get("/convenios/").get_data(as_text=True))
    result = consultar(client, "76000001")
    pages.append(result.get_data(as_text=True))
    pages.append(consultar(client, "76000001", htmx=True).get_data(as_text=True))
    receipt = reportar(client, clave_of(pages[2]))
    pages.append(client.get(receipt.location).get_data(as_text=True))
    pages.append(reportar(client, clave_of(pages[3]), htmx=True).get_data(as_text=True))
    pages.append(
        client.get("/convenios/reporte", query_string={"sede": "todas"}).get_data(as_text=True)
    )
    pages.append(
        client.get("/convenios/reporte", query_string={"sede": two.norte.id}).get_data(as_text=True)
    )
    for page in pages:
        assert "<script>alert(1)" not in page
        assert '<img src=x onerror="alert(2)">' not in page
        assert 'onerror="alert' not in page


def test_the_download_names_are_safe_ascii(two, client):
    Sede.update(nombre='Norte"; filename="evil.exe\r\nX-Evil: 1').where(
        Sede.id == two.norte.id
    ).execute()
    for path in ("/convenios/reporte.csv", "/convenios/reporte.xlsx"):
        response = client.get(path, query_string={"sede": two.norte.id})
        assert response.status_code == 200
        disposition = response.headers["Content-Disposition"]
        assert disposition.count('"') == 2 and "evil.exe" not in disposition.replace("evil-exe", "")
        assert "X-Evil" not in response.headers


def test_the_chart_escapes_every_text_it_draws():
    bars = [svg_chart.Bar(value=3, label=XSS, name=XSS, sublabel=XSS)]
    svg = str(svg_chart.bar_chart(bars, title=XSS, ident='x" onload="alert(3)', unit=(XSS, XSS)))
    assert "<script>" not in svg and "<img" not in svg and 'onload="alert' not in svg


# --- odd input never 500s -----------------------------------------------------------------


@pytest.mark.parametrize(
    "documento",
    [
        "١٢٣٤٥٦٧",  # Arabic-Indic digits
        "１２３４５６７",  # full-width digits
        "²³⁴⁵⁶",
        "१२३४५",
        "7123\u200b4567",
        "71234567\u202e",
        "9" * 10_000,
        "1" * 16,
        ["71234567", "71234568"],
        "",
        "   ",
        "-1",
        "1e10",
        "0x1F",
    ],
)
def test_odd_documents_are_refused_or_looked_up_never_a_500(two, client, documento):
    response = client.post(
        "/convenios/consultar", data={"documento": documento, "csrf_token": token(client)}
    )
    assert response.status_code in (200, 422), response.status_code
    for row in ConsultaConvenio.select():
        assert row.numero_documento.isascii() and row.numero_documento.isdigit()


def test_invalid_utf8_and_a_lone_surrogate_are_not_a_500(two, client):
    body = f"csrf_token={token(client)}&documento=%ED%A0%80%FF%FE"
    response = client.post(
        "/convenios/consultar", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (400, 422)
    assert client.get("/convenios/reporte?desde=%ED%A0%80&sede=%FF").status_code in (400, 422)
    assert client.get("/convenios/recibo/%ED%A0%80").status_code in (400, 404)


def test_a_nul_byte_is_400(two, client):
    response = client.post(
        "/convenios/consultar", data={"documento": "7123\x004567", "csrf_token": token(client)}
    )
    assert response.status_code == 400
    assert (
        client.get("/convenios/reporte", query_string={"desde": "01/01/2026\x00"}).status_code
        == 400
    )


def test_a_huge_body_is_refused_not_a_500(app, two, client):
    response = client.post(
        "/convenios/consultar",
        data={"documento": "7" * (20 * 1024 * 1024), "csrf_token": token(client)},
    )
    assert response.status_code in (413, 422)


def test_a_file_where_the_key_belongs_records_nothing(two, client):
    make_afiliado(numero_documento="77000001")
    clave = clave_of(consultar(client, "77000001").get_data(as_text=True))
    response = client.post(
        "/convenios/reportar",
        data={"clave": (io.BytesIO(clave.encode()), "clave.txt"), "csrf_token": token(client)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 404
    assert UsoConvenio.select().count() == 0


@pytest.mark.parametrize(
    "args",
    [
        {"desde": "01/01/2026", "hasta": "01/01/2025"},  # reversed
        {"desde": "01/01/1900", "hasta": "31/12/2100"},  # two centuries
        {"desde": "01/01/0001", "hasta": "31/12/9999"},
        {"hasta": "01/01/0001"},
        {"hasta": "15/01/0001"},
        {"hasta": "31/12/9999"},
        {"desde": "31/12/9999"},
        {"desde": "01/01/1900"},  # hasta today: more than 24 months
        {"hasta": "01/01/1900"},  # desde defaults to 1899
        {"desde": "01/01/2100", "hasta": "31/12/2100"},  # far future
        {"desde": "31/02/2026"},
        {"desde": "99/99/9999"},
        {"desde": "1/1/100000"},
        {"desde": "0000-01-01"},
        {"desde": "2026-13-01"},
        {"desde": "٠١/٠١/٢٠٢٦"},
        {"desde": "01/01/2026" * 1000},
        {"desde": ["01/01/2026", "02/02/2026"]},
        {"sede": ["todas", "1"]},
        {"sede": "9" * 400},
        {"sede": "٣"},
        {"sede": "-1"},
        {"sede": "1.0"},
        {"sede": "todas\u200b"},
    ],
)
@pytest.mark.parametrize(
    "path", ["/convenios/reporte", "/convenios/reporte.csv", "/convenios/reporte.xlsx"]
)
def test_report_filters_never_500(two, client, args, path):
    response = client.get(path, query_string=args)
    assert response.status_code in (200, 404, 422), (args, response.status_code)


def test_a_far_future_range_is_quick_and_empty(two, client):
    import time

    started = time.monotonic()
    response = client.get(
        "/convenios/reporte.csv", query_string={"desde": "01/01/2099", "hasta": "31/12/2100"}
    )
    assert response.status_code == 200
    assert response.get_data().decode("utf-8-sig").count("\r\n") == 1
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/convenios/consultar"),
        ("get", "/convenios/reportar"),
        ("put", "/convenios/sede"),
        ("delete", "/convenios/reportar"),
        ("post", "/convenios/reporte"),
        ("post", "/convenios/reporte.csv"),
    ],
)
def test_wrong_methods_are_405(two, client, method, path):
    assert getattr(client, method)(path).status_code == 405


# --- CSRF ---------------------------------------------------------------------------------


def test_every_desk_post_needs_the_csrf_token(app, two, client):
    make_afiliado(numero_documento="78000001")
    clave = clave_of(consultar(client, "78000001").get_data(as_text=True))
    app.config["WTF_CSRF_ENABLED"] = True
    looked = ConsultaConvenio.select().count()
    assert client.post("/convenios/sede", data={"sede": two.sur.id}).status_code == 400
    assert client.post("/convenios/consultar", data={"documento": "78000001"}).status_code == 400
    assert (
        client.post(
            "/convenios/consultar",
            data={"documento": "78000001"},
            headers={"HX-Request": "true"},
        ).status_code
        == 400
    )
    assert client.post("/convenios/reportar", data={"clave": clave}).status_code == 400
    assert (
        client.post(
            "/convenios/reportar", data={"clave": clave, "csrf_token": "forged"}
        ).status_code
        == 400
    )
    assert ConsultaConvenio.select().count() == looked
    assert UsoConvenio.select().count() == 0
    row = models.UserSession.get(models.UserSession.account == two.marta)
    assert row.convenio_sede_id == two.norte.id


def test_another_sessions_csrf_token_is_refused(app, two, client, auth):
    make_afiliado(numero_documento="78000002")
    clave = clave_of(consultar(client, "78000002").get_data(as_text=True))
    app.config["WTF_CSRF_ENABLED"] = True
    attacker_token = token(two.luis_client)
    response = client.post(
        "/convenios/reportar", data={"clave": clave, "csrf_token": attacker_token}
    )
    assert response.status_code == 400
    assert UsoConvenio.select().count() == 0


def test_revoking_needs_the_csrf_token(app, two, client, auth):
    staff = make_staff(roles=("convenios",))
    staff_client = app.test_client()
    auth.login(staff_client, staff)
    app.config["WTF_CSRF_ENABLED"] = True
    acceso = Acceso.get(Acceso.account == two.marta)
    response = staff_client.post(
        f"/gestion/convenios/accesos/{acceso.id}/retirar",
        data={"motivo": "La entidad terminó el convenio.", "cuenta": two.marta.id},
    )
    assert response.status_code == 400
    assert Acceso.get_or_none(Acceso.id == acceso.id) is not None


# --- a revoked or idle desk ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/convenios/"),
        ("get", "/convenios/sede"),
        ("get", "/convenios/reporte"),
        ("get", "/convenios/reporte.csv"),
        ("get", "/convenios/reporte.xlsx"),
        ("post", "/convenios/consultar"),
        ("post", "/convenios/sede"),
    ],
)
def test_a_revoked_desk_with_an_open_session_can_do_nothing(two, client, method, path):
    tok = token(client)
    Acceso.delete().where(Acceso.account == two.marta).execute()
    data = {"documento": "79000001", "sede": two.norte.id, "csrf_token": tok}
    response = getattr(client, method)(path, data=data) if method == "post" else client.get(path)
    assert response.status_code == 404
    assert ConsultaConvenio.select().count() == 0


def test_a_revoked_desk_cannot_open_its_old_receipt(two, client):
    make_afiliado(numero_documento="79000002")
    reportar(client, clave_of(consultar(client, "79000002").get_data(as_text=True)))
    uso = UsoConvenio.get()
    assert client.get(f"/convenios/recibo/{uso.numero}").status_code == 200
    Acceso.delete().where(Acceso.account == two.marta).execute()
    assert client.get(f"/convenios/recibo/{uso.numero}").status_code == 404


def test_revoking_through_the_back_office_ends_the_desk_work(app, two, client, auth):
    staff = make_staff(roles=("convenios",))
    staff_client = app.test_client()
    auth.login(staff_client, staff)
    tok = token(client)
    acceso = Acceso.get(Acceso.account == two.marta)
    response = staff_client.post(
        f"/gestion/convenios/accesos/{acceso.id}/retirar",
        data={"motivo": "La entidad terminó el convenio.", "cuenta": two.marta.id},
    )
    assert response.status_code == 303
    assert (
        client.post(
            "/convenios/consultar", data={"documento": "79000003", "csrf_token": tok}
        ).status_code
        == 404
    )
    assert client.get("/convenios/reporte.csv").status_code == 404


def test_the_desk_is_signed_out_after_the_shared_pc_idle_time(app, two, client, clock):
    assert client.get("/convenios/").status_code == 200
    clock.advance(minutes=app.config["IDLE_MINUTES_SHARED"] + 1)
    response = client.get("/convenios/")
    assert response.status_code in (302, 303)
    assert not response.location.split("?")[0].rstrip("/").endswith("/convenios")
    response = client.post("/convenios/consultar", data={"documento": "79000004"})
    assert response.status_code in (302, 303, 401)
    assert ConsultaConvenio.select().count() == 0


def test_a_desk_session_gets_the_shared_pc_idle_limit(app, two):
    row = models.UserSession.get(models.UserSession.account == two.marta)
    assert row.idle_seconds <= app.config["IDLE_MINUTES_SHARED"] * 60


# --- the staff log ----------------------------------------------------------------------


@pytest.fixture()
def staff_client(app, auth):
    staff = make_staff(roles=("convenios",))
    c = app.test_client()
    auth.login(c, staff)
    return c


def _audited() -> int:
    return AuditEvent.select().where(AuditEvent.action == "convenio.consultas.buscar").count()


@pytest.mark.parametrize("typed", ["71.234.567", " 71234567 ", "71-234-567", "71 234 567"])
def test_every_way_of_typing_a_cedula_is_audited(two, client, staff_client, typed):
    consultar(client, "71234567")
    response = staff_client.get(CONSULTAS, query_string={"cedula": typed})
    assert response.status_code == 200 and "71234567" in response.text
    assert _audited() == 1


def test_browsing_the_log_to_find_a_cedula_leaves_an_audit_trail(two, client, staff_client):
    """Without the cédula filter the same rows (cédula, operator, entity) are one Ctrl+F away."""
    consultar(client, "71234567")
    response = staff_client.get(CONSULTAS, query_string={"entidad": two.brio.id})
    assert "71234567" in response.text
    assert _audited() >= 1


@pytest.mark.parametrize(
    "args",
    [
        {"cedula": "١٢٣٤٥٦٧"},
        {"cedula": ["71234567", "80000001"]},
        {"cedula": "9" * 5000},
        {"entidad": "9" * 15},
        {"entidad": "99999999999"},
        {"entidad": "-5"},
        {"entidad": "²"},
        {"entidad": ["1", "2"]},
        {"operador": "' OR 1=1 --@x.co"},
        {"operador": "%"},
        {"operador": "x" * 5000},
        {"operador": "MARTA@EXAMPLE.COM"},
        {"resultado": ["activo", "limite"]},
        {"resultado": "x" * 500},
        {"desde": "01/01/0001"},
        {"hasta": "31/12/9999"},
        {"desde": "01/01/1900", "hasta": "31/12/2100"},
        {"despues": "garbage"},
        {"despues": "2026-01-01T00:00:00,abc"},
        {"despues": "x" * 5000},
        {"despues": '["2026-01-01T00:00:00", 99999999999999999999]'},
        {"despues": "[null, null]"},
        {"despues": "%ED%A0%80"},
    ],
)
def test_log_filters_never_500(two, client, staff_client, args):
    consultar(client, "71234567")
    response = staff_client.get(CONSULTAS, query_string=args)
    # A cursor this list did not write sends the search back to its first page (303).
    assert response.status_code in (200, 303, 400, 422), (args, response.status_code)
    if response.status_code == 303:
        assert "despues" in args and staff_client.get(response.location).status_code == 200


@pytest.mark.parametrize("q", ["%", "_", "' OR 1=1 --", "x" * 5000, "١", "a b c d e f g h"])
def test_grant_list_search_never_500s(two, staff_client, q):
    response = staff_client.get("/gestion/convenios/accesos", query_string={"q": q})
    assert response.status_code in (200, 422)


def test_a_desk_user_cannot_reach_the_staff_log(two, client):
    assert client.get(CONSULTAS).status_code in (302, 303, 404)
    assert client.get("/gestion/convenios/accesos").status_code in (302, 303, 404)


@pytest.mark.parametrize("cuenta", ["١", "-1", "9" * 40, ["1", "2"], ""])
def test_a_tampered_revoke_form_never_500s(two, staff_client, cuenta):
    acceso = Acceso.get(Acceso.account == two.marta)
    response = staff_client.post(
        f"/gestion/convenios/accesos/{acceso.id}/retirar",
        data={"motivo": "La entidad terminó el convenio.", "cuenta": cuenta},
    )
    assert response.status_code in (303, 404, 410, 422)


def test_a_revoke_form_for_another_account_revokes_nothing(two, staff_client):
    acceso = Acceso.get(Acceso.account == two.marta)
    response = staff_client.post(
        f"/gestion/convenios/accesos/{acceso.id}/retirar",
        data={"motivo": "La entidad terminó el convenio.", "cuenta": two.luis.id},
    )
    assert response.status_code in (404, 410, 422)
    assert Acceso.get_or_none(Acceso.id == acceso.id) is not None


def test_the_look_up_log_rows_are_stamped_with_time_and_operator(two, client):
    consultar(client, "71234567")
    row = ConsultaConvenio.get()
    assert row.account_id == two.marta.id and row.sede_id == two.norte.id
    assert isinstance(row.created_at, datetime)
