"""Open the database named by DATABASE_URL and keep its schema up to date."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from peewee import Database, SqliteDatabase
from playhouse.db_url import connect, register_database
from playhouse.postgres_ext import PooledPsycopg3Database

# psycopg 3 is the maintained driver (psycopg2 is not installed). Pooled: a new
# PostgreSQL connection per request costs more than the request itself.
register_database(PooledPsycopg3Database, "postgres", "postgresql")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def open_database(url: str) -> Database:
    """Return a peewee database for url, with SQLite tuned for a web server."""
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
        return SqliteDatabase(
            path,
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
    """Tell whether database is SQLite (some SQL differs)."""
    return isinstance(database, SqliteDatabase)


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """List the numbered migration modules (NNNN_name.py) in order."""
    found = []
    for path in directory.glob("[0-9][0-9][0-9][0-9]_*.py"):
        found.append((int(re.match(r"\d+", path.name).group()), path))
    return sorted(found)


def init_schema(
    database: Database, models: list, version_model, directory: Path = MIGRATIONS_DIR
) -> list[int]:
    """Create a fresh schema, or apply the migrations an existing one lacks.

    A new database gets the tables of models.py as they are now and is stamped
    with the newest migration number; an existing one runs each newer
    migration's ``migrate(database)`` in its own transaction. Returns the
    numbers applied. Safe to run at every deploy.
    """
    steps = migration_files(directory)
    head = steps[-1][0] if steps else 0
    with database.atomic():
        if not version_model.table_exists():
            database.create_tables(models)
            version_model.create(version=head)
            return []
    row = version_model.get()
    applied = []
    for number, path in steps:
        if number <= row.version:
            continue
        spec = importlib.util.spec_from_file_location(f"migration_{number}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with database.atomic():
            module.migrate(database)
            version_model.update(version=number).execute()
        applied.append(number)
    return applied
