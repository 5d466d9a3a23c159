"""Fixtures: an app on a temp-file SQLite (or DATABASE_URL's PostgreSQL), a client, mail."""

from __future__ import annotations

import os
import re
import shutil
import uuid

import pytest

import models
from app import create_app
from core import db as dbmod
from core import passwords

CHEAP_HASH = dict(time_cost=1, memory_cost=8, parallelism=1)


def _share_url_builders() -> None:
    """Compile each route's URL builder once per test process, not once per app.

    Every test makes its own app, and werkzeug writes and compiles two Python
    functions per route for url_for: 35 of a new app's 45 ms. The function takes
    the rule as its first argument and depends only on the rule's text, so rules
    of the same text share it (rules with defaults, whose values go into the
    code, keep their own). A werkzeug that renames the method fails here, loudly.
    """
    from werkzeug.routing.rules import Rule

    own = Rule._compile_builder
    made: dict = {}

    def shared(self, append_unknown: bool = True):
        if self.defaults:
            return own(self, append_unknown)
        key = (self.rule, tuple(self._trace), append_unknown)
        if key not in made:
            made[key] = own(self, append_unknown)
        return made[key]

    Rule._compile_builder = shared


_share_url_builders()


def _database_url(tmp_path) -> tuple[str, str | None]:
    """Use PostgreSQL when DATABASE_URL says so: one schema for this test process."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        return url, f"t_{os.getpid()}_{_RUN}"
    return f"sqlite:///{tmp_path / 'test.sqlite3'}", None


_RUN = uuid.uuid4().hex[:8]
# PostgreSQL: creating 24 tables for every test cost half a second each (most of
# the suite's time). The schema is made once per process; each test starts from
# it emptied (DELETE, sequences restarted: ids from 1 again, as in a new one).
_pg_schema: dict = {}


def _admin():
    """One connection per test process for making and emptying its schema."""
    if "admin" not in _pg_admin:
        _pg_admin["admin"] = dbmod.open_database(os.environ["DATABASE_URL"])
    return _pg_admin["admin"]


_pg_admin: dict = {}


def _fresh_postgres(schema: str) -> None:
    admin = _admin()
    admin.connect(reuse_if_open=True)
    if schema not in _pg_schema:
        admin.execute_sql(f"CREATE SCHEMA {schema}")
        _pg_schema[schema] = None  # created; tables come with the first app
        return
    known = {m._meta.table_name for m in models.MODELS}
    extra = [
        name
        for (name,) in admin.execute_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        if name not in known
    ]
    sequences = [
        name
        for (name,) in admin.execute_sql(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (schema,)
        ).fetchall()
    ]
    # One round trip (statements without parameters go as one simple query):
    # replica: neither the foreign keys nor the audit log's guard triggers (which
    # refuse deletes, as they should in use) fire while the tables are emptied.
    # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE's new files for
    # 30 tables cost about a third of a second a test.
    statements = ["SET LOCAL session_replication_role = replica", "SET LOCAL lock_timeout = '20s'"]
    statements += [
        f'DELETE FROM {schema}."{m._meta.table_name}"'  # noqa: S608 - our names
        for m in models.MODELS
        if m is not models.SchemaVersion
    ]
    statements += [f'ALTER SEQUENCE {schema}."{name}" RESTART' for name in sequences]
    statements += [f'DROP TABLE {schema}."{name}"' for name in extra]  # a migration test's
    statements.append(
        f'UPDATE {schema}."schema_version" SET version = {int(_pg_schema[schema])}'  # noqa: S608
    )
    with admin.atomic():
        admin.execute_sql("; ".join(statements))


def _drop_postgres_schemas() -> None:
    if not _pg_schema:
        return
    admin = _admin()
    admin.connect(reuse_if_open=True)
    for schema in _pg_schema:
        admin.execute_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.close()
    if hasattr(admin, "close_all"):
        admin.close_all()


@pytest.fixture(scope="session", autouse=True)
def _postgres_schema_cleanup():
    yield
    _drop_postgres_schemas()


@pytest.fixture
def app(tmp_path):
    yield from _make_app(tmp_path)


@pytest.fixture
def limited_app(tmp_path):
    """An app with its rate limits on (in-memory storage)."""
    yield from _make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")


# SQLite: the schema made by the first app of this process, copied for every later
# test (creating the tables, indexes and triggers took about 40 ms a test).
_sqlite_template: dict = {}


def _keep_sqlite_template(path) -> None:
    import sqlite3
    import tempfile

    folder = tempfile.mkdtemp(prefix="hanna-schema-")
    target = os.path.join(folder, "schema.sqlite3")
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)  # consistent whatever is still in the source's WAL
    finally:
        source.close()
        copy.close()
    _sqlite_template["path"] = target


def _make_app(tmp_path, **over):
    url, schema = _database_url(tmp_path)
    made = False  # the schema is there already, as init_schema leaves it
    if schema:
        sep = "&" if "?" in url else "?"
        # No wait for the WAL to reach the disk at each commit: a test's data need not
        # survive a crash of the machine, and every commit is faster.
        url = f"{url}{sep}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
        made = schema in _pg_schema
        _fresh_postgres(schema)
    elif "path" in _sqlite_template:
        shutil.copyfile(_sqlite_template["path"], tmp_path / "test.sqlite3")
        made = True
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": url,
            "WTF_CSRF_ENABLED": False,
            "PASSWORD_HASH": CHEAP_HASH,
            "RATELIMIT_ENABLED": False,
            "BASE_URL": "http://localhost",
            "CAPTCHA": "off",
            "SMS_BACKEND": "file",
            "SMS_FILE": str(tmp_path / "sms.jsonl"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            **over,
        }
    )
    if not made:
        with app.app_context():
            models.db.connect(reuse_if_open=True)
            dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
            if schema and _pg_schema[schema] is None:
                _pg_schema[schema] = models.SchemaVersion.get().version
            models.db.close()
        if not schema:
            _keep_sqlite_template(tmp_path / "test.sqlite3")
    yield app
    if not models.db.is_closed():
        models.db.close()
    if hasattr(models.db.obj, "close_all"):
        models.db.obj.close_all()  # pooled PostgreSQL: give the connections back


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """The database, for tests that call services or models directly.

    No app context is pushed here: it would share `g` (and Flask-Login's cached
    user) with every request the test client makes. Peewee reconnects by itself.
    """
    models.db.connect(reuse_if_open=True)
    yield models.db
    if not models.db.is_closed():
        models.db.close()


@pytest.fixture
def htmx():
    return {"HX-Request": "true"}


@pytest.fixture
def outbox(app):
    """Read the e-mail and SMS the app queued (the worker's input)."""

    class Outbox:
        def all(self, channel=None):
            with models.db.connection_context():
                query = models.Message.select().order_by(models.Message.id)
                if channel:
                    query = query.where(models.Message.channel == channel)
                return list(query)

        def last_link(self, path="/activar/"):
            for message in reversed(self.all("email")):
                found = re.search(
                    r"https?://[^/\s]+(" + re.escape(path) + r"\S+)", message.body_text
                )
                if found:
                    return found.group(1)
            raise AssertionError("no link in the outbox")

    return Outbox()


@pytest.fixture(autouse=True)
def _cheap_hashes():
    passwords.configure(**CHEAP_HASH)
    yield


@pytest.fixture
def clock(monkeypatch):
    """Stop the portal's clock (core.clock) and let the test set or advance it.

    ``clock.set(datetime(2026, 12, 24, 9, 0))`` reads a naive datetime as Bogotá
    wall-clock time (office hours are written that way); an aware one is taken as
    it is. ``clock.advance(hours=3)`` takes timedelta's arguments. Until ``set`` is
    called the clock stands still at the moment the fixture started. It replaces
    ``core.clock._source``, so ``utcnow()``, ``now()`` and ``today()`` all move,
    also where modules imported them by name; see core/clock.py for what it does
    not reach (``time.time()``, the database's clock, other processes).
    """
    from datetime import datetime, timedelta

    from core import clock as clockmod
    from core.colombia import BOGOTA

    class Clock:
        def __init__(self) -> None:
            self.current = clockmod._system_time()

        def set(self, when: datetime) -> None:
            self.current = when if when.tzinfo else when.replace(tzinfo=BOGOTA)

        def advance(self, **delta: float) -> None:
            self.current = self.current + timedelta(**delta)

        def now(self) -> datetime:
            return self.current.astimezone(BOGOTA)

    fake = Clock()
    monkeypatch.setattr(clockmod, "_source", lambda: fake.current)
    return fake


@pytest.fixture
def auth(app):
    """Sign a test client in as an account, through a real server-side session.

    Staff come in with the second factor passed; auth.login(..., second_factor=False)
    leaves it pending, as after the password step.
    """
    from blueprints.auth import idle_limit
    from core import auth as core_auth

    class Auth:
        def login(self, client, account, second_factor: bool | None = None):
            if second_factor is None:
                second_factor = account.kind == models.Account.STAFF
            with app.test_request_context():
                token = core_auth.start_session(
                    account, "pytest", idle=idle_limit(account), second_factor=second_factor
                )
            with client.session_transaction() as session:
                session.clear()
                session["sid"] = token
                session["_user_id"] = account.session_token
                session["_fresh"] = True
            return client

    return Auth()
