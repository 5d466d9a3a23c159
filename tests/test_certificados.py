"""The certificate of affiliation (G5 "Generar Certificados") and its public check.

Issue and PDF (one A4 page, the code, accents and ñ, a QR that draws the
verification address), the office pages (only ACTIVO members, only the family
group, rate limited), and /certificados/verificar (valid, unknown and malformed
alike, no longer valid after the affiliate leaves, nothing beyond the
certificate, rate limited per client). The PDF is read with poppler-utils
(pdfinfo, pdftotext, pdftoppm), which `make test-ready` installs.
"""

from __future__ import annotations

import re
import subprocess
from datetime import date, datetime

import pytest
from PIL import Image

import models
from core import certificados
from core.convenios import RECEIPT_ALPHABET
from models import Certificado, EpsAfiliado
from tests.factories import make_eps_afiliado, make_eps_user, make_ips, make_staff, make_user

BASE = "http://localhost"  # the tests' BASE_URL
NOT_FOUND = "No encontramos un certificado con ese código."
NOT_ACTIVE_HOY = "Ya no es válido: el afiliado no está activo hoy."


def make_family():
    """Two families: Rosa Peña Díaz (cotizante, IPS), her son Martín and retired Tomás; Marta and Nico."""
    ips = make_ips(nombre="IPS Peña Díaz Salud Ñeque S.A.S.")
    rosa = make_eps_afiliado(
        primer_nombre="ROSA", primer_apellido="PEÑA", segundo_apellido="DÍAZ", ips=ips
    )
    martin = make_eps_afiliado(
        cabeza=rosa,
        tipo_documento="TI",
        primer_nombre="MARTÍN",
        segundo_nombre="",
        primer_apellido="PEÑA",
        fecha_nacimiento=date(2014, 2, 3),
        celular="3209998877",
        email="martin@example.com",
        direccion="Calle 99 # 1-23 Barrio Secreto",
    )
    tomas = make_eps_afiliado(
        cabeza=rosa, primer_nombre="TOMÁS", fecha_nacimiento=date(2012, 1, 9), estado="RETIRADO"
    )
    marta = make_eps_afiliado(primer_nombre="MARTA", primer_apellido="GÓMEZ")
    nico = make_eps_afiliado(cabeza=marta, primer_nombre="NICO", fecha_nacimiento=date(2018, 9, 9))
    return dict(rosa=rosa, martin=martin, tomas=tomas, marta=marta, nico=nico)


@pytest.fixture
def family(db):
    return make_family()


@pytest.fixture
def accounts(family):
    return {
        "rosa": make_eps_user(family["rosa"]),
        "marta": make_eps_user(family["marta"]),
        "hanna": make_user(),
        "staff": make_staff(roles=("admin", "autorizaciones")),
    }


@pytest.fixture
def rosa_in(client, auth, accounts):
    return auth.login(client, accounts["rosa"])


def reload(row):
    return type(row).get_by_id(row.id)


def set_estado(member, **values) -> None:
    EpsAfiliado.update(**values).where(EpsAfiliado.id == member.id).execute()


def verify(client, codigo: str, **headers):
    return client.get("/certificados/verificar", query_string={"codigo": codigo}, headers=headers)


