"""The test apps: one per test, on a temp-file SQLite (or DATABASE_URL's PostgreSQL).

A module of its own, not conftest.py: pytest loads conftest under another name
than ``tests.conftest``, so tests importing from it got a second copy of this
state (a second PostgreSQL schema per process, never dropped).
"""

from __future__ import annotations

import os
import shutil
import uuid

import models
from app import create_app
from core import db as dbmod

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


def drop_postgres_schemas() -> None:
    if not _pg_schema:
        return
    admin = _admin()
    admin.connect(reuse_if_open=True)
    for schema in _pg_schema:
        admin.execute_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.close()
    if hasattr(admin, "close_all"):
        admin.close_all()


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


def make_app(tmp_path, **over):
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
