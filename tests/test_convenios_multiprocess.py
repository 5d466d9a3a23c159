"""Convenio look-up quotas hold across two app servers sharing PostgreSQL and Redis."""

from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
import redis

import models
from core import db as dbmod
from core import passwords
from tests.http_browser import Browser
from tests.servers import flask, free_port, gunicorn, stop

POSTGRES = os.environ.get("MULTIPROCESS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"  # emptied by the test

PASSWORD = "Travesia-Luna-42"
USER_MINUTE, ENTITY_MINUTE = 4, 6


def _user(email: str, numero: str) -> models.Account:
    return models.HannaUser.create_account(
        email=email,
        tipo_documento="CC",
        numero_documento=numero,
        primer_nombre="ROSA",
        primer_apellido="GIL",
        celular="3001234567",
        fecha_nacimiento="1990-01-01",
        password_hash=passwords.hash_password(PASSWORD),
        status=models.Account.ACTIVE,
    )


@pytest.fixture(scope="module")
def desks():
    schema = f"mpc_{uuid.uuid4().hex[:10]}"
    admin = dbmod.open_database(POSTGRES)
    admin.execute_sql(f"CREATE SCHEMA {schema}")
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    redis.Redis.from_url(REDIS).flushdb()
    env = {
        "SECRET_KEY": f"multi-{schema}-{uuid.uuid4().hex}",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "BASE_URL": "http://127.0.0.1",
        "CAPTCHA": "off",
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": "http://127.0.0.1:9/sms",
        "CONVENIOS_LOOKUPS_USER_MINUTE": str(USER_MINUTE),
        "CONVENIOS_LOOKUPS_ENTITY_MINUTE": str(ENTITY_MINUTE),
    }
    flask(env, "init-db")
    database = dbmod.open_database(url)
    models.db.initialize(database)
    with database.connection_context():
        entidad = models.Entidad.create(nit="9012345671", nombre="Gimnasio Dos Servidores")
        sede = models.Sede.create(entidad=entidad, codigo="S1", nombre="Sede Única")
        users = [_user("uno@example.com", "71000011"), _user("dos@example.com", "71000012")]
        for user in users:
            acceso = models.Acceso.create(account=user, aplicacion="convenios", entidad=entidad)
            models.AccesoSede.create(acceso=acceso, sede=sede)
        models.Afiliado.create(
            tipo_documento="CC",
            numero_documento="80000001",
            primer_nombre="LUIS",
            primer_apellido="DÍAZ",
            estado="ACTIVO",
            categoria="A",
        )
    servers = [gunicorn(env, free_port()) for _ in range(2)]
    urls = [f"http://127.0.0.1:{s.args[2].split(':')[1]}" for s in servers]
    yield urls, users, database
    for server in servers:
        stop(server)
    database.close_all()
    admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.close_all()
    redis.Redis.from_url(REDIS).flushdb()


def _signed_in(url: str, email: str) -> Browser:
    browser = Browser()
    assert browser.post(f"{url}/", {"email": email, "password": PASSWORD}, f"{url}/") == 303
    # One sede: the main page chooses it for the session.
    status, page = browser.get(f"{url}/convenios/")
    assert status == 200 and "Sede Única" in page
    return browser


def _look_up(browser: Browser, url: str, documento: str) -> int:
    return browser.post(f"{url}/convenios/consultar", {"documento": documento}, f"{url}/convenios/")


def test_quotas_per_operator_and_per_entity_count_on_both_servers(desks):
    (a, b), (uno, dos), _ = desks
    redis.Redis.from_url(REDIS).flushdb()
    first = _signed_in(a, uno.email)
    codes = [_look_up(first, a if i % 2 else b, f"9000000{i}") for i in range(USER_MINUTE + 1)]
    assert codes == [200] * USER_MINUTE + [429]  # the operator's budget, shared by a and b
    second = _signed_in(b, dos.email)
    left = ENTITY_MINUTE - USER_MINUTE
    codes = [_look_up(second, b if i % 2 else a, f"9100000{i}") for i in range(left + 1)]
    assert codes == [200] * left + [429]  # the entity's budget, spent by both desks


def test_one_form_posted_to_both_servers_at_once_records_one_use(desks):
    (a, b), (uno, _), database = desks
    redis.Redis.from_url(REDIS).flushdb()
    browser = _signed_in(a, uno.email)
    _, page = browser.get(f"{a}/convenios/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    status, result = _post_page(
        browser, f"{a}/convenios/consultar", {"documento": "80000001", "csrf_token": token}
    )
    assert status == 200
    clave = re.search(r'name="clave"[^>]*value="([^"]+)"', result).group(1)
    start = threading.Barrier(8, timeout=30)
    codes = []

    def submit(index: int) -> None:
        start.wait()
        url = a if index % 2 else b
        codes.append(
            _post_page(browser, f"{url}/convenios/reportar", {"clave": clave, "csrf_token": token})[
                0
            ]
        )

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) == {303}
    with database.connection_context():
        consulta = models.ConsultaConvenio.get(models.ConsultaConvenio.clave == clave)
        assert (
            models.UsoConvenio.select().where(models.UsoConvenio.consulta == consulta).count() == 1
        )


def _post_page(browser: Browser, url: str, data: dict) -> tuple[int, str]:
    import urllib.error
    import urllib.parse

    body = urllib.parse.urlencode(data).encode()
    try:
        with browser.opener.open(url, data=body, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
