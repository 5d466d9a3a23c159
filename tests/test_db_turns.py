"""SQLite writers of one process take turns (core.db.WriteTurns), and no failure keeps a turn."""

from __future__ import annotations

import threading
import time

import pytest
from peewee import IntegerField, IntegrityError, Model

from core import db as dbmod


@pytest.fixture
def database(tmp_path):
    database = dbmod.open_database(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    database._write_wait = 2  # a leaked turn shows in seconds, not half a minute

    class Row(Model):
        n = IntegerField(unique=True)

        class Meta:
            pass

    Row._meta.set_database(database)
    database.create_tables([Row])
    yield database, Row
    database.close()


def write_from_another_thread(Row) -> None:
    errors = []

    def write():
        try:
            Row.create(n=1000)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            Row._meta.database.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=10)
    assert errors == [] and not thread.is_alive()


def test_a_failed_transaction_and_a_failed_lone_write_give_their_turn_back(database):
    database, Row = database
    assert isinstance(database, dbmod.WriteTurns)
    Row.create(n=1)
    with pytest.raises(IntegrityError), database.atomic():
        Row.create(n=2)
        Row.create(n=1)  # fails: the transaction rolls back
    with pytest.raises(IntegrityError):
        Row.create(n=1)  # a lone write that fails
    write_from_another_thread(Row)  # would wait write_wait, then fail, if a turn were kept
    assert sorted(r.n for r in Row.select()) == [1, 1000]


def test_a_second_writer_waits_for_the_transaction_and_a_reader_does_not(database):
    database, Row = database
    inside, order = threading.Event(), []

    def other_writer():
        inside.wait(5)
        Row.create(n=2)
        order.append("other wrote")
        database.close()

    def reader():
        inside.wait(5)
        order.append(f"read {Row.select().count()}")  # WAL: the last committed state
        database.close()

    threads = [threading.Thread(target=other_writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    with database.atomic():
        Row.create(n=1)
        inside.set()
        time.sleep(0.3)  # the writer is queued, not failing in SQLite's busy handler
        order.append("first committed")
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["read 0", "first committed", "other wrote"]
    assert Row.select().count() == 2