def pdf_text(data: bytes) -> str:
    """Return the PDF's text with its whitespace (line breaks, layout) as single spaces."""
    out = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def pdf_pages(data: bytes) -> int:
    info = subprocess.run(
        ["pdfinfo", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


# --- issuing ---------------------------------------------------------------------------------


def test_issue_freezes_what_the_certificate_states(family, accounts, clock):
    clock.set(datetime(2026, 3, 10, 9, 30))
    cert = certificados.issue(accounts["rosa"], family["martin"])
    assert re.fullmatch(f"[{RECEIPT_ALPHABET}]{{5}}-[{RECEIPT_ALPHABET}]{{5}}", cert.codigo)
    stored = reload(cert)
    assert (stored.tipo_documento, stored.numero_documento) == (
        "TI",
        family["martin"].numero_documento,
    )
    assert stored.nombre == "MARTÍN PEÑA MEJÍA"
    assert (stored.estado, stored.regimen, stored.parentesco) == ("ACTIVO", "CONTRIBUTIVO", "HIJO")
    assert stored.cotizante_id == family["rosa"].id
    assert stored.cotizante_nombre == "ROSA ELENA PEÑA DÍAZ"
    assert stored.ips_nombre == ""  # Martín has no IPS on file: the certificate says so
    assert stored.account_id == accounts["rosa"].id
    assert certificados.issued_on(stored) == date(2026, 3, 10)
    assert stored.valid_until == date(2026, 4, 9)  # 30 days
    own = certificados.issue(accounts["rosa"], family["rosa"])
    assert (own.cotizante_id, own.cotizante_nombre) == (None, "")
    assert own.ips_nombre == "IPS Peña Díaz Salud Ñeque S.A.S."


def test_issue_reads_the_member_as_they_are_now_not_as_the_page_showed_them(family):
    stale = family["martin"]
    set_estado(stale, estado="SUSPENDIDO")
    with pytest.raises(certificados.NotActive):
        certificados.issue(None, stale)  # stale.estado still says ACTIVO
    assert Certificado.select().count() == 0


@pytest.mark.parametrize("estado", ["INACTIVO", "SUSPENDIDO", "RETIRADO", "FALLECIDO"])
def test_only_active_members_get_a_certificate(family, estado):
    set_estado(family["martin"], estado=estado)
    with pytest.raises(certificados.NotActive):
        certificados.issue(None, reload(family["martin"]))
    assert Certificado.select().count() == 0


def test_the_same_day_gives_back_the_same_certificate_and_a_change_or_a_new_day_a_new_one(
    family, clock
):
    clock.set(datetime(2026, 3, 10, 8, 0))
    first = certificados.issue(None, family["martin"])
    clock.advance(hours=14)  # 22:00 in Bogotá: still the 10th there (03:00 UTC of the 11th)
    assert certificados.issue(None, family["martin"]).id == first.id
    EpsAfiliado.update(regimen="SUBSIDIADO").where(EpsAfiliado.id == family["martin"].id).execute()
    changed = certificados.issue(None, family["martin"])
    assert changed.id != first.id and changed.regimen == "SUBSIDIADO"
    clock.advance(hours=3)  # the 11th
    assert certificados.issue(None, family["martin"]).id not in (first.id, changed.id)
    assert [c.id for c in certificados.recent_of(family["martin"])][1:] == [changed.id, first.id]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("7K3MQ-9TXW2", "7K3MQ-9TXW2"),
        ("7k3mq-9txw2", "7K3MQ-9TXW2"),
        ("7K3MQ9TXW2", "7K3MQ-9TXW2"),
        ("  7K3 MQ 9TX W2 ", "7K3MQ-9TXW2"),
        ("7K3MQ–9TXW2", "7K3MQ-9TXW2"),  # an en dash, as a phone's keyboard may put it
        ("7K3MQ.9TXW2", "7K3MQ-9TXW2"),
        ("", None),
        (None, None),
        ("7K3MQ-9TXW", None),  # 9 characters
        ("7K3MQ-9TXW22", None),  # 11
        ("7K3MQ-9TXWO", None),  # O is not in the alphabet (nor 0, 1, I, L)
        ("7K3MQ-9TXW1", None),
        ("../../etc/passwd", None),
        ("ÑÑÑÑÑ-ÑÑÑÑÑ", None),
        ("7K3MQ-9TXW2" * 10, None),
        ("7K3MQ-9TXW2' OR 1=1", None),
    ],
)
def test_codes_are_read_however_they_are_typed(typed, stored):
    assert certificados.clean_code(typed) == stored


def test_find_by_code_finds_the_certificate_however_typed(family):
    cert = certificados.issue(None, family["martin"])
    typed = cert.codigo.lower().replace("-", " ")
    assert certificados.find_by_code(typed).id == cert.id
    assert certificados.find_by_code("2222-22222") is None


# --- the verdict -------------------------------------------------------------------------------


def _moved_to(other):
    return lambda member: set_estado(member, cabeza=other.id)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: None, certificados.Reason.VIGENTE),
        (lambda m: set_estado(m, celular="3000000000", direccion="Otra"), "vigente"),
        (lambda m: set_estado(m, estado="RETIRADO"), certificados.Reason.NO_ACTIVO),
        (lambda m: set_estado(m, estado="SUSPENDIDO"), certificados.Reason.NO_ACTIVO),
        (lambda m: set_estado(m, estado="FALLECIDO"), certificados.Reason.NO_ACTIVO),
        (lambda m: set_estado(m, regimen="SUBSIDIADO"), certificados.Reason.CAMBIO),
        (lambda m: set_estado(m, parentesco="HIJASTRO"), certificados.Reason.CAMBIO),
        (
            lambda m: set_estado(m, tipo_documento="CC", numero_documento="1099"),
            certificados.Reason.CAMBIO,
        ),
        ("otro núcleo", certificados.Reason.CAMBIO),
    ],
)
def test_the_verdict_follows_the_affiliation_today(family, change, reason):
    cert = certificados.issue(None, family["martin"])
    if change == "otro núcleo":
        set_estado(family["martin"], cabeza=family["marta"].id)
    else:
        change(family["martin"])
    found = certificados.verdict(reload(cert))
    assert found.reason == reason
    assert found.valid is (reason == "vigente")


