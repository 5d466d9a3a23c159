"""The IPS side of the help desk over HTTP (SPEC I2, I3): a new case, Mis Solicitudes, the thread.

Attacks are tests here: another IPS's case, file, poll, message and close (404);
internal notes in the page, the partial and the poll; files that lie about
their kind; a double submit; 16 concurrent creations; a page left open whose
poll must not keep the session alive.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

import models
from blueprints.ips import mesa as views
from core import mesa
from models import Attachment, CasoMesa, MensajeMesa
from tests.concurrency import run_at_once
from tests.factories import make_ips_operador, make_staff
from tests.sample_files import pdf_bytes

KEY = re.compile(r'name="form_key" type="hidden" value="([^"]+)"')


@pytest.fixture
def desk(db):
    """The manual's six motivos; returns (first motivo, its first asunto, another motivo's asunto)."""
    mesa.ensure_default_motivos()
    first, second = mesa.motivos()[:2]
    return first, mesa.asuntos_of(first.id)[0], mesa.asuntos_of(second.id)[0]


@pytest.fixture
def upload_dir(app) -> Path:
    return Path(app.config["UPLOAD_DIR"])


@pytest.fixture
def laura(db, client, auth):
    """An IPS operator, signed in on `client`."""
    account = make_ips_operador(nombre="Laura Gómez")
    auth.login(client, account)
    return account


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


def files_on_disk(upload_dir: Path) -> list[Path]:
    return [p for p in upload_dir.rglob("*") if p.is_file()] if upload_dir.exists() else []


def form_key(client) -> str:
    return KEY.search(client.get("/ips/mesa").text).group(1)


def new_case(client, desk, descripcion="No cargan los RIPS de enero.", files=(), key=None, **over):
    motivo, asunto, _ = desk
    data = {
        "form_key": key or form_key(client),
        "motivo": str(motivo.id),
        "asunto": str(asunto.id),
        "descripcion": descripcion,
        "accion": "generar",
        **over,
    }
    if files:
        data["adjunto"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/ips/mesa", data=data, content_type="multipart/form-data")


_keys = iter(range(10**9))


def open_case(account, desk, text="Caso de prueba.", parts=(), upload_dir=""):
    """A case made through core.mesa (fast set-up for the list and the thread)."""
    motivo, asunto, _ = desk
    return mesa.open_case(
        account, motivo, asunto, text, f"clave{next(_keys)}", parts, upload_dir or "/nonexistent"
    )


def numero_of(response) -> int:
    return int(response.headers["Location"].rsplit("/", 1)[1])


# --- I2: the form ----------------------------------------------------------------------------


def test_the_form_has_the_manuals_fields_and_button(desk, client, laura):
    page = client.get("/ips/mesa")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Mesa de Ayuda – Mesa de Ayuda</h1>" in html
    for label in ("Motivo", "Asunto", "Descripción", "Adjunto (opcional)"):
        assert f">{label}</label>" in html
    assert ">Generar Servicio</button>" in html and ">Ver asuntos</button>" in html
    assert len(re.findall(r'<option value="\d+">', html)) == 6  # the six motivos, no asunto yet
    assert "Primero elija el motivo" in html
    assert 'maxlength="1000"' in html and 'data-quedan="descripcion-quedan"' in html
    assert "Quedan 1000 caracteres." in html  # said by the server too: JavaScript off
    assert 'type="file" id="adjunto" name="adjunto" multiple' in html
    assert 'hx-get="/ips/mesa/asuntos"' in html and 'hx-target="#asunto-campo"' in html
    assert "<script>" not in html and " onclick=" not in html


def test_the_anonymous_are_sent_to_the_ips_login(client, db, htmx):
    page = client.get("/ips/mesa")
    assert page.status_code == 302 and page.headers["Location"].startswith("/ips")
    assert "next=" in page.headers["Location"]
    assert client.get("/ips/solicitudes/40912/nuevos?despues=1", headers=htmx).status_code == 401


def test_other_kinds_of_account_get_404(desk, client, auth):
    auth.login(client, make_staff(roles=("soporte",)))
    assert client.get("/ips/mesa").status_code == 404
    assert client.get("/ips/solicitudes").status_code == 404


def test_the_asuntos_partial_lists_only_the_chosen_motivos(desk, client, laura, htmx):
    motivo, asunto, other = desk
    part = client.get(f"/ips/mesa/asuntos?motivo={motivo.id}", headers=htmx)
    assert part.status_code == 200 and "HX-Request" in part.headers["Vary"]
    assert part.text.lstrip().startswith('<div id="asunto-campo">') and "<html" not in part.text
    for a in mesa.asuntos_of(motivo.id):
        assert f'value="{a.id}">{a.nombre}</option>' in part.text
    assert other.nombre not in part.text
    junk = client.get("/ips/mesa/asuntos?motivo=abc", headers=htmx)
    assert junk.status_code == 200 and "Primero elija el motivo" in junk.text
    whole = client.get(f"/ips/mesa/asuntos?motivo={motivo.id}")  # no htmx: the whole form
    assert "<h1>Mesa de Ayuda – Mesa de Ayuda</h1>" in whole.text and asunto.nombre in whole.text


def test_ver_asuntos_without_javascript_reloads_the_form_keeping_what_was_typed(
    desk, client, laura
):
    motivo, asunto, other = desk
    key = form_key(client)
    page = client.post(
        "/ips/mesa",
        data={"form_key": key, "motivo": str(motivo.id), "asunto": "", "accion": "asuntos",
              "descripcion": "El cargue falla\r\ncon error 500."},
    )  # fmt: skip
    assert page.status_code == 200
    assert f'<option selected value="{motivo.id}">' in page.text
    assert f'value="{asunto.id}">{asunto.nombre}</option>' in page.text
    assert other.nombre not in page.text
    assert "El cargue falla\ncon error 500.</textarea>" in page.text
    assert "Quedan 970 caracteres." in page.text  # the line break counts once, as in the browser
    assert f'value="{key}"' in page.text  # the same form: its key goes on
    assert CasoMesa.select().count() == 0


@pytest.mark.parametrize(
    "over, field, message",
    [
        ({"motivo": ""}, "motivo", "Elija el motivo."),
        ({"motivo": "999999"}, "motivo", "Elija el motivo."),
        ({"asunto": ""}, "asunto", "Elija el asunto."),
        ({"asunto": "OTHER"}, "asunto", "Ese asunto no es del motivo elegido"),
        ({"descripcion": "   "}, "descripcion", "Escriba la descripción"),
        ({"descripcion": "x" * 1001}, "descripcion", "hasta 1000 caracteres"),
    ],
)
def test_bad_input_is_422_with_the_message_by_the_field_and_the_input_kept(
    desk, client, laura, over, field, message
):
    _, _, other = desk
    if over.get("asunto") == "OTHER":
        over = {"asunto": str(other.id)}
    answer = new_case(client, desk, **{"descripcion": "Texto que se conserva.", **over})
    assert answer.status_code == 422
    assert re.search(rf'<p class="error" id="{field}-error">[^<]*{re.escape(message)}', answer.text)
    assert "Revise los campos marcados" in answer.text
    kept = over.get("descripcion", "Texto que se conserva.").strip()
    if kept:
        assert f"{kept}</textarea>" in answer.text
    assert CasoMesa.select().count() == 0


def test_a_description_of_1000_characters_with_line_breaks_is_accepted(desk, client, laura):
    text = "a" * 998 + "\r\n" + "b"  # 1001 as sent, 1000 as typed
    answer = new_case(client, desk, descripcion=text)
    assert answer.status_code == 303
    assert CasoMesa.get().descripcion == "a" * 998 + "\nb"


@pytest.mark.parametrize(
    "name, content",
    [
        ("orden.pdf", b"MZ\x90\x00\x03\x00\x00\x00 This program cannot be run in DOS mode"),
        ("orden.pdf", b"<!doctype html><html><script>alert(1)</script></html>"),
        ("foto.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ],
)
def test_a_file_refused_by_its_content_saves_nothing(
    desk, client, laura, upload_dir, name, content
):
    answer = new_case(client, desk, files=[(name, content)])
    assert answer.status_code == 422
    error = re.search(r'<p class="error" id="adjunto-error">([^<]+)</p>', answer.text)
    assert error and "Solo se aceptan archivos" in error.group(1)
    assert "No cargan los RIPS de enero." in answer.text  # the text is kept
    assert CasoMesa.select().count() == 0 and MensajeMesa.select().count() == 0
    assert Attachment.select().count() == 0 and files_on_disk(upload_dir) == []


def test_one_bad_file_among_good_ones_is_named_and_nothing_is_kept(desk, client, laura, upload_dir):
    answer = new_case(
        client, desk,
        files=[("acta.pdf", pdf_bytes()), ("virus.pdf", b"MZ\x90\x00 nope"), ("foto.png", png_bytes())],
    )  # fmt: skip
    assert answer.status_code == 422
    assert "«virus.pdf»: Solo se aceptan archivos" in answer.text
    assert CasoMesa.select().count() == 0 and Attachment.select().count() == 0
    assert files_on_disk(upload_dir) == []  # acta.pdf, stored first, was removed again
    assert new_case(client, desk).status_code == 303
    assert CasoMesa.get().numero == 40912  # the refusal spent no number


def test_more_files_than_allowed_are_refused(desk, client, laura):
    answer = new_case(client, desk, files=[(f"a{i}.pdf", pdf_bytes()) for i in range(6)])
    assert answer.status_code == 422 and "Adjunte hasta 5 archivos." in answer.text
    assert CasoMesa.select().count() == 0


def test_generar_servicio_with_several_files_shows_the_case_and_its_number(desk, client, laura):
    motivo, asunto, _ = desk
    answer = new_case(client, desk, files=[("acta.pdf", pdf_bytes()), ("foto.png", png_bytes())])
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/ips/solicitudes/40912"
    page = client.get(answer.headers["Location"])
    assert "Se generó el servicio N° 40912" in page.text  # the manual's notification
    assert "<dt>CASO</dt><dd>40912</dd>" in page.text
    assert f"<dt>MOTIVO</dt><dd>{motivo.nombre}</dd>" in page.text
    assert f"<dt>ASUNTO</dt><dd>{asunto.nombre}</dd>" in page.text
    assert re.search(r"<dt>FECHA</dt><dd>\d\d/\d\d/\d{4} \d\d:\d\d</dd>", page.text)
    assert '<span id="caso-estado">Nuevo</span>' in page.text
    links = re.findall(r'href="(/ips/solicitudes/40912/adjuntos/\d+)" download>([^<]+)<', page.text)
    assert [name for _, name in links] == ["acta.pdf", "foto.png"]
    download = client.get(links[0][0])
    assert download.status_code == 200 and download.data == pdf_bytes()
    assert download.headers["Content-Disposition"].startswith("attachment")
    caso = CasoMesa.get()
    assert caso.account_id == laura.id and caso.ips_id == laura.ips.ips_id
    assert client.get("/ips/solicitudes/40912").text.count("Se generó el servicio") == 0


def test_a_double_submit_makes_one_case_and_shows_it(desk, client, laura):
    key = form_key(client)
    first = new_case(client, desk, key=key)
    again = new_case(client, desk, key=key, descripcion="Otro texto del segundo clic.")
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert CasoMesa.select().count() == 1 and MensajeMesa.select().count() == 1


def test_a_form_key_of_another_ips_names_nothing(desk, client, laura, auth, app):
    key = form_key(client)
    assert new_case(client, desk, key=key).status_code == 303
    other = app.test_client()
    auth.login(other, make_ips_operador())
    answer = new_case(other, desk, key=key)
    assert answer.status_code == 422 and "40912" not in answer.text
    assert "El formulario venció" in answer.text and CasoMesa.select().count() == 1
    forged = new_case(other, desk, key="not-a-key")
    assert forged.status_code == 422 and CasoMesa.select().count() == 1


def test_sixteen_concurrent_creations_over_http_get_sixteen_sequential_numbers(desk, app, auth):
    operadores = [make_ips_operador() for _ in range(4)]
    clients = []
    for i in range(16):
        c = app.test_client()
        auth.login(c, operadores[i % 4])
        clients.append((c, form_key(c)))
    results = run_at_once(
        [lambda c=c, k=k: new_case(c, desk, key=k).headers.get("Location") for c, k in clients]
    )
    assert all(isinstance(r, str) for r in results), results
    numbers = sorted(int(r.rsplit("/", 1)[1]) for r in results)
    assert numbers == list(range(40912, 40928))
    assert CasoMesa.select().count() == 16


def test_a_double_click_racing_itself_is_one_case(desk, client, laura):
    key = form_key(client)
    results = run_at_once([lambda: new_case(client, desk, key=key).status_code] * 2)
    assert results == [303, 303]
    assert CasoMesa.select().count() == 1


def test_a_body_over_the_cap_gets_the_spanish_413(desk, client, laura):
    answer = client.post(
        "/ips/mesa",
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(views.MAX_BODY + 1)},
    )
    assert answer.status_code == 413
    assert "Los adjuntos son demasiado grandes" in answer.text
    assert views.MAX_BODY >= mesa.MAX_FILES * 10 * 1024 * 1024


def test_creating_cases_is_rate_limited_per_account(limited_app):
    from blueprints.auth import idle_limit
    from core import auth as core_auth

    with models.db.connection_context():
        mesa.ensure_default_motivos()
        one, two = make_ips_operador(), make_ips_operador()
    clients = []
    for account in (one, two):
        c = limited_app.test_client()
        with limited_app.test_request_context():
            token = core_auth.start_session(account, "pytest", idle=idle_limit(account))
        with c.session_transaction() as session:
            session.update(sid=token, _user_id=account.session_token, _fresh=True)
        clients.append(c)
    data = {"accion": "asuntos", "motivo": "", "descripcion": ""}
    answers = [clients[0].post("/ips/mesa", data=data).status_code for _ in range(21)]
    assert answers == [200] * 20 + [429]
    assert clients[1].post("/ips/mesa", data=data).status_code == 200


# --- I3: Mis Solicitudes ------------------------------------------------------------------------


def rows_of(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]


def test_mis_solicitudes_shows_the_ips_cases_of_all_its_operators_and_no_other(desk, client, laura):
    colleague = make_ips_operador(ips=laura.ips.ips, nombre="Pedro Ruiz", es_admin=False)
    stranger = make_ips_operador()
    mine = open_case(laura, desk, "Primero de Laura.")
    theirs = open_case(stranger, desk, "De otra IPS.")
    ours = open_case(colleague, desk, "De Pedro, " + "largo " * 40)
    page = client.get("/ips/solicitudes")
    assert page.status_code == 200
    assert "<h1>Gestion de Solicitud – Mis Solicitudes</h1>" in page.text
    for heading in ("Numero del Caso", "Fecha", "Asunto", "Descripcion", "Estado", "Accion"):
        assert f'<th scope="col">{heading}</th>' in page.text
    assert rows_of(page.text) == [ours.numero, mine.numero]  # newest first
    assert "De otra IPS." not in page.text and str(theirs.numero) not in page.text
    assert "De Pedro, largo" in page.text and "largo " * 40 not in page.text  # shortened
    assert f'<a href="/ips/solicitudes/{mine.numero}">Ver' in page.text
    assert re.search(r"<td>\d\d/\d\d/\d{4}</td>", page.text)


def test_mis_solicitudes_filters_by_state_and_searches_by_number(desk, client, laura):
    a, b, c = (open_case(laura, desk, f"Caso {i}.") for i in range(3))
    mesa.close(b)
    assert rows_of(client.get("/ips/solicitudes?estado=cerrado").text) == [b.numero]
    assert rows_of(client.get("/ips/solicitudes?estado=nuevo").text) == [c.numero, a.numero]
    assert rows_of(client.get(f"/ips/solicitudes?numero={a.numero}").text) == [a.numero]
    none = client.get("/ips/solicitudes?numero=1")
    assert rows_of(none.text) == [] and "No hay solicitudes con esos filtros." in none.text
    for bad in ("abc", "1" * 12, "-5"):
        answer = client.get(f"/ips/solicitudes?numero={bad}")
        assert answer.status_code == 422 and "Escriba el número del caso" in answer.text
    assert client.get("/ips/solicitudes?estado=bogus").status_code == 422


def test_mis_solicitudes_is_paged_with_an_htmx_partial(desk, client, laura, htmx, clock):
    clock.set(datetime(2026, 5, 4, 9, 0))
    made = []
    for i in range(views.PER_PAGE + 5):
        clock.advance(minutes=1)
        made.append(open_case(laura, desk, f"Caso {i}.").numero)
    newest = made[::-1]
    page = client.get("/ips/solicitudes")
    assert rows_of(page.text) == newest[: views.PER_PAGE]
    assert "25 resultados" in page.text
    more = re.search(r'href="(/ips/solicitudes\?despues=[^"]+)" hx-get', page.text).group(1)
    partial = client.get(more.replace("&amp;", "&"), headers=htmx)
    assert partial.status_code == 200 and "<html" not in partial.text
    assert rows_of(partial.text) == newest[views.PER_PAGE :]
    assert "Ver más" not in partial.text
    assert client.get("/ips/solicitudes?despues=garbage").status_code == 303


# --- I3: the case page and another IPS ------------------------------------------------------------


@pytest.fixture
def their_case(desk, upload_dir):
    """A case of another IPS, with a file."""
    stranger = make_ips_operador()
    caso = open_case(
        stranger, desk, "Caso ajeno.", [mesa.Upload(io.BytesIO(pdf_bytes()), "ajeno.pdf")],
        upload_dir,
    )  # fmt: skip
    return caso, Attachment.get()


def test_another_ips_case_file_poll_message_and_state_are_404(
    desk, client, laura, their_case, htmx
):
    caso, adjunto = their_case
    n = caso.numero
    assert client.get(f"/ips/solicitudes/{n}").status_code == 404
    assert client.get(f"/ips/solicitudes/{n}", headers=htmx).status_code == 404
    assert client.get(f"/ips/solicitudes/{n}/adjuntos/{adjunto.id}").status_code == 404
    assert client.get(f"/ips/solicitudes/{n}/nuevos?despues=0", headers=htmx).status_code == 404
    posted = client.post(f"/ips/solicitudes/{n}/mensajes", data={"texto": "Hola"})
    assert posted.status_code == 404
    assert client.post(f"/ips/solicitudes/{n}/cerrar").status_code == 404
    mesa.close(caso)
    assert client.post(f"/ips/solicitudes/{n}/reabrir").status_code == 404
    assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.CERRADO
    assert MensajeMesa.select().where(MensajeMesa.caso == caso.id).count() == 1
    # Its file under my own case's number is not mine either.
    mine = open_case(laura, desk)
    assert client.get(f"/ips/solicitudes/{mine.numero}/adjuntos/{adjunto.id}").status_code == 404
    assert client.get("/ips/solicitudes/99999999").status_code == 404
    huge = 2**52  # past a 32-bit column: still a 404, never a database error
    assert client.get(f"/ips/solicitudes/{huge}").status_code == 404
    assert client.get(f"/ips/solicitudes/{mine.numero}/adjuntos/{huge}").status_code == 404
    assert client.get(f"/ips/solicitudes/{huge}/nuevos?despues={huge}").status_code == 404
    poll = client.get(f"/ips/solicitudes/{mine.numero}/nuevos?despues={'9' * 15}", headers=htmx)
    assert poll.status_code == 204


def test_internal_notes_never_reach_the_page_the_partial_or_the_poll(
    desk, client, laura, upload_dir, htmx
):
    staff = make_staff(roles=("soporte",), nombre="Ana María Torres")
    caso = open_case(laura, desk)
    first = MensajeMesa.get().id
    note = mesa.staff_note(
        caso, staff, "NOTA-INTERNA: la IPS debe cartera.",
        [mesa.Upload(io.BytesIO(pdf_bytes()), "interno.pdf")], upload_dir,
    )  # fmt: skip
    (interno,) = Attachment.of(mesa.OWNER_MESSAGE, note.id)
    url = f"/ips/solicitudes/{caso.numero}"
    for answer in (client.get(url), client.get(url, headers=htmx)):
        assert "NOTA-INTERNA" not in answer.text and "interno.pdf" not in answer.text
    poll = client.get(f"{url}/nuevos?despues={first}", headers=htmx)
    assert poll.status_code == 204 and poll.data == b""
    everything = client.get(f"{url}/nuevos?despues=0", headers=htmx)
    assert "NOTA-INTERNA" not in everything.text and "interno.pdf" not in everything.text
    assert client.get(f"{url}/adjuntos/{interno.id}").status_code == 404
    reply = mesa.staff_replies(caso, staff, "Ya lo revisamos.", [], upload_dir, link=url)
    poll = client.get(f"{url}/nuevos?despues={first}", headers=htmx)
    assert poll.status_code == 200 and "Ya lo revisamos." in poll.text
    assert "NOTA-INTERNA" not in poll.text
    assert f"despues={reply.id}" in poll.text


def test_the_case_page_shows_who_wrote_each_message_and_when(desk, client, laura, upload_dir):
    staff = make_staff(roles=("soporte",), nombre="Ana María Torres")
    caso = open_case(laura, desk, "La descripción del caso.")
    mesa.staff_replies(caso, staff, "Envíe el RIPS.", [], upload_dir, link="/x")
    mesa.ips_writes(caso, laura, "Aquí va.\nSegunda línea.", [], upload_dir)
    page = client.get(f"/ips/solicitudes/{caso.numero}")
    assert "<dt>DESCRIPCION</dt><dd>La descripción del caso.</dd>" in page.text
    articles = re.findall(r'<article class="mensaje( de-mesa)?".*?</article>', page.text, re.S)
    assert len(articles) == 2  # the description is not repeated as a message
    assert "<strong>Mesa de Ayuda · Ana</strong>" in page.text and "Torres" not in page.text
    assert "<strong>Laura Gómez</strong>" in page.text
    assert "Aquí va.<br>Segunda línea." in page.text
    assert "Debajo de este mensaje puedes escribir el mensaje que quieras enviar" in page.text
    assert 'placeholder="Mensaje.."' in page.text and ">ENVIAR</button>" in page.text
    assert '<span id="caso-estado">En espera de la mesa</span>' in page.text


# --- the poll --------------------------------------------------------------------------------------


def test_the_poll_answers_204_until_staff_write_then_the_new_messages(
    desk, client, laura, upload_dir, htmx
):
    staff = make_staff(roles=("soporte",), nombre="Ana María Torres")
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    page = client.get(url).text
    poller = re.search(r'<div id="sondeo" hx-get="([^"]+)" hx-trigger="every 10s"', page)
    assert poller, page
    poll_url = poller.group(1)
    idle = client.get(poll_url, headers=htmx)
    assert idle.status_code == 204 and idle.data == b""
    reply = mesa.staff_replies(caso, staff, "Respuesta nueva.", [], upload_dir, link=url)
    news = client.get(poll_url, headers=htmx)
    assert news.status_code == 200 and "<html" not in news.text
    assert "Respuesta nueva." in news.text and "Mesa de Ayuda · Ana" in news.text
    assert f'hx-get="{url}/nuevos?despues={reply.id}"' in news.text  # the next poller
    assert '<span id="caso-estado" hx-swap-oob="true">En espera de la IPS</span>' in news.text
    assert 'id="caso-acciones" class="actions" hx-swap-oob="true"' in news.text
    again = client.get(f"{url}/nuevos?despues={reply.id}", headers=htmx)
    assert again.status_code == 204
    assert client.get(f"{url}/nuevos?despues=abc", headers=htmx).status_code == 400
    assert client.get(f"{url}/nuevos", headers=htmx).status_code == 400


def test_the_plain_reload_shows_new_messages_without_javascript(desk, client, laura, upload_dir):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    page = client.get(url).text
    assert f'<a href="{url}#hilo" hx-get="{url}"' in page and ">Actualizar</a>" in page
    mesa.staff_replies(caso, make_staff(), "Ya quedó.", [], upload_dir, link=url)
    assert "Ya quedó." in client.get(url).text


def _last_seen(account):
    return (
        models.UserSession.select(models.UserSession.last_seen)
        .where(models.UserSession.account == account.id)
        .scalar()
    )


def test_the_poll_does_not_keep_an_idle_session_alive(desk, app, client, auth, clock, htmx):
    clock.set(datetime(2026, 5, 4, 9, 0))
    laura = make_ips_operador()
    auth.login(client, laura)
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    poll_url = re.search(r'hx-get="([^"]+nuevos[^"]+)"', client.get(url).text).group(1)
    seen = _last_seen(laura)
    idle = app.config["IDLE_MINUTES_SHARED"]
    for _ in range(idle // 3):  # a page left open: it polls, nobody is there
        clock.advance(minutes=3)
        assert client.get(poll_url, headers=htmx).status_code == 204
        assert _last_seen(laura) == seen
    clock.advance(minutes=3)  # past the idle time since the last real page
    answer = client.get(url)
    assert answer.status_code == 302 and "/ips" in answer.headers["Location"]
    assert "next=" in answer.headers["Location"]


def test_a_poll_after_the_session_ended_is_401_and_signs_in_back_to_the_case(
    desk, client, laura, clock, htmx, app
):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    clock.advance(minutes=app.config["IDLE_MINUTES_SHARED"] + 1)
    answer = client.get(f"{url}/nuevos?despues=1", headers=htmx)
    assert answer.status_code == 401
    target = urlsplit(answer.headers["HX-Redirect"])
    assert parse_qs(target.query)["next"] == [url]  # the case page, not the poll's fragment
    plain = client.get(f"{url}/nuevos?despues=1")  # the session is gone: not a 500 either
    assert plain.status_code == 302 and "nuevos" not in plain.headers["Location"]


def test_real_pages_do_keep_the_session_alive(desk, client, auth, clock):
    """The control of the test above: the same minutes with pages opened do not sign out."""
    clock.set(datetime(2026, 5, 4, 9, 0))
    laura = make_ips_operador()
    auth.login(client, laura)
    caso = open_case(laura, desk)
    for _ in range(5):
        clock.advance(minutes=3)
        assert client.get(f"/ips/solicitudes/{caso.numero}").status_code == 200


# --- writing, closing, reopening -------------------------------------------------------------------


def test_enviar_with_a_file_without_javascript(desk, client, laura, upload_dir):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    answer = client.post(
        f"{url}/mensajes",
        data={"texto": "Adjunto el RIPS corregido.", "adjunto": [(io.BytesIO(pdf_bytes()), "rips.pdf")]},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["Location"] == f"{url}#hilo"
    page = client.get(url).text
    assert "Se envió su mensaje." in page and "Adjunto el RIPS corregido." in page
    link = re.search(rf'href="({url}/adjuntos/\d+)" download>rips.pdf<', page)
    assert link and client.get(link.group(1)).data == pdf_bytes()
    message = MensajeMesa.select().order_by(MensajeMesa.id.desc()).get()
    assert message.account_id == laura.id and not message.de_mesa
    assert len(files_on_disk(upload_dir)) == 1


def test_enviar_with_htmx_swaps_the_thread(desk, client, laura, upload_dir, htmx):
    staff = make_staff(roles=("soporte",))
    caso = open_case(laura, desk)
    mesa.staff_replies(caso, staff, "¿Cuál factura?", [], upload_dir, link="/x")
    url = f"/ips/solicitudes/{caso.numero}"
    answer = client.post(
        f"{url}/mensajes",
        data={"texto": "La 123.", "adjunto": [(io.BytesIO(png_bytes()), "factura.png")]},
        content_type="multipart/form-data",
        headers=htmx,
    )
    assert answer.status_code == 200 and "HX-Request" in answer.headers["Vary"]
    assert answer.text.lstrip().startswith("{#") is False
    assert '<section id="hilo"' in answer.text and "<html" not in answer.text
    assert "La 123." in answer.text and "factura.png" in answer.text
    assert "</textarea>" in answer.text and "La 123.</textarea>" not in answer.text  # a fresh form
    assert '<span id="caso-estado" hx-swap-oob="true">En espera de la mesa</span>' in answer.text
    last = MensajeMesa.select().order_by(MensajeMesa.id.desc()).get()
    assert f"nuevos?despues={last.id}" in answer.text
    assert "Se envió su mensaje." not in client.get(url).text  # no flash left for later


def test_enviar_with_nothing_or_too_much_or_a_bad_file_is_422_and_keeps_the_text(
    desk, client, laura, upload_dir
):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}/mensajes"
    empty = client.post(url, data={"texto": "  "})
    assert empty.status_code == 422 and "Escriba el mensaje o adjunte un archivo." in empty.text
    long = client.post(url, data={"texto": "y" * (mesa.MENSAJE_MAX + 1)})
    assert long.status_code == 422 and f"hasta {mesa.MENSAJE_MAX} caracteres" in long.text
    bad = client.post(
        url,
        data={"texto": "Va el archivo.", "adjunto": [(io.BytesIO(b"<html></html>"), "a.pdf")]},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "Solo se aceptan archivos" in bad.text
    assert "Va el archivo.</textarea>" in bad.text
    assert MensajeMesa.select().count() == 1 and files_on_disk(upload_dir) == []


def test_closing_and_reopening_and_a_second_click_changes_nothing(desk, client, laura):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}"
    assert ">Cerrar caso</button>" in client.get(url).text
    assert client.post(f"{url}/cerrar").status_code == 303
    page = client.get(url).text
    assert f"Se cerró el caso N° {caso.numero}." in page
    assert '<span id="caso-estado">Cerrado</span>' in page and ">Reabrir caso</button>" in page
    assert ">ENVIAR</button>" not in page and "El caso está cerrado." in page
    closed_at = CasoMesa.get_by_id(caso.id).closed_at
    client.post(f"{url}/cerrar")
    assert f"El caso N° {caso.numero} ya estaba cerrado." in client.get(url).text
    assert CasoMesa.get_by_id(caso.id).closed_at == closed_at
    refused = client.post(f"{url}/mensajes", data={"texto": "¿Sigue?"})
    assert refused.status_code == 409 and "El caso está cerrado" in refused.text
    assert MensajeMesa.select().count() == 1
    assert client.post(f"{url}/reabrir").status_code == 303
    page = client.get(url).text
    assert (
        "Se reabrió el caso" in page
        and '<span id="caso-estado">En espera de la mesa</span>' in page
    )
    client.post(f"{url}/reabrir")
    assert f"El caso N° {caso.numero} ya estaba abierto." in client.get(url).text
    assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.ESPERA_MESA


def test_state_changes_and_messages_need_the_csrf_token(tmp_path):
    from tests.apps import make_app

    maker = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    csrf_app = next(maker)
    try:
        from blueprints.auth import idle_limit
        from core import auth as core_auth

        with models.db.connection_context():
            mesa.ensure_default_motivos()
            laura = make_ips_operador()
            motivo = mesa.motivos()[0]
            caso = mesa.open_case(
                laura, motivo, mesa.asuntos_of(motivo.id)[0], "x", "clave-csrf", [], "/none"
            )
        c = csrf_app.test_client()
        with csrf_app.test_request_context():
            token = core_auth.start_session(laura, "pytest", idle=idle_limit(laura))
        with c.session_transaction() as session:
            session.update(sid=token, _user_id=laura.session_token, _fresh=True)
        url = f"/ips/solicitudes/{caso.numero}"
        assert c.post(f"{url}/cerrar").status_code == 400
        assert c.post(f"{url}/mensajes", data={"texto": "hola"}).status_code == 400
        with models.db.connection_context():
            assert CasoMesa.get_by_id(caso.id).estado == CasoMesa.NUEVO
            assert MensajeMesa.select().count() == 1
    finally:
        next(maker, None)


def test_a_message_body_over_the_cap_is_413_in_words_with_and_without_htmx(
    desk, client, laura, htmx
):
    caso = open_case(laura, desk)
    url = f"/ips/solicitudes/{caso.numero}/mensajes"
    too_big = dict(
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        environ_overrides={"CONTENT_LENGTH": str(views.MAX_BODY + 1)},
    )
    page = client.post(url, **too_big)
    assert page.status_code == 413 and "Los adjuntos son demasiado grandes" in page.text
    assert f'href="/ips/solicitudes/{caso.numero}"' in page.text
    part = client.post(url, headers=htmx, **too_big)
    assert part.status_code == 413 and part.headers["HX-Retarget"] == "#mensaje-aviso"
    assert "No se envió el mensaje" in part.text and "<html" not in part.text
    assert MensajeMesa.select().count() == 1


def test_a_quiet_poll_asks_the_database_twice_the_session_and_the_case(
    desk, client, laura, htmx, monkeypatch
):
    # Polls come every few seconds from every open case page: one statement for
    # the session behind the cookie, one for "this IPS's case, anything new?".
    caso = open_case(laura, desk)
    last = MensajeMesa.get().id
    url = f"/ips/solicitudes/{caso.numero}/nuevos?despues={last}"
    assert client.get(url, headers=htmx).status_code == 204
    database = models.db.obj
    statements = []
    real = database.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        statements.append(sql)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", counting)
    poll = client.get(url, headers=htmx)
    assert poll.status_code == 204
    assert poll.headers["Vary"].split(", ") == ["HX-Request", "Accept-Encoding", "Cookie"]
    assert len(statements) == 2, statements
    statements.clear()
    news = client.get(f"/ips/solicitudes/{caso.numero}/nuevos?despues=0", headers=htmx)
    assert news.status_code == 200
    assert len(statements) > 2  # the new messages: the case, its thread, their files
