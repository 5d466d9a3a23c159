"""Two app servers behind one PostgreSQL and one Redis share sessions and limits."""

from __future__ import annotations

import http.cookiejar
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import redis

import models
from core import db as dbmod
from core import passwords
from tests.servers import flask, free_port, gunicorn, stop

POSTGRES = os.environ.get("MULTIPROCESS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"  # a database of its own, emptied by the test
PASSWORD = "Travesia-Luna-42"


class Browser:
    """Just enough of a browser: cookies, CSRF token from the page, form posts."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def get(self, url: str) -> tuple[int, str]:
        try:
            with self.opener.open(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def post(self, url: str, data: dict, form_page: str) -> int:
        _, page = self.get(form_page)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({**data, "csrf_token": token}).encode()
        try:
            with self.opener.open(url, data=body, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def two_servers():
    schema = f"mp_{uuid.uuid4().hex[:10]}"
    admin = dbmod.open_database(POSTGRES)
    admin.execute_sql(f"CREATE SCHEMA {schema}")
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    redis.Redis.from_url(REDIS).flushdb()
    env = {
        "SECRET_KEY": f"multi-{schema}-{uuid.uuid4().hex}",  # 32+ characters to start
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "BASE_URL": "http://127.0.0.1",
        "CAPTCHA": "off",
        "SMS_BACKEND": "http",  # console and file start only on a development machine
        "SMS_HTTP_URL": "http://127.0.0.1:9/sms",  # nothing is sent here
    }
    flask(env, "init-db")
    database = dbmod.open_database(url)
    models.db.initialize(database)
    with database.connection_context():
        user = models.HannaUser.create_account(
            email="dos@example.com",
            tipo_documento="CC",
            numero_documento="71000001",
            primer_nombre="ROSA",
            primer_apellido="GIL",
            celular="3001234567",
            fecha_nacimiento="1990-01-01",
            password_hash=passwords.hash_password(PASSWORD),
            status=models.Account.ACTIVE,
        )
    servers = [gunicorn(env, free_port()) for _ in range(2)]
    yield [f"http://127.0.0.1:{s.args[2].split(':')[1]}" for s in servers], user
    for server in servers:
        stop(server)
    database.close_all()
    admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.close_all()
    redis.Redis.from_url(REDIS).flushdb()


def test_a_session_opened_on_one_server_works_on_the_other(two_servers):
    (a, b), user = two_servers
    browser = Browser()
    assert browser.post(f"{a}/", {"email": user.email, "password": PASSWORD}, f"{a}/") == 303
    status, page = browser.get(f"{b}/inicio")
    assert status == 200 and "Bienvenido(a), Rosa Gil" in page
    assert browser.post(f"{b}/salir", {}, f"{b}/inicio") == 303
    assert browser.get(f"{a}/inicio")[0] == 302


def test_a_rate_limit_counts_requests_on_both_servers(two_servers):
    (a, b), _ = two_servers
    redis.Redis.from_url(REDIS).flushdb()  # forget the other test's login
    browser = Browser()
    codes = []
    for i in range(10):
        server = a if i % 2 else b
        codes.append(
            browser.post(
                f"{server}/", {"email": "x@example.com", "password": "Mala-1x"}, f"{server}/"
            )
        )
    assert set(codes) == {422}  # 10/minute: five on each server, all counted
    assert browser.post(f"{a}/", {"email": "x@example.com", "password": "Mala-1x"}, f"{a}/") == 429