def test_a_certificate_expires_after_30_days_and_then_tells_nothing_of_today(family, clock):
    clock.set(datetime(2026, 3, 10, 9, 0))
    cert = certificados.issue(None, family["martin"])
    clock.set(datetime(2026, 4, 9, 23, 59))  # the 30th day after: still valid
    assert certificados.verdict(cert).valid
    clock.set(datetime(2026, 4, 10, 0, 1))
    assert certificados.verdict(cert).reason == certificados.Reason.VENCIDO
    set_estado(family["martin"], estado="RETIRADO")
    assert certificados.verdict(cert).reason == certificados.Reason.VENCIDO  # not "no activo"


# --- the PDF -----------------------------------------------------------------------------------


def test_the_pdf_is_one_a4_page_with_the_code_its_qr_and_the_accents(family, tmp_path):
    cert = certificados.issue(None, family["martin"])
    data = certificados.render_pdf(cert, certificados.verify_url(BASE, cert.codigo))
    assert data.startswith(b"%PDF-")
    assert len(data) < 60_000, len(data)  # the fonts are subset: about 27 KB
    info = subprocess.run(["pdfinfo", "-"], input=data, capture_output=True).stdout.decode()
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert "595.28 x 841.89 pts (A4)" in info
    path = tmp_path / "certificado.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "p")], check=True)
    assert [p.name for p in tmp_path.glob("p*.png")] == ["p-1.png"]  # one page, as an image
    text = pdf_text(data)
    for words in (
        "Cajacopi EPS",
        "CERTIFICADO DE AFILIACIÓN",
        cert.codigo,
        "MARTÍN PEÑA MEJÍA",
        "ROSA ELENA PEÑA DÍAZ",
        "Tarjeta de identidad",
        family["martin"].numero_documento,
        "Régimen",
        "Contributivo",
        "Estado de la afiliación",
        "Hijo(a)",
        "Sin IPS asignada",
        "es válido por 30 días",
        f"{BASE}/certificados/verificar",
    ):
        assert words in text, (words, text)
    assert re.search(rf"Fecha de expedición\s+{certificados.issued_on(cert):%d/%m/%Y}", text)
    assert re.search(rf"Válido hasta\s+{cert.valid_until:%d/%m/%Y}", text)
    own = certificados.issue(None, family["rosa"])
    text = pdf_text(certificados.render_pdf(own, certificados.verify_url(BASE, own.codigo)))
    assert "IPS Peña Díaz Salud Ñeque S.A.S." in text
    assert "como cotizante (cabeza de familia)" in text


def test_the_pdf_is_the_same_bytes_each_time_it_is_drawn(family):
    cert = certificados.issue(None, family["martin"])
    url = certificados.verify_url(BASE, cert.codigo)
    assert certificados.render_pdf(cert, url) == certificados.render_pdf(reload(cert), url)


def test_the_longest_names_still_fit_on_one_page_with_the_code(db):
    long = "Ñ" + "M" * 59
    head = make_eps_afiliado(
        primer_nombre=long, segundo_nombre=long, primer_apellido=long, segundo_apellido=long
    )
    member = make_eps_afiliado(
        cabeza=head,
        primer_nombre=long,
        segundo_nombre=long,
        primer_apellido=long,
        segundo_apellido=long,
        tipo_documento="PT",
        numero_documento="X" * 20,
        ips=make_ips(nombre="W" * 160),
    )
    cert = certificados.issue(None, member)
    data = certificados.render_pdf(cert, certificados.verify_url(BASE + "/" + "x" * 60, "A"))
    assert pdf_pages(data) == 1
    text = pdf_text(data)
    assert cert.codigo in text and "no requiere firma ni sello" in text
    assert "Válido hasta" in text


