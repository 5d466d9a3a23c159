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


# --- several budgets at once (a Convenios look-up: operator and entity, burst and day) ----

BURST = (Purpose.CONVENIO_USER_BURST, "u:7", 2, 60)
DAY = (Purpose.CONVENIO_USER_DAY, "u:7", 3, 86400)


def test_spend_all_spends_one_of_each_budget_or_none(backend, clock):
    assert throttle.spend_all([BURST, DAY]) == 0
    assert throttle.spend_all([BURST, DAY]) == 0
    wait = throttle.spend_all([BURST, DAY])  # the burst is spent: the day budget keeps its third
    assert 55 <= wait <= 60
    assert throttle.spend_all([DAY]) == 0
    assert throttle.spend_all([DAY]) > 60  # now that one refuses, for the rest of its day
    if backend is None:  # a minute later (the portal's clock) the burst has room, not the day
        clock.advance(seconds=61)
        assert throttle.spend_all([BURST, DAY]) > 60
        assert throttle.spend_all([BURST]) == 0


def test_spend_all_waits_for_the_longest_of_the_budgets_that_refuse(backend):
    short = (Purpose.CONVENIO_ENTITY_BURST, "e:1", 1, 60)
    long = (Purpose.CONVENIO_ENTITY_DAY, "e:1", 1, 7200)
    assert throttle.spend_all([short, long]) == 0
    assert 7000 < throttle.spend_all([short, long]) <= 7200
    assert throttle.spend_all([(Purpose.CONVENIO_USER_BURST, "u:1", 0, 60), short]) == 60


def test_a_refused_spend_all_leaves_every_count_as_it_was(backend):
    full = (Purpose.CONVENIO_ENTITY_BURST, "e:2", 1, 60)
    roomy = (Purpose.CONVENIO_ENTITY_DAY, "e:2", 2, 600)
    assert throttle.spend_all([full]) == 0
    for _ in range(5):
        assert throttle.spend_all([roomy, full]) > 0
    assert throttle.spend_all([roomy]) == 0 and throttle.spend_all([roomy]) == 0
    assert throttle.spend_all([roomy]) > 0
    if backend is None:
        assert Throttle.get(Throttle.purpose == Purpose.CONVENIO_ENTITY_DAY).count == 2


def test_sixteen_concurrent_spend_alls_share_the_tightest_budget(backend):
    models.db.close()
    answers = _race(
        lambda: throttle.spend_all([(BURST[0], "u:8", 3, 60), (DAY[0], "u:8", 10, 600)])
    )
    assert answers.count(0) == 3 and len(answers) == 16
    models.db.connect(reuse_if_open=True)
    if backend is None:
        counts = {row.purpose: row.count for row in Throttle.select()}
        assert counts == {str(BURST[0]): 3, str(DAY[0]): 3}


def test_spend_all_takes_one_budget_per_purpose(backend):
    with pytest.raises(ValueError):
        throttle.spend_all([BURST, (BURST[0], "u:9", 5, 60)])


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
