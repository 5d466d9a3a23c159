"""Fixtures: an app on a temp-file SQLite (or DATABASE_URL's PostgreSQL), a client, mail."""

from __future__ import annotations

import re

import pytest

import models
from core import passwords
from tests.apps import CHEAP_HASH, drop_postgres_schemas, make_app


@pytest.fixture(scope="session", autouse=True)
def _postgres_schema_cleanup():
    yield
    drop_postgres_schemas()


@pytest.fixture
def app(tmp_path):
    yield from make_app(tmp_path)


@pytest.fixture
def limited_app(tmp_path):
    """An app with its rate limits on (in-memory storage)."""
    yield from make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")


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
