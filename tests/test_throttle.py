"""Cool-downs and quotas by purpose (core.throttle), in the database and in Redis."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

import pytest

import models
from core import auth as core_auth
from core import throttle
from core.throttle import Purpose
from models import Message, Throttle

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"
EMAIL = "ana.perez@example.com"


@pytest.fixture(params=["database", "redis"])
def backend(request, db):
    """Count in the test's database (SQLite, or DATABASE_URL's PostgreSQL) or in Redis db 15."""
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.flushdb()
        except redis.ConnectionError:
            pytest.skip("no Redis at 127.0.0.1:6379")
        throttle.configure(REDIS_URL)
        yield client
        client.flushdb()
    else:
        yield None
    throttle.configure(None)


def wait_out(backend, clock, seconds: int) -> None:
    """Let a window of seconds end: the portal's clock for the database, real time for Redis."""
    if backend is None:
        clock.advance(seconds=seconds + 1)
    else:
        time.sleep(seconds + 0.1)


def test_cooldown_lets_one_through_then_tells_the_wait(backend):
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120) == 0
    wait = throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120)
    assert 1 <= wait <= 120
    assert throttle.cooldown(Purpose.RESET_MAIL, "otra@example.com", 120) == 0


def test_cooldown_ends_after_its_seconds(backend, clock):
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 1) == 0
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 1) > 0
    wait_out(backend, clock, 1)
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 1) == 0
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 1) > 0


def test_quota_allows_limit_uses_per_window(backend, clock):
    answers = [throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 3, 1) for _ in range(5)]
    assert answers == [True, True, True, False, False]
    assert throttle.quota(Purpose.ACTIVATION_MAIL, "otra@example.com", 3, 1)
    wait_out(backend, clock, 1)
    assert [throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 3, 1) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


def test_a_key_for_one_purpose_does_not_touch_another(backend):
    assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120) == 0
    assert throttle.cooldown(Purpose.ACTIVATION_MAIL, EMAIL, 120) == 0
    assert not throttle.quota(Purpose.RESET_MAIL, "cupo", 0, 60)
    assert throttle.quota(Purpose.ACTIVATION_MAIL, "cupo", 1, 60)


def _race(step, threads: int = 16) -> list:
    """Run step in threads started together, each on its own connection; return the answers."""
    start = threading.Barrier(threads, timeout=30)
    answers, errors = [], []

    def run() -> None:
        try:
            # Wait before taking a connection: PostgreSQL's pool has fewer than 16.
            start.wait()
            with models.db.connection_context():
                answers.append(step())
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return answers


def test_sixteen_concurrent_callers_get_exactly_one_cooldown_pass(backend):
    models.db.close()  # the threads open their own connections
    answers = _race(lambda: throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120))
    assert sorted(answers)[0] == 0 and answers.count(0) == 1 and len(answers) == 16


def test_sixteen_concurrent_callers_share_one_quota(backend):
    models.db.close()
    assert _race(lambda: throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 1, 60)).count(True) == 1
    assert _race(lambda: throttle.quota(Purpose.RESET_MAIL, EMAIL, 5, 60)).count(True) == 5


def test_keys_are_stored_hashed(backend):
    throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120)
    throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 3, 60)
    digest = hashlib.sha256(EMAIL.encode()).hexdigest()
    if backend is None:
        rows = list(Throttle.select().dicts())
        assert {(r["purpose"], r["key_hash"]) for r in rows} == {
            ("reset_mail", digest),
            ("activation_mail", digest),
        }
        assert not any("ana" in str(value) for row in rows for value in row.values())
    else:
        keys = sorted(k.decode() for k in backend.keys("*"))
        assert keys == [f"throttle:activation_mail:{digest}", f"throttle:reset_mail:{digest}"]
        assert all(backend.ttl(k) > 0 for k in keys)
        assert Throttle.select().count() == 0


def test_unreachable_redis_falls_back_to_the_database(db, caplog):
    throttle.configure("redis://:hunter2@127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with caplog.at_level(logging.WARNING, logger="portal.throttle"):
            assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120) == 0
            assert throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 120) > 0
            assert throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 1, 60)
            assert not throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 1, 60)
    finally:
        throttle.configure(None)
    assert Throttle.select().count() == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis no responde" in warnings[0]
    assert "hunter2" not in caplog.text and "127.0.0.1" not in caplog.text


def test_expired_rows_are_purged(db, clock):
    throttle.cooldown(Purpose.RESET_MAIL, EMAIL, 60)
    throttle.quota(Purpose.ACTIVATION_MAIL, EMAIL, 3, 3600)
    clock.advance(seconds=61)
    assert throttle.purge() == 1
    assert [r.purpose for r in Throttle.select()] == ["activation_mail"]


def test_reset_cooldown_is_keyed_by_the_normalised_address_account_or_not(db):
    for typed in (" Nadie@Example.com", "nadie@example.com "):
        core_auth.request_reset(typed, secret="test-secret", base_url="http://localhost")
    assert Message.select().where(Message.recipient == "nadie@example.com").count() == 1
    digest = throttle.key_hash("nadie@example.com")
    assert Throttle.get(Throttle.purpose == Purpose.RESET_MAIL).key_hash == digest


def test_a_spent_quota_says_how_long_until_its_window_ends(backend, clock):
    assert throttle.spend(Purpose.CONVENIO_USER_BURST, "u:1", 2, 60) == 0
    assert throttle.spend(Purpose.CONVENIO_USER_BURST, "u:1", 2, 60) == 0
    wait = throttle.spend(Purpose.CONVENIO_USER_BURST, "u:1", 2, 60)
    assert 55 <= wait <= 60
    assert throttle.spend(Purpose.CONVENIO_USER_DAY, "u:1", 2, 60) == 0  # another budget
    assert throttle.spend(Purpose.CONVENIO_USER_BURST, "u:1", 0, 60) == 60
