"""The foundation: headers on every page, page weight, CSRF, errors, CLI, migrations."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import time
import uuid

import pytest

import models
from app import create_app
from core import db as dbmod
from tests.factories import PASSWORD, grant_convenios, make_afiliado, make_entidad, make_user

PAGE_BUDGET = 14 * 1024  # gzip bytes: the first round trip of a slow mobile link


def get_routes(app) -> list[str]:
    """Every GET route without parameters, plus one of each parametrized kind."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static":
            paths.append(rule.rule)
    return sorted(paths)


GENESIS_PRIVATE = frozenset(
    {
        "/genesis/cambiar-clave",
        "/genesis/carta-de-derechos",
        "/genesis/oficina",
        "/genesis/solicitud",
        "/genesis/consulta",
        "/genesis/inactivo",
        "/genesis/datos",
    }
)


IPS_PUBLIC = {"/ips/olvide", "/ips/olvide/enviado"}


def test_every_get_route_sends_the_security_headers(db, app, client):
    user = make_user()
    _, sedes = make_entidad(sedes=2)
    grant_convenios(user, sedes)  # the Convenios pages open for a granted desk
    client.post("/", data={"email": user.email, "password": PASSWORD})
    with client.session_transaction() as s:
        s["guardado"] = "ju***@example.com"
    for path in get_routes(app):
        response = client.get(path)
        # A Hanna user learns nothing of the back office: its pages are 404 to them.
        # Nor of an EPS affiliate's virtual office (the public Génesis pages answer 200).
        private = path.startswith("/gestion/") and path != "/gestion/ingresar"
        private = private or path in GENESIS_PRIVATE
        # Nor of an IPS's help desk: only its log-in and reset pages are public.
        private = private or (path.startswith("/ips/") and path not in IPS_PUBLIC)
        expected = (404,) if private else ()
        assert response.status_code in (200, 302, *expected), path
        h = response.headers
        csp = h["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert h["X-Content-Type-Options"] == "nosniff", path
        assert h["Referrer-Policy"] == "same-origin", path
        assert h["Cache-Control"] == "no-store", path


@pytest.mark.parametrize("path", ["/", "/registro", "/descubre", "/no-existe"])
def test_full_pages_fit_in_14_kb_compressed(db, app, client, path):
    app.config["CAPTCHA"] = "image"
    html = client.get(path).data
    assert b"<html" in html
    assert len(gzip.compress(html)) <= PAGE_BUDGET


def test_signed_in_home_fits_and_is_private(db, client):
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    page = client.get("/inicio")
    assert len(gzip.compress(page.data)) <= PAGE_BUDGET
    assert page.headers["Cache-Control"] == "no-store"
    assert "Sus aplicaciones" in page.text and ">Solicitar</a>" in page.text


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    assert (
        "max-age"
        in client.get("/", base_url="https://localhost").headers["Strict-Transport-Security"]
    )


def test_each_security_header_is_sent_once_even_when_a_view_set_it(app, client):
    @app.get("/prueba-cabeceras")
    def own_headers():
        return (
            "ok",
            200,
            {
                "Cache-Control": "public, max-age=600",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
            },
        )

    answer = client.get("/prueba-cabeceras", base_url="https://localhost")
    assert answer.headers.getlist("Cache-Control") == ["no-store"]  # never cached, whoever asked
    assert answer.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    for name in ("X-Frame-Options", "Referrer-Policy", "Strict-Transport-Security"):
        assert len(answer.headers.getlist(name)) == 1, name


def test_static_assets_are_versioned_and_cached(client):
    page = client.get("/").text
    css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', page).group(1)
    response = client.get(css)
    assert response.status_code == 200 and "immutable" in response.headers["Cache-Control"]
    assert re.search(r'src="/static/vendor/htmx-4\.0\.1\.min\.[0-9a-f]{12}\.js" defer', page)


def test_no_inline_script_or_handlers_in_templates():
    from pathlib import Path

    for template in Path("templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script>|<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+=|hx-on|js:", text), template
        assert "<style" not in text and 'style="' not in text or "email" in template.parts, template


def test_csrf_is_enforced(tmp_path):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}"}
    )
    with app.app_context():
        dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
    client = app.test_client()
    response = client.post("/", data={"email": "a@b.co", "password": "x"})
    assert response.status_code == 400 and "El formulario venció" in response.text
    models.db.close()