def test_the_qr_draws_every_module_of_the_verification_address(tmp_path):
    """Sample the drawn QR at each module's centre and compare with segno's matrix."""
    import segno
    from fpdf import FPDF

    url = certificados.verify_url(BASE, "7K3MQ-9TXW2")
    assert url == f"{BASE}/certificados/verificar?codigo=7K3MQ-9TXW2"
    pdf = FPDF(unit="mm", format=(60, 60))
    pdf.add_page()
    certificados._qr(pdf, url, 5, 5, 50)
    path = tmp_path / "qr.pdf"
    path.write_bytes(bytes(pdf.output()))
    subprocess.run(["pdftoppm", "-r", "300", "-png", "-singlefile", str(path), str(tmp_path / "q")])
    image = Image.open(tmp_path / "q.png").convert("L")
    matrix = [list(row) for row in segno.make(url, error="m").matrix_iter(scale=1, border=0)]
    px_per_mm = image.width / 60
    module = 50 / len(matrix)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            x = (5 + (c + 0.5) * module) * px_per_mm
            y = (5 + (r + 0.5) * module) * px_per_mm
            assert (image.getpixel((int(x), int(y))) < 128) == bool(dark), (r, c)


# --- the office: "Generar Certificados" ---------------------------------------------------------


def test_the_certificates_page_offers_the_certificate_and_lists_the_codes(client, rosa_in, family):
    earlier = certificados.issue(None, family["martin"])
    page = client.get(f"/genesis/datos/{family['martin'].id}/certificados")
    assert page.status_code == 200
    assert "<h1>Generar Certificados</h1>" in page.text
    assert "Generar certificado de afiliación" in page.text
    assert earlier.codigo in page.text
    assert f'href="/genesis/certificados/{earlier.codigo}.pdf"' in page.text
    assert 'href="/certificados/verificar"' in page.text


def test_a_member_not_active_gets_the_reason_and_no_button(client, rosa_in, family):
    url = f"/genesis/datos/{family['tomas'].id}/certificados"
    page = client.get(url)
    assert page.status_code == 200
    assert "no tiene la afiliación activa en Cajacopi EPS (estado: Retirado)" in page.text
    assert "Generar certificado de afiliación" not in page.text
    refused = client.post(url)
    assert refused.status_code == 422
    assert "no tiene la afiliación activa" in refused.text
    assert Certificado.select().count() == 0


def test_generating_sends_the_pdf_as_a_download(client, rosa_in, family, accounts):
    answer = client.post(f"/genesis/datos/{family['martin'].id}/certificados")
    assert answer.status_code == 303
    cert = Certificado.get()
    assert cert.account_id == accounts["rosa"].id and cert.afiliado_id == family["martin"].id
    assert answer.headers["Location"] == f"/genesis/certificados/{cert.codigo}.pdf"
    pdf = client.get(answer.headers["Location"])
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == (
        f'attachment; filename="certificado-afiliacion-{cert.codigo}.pdf"'
    )
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    assert pdf.headers["Cache-Control"] == "no-store"
    assert pdf.data.startswith(b"%PDF-")
    typed = client.get(f"/genesis/certificados/{cert.codigo.lower()}.pdf")
    assert typed.status_code == 200 and typed.data == pdf.data


def test_htmx_generation_navigates_to_the_download(client, rosa_in, family, htmx):
    answer = client.post(f"/genesis/datos/{family['martin'].id}/certificados", headers=htmx)
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"].endswith(".pdf")


def test_generating_needs_the_csrf_token(app, client, rosa_in, family):
    app.config["WTF_CSRF_ENABLED"] = True
    url = f"/genesis/datos/{family['martin'].id}/certificados"
    assert client.post(url).status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)
    assert client.post(url, data={"csrf_token": token}).status_code == 303
    assert Certificado.select().count() == 1


# Whose certificate, asked by whom: only the family group gets the PDF.
PDF_CASES = [
    ("rosa", "martin", True),
    ("rosa", "rosa", True),
    ("rosa", "nico", False),
    ("marta", "nico", True),
    ("marta", "martin", False),
    ("hanna", "martin", False),
    ("staff", "martin", False),
]


@pytest.mark.parametrize(("actor", "owner", "allowed"), PDF_CASES)
def test_a_certificate_pdf_is_served_only_to_its_family_group(
    client, auth, family, accounts, actor, owner, allowed
):
    cert = certificados.issue(None, family[owner])
    auth.login(client, accounts[actor])
    answer = client.get(f"/genesis/certificados/{cert.codigo}.pdf")
    assert answer.status_code == (200 if allowed else 404)
    assert ("Content-Disposition" in answer.headers) is allowed


