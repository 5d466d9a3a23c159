"""Open the database named by DATABASE_URL and keep its schema up to date."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import select
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from peewee import Database, DatabaseProxy, OperationalError, SqliteDatabase
from playhouse.db_url import connect, register_database
from playhouse.pool import PooledSqliteDatabase
from playhouse.postgres_ext import PooledPsycopg3Database


class PooledPostgres(PooledPsycopg3Database):
    """PostgreSQL through psycopg 3, pooled, checking a pooled connection without a round trip.

    psycopg 3 is the maintained driver (psycopg2 is not installed). Pooled: a new
    PostgreSQL connection per request costs more than the request itself. peewee
    asks the server "SELECT 1" each time it hands out an idle connection: a third
    of a case poll's round trips (bench/throughput.py on PostgreSQL). An idle
    connection has nothing to read, so here the socket is asked instead: the
    server writes before it closes one (a restart, pg_terminate_backend,
    idle_session_timeout), so a readable or broken socket is dropped and a new
    connection made (tests/test_platform.py kills one between two requests).
    """

    def _is_closed(self, conn) -> bool:
        if conn.closed or conn.broken:
            return True
        if self._adapter.txn_status(conn) != self._adapter.txn_idle:
            return super()._is_closed(conn)  # rolls back, or finds it lost
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


register_database(PooledPostgres, "postgres", "postgresql")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


SQLITE_NEEDED = (3, 35, 0)
PRAGMA_TRIES = 200  # × 50 ms: as long as SQLite's busy timeout (open_database, 10 s)

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


class WriteTurns:
    """For a SQLite database: its writers take turns inside a process before they ask SQLite.

    SQLite lets one connection write at a time; the others wait in its busy
    handler, which sleeps and polls (up to 100 ms between tries) and keeps no
    queue. With 16 threads of one gunicorn worker writing at once, a thread
    could lose every try for the whole busy_timeout while the holder waited for
    the GIL behind the others: "database is locked" under 32 writers
    (tests/test_faults_writes.py). Here a process's write transactions (and its
    writes outside one) queue on a lock first, which wakes the next waiter as
    soon as it is free; SQLite's busy handler then only arbitrates between
    processes, one writer from each. Reads never wait here (WAL readers do not
    block). ``write_wait`` bounds the time in the queue. A mixin, first in the
    bases, so a pooled SQLite database can queue the same way.
    """

    def __init__(self, *args, write_wait: float = 30.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._turn = threading.Lock()
        self._mine = threading.local()
        self._write_wait = write_wait

    def _take_turn(self) -> bool:
        if getattr(self._mine, "held", False):
            return False
        if not self._turn.acquire(timeout=self._write_wait):
            raise OperationalError("database is locked (no turn to write)")
        self._mine.held = True
        return True

    def _end_turn(self) -> None:
        if getattr(self._mine, "held", False):
            self._mine.held = False
            self._turn.release()

    def begin(self, lock_type=None) -> None:
        took = self._take_turn()
        try:
            super().begin(lock_type)
        except BaseException:
            if took:
                self._end_turn()
            raise

    def commit(self) -> None:
        super().commit()  # a failed COMMIT keeps the turn: peewee rolls back next
        self._end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_turn()

    def close(self):
        try:
            return super().close()
        finally:
            if not self.in_transaction():
                self._end_turn()  # never keep a turn past the connection's use

    def execute_sql(self, sql, params=None):
        if self.in_transaction() or not _WRITE.match(sql):
            return super().execute_sql(sql, params)
        took = self._take_turn()  # a write on its own (autocommit) queues too
        try:
            return super().execute_sql(sql, params)
        finally:
            if took:
                self._end_turn()

    def _set_pragmas(self, conn) -> None:
        # Two processes opening a new file at once both switch it to WAL, and SQLite
        # refuses the second at once, without its busy wait (the two could deadlock):
        # "database is locked" for a server starting beside another. Once the file is
        # in WAL (it stays so) the switch takes no lock, so this waits on a new file only.
        for attempt in itertools.count():
            try:
                return super()._set_pragmas(conn)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt >= PRAGMA_TRIES:
                    raise
                time.sleep(0.05)


class QueuedSqliteDatabase(WriteTurns, SqliteDatabase):
    """SQLite for a web server: writes queue in the process (WriteTurns), then BEGIN IMMEDIATE."""


class QueuedPooledSqliteDatabase(WriteTurns, PooledSqliteDatabase):
    """The same, its connections pooled (an on-disk file: every web request)."""


def open_database(url: str) -> Database:
    """Return a peewee database for url, with SQLite tuned for a web server."""
    if url.startswith("sqlite:"):
        if sqlite3.sqlite_version_info < SQLITE_NEEDED:
            # UPSERT … RETURNING (core/throttle.py) came in 3.35; Debian 12 has 3.40.
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} es muy antiguo: el portal necesita "
                f"{'.'.join(map(str, SQLITE_NEEDED))} o más reciente (o PostgreSQL)."
            )
        path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
        # Pooled too: close() hands the connection back, so a request does not pay
        # for opening the file and setting the pragmas (about 1 ms, a third of a poll).
        # An in-memory database cannot be shared: each connection would be empty.
        kind = QueuedPooledSqliteDatabase if path != ":memory:" else QueuedSqliteDatabase
        # A pooled connection moves between threads, one thread at a time.
        extra = (
            {"max_connections": 64, "stale_timeout": 3600, "check_same_thread": False}
            if path != ":memory:"
            else {}
        )
        return kind(
            path,
            **extra,
            # A read-then-write transaction that starts DEFERRED fails with
            # "database is locked" as soon as two requests write at once.
            lock_type="IMMEDIATE",
            timeout=10,
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": 10000,
                "synchronous": "normal",
            },
        )
    return connect(
        url, max_connections=int(os.environ.get("DB_POOL_SIZE", "8")), stale_timeout=300, timeout=10
    )


def is_sqlite(database: Database) -> bool:
    """Tell whether database (or the one a DatabaseProxy holds) is SQLite (some SQL differs)."""
    if isinstance(database, DatabaseProxy):
        database = database.obj
    return isinstance(database, SqliteDatabase)


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """List the numbered migration modules (NNNN_name.py) in order."""
    found = []
    for path in directory.glob("[0-9][0-9][0-9][0-9]_*.py"):
        found.append((int(re.match(r"\d+", path.name).group()), path))
    return sorted(found)


@contextmanager
def _one_init_at_a_time(database: Database):
    """Let one init_schema run at a time on a database (two servers starting at once).

    PostgreSQL: a session advisory lock named after the schema, held to the end.
    SQLite: every transaction here starts BEGIN IMMEDIATE (open_database), so the
    steps queue on the write lock, and each re-reads the version inside its own.
    """
    if is_sqlite(database):
        yield
        return
    key = "hashtext('hanna init_schema ' || current_schema())"
    database.execute_sql(f"SELECT pg_advisory_lock({key})")
    try:
        yield
    finally:
        database.execute_sql(f"SELECT pg_advisory_unlock({key})")


def init_schema(
    database: Database, models: list, version_model, directory: Path = MIGRATIONS_DIR
) -> list[int]:
    """Create a fresh schema, or apply the migrations an existing one lacks.

    A new database gets the tables of models.py as they are now and is stamped
    with the newest migration number; an existing one runs each newer
    migration's ``migrate(database)`` in its own transaction. Returns the
    numbers applied. Safe to run at every deploy, from every server at once:
    a second one waits for the first and then finds nothing to do.
    """
    steps = migration_files(directory)
    head = steps[-1][0] if steps else 0
    with _one_init_at_a_time(database):
        with database.atomic():
            if not version_model.table_exists():
                database.create_tables(models)
                version_model.create(version=head)
                guard_append_only(database, models)
                return []
        applied = []
        for number, path in steps:
            with database.atomic():
                if number <= version_model.get().version:
                    continue  # applied before, or by another server meanwhile
                spec = importlib.util.spec_from_file_location(f"migration_{number}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                module.migrate(database)
                version_model.update(version=number).execute()
            applied.append(number)
        with database.atomic():
            guard_append_only(database, models)
        return applied


def guard_append_only(database: Database, models: list) -> None:
    """Make the database refuse UPDATE and DELETE on each ``Meta.append_only`` table.

    Triggers rather than a PostgreSQL RULE: a rule would skip the statement
    silently, a trigger fails it, so a bug shows. Idempotent (IF NOT EXISTS / OR
    REPLACE), run at every init_schema. A table not created yet (an old
    development database) is skipped. Whoever owns the table can still drop the
    triggers: this stops mistakes and the application's own account, not a DBA.
    """
    if not is_sqlite(database):
        database.execute_sql(
            "CREATE OR REPLACE FUNCTION append_only_guard() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only',"
            " ERRCODE = 'restrict_violation'; END $$"
        )
    for model in models:
        if not getattr(model._meta, "append_only", False) or not database.table_exists(model):
            continue
        table = model._meta.table_name
        if is_sqlite(database):
            for event in ("UPDATE", "DELETE"):
                database.execute_sql(
                    f'CREATE TRIGGER IF NOT EXISTS "{table}_no_{event.lower()}"'
                    f' BEFORE {event} ON "{table}"'
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        else:
            database.execute_sql(
                f'CREATE OR REPLACE TRIGGER "{table}_append_only" BEFORE UPDATE OR DELETE'
                f' ON "{table}" FOR EACH ROW EXECUTE FUNCTION append_only_guard()'
            )
            database.execute_sql(
                f'CREATE OR REPLACE TRIGGER "{table}_no_truncate" BEFORE TRUNCATE'
                f' ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()'
            )
