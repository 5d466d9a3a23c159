"""The IPS help desk (Mesa de Ayuda) from an attacker's side.

The attacks, each a test that must fail against the portal:

1. The poll's ``despues`` bent every way (negative, signed, spaced, non-ASCII digits,
   exponent, 16 digits): a 400, never a 500; and a low ``despues`` on one case never
   brings another case's messages (same IPS) or an internal note.
2. A file of the IPS's own other case asked for through this case's number: 404.
3. An operator moved to another IPS mid-session reads the old IPS's case no more; a
   disabled operator's old session polls into a 401 without a word of the thread.
4. Links: the invitation opened by GET many times (a mail scanner) still works once,
   then says it was used; the reset link replayed after use is refused.
5. The IPS admin adds an operator whose e-mail another IPS already uses (allowed: the
   login is NIT:email); each signs in with its own NIT only.
6. Staff: a case assigned to a pqrs staff member or to an IPS account id by a crafted
   value is refused and nothing changes.
7. Markup in a message is shown escaped on both sides.
8. A NUL byte in the IPS's message or description (PostgreSQL would 500): app.py's
   refuse_nul_bytes answers 400 and nothing is kept.
9. A desk reply e-mailed to the opener after the IPS admin disabled them.
10. Many forged X-Forwarded-For addresses against the IPS login buy no more tries.
11. Logs: a login, a case, a message and a desk reply log no NIT:email, token or text.

Each test is an attack that must fail. The review found one hole, now fixed: a desk
reply was still e-mailed, with its text, to an opener the IPS admin had disabled; it now
goes to the opener only while they are active at that IPS, else to the IPS's admins.
"""

from __future__ import annotations

import io
import logging
import re

import pytest

from core import mesa
from models import Account, CasoMesa, IpsOperador, MensajeMesa, Message
from tests.factories import PASSWORD, make_ips, make_ips_operador, make_staff, valid_nit
from tests.sample_files import pdf_bytes

KEY = re.compile(r'name="form_key" type="hidden" value="([^"]+)"')
NEW_PASSWORD = "Cerro-Azul-7351"
_keys = iter(range(10**9))


@pytest.fixture
def desk(db):
    mesa.ensure_default_motivos()
    first = mesa.motivos()[0]
    return first, mesa.asuntos_of(first.id)[0]


@pytest.fixture
def laura(db, client, auth):
    account = make_ips_operador(nombre="Laura Gómez")
    auth.login(client, account)
    return account


def open_case(account, desk, text="Caso de prueba.", parts=(), upload_dir="/nonexistent"):
    motivo, asunto = desk
    return mesa.open_case(account, motivo, asunto, text, f"ataque{next(_keys)}", parts, upload_dir)


def ingresar(client, nit, correo, password=PASSWORD, **kwargs):
    return client.post("/ips", data={"nit": nit, "correo": correo, "password": password}, **kwargs)


# === 1. the poll's despues ====================================================================


@pytest.mark.parametrize(
    "despues", ["-1", "+1", " 1", "1 ", "1e3", "0x10", "١٢", "１", "9" * 16, "", "1.0", "%00"]
)
def test_a_bent_despues_is_a_400_never_a_500(desk, client, laura, htmx, despues):
    caso = open_case(laura, desk)
    answer = client.get(
        f"/ips/solicitudes/{caso.numero}/nuevos", query_string={"despues": despues}, headers=htmx
    )
    assert answer.status_code == 400


def test_a_low_despues_brings_only_this_cases_messages_never_another_cases_or_a_note(
    desk, client, laura, app, htmx
):
    staff = make_staff(roles=("soporte",))
    mine = open_case(laura, desk, "DESCRIPCION-MIA")
    other = open_case(laura, desk, "DESCRIPCION-OTRA")
    mesa.staff_replies(other, staff, "RESPUESTA-OTRA", [], "/none", link="x")
    mesa.staff_note(mine, staff, "NOTA-SECRETA", [], "/none")
    mesa.staff_replies(mine, staff, "RESPUESTA-MIA", [], "/none", link="x")
    poll = client.get(f"/ips/solicitudes/{mine.numero}/nuevos?despues=0", headers=htmx)
    assert poll.status_code == 200 and "RESPUESTA-MIA" in poll.text
    for foreign in ("DESCRIPCION-OTRA", "RESPUESTA-OTRA", "NOTA-SECRETA"):
        assert foreign not in poll.text, foreign
    note = MensajeMesa.get(MensajeMesa.texto == "NOTA-SECRETA")
    # Only a note after despues: nothing new for the IPS.
    last = MensajeMesa.get(MensajeMesa.texto == "RESPUESTA-MIA").id
    assert note.id < last
    quiet = client.get(f"/ips/solicitudes/{mine.numero}/nuevos?despues={last}", headers=htmx)
    assert quiet.status_code == 204 and quiet.data == b""