@pytest.mark.parametrize(
    "codigo", ["2222222222", "X", "..%2F..%2Fetc", "7K3MQ-9TXWO", "%C3%91" * 10, "A" * 300]
)
def test_unknown_and_malformed_certificate_codes_are_404(client, rosa_in, codigo):
    assert client.get(f"/genesis/certificados/{codigo}.pdf").status_code == 404


def test_the_anonymous_are_sent_to_sign_in_for_a_pdf(client, family):
    cert = certificados.issue(None, family["martin"])
    answer = client.get(f"/genesis/certificados/{cert.codigo}.pdf")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/genesis/afiliados?next=")


def _sign_in(flask_app, client, account):
    """auth.login for an app other than the `app` fixture (limited_app)."""
    from blueprints.auth import idle_limit
    from core import auth as core_auth

    with flask_app.test_request_context():
        token = core_auth.start_session(account, "pytest", idle=idle_limit(account))
    with client.session_transaction() as session:
        session["sid"] = token
        session["_user_id"] = account.session_token
        session["_fresh"] = True


def test_generation_is_rate_limited_per_account(limited_app):
    with models.db.connection_context():
        people = make_family()
        rosa, marta = make_eps_user(people["rosa"]), make_eps_user(people["marta"])
    first, second = limited_app.test_client(), limited_app.test_client()
    _sign_in(limited_app, first, rosa)
    _sign_in(limited_app, second, marta)
    url = f"/genesis/datos/{people['martin'].id}/certificados"
    answers = [first.post(url).status_code for _ in range(11)]
    assert answers == [303] * 10 + [429]
    assert second.post(f"/genesis/datos/{people['nico'].id}/certificados").status_code == 303


# --- the public check --------------------------------------------------------------------------


def test_the_check_page_is_a_form_anyone_can_open(client, db):
    page = client.get("/certificados/verificar")
    assert page.status_code == 200
    assert 'for="codigo">Código de verificación</label>' in page.text
    assert 'method="get"' in page.text and ">Verificar</button>" in page.text
    assert NOT_FOUND not in page.text
    assert client.get("/certificados").headers["Location"] == "/certificados/verificar"


def test_a_valid_code_shows_what_the_certificate_says_and_vigente(client, family):
    cert = certificados.issue(None, family["martin"])
    page = verify(client, cert.codigo.lower().replace("-", ""))
    assert page.status_code == 200
    assert f"Certificado {cert.codigo}: vigente" in page.text
    assert "Vigente: la persona sigue afiliada a Cajacopi EPS" in page.text
    for shown in (
        "MARTÍN PEÑA MEJÍA",
        "Tarjeta de identidad",
        family["martin"].numero_documento,
        "Contributivo",
        "Activo",
        "Hijo(a)",
        "ROSA ELENA PEÑA DÍAZ",
        "Sin IPS asignada",
        f"expedido el {certificados.issued_on(cert):%d/%m/%Y}",
        f"<dd>{cert.valid_until:%d/%m/%Y}</dd>",
    ):
        assert shown in page.text, shown


def test_the_check_shows_nothing_beyond_the_certificate(client, family):
    cert = certificados.issue(None, family["martin"])
    set_estado(family["martin"], primer_nombre="MARTINA")  # today's data is not shown
    page = verify(client, cert.codigo)
    assert page.status_code == 200
    martin = family["martin"]
    for private in (
        martin.celular,
        martin.email,
        "Barrio Secreto",
        family["rosa"].celular,
        family["rosa"].numero_documento,  # the cotizante's name only, as on the paper
        "TOMÁS",
        "MARTINA",
        "IPS Peña Díaz",  # Rosa's IPS, not Martín's
        str(martin.fecha_nacimiento.year),
    ):
        assert private not in page.text, private
    assert "Cerrar sesión" not in page.text


def _without_echo(text: str) -> str:
    return re.sub(r'name="codigo"[^>]*>', "", text)


@pytest.mark.parametrize("codigo", ["7K3MQ-9TXW2", "2222222222", "NOPE", "7K3MQ-9TXWO", "a" * 39])
def test_unknown_and_malformed_codes_get_the_same_answer(client, family, codigo):
    certificados.issue(None, family["martin"])
    reference = verify(client, "ZZZZZ-ZZZZZ")
    answer = verify(client, codigo)
    assert answer.status_code == reference.status_code == 422
    assert NOT_FOUND in answer.text
    assert _without_echo(answer.text) == _without_echo(reference.text)
    assert f'value="{codigo}"' in answer.text  # the input is kept