def test_unknown_page_is_a_spanish_404(client):
    response = client.get("/no-existe")
    assert response.status_code == 404 and "Página no encontrada" in response.text


def test_secret_key_is_required_outside_debug_and_testing(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_dev_mailbox_lists_queued_mail_with_clickable_links(db, client):
    from blueprints.accounts import service

    user = make_user(status=models.Account.PENDING)
    service.queue_activation_mail(user, secret="test-secret", base_url="http://localhost")
    page = client.get("/dev/buzon").text
    assert user.email in page and '<a href="http://localhost/activar/' in page


def test_dev_mailbox_is_never_on_in_production(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "0123456789abcdef" * 4)  # strong enough to start
    monkeypatch.setenv("SMS_BACKEND", "http")  # console and file are for development
    monkeypatch.setenv("DEV_MAILBOX", "true")
    monkeypatch.setenv("BASE_URL", "https://hanna.cajacopi.com")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    app = create_app()
    assert "dev.mailbox" not in app.view_functions


def test_https_deployment_uses_a_secure_host_only_cookie(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "0123456789abcdef" * 4)  # strong enough to start
    monkeypatch.setenv("SMS_BACKEND", "http")  # console and file are for development
    monkeypatch.setenv("BASE_URL", "https://hanna.cajacopi.com")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 's.sqlite3'}")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_health(client):
    assert client.get("/salud").json == {"estado": "ok"}


def test_flask_asks_whether_a_hook_is_async_once_per_hook_not_per_request(client, monkeypatch):
    import flask.app

    assert client.get("/salud").status_code == 200
    asked = []
    real = flask.app.iscoroutinefunction
    monkeypatch.setattr(flask.app, "iscoroutinefunction", lambda f: asked.append(f) or real(f))
    assert client.get("/salud").status_code == 200
    assert asked == []  # ten hooks a request asked inspect each time


def test_an_sqlite_without_upsert_returning_is_refused_at_start(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(RuntimeError, match="SQLite 3.31.1 es muy antiguo"):
        dbmod.open_database(f"sqlite:///{tmp_path / 'viejo.sqlite3'}")


ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's connection pool")
def test_a_pooled_connection_is_checked_without_a_round_trip_and_dropped_once_killed(
    db, client, monkeypatch
):
    import select

    import psycopg

    user = make_user()
    assert client.get("/").status_code == 200  # a connection made, back in the pool
    sent = []
    real = psycopg.Cursor.execute

    def counting(self, query, *args, **kwargs):
        sent.append(str(query))
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    assert client.get("/salud").status_code == 200
    assert sent == []  # peewee's own check sends SELECT 1 for every request

    # The server ends the pooled connection (a restart, an idle timeout, an admin):
    # the next request gets a new one instead of a 500.
    pool = models.db.obj
    (conn,) = [conn for _ts, _n, conn in pool._connections]
    killed = conn.info.backend_pid
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (killed,))
    deadline = time.monotonic() + 5
    while not select.select([conn.fileno()], [], [], 0.05)[0] and time.monotonic() < deadline:
        pass  # the server's goodbye reaches the socket
    signed_in = client.post("/", data={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code in (302, 303) and signed_in.location.endswith("/inicio")
    assert client.get("/inicio").status_code == 200
    (fresh,) = [conn for _ts, _n, conn in pool._connections]
    assert fresh.info.backend_pid != killed


# --- CLI and schema ----------------------------------------------------------------------


def test_init_db_is_safe_to_run_twice(runner):
    assert "Esquema listo" in runner.invoke(args=["init-db"]).output
    assert "Esquema listo" in runner.invoke(args=["init-db"]).output


def test_migrations_run_once_in_order(db, tmp_path):
    # A new database is stamped with the newest real migration: these two come after it.
    head = dbmod.migration_files()[-1][0] if dbmod.migration_files() else 0
    (tmp_path / f"{head + 1:04d}_a.py").write_text(
        "def migrate(db):\n    db.execute_sql('CREATE TABLE mig_a (id INTEGER)')\n"
    )
    (tmp_path / f"{head + 2:04d}_b.py").write_text(
        "def migrate(db):\n    db.execute_sql('CREATE TABLE mig_b (id INTEGER)')\n"
    )
    applied = dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion, tmp_path)
    assert applied == [head + 1, head + 2]
    assert dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion, tmp_path) == []
    assert {"mig_a", "mig_b"} <= set(models.db.get_tables())
    models.db.execute_sql("DROP TABLE mig_a")
    models.db.execute_sql("DROP TABLE mig_b")