# === 2. a file of my other case through this case's number =====================================


def test_a_file_of_my_own_other_case_is_not_served_under_this_cases_number(
    desk, client, laura, app
):
    upload_dir = app.config["UPLOAD_DIR"]
    with_file = open_case(
        laura, desk, parts=[mesa.Upload(io.BytesIO(pdf_bytes()), "rips.pdf")], upload_dir=upload_dir
    )
    plain = open_case(laura, desk)
    (adjunto,) = mesa.files_of(mesa.thread_for_ips(with_file))[mesa.thread_for_ips(with_file)[0].id]
    assert (
        client.get(f"/ips/solicitudes/{with_file.numero}/adjuntos/{adjunto.id}").status_code == 200
    )
    assert client.get(f"/ips/solicitudes/{plain.numero}/adjuntos/{adjunto.id}").status_code == 404
    # The case's id is not its number: the id in the number's place names nothing.
    if with_file.id != with_file.numero:
        assert client.get(f"/ips/solicitudes/{with_file.id}").status_code == 404


# === 3. moved or disabled mid-session ============================================================


def test_an_operator_moved_to_another_ips_no_longer_reads_the_old_ipss_case(
    desk, client, laura, htmx
):
    caso = open_case(laura, desk, "DEL-HOSPITAL-VIEJO")
    url = f"/ips/solicitudes/{caso.numero}"
    assert client.get(url).status_code == 200
    IpsOperador.update(ips=make_ips(nit=valid_nit())).where(
        IpsOperador.account == laura.id
    ).execute()
    assert client.get(url).status_code == 404
    assert client.get(f"{url}/nuevos?despues=0", headers=htmx).status_code == 404
    assert "DEL-HOSPITAL-VIEJO" not in client.get("/ips/solicitudes").text
    assert client.post(f"{url}/mensajes", data={"texto": "hola"}).status_code == 404
    assert MensajeMesa.select().count() == 1


def test_a_disabled_operators_open_page_polls_into_a_401_without_the_thread(
    desk, client, app, auth, htmx
):
    admin = make_ips_operador(nombre="Admin IPS")
    worker = make_ips_operador(ips=admin.ips.ips, es_admin=False, nombre="Pedro Paz")
    auth.login(client, worker)
    caso = open_case(worker, desk)
    staff = make_staff(roles=("soporte",))
    mesa.staff_replies(caso, staff, "RESPUESTA-DESPUES", [], "/none", link="x")
    admin_pc = auth.login(app.test_client(), admin)
    assert (
        admin_pc.post(f"/ips/operadores/{worker.id}", data={"accion": "deshabilitar"}).status_code
        == 303
    )
    url = f"/ips/solicitudes/{caso.numero}"
    poll = client.get(f"{url}/nuevos?despues=0", headers=htmx)
    assert poll.status_code == 401 and "RESPUESTA-DESPUES" not in poll.text
    page = client.get(url)
    assert page.status_code == 302 and "RESPUESTA-DESPUES" not in page.text
    assert client.post(f"{url}/cerrar").status_code == 302
    assert CasoMesa.get_by_id(caso.id).estado != CasoMesa.CERRADO


# === 4. links: a mail scanner and a replay =======================================================


def test_the_invitation_survives_many_gets_and_then_says_it_was_used(db, client, auth, app, outbox):
    admin = make_ips_operador()
    auth.login(client, admin)
    client.post("/ips/operadores", data={"nombre": "Pedro Paz", "correo": "pedro@ips.example"})
    link = outbox.last_link("/ips/clave/")
    scanner = app.test_client()
    for _ in range(5):
        assert scanner.get(link).status_code == 200
    pedro_pc = app.test_client()
    done = pedro_pc.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303, done.text
    assert Account.get(Account.email == "pedro@ips.example").status == Account.ACTIVE
    again = scanner.get(link)
    assert again.status_code == 410 and "ya fue usado" in again.text
    replay = app.test_client().post(
        link, data={"password": "Otra-Clave-9182", "confirm": "Otra-Clave-9182"}
    )
    assert replay.status_code == 410
    nit = admin.ips.ips.nit
    assert (
        ingresar(app.test_client(), nit, "pedro@ips.example", "Otra-Clave-9182").status_code == 422
    )
    assert ingresar(app.test_client(), nit, "pedro@ips.example", NEW_PASSWORD).status_code == 303


