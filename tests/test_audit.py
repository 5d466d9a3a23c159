"""Audit log: rows ride the caller's transaction, keep only changes, no secrets, append-only."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

import pytest
from peewee import DatabaseError, chunked

import models
from blueprints import queue
from core import audit
from core import db as dbmod
from core.audit import Action, Actor
from models import AuditEvent

ANA = Actor(7, "ana.staff@hanna.test")


def _record(**over):
    fields = dict(actor=ANA, action=Action.USUARIO_DESBLOQUEAR, target_type="usuario", target_id=1)
    fields.update(over)
    with models.db.atomic():
        return audit.record(**fields)


# --- the caller's transaction ---------------------------------------------------


def test_record_commits_with_the_callers_transaction(db):
    with db.atomic():
        audit.record(ANA, Action.USUARIO_ACTIVAR, "usuario", 5, ip="203.0.113.9")
    row = AuditEvent.get()
    assert (row.actor_id, row.actor_label, row.action, row.target_type, row.target_id) == (
        7,
        "ana.staff@hanna.test",
        "usuario.activar",
        "usuario",
        5,
    )
    assert row.ip == "203.0.113.9" and row.at is not None


def test_record_rolls_back_with_the_callers_transaction(db):
    with pytest.raises(ZeroDivisionError):
        with db.atomic():
            audit.record(ANA, Action.USUARIO_ACTIVAR, "usuario", 5)
            raise ZeroDivisionError
    assert AuditEvent.select().count() == 0


def test_record_rolls_back_with_a_savepoint(db):
    with db.atomic():
        with db.atomic() as inner:
            audit.record(ANA, Action.USUARIO_ACTIVAR, "usuario", 5)
            inner.rollback()
        audit.record(ANA, Action.USUARIO_ACTIVAR, "usuario", 6)
    assert [r.target_id for r in AuditEvent.select()] == [6]


def test_record_refuses_outside_a_transaction(db):
    with pytest.raises(RuntimeError, match="transaction"):
        audit.record(ANA, Action.USUARIO_ACTIVAR, "usuario", 5)
    assert AuditEvent.select().count() == 0


def test_record_refuses_an_unknown_action(db):
    with pytest.raises(ValueError):
        _record(action="usuario.borrar_todo")


def test_record_takes_an_account_or_the_system(db):
    class Account:
        id = 12
        email = "jefe@hanna.test"

    _record(actor=Account())
    _record(actor=None)
    rows = list(AuditEvent.select().order_by(AuditEvent.id))
    assert [(r.actor_id, r.actor_label) for r in rows] == [
        (12, "jefe@hanna.test"),
        (None, "sistema"),
    ]


# --- what is stored -------------------------------------------------------------


def test_record_stores_only_the_fields_that_changed(db):
    before = {
        "status": "bloqueado",
        "email": "a@b.co",
        "quiz_failures": 3,
        "blocked_at": date(2026, 3, 1),
    }
    after = {"status": "activo", "email": "a@b.co", "quiz_failures": 0, "blocked_at": None}
    row = _record(before=before, after=after)
    assert row.before == '{"blocked_at":"2026-03-01","quiz_failures":3,"status":"bloqueado"}'
    assert json.loads(row.after) == {"blocked_at": None, "quiz_failures": 0, "status": "activo"}


def test_a_field_on_one_side_only_counts_as_changed(db):
    row = _record(
        before={"role": "lector"}, after={"name": "Ana", "when": datetime(2026, 1, 2, 3, 4)}
    )
    assert json.loads(row.before) == {"role": "lector"}
    assert json.loads(row.after) == {"name": "Ana", "when": "2026-01-02T03:04:00"}


def test_nothing_changed_stores_no_json(db):
    row = _record(before={"status": "activo"}, after={"status": "activo"})
    assert row.before is None and row.after is None
    assert _record().before is None  # no dicts given


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "password_hash",
        "token",
        "session_token",
        "secret",
        "totp_secret",
        "code",
        "totp",
        "totp_last_step",
        "activation_nonce",
        "apiToken",
        "PASSWORD",
        "clave",
        "codigo",
        "código_sms",
        "nueva_contraseña",
    ],
)
def test_record_never_stores_a_secret(db, key):
    row = _record(
        before={key: "s3cr3t-old", "status": "a"}, after={key: "s3cr3t-new", "status": "b"}
    )
    assert "s3cr3t" not in (row.before + row.after)
    assert json.loads(row.after) == {"status": "b"}


def test_secrets_inside_nested_values_are_dropped(db):
    row = _record(after={"settings": {"smtp_password": "hunter2", "host": "mail"}})
    assert "hunter2" not in row.after
    assert json.loads(row.after) == {"settings": {"host": "mail"}}


@pytest.mark.parametrize("key", ["status", "email", "sha256", "codes_postal", "barcode"])
def test_ordinary_fields_are_kept(key):
    # "codes_postal" has the word "codes", not "code"; "barcode" is one word.
    assert not audit.is_secret(key)


# --- append-only ----------------------------------------------------------------


def test_orm_refuses_to_change_or_delete_a_row(db):
    row = _record()
    row.action = Action.STAFF_CREAR.value
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete_instance()
    with pytest.raises(TypeError):
        AuditEvent.update(action="x")
    with pytest.raises(TypeError):
        AuditEvent.delete()
    assert AuditEvent.get().action == "usuario.desbloquear"


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET action = 'staff.crear'", "DELETE FROM audit_event"],
)
def test_database_refuses_to_change_or_delete_a_row(db, statement):
    _record()
    with pytest.raises(DatabaseError, match="append-only"):
        with db.atomic():
            db.execute_sql(statement)
    assert AuditEvent.get().action == "usuario.desbloquear"


def test_postgresql_refuses_truncate(db):
    if dbmod.is_sqlite(db):
        pytest.skip("SQLite has no TRUNCATE")
    _record()
    with pytest.raises(DatabaseError, match="append-only"):
        with db.atomic():
            db.execute_sql("TRUNCATE audit_event")
    assert AuditEvent.select().count() == 1


def test_init_schema_again_keeps_the_guards(db):
    assert dbmod.init_schema(db, models.MODELS, models.SchemaVersion) == []
    dbmod.init_schema(db, models.MODELS, models.SchemaVersion)
    _record()
    with pytest.raises(DatabaseError, match="append-only"):
        with db.atomic():
            db.execute_sql("DELETE FROM audit_event")
    assert AuditEvent.select().count() == 1


# --- search ---------------------------------------------------------------------

T0 = datetime(2026, 3, 10, 12, 0)  # naive UTC, 07:00 in Bogotá


def _insert(rows):
    fields = [
        AuditEvent.at,
        AuditEvent.actor_id,
        AuditEvent.actor_label,
        AuditEvent.action,
        AuditEvent.target_type,
        AuditEvent.target_id,
    ]
    # One statement and executemany, in one transaction: peewee's insert_many
    # builds SQL value by value, five times slower at 100,000 rows.
    sql, _ = AuditEvent.insert({f: None for f in fields}).returning().sql()
    with models.db.atomic():
        cursor = models.db.cursor()
        for chunk in chunked(rows, 10_000):
            cursor.executemany(sql, chunk)


@pytest.fixture
def sample(db):
    """Six rows an hour apart: two actors, three actions, two targets."""
    spec = [
        (7, Action.USUARIO_DESBLOQUEAR, "usuario", 1),
        (8, Action.USUARIO_ACTIVAR, "usuario", 2),
        (7, Action.SOLICITUD_APROBAR, "solicitud", 1),
        (7, Action.USUARIO_DESBLOQUEAR, "usuario", 2),
        (8, Action.SOLICITUD_APROBAR, "solicitud", 1),
        (7, Action.USUARIO_ACTIVAR, "usuario", 1),
    ]
    _insert(
        [
            (T0 + timedelta(hours=n), actor, f"staff{actor}@hanna.test", action.value, ttype, tid)
            for n, (actor, action, ttype, tid) in enumerate(spec)
        ]
    )
    return [r.id for r in AuditEvent.select().order_by(AuditEvent.id)]


ORDER = (AuditEvent.at, AuditEvent.id)


def _search(per_page: int = 50, cursor: str | None = None, **filters):
    """One page of the audit search as the back office reads it (blueprints.queue)."""
    return queue.paginate(
        audit.search_query(**filters), order=ORDER, per_page=per_page, cursor=cursor, count=False
    )


def _ids(page):
    return [r["id"] for r in page.rows]


def test_search_returns_dicts_newest_first(sample):
    page = _search()
    assert _ids(page) == sample[::-1]
    assert not page.has_more
    assert page.rows[0]["action"] == "usuario.activar" and "actor_label" in page.rows[0]


@pytest.mark.parametrize(
    ("filters", "positions"),
    [
        (dict(actor_id=7), [5, 3, 2, 0]),
        (dict(action=Action.SOLICITUD_APROBAR), [4, 2]),
        (dict(action="usuario.activar"), [5, 1]),
        (dict(target=("usuario", 2)), [3, 1]),
        (dict(target="solicitud"), [4, 2]),
        (dict(since=T0 + timedelta(hours=4)), [5, 4]),
        (dict(until=T0 + timedelta(hours=2)), [1, 0]),
        (dict(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)), [2, 1]),
        (dict(actor_id=8, action=Action.SOLICITUD_APROBAR), [4]),
        (dict(actor_id=99), []),
    ],
)
def test_search_by_each_filter(sample, filters, positions):
    assert _ids(_search(**filters)) == [sample[p] for p in positions]


def test_search_dates_are_whole_bogota_days(db):
    # 04:30 UTC on the 11th is still the 10th in Bogotá (UTC-5).
    _insert([(datetime(2026, 3, 11, 4, 30), 7, "a", "staff.crear", "staff", 1)])
    _insert([(datetime(2026, 3, 11, 5, 30), 7, "a", "staff.crear", "staff", 2)])
    day = date(2026, 3, 10)
    assert [r["target_id"] for r in _search(since=day, until=day).rows] == [1]
    assert [r["target_id"] for r in _search(since=date(2026, 3, 11)).rows] == [2]


def test_search_pages_with_a_keyset(sample):
    first = _search(per_page=4)
    assert _ids(first) == sample[:1:-1] and first.has_more
    second = _search(per_page=4, cursor=first.next_cursor)
    assert _ids(second) == [sample[1], sample[0]] and not second.has_more


def test_keyset_breaks_ties_on_the_same_instant_by_id(db):
    _insert([(T0, 7, "a", "staff.crear", "staff", n) for n in range(5)])
    seen, cursor = [], None
    while True:
        page = _search(per_page=2, cursor=cursor)
        seen += _ids(page)
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


def test_exactly_per_page_rows_has_no_next_page(sample):
    assert not _search(per_page=6).has_more
    assert _search(per_page=5).has_more


# --- 100,000 rows: every search reads an index ----------------------------------

ACTIONS = [a.value for a in Action]
SEARCHES = {
    "actor": dict(actor_id=17),
    "action": dict(action=Action.STAFF_CREAR),
    "target": dict(target=("usuario", 4242)),
    "target type": dict(target="solicitud"),
    "date range": dict(since=date(2026, 2, 1), until=date(2026, 2, 7)),
    "actor and range": dict(actor_id=17, since=date(2026, 2, 1), until=date(2026, 4, 1)),
    "action, next page": dict(action=Action.STAFF_CREAR),  # started after row 50 000
    "everything, newest": dict(),
}
# A type alone is a third of the table: the planner may walk the (at, id) index
# and filter, or read the type's prefix and sort; either way an index, no table scan.
UNORDERED = {"target type", "everything, newest"}


@pytest.fixture
def bulk(db):
    rng = random.Random(7)
    start = datetime(2026, 1, 1)
    rows = [
        (
            start + timedelta(seconds=n * 300 + rng.randrange(300)),
            rng.randrange(1, 60),
            "staff@hanna.test",
            rng.choice(ACTIONS),
            rng.choice(("usuario", "solicitud", "staff")),
            rng.randrange(1, 20_000),
        )
        for n in range(100_000)
    ]
    _insert(rows)
    db.execute_sql("ANALYZE")  # production has statistics; without them a plan is a guess
    return db


def _plan(db, query) -> str:
    sql, params = query.sql()
    if dbmod.is_sqlite(db):
        return "\n".join(row[3] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
    return "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, params))


def test_every_search_uses_an_index_with_100k_rows(bulk):
    assert AuditEvent.select().count() == 100_000
    for name, filters in SEARCHES.items():
        query = audit.search_query(**filters)
        after = None
        if name == "action, next page":
            middle = AuditEvent.get_by_id(50_000)
            after = (middle.at, middle.id)
        plan = _plan(bulk, queue.keyset(query, ORDER, after=after))
        if dbmod.is_sqlite(bulk):
            reads = [line for line in plan.splitlines() if line.startswith(("SCAN", "SEARCH"))]
            assert reads and all("INDEX" in line for line in reads), (name, plan)
            if name not in UNORDERED:
                assert reads[0].startswith("SEARCH"), (name, plan)
        else:
            assert "Seq Scan" not in plan and "Index" in plan, (name, plan)
        if name != "target type":
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, (name, plan)
        assert len(_search(**filters).rows) <= 50