def test_an_empty_code_is_asked_for(client, db):
    answer = verify(client, "  ")
    assert answer.status_code == 422
    assert "Escriba el código de verificación del certificado." in answer.text


@pytest.mark.parametrize(
    ("estado", "shown"),
    [
        ("RETIRADO", NOT_ACTIVE_HOY),
        ("SUSPENDIDO", NOT_ACTIVE_HOY),
        ("FALLECIDO", NOT_ACTIVE_HOY),
    ],
)
def test_a_certificate_is_no_longer_valid_after_the_affiliate_leaves(client, family, estado, shown):
    cert = certificados.issue(None, family["martin"])
    assert "vigente" in verify(client, cert.codigo).text
    set_estado(family["martin"], estado=estado)
    page = verify(client, cert.codigo)
    assert page.status_code == 200
    assert f"Certificado {cert.codigo}: no vigente" in page.text
    assert shown in page.text
    assert "<dd>Activo</dd>" in page.text  # what the certificate said, not today's state


def test_a_certificate_of_a_changed_affiliation_or_past_its_30_days_is_not_valid(
    client, family, clock
):
    clock.set(datetime(2026, 3, 10, 9, 0))
    cert = certificados.issue(None, family["martin"])
    set_estado(family["martin"], regimen="SUBSIDIADO")
    assert "Ya no es válido: la afiliación cambió" in verify(client, cert.codigo).text
    set_estado(family["martin"], regimen="CONTRIBUTIVO")
    clock.set(datetime(2026, 4, 10, 8, 0))
    page = verify(client, cert.codigo)
    assert "Ya no es válido: venció el 09/04/2026" in page.text
    assert "no vigente" in page.text


def test_the_check_answers_htmx_with_its_partial(client, family, htmx):
    cert = certificados.issue(None, family["martin"])
    partial = verify(client, cert.codigo, **htmx)
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'id="verificacion"' in partial.text and cert.codigo in partial.text
    assert "HX-Request" in partial.headers["Vary"]
    full = verify(client, cert.codigo)
    assert "<html" in full.text and "HX-Request" in full.headers["Vary"]
    bad = verify(client, "nada", **htmx)
    assert bad.status_code == 422 and "<html" not in bad.text


def test_the_check_needs_no_sign_in_and_works_signed_in_too(client, rosa_in, family):
    cert = certificados.issue(None, family["nico"])  # another family's: the code is the key
    page = verify(client, cert.codigo)
    assert page.status_code == 200 and "NICO" in page.text


def test_look_ups_are_rate_limited_per_client_and_the_form_is_free(limited_app):
    client = limited_app.test_client()
    with models.db.connection_context():
        cert = certificados.issue(None, make_family()["martin"])
    for _ in range(5):
        assert client.get("/certificados/verificar").status_code == 200  # not counted
    answers = [verify(client, cert.codigo if i % 2 else "NADA").status_code for i in range(21)]
    assert answers[:20] == [422, 200] * 10
    assert answers[20] == 429
    assert verify(client, cert.codigo).status_code == 429  # a valid code too
    other = limited_app.test_client()
    other_address = {"REMOTE_ADDR": "10.1.2.3"}
    assert (
        other.get(
            "/certificados/verificar",
            query_string={"codigo": cert.codigo},
            environ_base=other_address,
        ).status_code
        == 200
    )


def test_the_verify_address_is_the_fixed_public_path(app):
    assert certificados.VERIFY_PATH == "/certificados/verificar"
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint == "certificados.verificar"}
    assert rules == {"/certificados/verificar"}
    assert certificados.verify_url("https://eps.example/", "AB CD") == (
        "https://eps.example/certificados/verificar?codigo=AB%20CD"
    )


def test_the_office_link_to_generar_certificados_opens_the_page(client, rosa_in, family):
    page = client.get(f"/genesis/datos/{family['martin'].id}")
    if page.status_code != 200:
        pytest.skip("the G5 data page is another module")
    assert f'href="/genesis/datos/{family["martin"].id}/certificados"' in page.text


def test_the_anonymous_are_not_counted_against_anyone(limited_app):
    client = limited_app.test_client()
    with models.db.connection_context():
        member = make_family()["martin"]
    for _ in range(12):
        answer = client.post(f"/genesis/datos/{member.id}/certificados")
        assert answer.status_code == 302  # to the sign-in, never a 429