def test_the_reset_link_replayed_after_use_is_refused(db, client, app, outbox):
    operador = make_ips_operador()
    nit = operador.ips.ips.nit
    client.post("/ips/olvide", data={"nit": nit, "correo": operador.email})
    link = outbox.last_link("/ips/restablecer/")
    for _ in range(3):
        assert app.test_client().get(link).status_code == 200  # a GET spends nothing
    used = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert used.status_code == 303, used.text
    replay = app.test_client().post(
        link, data={"password": "Otra-Clave-9182", "confirm": "Otra-Clave-9182"}
    )
    assert replay.status_code == 410
    assert ingresar(app.test_client(), nit, operador.email, NEW_PASSWORD).status_code == 303


# === 5. one e-mail at two IPS ===================================================================


def test_an_email_used_by_another_ips_may_be_added_and_each_signs_in_with_its_own_nit(
    db, client, auth, app, outbox
):
    other = make_ips_operador(email="compartido@red.example")
    admin = make_ips_operador()
    auth.login(client, admin)
    added = client.post(
        "/ips/operadores", data={"nombre": "Marta Ruiz", "correo": "Compartido@Red.example"}
    )
    assert added.status_code == 303, added.text
    link = outbox.last_link("/ips/clave/")
    assert (
        app.test_client()
        .post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        .status_code
        == 303
    )
    mine_nit, their_nit = admin.ips.ips.nit, other.ips.ips.nit
    assert (
        ingresar(app.test_client(), mine_nit, "compartido@red.example", NEW_PASSWORD).status_code
        == 303
    )
    assert (
        ingresar(app.test_client(), their_nit, "compartido@red.example", PASSWORD).status_code
        == 303
    )
    # Crossed: one's password with the other's NIT.
    assert (
        ingresar(app.test_client(), their_nit, "compartido@red.example", NEW_PASSWORD).status_code
        == 422
    )
    assert (
        ingresar(app.test_client(), mine_nit, "compartido@red.example", PASSWORD).status_code == 422
    )
    # The same e-mail twice in one IPS is still refused.
    twice = client.post(
        "/ips/operadores", data={"nombre": "Marta Ruiz", "correo": "compartido@red.example"}
    )
    assert twice.status_code == 422
    assert Account.select().where(Account.email == "compartido@red.example").count() == 2


# === 6. staff: crafted assignee ===================================================================


@pytest.mark.parametrize("who", ["pqrs staff", "ips account", "disabled soporte", "nobody"])
def test_a_case_is_never_assigned_to_someone_outside_soporte(desk, client, auth, db, who):
    operador = make_ips_operador()
    caso = open_case(operador, desk)
    me = make_staff(roles=("soporte",))
    auth.login(client, me)
    target = {
        "pqrs staff": lambda: make_staff(roles=("pqrs",)).id,
        "ips account": lambda: operador.id,
        "disabled soporte": lambda: make_staff(roles=("soporte",), status=Account.DISABLED).id,
        "nobody": lambda: 987654,
    }[who]()
    answer = client.post(
        f"/gestion/mesa/{caso.id}/asignar", data={"asignado": str(target), "asignado_visto": "0"}
    )
    assert answer.status_code == 422
    assert CasoMesa.get_by_id(caso.id).asignado_id is None


# === 7. markup in a message ======================================================================


def test_markup_in_a_message_is_escaped_on_both_sides(desk, client, laura, auth, app):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    caso = open_case(laura, desk, "Descripción " + evil)
    sent = client.post(f"/ips/solicitudes/{caso.numero}/mensajes", data={"texto": evil})
    assert sent.status_code == 303
    staff = make_staff(roles=("soporte",))
    mesa.staff_replies(caso, staff, "Respuesta " + evil, [], "/none", link="x")
    staff_pc = auth.login(app.test_client(), staff)
    for page in (
        client.get(f"/ips/solicitudes/{caso.numero}"),
        staff_pc.get(f"/gestion/mesa/{caso.id}"),
    ):
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text


