"""Bench the admin's audit search over 100 000 rows against a bare Flask endpoint.

Run from the project root:  .venv/bin/python bench/queues.py [--help]

Builds a temporary SQLite database with an admin and N audit rows, then times,
through the Flask test client (no network, one thread), the audit page: page
1, a filtered page, a deep page by cursor (full page and the htmx "Ver más"
partial), next to bench/bare.py's endpoint in the same run. Prints p50/p95,
requests/s, body size and SQL statements per request, then the deep page's
query by keyset and by OFFSET. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = "admin.bench@cajacopi.example"
URL = "/gestion/auditoria"


class Statements(logging.Handler):
    """Count the SQL statements peewee runs (it logs each one at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.n = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1


def fill(database, rows: int, actions: list[str]) -> None:
    """Insert rows audit events in one statement: one every 5 minutes from 2026-01-01."""
    # Generated inside SQLite (a recursive CTE), not row by row from Python:
    # 100 000 rows take well under a second. Actor 1 is the admin.
    database.execute_sql(
        """
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
        INSERT INTO audit_event
            (at, actor_id, actor_label, action, target_type, target_id, before, after, ip)
        SELECT strftime('%Y-%m-%d %H:%M:%S', '2026-01-01', '+' || (i * 300 + i * 7919 % 300) || ' seconds'),
               1 + i % 59,
               'funcionario' || (1 + i % 59) || '@cajacopi.example',
               json_extract(?, '$[' || (i * 31 % ?) || ']'),
               json_extract('["usuario","solicitud","staff"]', '$[' || (i * 17 % 3) || ']'),
               1 + i * 104729 % 20000,
               '{"status":"bloqueado"}', '{"status":"activo"}', '203.0.113.' || (i % 250)
        FROM n
        """,
        (rows, json.dumps(actions), len(actions)),
    )
    database.execute_sql("ANALYZE")


def build(tmp: Path, rows: int):
    """Return the portal app on a fresh database with rows events, and an admin's client."""
    import models
    from app import create_app
    from blueprints.auth import idle_limit
    from core import auth as core_auth
    from core import db as dbmod
    from core import passwords
    from core.audit import Action

    app = create_app(
        {
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "RATELIMIT_ENABLED": False,
            "BASE_URL": "http://127.0.0.1:5000",
            "DEV_MAILBOX": True,
            "SMS_BACKEND": "file",
            "SMS_FILE": str(tmp / "sms.jsonl"),
            "UPLOAD_DIR": str(tmp / "uploads"),
            "CAPTCHA": "off",
        }
    )
    with app.app_context(), models.db.connection_context():
        dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
        with models.db.atomic():
            admin = models.Account.create(
                kind=models.Account.STAFF,
                login=ADMIN,
                email=ADMIN,
                password_hash=passwords.hash_password(secrets.token_hex(16)),
                status=models.Account.ACTIVE,
            )
            models.StaffMember.create(account=admin, nombre="Admin Bench")
            models.StaffRole.create(account=admin, role="admin")
        fill(models.db, rows, [a.value for a in Action])
    client = app.test_client()
    # Signed in as the staff login would leave it: a server-side session, second factor passed.
    with app.test_request_context(), models.db.connection_context():
        sid = core_auth.start_session(admin, "bench", idle=idle_limit(admin), second_factor=True)
    with client.session_transaction() as session:
        session.update(sid=sid, _user_id=admin.session_token, _fresh=True)
    return app, client


def deep_cursor(app, offset: int) -> str:
    """Return the cursor that starts the page after the offset-th newest row."""
    import models
    from blueprints import queue
    from blueprints.gestion.auditoria import ORDER

    event = models.AuditEvent
    with app.app_context(), models.db.connection_context():
        newest = event.select(event.at, event.id).order_by(event.at.desc(), event.id.desc())
        row = newest.offset(offset).limit(1).dicts()[0]  # .get() would reset the offset
    return queue.encode_cursor(ORDER, row)


def measure(client, path: str, headers: dict, mark: bytes, n: int, counter: Statements) -> dict:
    """GET path n times (after 5 unmeasured); every answer must be 200 and contain mark."""
    from bench.lookup import ACCEPT, decode

    times, statements = [], 0
    for i in range(n + 5):
        before = counter.n
        start = time.perf_counter()
        response = client.get(path, headers={**ACCEPT, **headers})
        elapsed = time.perf_counter() - start
        body = decode(response.headers.get("Content-Encoding"), response.data)
        if response.status_code != 200 or mark not in body:
            sys.exit(f"GET {path} gave {response.status_code}: {body[:200]!r}")
        if i >= 5:
            times.append(elapsed)
            statements += counter.n - before
    times.sort()
    return {
        "p50": statistics.median(times) * 1000,
        "p95": times[int(0.95 * (len(times) - 1))] * 1000,
        "rps": n / sum(times),
        "size": len(response.data),
        "raw": len(body),
        "sql": statements / n,
    }


def sql_only(app, cursor: str, offset: int, n: int) -> tuple[float, float]:
    """Return the median ms of the deep page's query read by keyset and by OFFSET."""
    import models
    from blueprints import queue
    from blueprints.gestion.auditoria import ORDER, search_query

    after = queue.decode_cursor(ORDER, cursor)
    by_key = queue.keyset(search_query(), ORDER, after=after)
    by_offset = queue.keyset(search_query(), ORDER).offset(offset + 1)
    results = []
    with app.app_context(), models.db.connection_context():
        assert [r["id"] for r in by_key.dicts()] == [r["id"] for r in by_offset.dicts()]
        for query in (by_key, by_offset):
            times = []
            for _ in range(n):
                start = time.perf_counter()
                list(query.dicts())
                times.append(time.perf_counter() - start)
            results.append(statistics.median(times) * 1000)
    return results[0], results[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="audit rows to build")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per target")
    args = parser.parse_args()
    args.rows = max(1_000, min(args.rows, 2_000_000))

    tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-queues-"))
    try:
        start = time.perf_counter()
        app, client = build(tmp, args.rows)
        built = time.perf_counter() - start
        offset = args.rows * 9 // 10
        cursor = deep_cursor(app, offset)

        from bench.bare import app as bare

        counter = Statements()
        peewee_log = logging.getLogger("peewee")
        peewee_log.addHandler(counter)
        peewee_log.setLevel(logging.DEBUG)
        peewee_log.propagate = False

        htmx = {"HX-Request": "true"}
        filtered = f"{URL}?funcionario={ADMIN}&accion=usuario.desbloquear"
        targets = {
            "audit page 1": (client, URL, {}, b"resultados"),
            "audit filtered, page 1": (client, filtered, {}, b"resultados"),
            f"audit deep page (row {offset:,})": (client, f"{URL}?despues={cursor}", {}, b"<tr>"),
            "same, htmx Ver más partial": (client, f"{URL}?despues={cursor}", htmx, b"<tr>"),
            "bare Flask fragment": (bare.test_client(), "/", {}, b"datos-afiliado"),
        }
        results = {
            name: measure(c, path, headers, mark, args.requests, counter)
            for name, (c, path, headers, mark) in targets.items()
        }
        key_ms, offset_ms = sql_only(app, cursor, offset, 50)

        print(
            f"Portal Hanna audit search bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  "
            f"Python {sys.version.split()[0]}"
        )
        print(
            f"SQLite (temporary file, WAL), {args.rows:,} audit rows built and analysed in "
            f"{built:.1f} s · Flask test client, one thread · {args.requests} requests "
            "per target after 5 unmeasured\n"
        )
        print(
            f"  {'target':<34} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8} {'HTML B':>8} "
            f"{'sent B':>8} {'SQL/req':>8} {'p50/bare':>9}"
        )
        bare_p50 = results["bare Flask fragment"]["p50"]
        for name, r in results.items():
            print(
                f"  {name:<34} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['rps']:>8.0f} "
                f"{r['raw']:>8} {r['size']:>8} {r['sql']:>8.1f} {r['p50'] / bare_p50:>9.1f}"
            )
        print(
            f"\n  deep page query alone (row {offset:,}): keyset {key_ms:.2f} ms, "
            f"OFFSET {offset_ms:.2f} ms ({offset_ms / key_ms:.0f}× slower)"
        )
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