_INIT_AT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import models
from core import db as dbmod
models.db.initialize(dbmod.open_database(sys.argv[1]))
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both start at the same instant
print(dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion, Path(sys.argv[3])))
"""


def _init_at_once(url: str, migrations) -> list[str]:
    """Run init_schema from two processes at the same instant; return what each applied."""
    code = _INIT_AT.format(root=str(dbmod.MIGRATIONS_DIR.parent))
    start = str(time.time() + 2.5)  # past both interpreters' start-up
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, start, str(migrations)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-1500:]
    return sorted(out.strip() for out, _ in outputs)


def test_two_servers_starting_at_once_make_and_migrate_the_schema_once(tmp_path):
    # Every server may run init-db as it starts (ExecStartPre): the second waits
    # for the first, then finds the tables made and the migration applied.
    url = os.environ.get("DATABASE_URL", "")
    schema = None
    if url.startswith("postgres"):
        schema = f"init_{uuid.uuid4().hex[:8]}"
        admin = dbmod.open_database(url)
        admin.execute_sql(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    try:
        assert _init_at_once(url, migrations) == ["[]", "[]"]  # a new schema, stamped 0
        (migrations / "0001_lenta.py").write_text(
            "import time\n\n\ndef migrate(db):\n"
            "    db.execute_sql('CREATE TABLE mig_lenta (id INTEGER)')  # twice: an error\n"
            "    time.sleep(1)\n"
        )
        assert _init_at_once(url, migrations) == ["[1]", "[]"]
        database = dbmod.open_database(url)
        assert database.execute_sql("SELECT version FROM schema_version").fetchall() == [(1,)]
        assert "mig_lenta" in database.get_tables()
        database.close()
    finally:
        if schema:
            admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.close()


def test_import_afiliados_command(db, runner, tmp_path):
    csv = tmp_path / "afiliados.csv"
    header = (
        "tipo_documento;numero_documento;primer_nombre;segundo_nombre;primer_apellido;"
        "segundo_apellido;fecha_nacimiento;email;celular;telefono;estado;categoria;"
        "empresa_nit;empresa_nombre;empresa_estado;fecha_ingreso_empresa;profesion;"
        "conyuge_celular;conyuge_profesion;conyuge_cargo"
    )
    row = "CC;71234567;PEDRO;;GIL;;01/02/1970;;3001112233;;ACTIVO;B;8901020441;ACME;ACTIVA;;;;;"
    csv.write_text(f"{header}\n{row}\n", encoding="utf-8")
    result = runner.invoke(args=["import", "afiliados", str(csv)])
    assert result.exit_code == 0, result.output
    assert models.Afiliado.find("CC", "71234567").primer_nombre == "PEDRO"
    csv.write_text(f"{header}\n{row.replace('ACTIVO', 'RARO')}\n", encoding="utf-8")
    bad = runner.invoke(args=["import", "afiliados", str(csv)])
    assert bad.exit_code == 1 and "estado" in bad.output


def test_demo_data_command_loads_the_documented_accounts(db, runner):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    assert models.Account.by_email("juan.torres@hanna.test").status == models.Account.ACTIVE
    assert models.Afiliado.find("CC", "1000000001") is not None


def test_demo_password_follows_our_own_rules(db, runner):
    from core import passwords
    from core.demo import DEMO_PASSWORD, FIXED_USERS

    for user in FIXED_USERS:
        assert (
            passwords.password_problems(
                DEMO_PASSWORD, document=user["numero_documento"], email=user["email"]
            )
            == []
        )


def test_affiliate_fixture_sanity(db):
    assert make_afiliado().nombre_completo == "ANA MARÍA PÉREZ GÓMEZ"