# === 8. a NUL byte in the IPS's text ==============================================================


def test_a_nul_byte_in_the_ips_message_or_description_is_a_400_and_nothing_is_kept(
    desk, client, laura
):
    caso = open_case(laura, desk)
    message = client.post(
        f"/ips/solicitudes/{caso.numero}/mensajes", data={"texto": "hola\x00mundo"}
    )
    motivo, asunto = desk
    key = KEY.search(client.get("/ips/mesa").text).group(1)
    created = client.post(
        "/ips/mesa",
        data={
            "form_key": key,
            "motivo": str(motivo.id),
            "asunto": str(asunto.id),
            "descripcion": "RIPS\x00enero",
            "accion": "generar",
        },
    )
    assert message.status_code == 400 and created.status_code == 400
    assert MensajeMesa.select().count() == 1 and CasoMesa.select().count() == 1


# === 9. the reply e-mail after the opener was disabled ============================================


def test_a_disabled_opener_is_not_mailed_the_desks_reply(desk, db, client, auth, outbox):
    admin = make_ips_operador(nombre="Admin IPS")
    leaver = make_ips_operador(ips=admin.ips.ips, es_admin=False, email="sevafue@ips.example")
    caso = open_case(leaver, desk)
    auth.login(client, admin)
    assert (
        client.post(f"/ips/operadores/{leaver.id}", data={"accion": "deshabilitar"}).status_code
        == 303
    )
    staff = make_staff(roles=("soporte",))
    mesa.staff_replies(caso, staff, "CARTERA-DE-LA-IPS", [], "/none", link="x")
    to_leaver = [m for m in outbox.all("email") if m.recipient == "sevafue@ips.example"]
    assert not any("CARTERA-DE-LA-IPS" in m.body_text for m in to_leaver)
    # The IPS does not lose the notice: its admin reads it instead.
    (to_admin,) = [m for m in outbox.all("email") if m.recipient == admin.email]
    assert "CARTERA-DE-LA-IPS" in to_admin.body_text


# === 10. forged client addresses against the login ================================================


def test_forged_forwarded_for_addresses_buy_no_more_login_tries(limited_app):
    from models import db

    with db.connection_context():
        operador = make_ips_operador()
        nit = operador.ips.ips.nit
    c = limited_app.test_client()
    codes = [
        ingresar(
            c, nit, operador.email, "Mala-Clave-0000",
            headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"},
        ).status_code
        for i in range(12)
    ]  # fmt: skip
    assert codes[-1] == 429 and codes.count(429) >= 2


# === 11. logs ====================================================================================


def test_a_real_round_logs_no_login_token_or_text(desk, app, client, auth, outbox, caplog):
    caplog.set_level(logging.INFO)
    operador = make_ips_operador()
    nit = operador.ips.ips.nit
    assert ingresar(client, nit, operador.email).status_code == 303
    caso = open_case(operador, desk, "DESCRIPCION-PRIVADA")
    client.post(f"/ips/solicitudes/{caso.numero}/mensajes", data={"texto": "MENSAJE-PRIVADO"})
    staff = make_staff(roles=("soporte",))
    staff_pc = auth.login(app.test_client(), staff)
    page = staff_pc.get(f"/gestion/mesa/{caso.id}").text
    form = page[page.index(f'action="/gestion/mesa/{caso.id}/responder"') :]
    visto = re.search(r'name="visto" value="(\d+)"', form)[1]
    estado = re.search(r'name="estado_visto" value="([a-z_]+)"', form)[1]
    replied = staff_pc.post(
        f"/gestion/mesa/{caso.id}/responder",
        data={"visto": visto, "estado_visto": estado, "respuesta": "RESPUESTA-PRIVADA",
              "estado_despues": "espera_ips"},
    )  # fmt: skip
    assert replied.status_code == 303
    app.test_client().post("/ips/olvide", data={"nit": nit, "correo": operador.email})
    token = outbox.last_link("/ips/restablecer/").rsplit("/", 1)[1]
    assert Message.select().count() >= 2
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("peewee"))
    for secret in (
        f"{nit}:{operador.email}", operador.email, token, "DESCRIPCION-PRIVADA",
        "MENSAJE-PRIVADO", "RESPUESTA-PRIVADA",
    ):  # fmt: skip
        assert secret not in logged, secret
