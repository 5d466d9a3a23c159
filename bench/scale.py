"""Bench the affiliate look-ups at 10 000 and 1 000 000 affiliates and the staff queues at 100 000 rows.

Run from the project root:  .venv/bin/python bench/scale.py [--help]

On SQLite (a temporary file) and on PostgreSQL (a throwaway schema, when it
answers), each starting from `flask init-db` + `flask demo-data` (bench/common.py's
Portal, without its gunicorn), it works in-process through the real code:

1. Look-ups: fills `afiliado` to each size (SQLite executemany in one
   transaction, PostgreSQL COPY), then times `Afiliado.find` as the
   registration calls it (blueprints/accounts/service.find_afiliado), the
   Convenios desk's `core.convenios._find_afiliado`, hits and misses, and the
   whole htmx partial POST /registro/consulta through the Flask test client;
   prints the plan of each look-up query (it must read the index).
2. Queues: fills the help desk (`caso_mesa`), the authorization requests, the
   PQRSF and the audit log to 100 000 rows each, copying the demo's IPS,
   motivos, afiliados and staff into new rows, signs in the staff member of
   each queue, and times page 1, a filtered view and a deep "Ver más" page,
   with the SQL statements per request and the plan of each statement that
   reads the queue's table.

See bench/README.md. Writes its figures to --json PATH for bench/run.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import signal
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ACCEPT, Figures, Portal, decode  # noqa: E402
from core.importer import COLUMNS as IMPORT_COLUMNS  # noqa: E402

PG = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
HX = {"HX-Request": "true"}
COUNT_CAP = 10_000  # blueprints.queue.COUNT_CAP: what a capped count may read
FLAT_BUDGET = 2.0  # the partial at the largest size over the smallest: a scan would be 100×
PLAN_LINES = 16  # of each plan printed
WARMUP = 5  # unmeasured requests before each target (and 100 calls before each look-up loop)


# --- what every part needs ---------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


class Statements(logging.Handler):
    """Count the SQL statements peewee runs (it logs each at DEBUG), and keep them when asked."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.n = 0
        self.kept: list[tuple[str, tuple]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1
        if self.kept is not None and isinstance(record.msg, tuple):
            self.kept.append(record.msg)

    def __enter__(self) -> Statements:
        log = logging.getLogger("peewee")
        log.addHandler(self)
        log.setLevel(logging.DEBUG)
        log.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        log = logging.getLogger("peewee")
        log.removeHandler(self)
        log.setLevel(logging.WARNING)  # a disabled logger costs nothing in the timed loops

    def capture(self, call) -> list[tuple[str, tuple]]:
        """Run call() and return the statements it ran."""
        self.kept = []
        try:
            call()
            return self.kept
        finally:
            self.kept = None


def is_sqlite() -> bool:
    import models
    from core.db import is_sqlite as check

    return check(models.db)


def columns_of(model) -> list[str]:
    """The columns a bulk insert fills: every one but the serial id."""
    from peewee import AutoField

    return [f.column_name for f in model._meta.sorted_fields if not isinstance(f, AutoField)]


def bulk(model, rows, rebuild_indexes: bool = False) -> float:
    """Insert rows (dicts by column name, or tuples in columns_of order) in one go; return seconds.

    rebuild_indexes: drop the model's indexes first and build them again from
    models.py after (a sort, several times faster than a million random inserts).
    """
    import models

    columns = columns_of(model)
    table = model._meta.table_name
    names = ", ".join(f'"{c}"' for c in columns)
    tuples = (row if isinstance(row, tuple) else tuple(row[c] for c in columns) for row in rows)
    start = time.perf_counter()
    with models.db.connection_context():
        with models.db.atomic():
            cursor = models.db.cursor()
            if rebuild_indexes:
                for index in models.db.get_indexes(table):
                    if not index.name.endswith("_pkey"):
                        models.db.execute_sql(f'DROP INDEX "{index.name}"')
            if is_sqlite():
                models.db.execute_sql("PRAGMA cache_size = -262144")  # 256 MB, this connection
                marks = ", ".join("?" * len(columns))
                cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', tuples)  # noqa: S608 - names from models.py
            else:
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in tuples:
                        copy.write_row(row)
            if rebuild_indexes:
                model._schema.create_indexes(safe=False)
        # Statistics, as production has them (autovacuum, or the nightly ANALYZE on SQLite).
        models.db.execute_sql(f'ANALYZE "{table}"' if is_sqlite() else f'VACUUM ANALYZE "{table}"')
    return time.perf_counter() - start


def stamp(value) -> str | None:
    """A date or datetime as peewee stores it (SQLite text; PostgreSQL reads the same in COPY)."""
    return None if value is None else str(value)


# --- query plans -------------------------------------------------------------------------


def explain(sql: str, params) -> list[str]:
    """Return the plan of one statement, a line per step.

    SQLite: EXPLAIN QUERY PLAN, indented by depth. PostgreSQL: EXPLAIN ANALYZE
    (the statement runs; costs left out), so each scan says how many rows it read.
    """
    import models

    if is_sqlite():
        rows = list(models.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        depth = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines
    analyzed = models.db.execute_sql("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) " + sql, params)
    return [re.sub(r"  \(cost=[^)]*\)", "", row[0]) for row in analyzed]


_PG_READ = re.compile(
    r"(Parallel Seq Scan|Seq Scan|Index Only Scan(?: Backward)? using \S+"
    r"|Index Scan(?: Backward)? using \S+|Bitmap Heap Scan) on (\w+)"
)
_PG_ACTUAL = re.compile(r"actual rows=(\d+) loops=(\d+)")
_PG_REMOVED = re.compile(r"Rows Removed by (?:Filter|Index Recheck): (\d+)")


def _rows_in(table: str) -> int:
    import models

    return models.db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608


def judge(plan: list[str], sql: str, table: str) -> tuple[bool | None, str]:
    """Tell how the plan reads table: (False when it reads all of it, None if not at all, verdict).

    SQLite: a SCAN with no index is a full table scan; a SCAN along an index
    reads all of it unless a LIMIT stops the walk (no sort in between).
    PostgreSQL (EXPLAIN ANALYZE): the rows the scans of table read (returned +
    removed by their filter); half the table, and more than a capped count's
    cap three times over, is reading all of it, whatever the node (a Seq Scan
    that a LIMIT stops early is not). On SQLite the plan cannot say how many
    rows a SEARCH read: a range that the filter then throws away shows in the time.
    """
    if is_sqlite():
        aliases = {alias: name for name, alias in re.findall(r'"(\w+)" AS "(\w+)"', sql)}
        reads = []
        for line in plan:
            words = line.split()
            if len(words) >= 2 and words[0] in ("SCAN", "SEARCH"):
                if aliases.get(words[1], words[1]) == table:
                    reads.append(line.strip())
        if not reads:
            return None, "does not read " + table
        sorts = any("TEMP B-TREE FOR ORDER BY" in line for line in plan)
        walks = [r for r in reads if r.startswith("SCAN") and "INDEX" in r]
        if any(r.startswith("SCAN") and "USING" not in r for r in reads):
            return False, "full table scan"
        if walks and (" LIMIT " not in sql or sorts):
            return False, "whole index"
        kind = "index walk, stops at the LIMIT" if walks else "index"
        return True, kind + (", sorts" if sorts else "")
    nodes = []  # [kind, rows read]
    for line in plan:
        found = _PG_READ.search(line)
        if found:
            actual = _PG_ACTUAL.search(line)
            rows = int(actual.group(1)) * int(actual.group(2)) if actual else 0
            nodes.append([found.group(1), rows, found.group(2) == table, int(actual.group(2))])
        elif nodes and (removed := _PG_REMOVED.search(line)):
            nodes[-1][1] += int(removed.group(1)) * nodes[-1][3]
    ours = [(kind, rows) for kind, rows, mine, _ in nodes if mine]
    if not ours:
        return None, "does not read " + table
    read = sum(rows for _, rows in ours)
    total = _rows_in(table)
    sorts = any(
        line.strip().lstrip("-> ").startswith(("Sort", "Incremental Sort")) for line in plan
    )
    seq = any("Seq Scan" in kind for kind, _ in ours)
    if read >= 0.5 * total and read > 3 * COUNT_CAP:
        return False, f"{'full table scan' if seq else 'whole index'}, read {read:,} rows"
    kind = "seq scan stopped by the LIMIT" if seq else "index"
    return True, f"{kind}, read {read:,} of {total:,} rows" + (", sorts" if sorts else "")


def show_plan(title: str, sql: str, params, plan: list[str], verdict: str) -> None:
    print(f"    {title}: {verdict}")
    shown = re.sub(r"\s+", " ", sql)
    print(f"      {shown[:200]}{'…' if len(shown) > 200 else ''}")
    for line in plan[:PLAN_LINES]:
        print(f"        {line}")
    if len(plan) > PLAN_LINES:
        print(f"        … {len(plan) - PLAN_LINES} more lines")


# --- 1. look-ups at scale ----------------------------------------------------------------

FIRST = ("ANA", "LUIS", "MARÍA", "JOSÉ", "CARMEN", "JUAN", "LUZ", "CARLOS", "ROSA", "JORGE")
SECOND = ("", "", "MARÍA", "ANDRÉS", "ISABEL", "DAVID", "ELENA", "ALBERTO")
LAST = ("PÉREZ", "GÓMEZ", "RODRÍGUEZ", "MARTÍNEZ", "GARCÍA", "LÓPEZ", "HERNÁNDEZ", "DÍAZ")
ESTADOS = (
    ("ACTIVO",) * 76 + ("INACTIVO",) * 8 + ("RETIRADO",) * 7 + ("SUSPENDIDO",) * 5 + ("MORA",) * 4
)
TIPO_CODE = {"CC": 1, "CE": 2, "PT": 3}
AFILIADO_COLUMNS = (*IMPORT_COLUMNS, "updated_at")  # the Caja's export, and when


def key(tipo: str, numero: int) -> int:
    return TIPO_CODE[tipo] * 10**10 + numero


def document(rng: random.Random) -> tuple[str, int]:
    """A document as the Caja's data has them (core/demo.py's mix): cédulas of 8 and 10 digits."""
    r = rng.random()
    if r < 0.90:
        if rng.random() < 0.5:
            return "CC", rng.randint(10_000_000, 99_999_999)
        return "CC", rng.randint(1_000_000_000, 1_199_999_999)
    return ("CE" if r < 0.96 else "PT"), rng.randint(100_000, 9_999_999)


class Affiliates:
    """The afiliado table's documents, grown size by size; hits and misses drawn from them."""

    def __init__(self, rng: random.Random) -> None:
        import models

        self.rng = rng
        self.keys: set[int] = set()
        self.ordered: list[tuple[str, int]] = []
        a = models.Afiliado
        with models.db.connection_context():
            for tipo, numero in a.select(a.tipo_documento, a.numero_documento).tuples():
                if tipo in TIPO_CODE and numero.isdigit():
                    self.keys.add(key(tipo, int(numero)))
                    self.ordered.append((tipo, int(numero)))
                else:
                    self.keys.add(hash((tipo, numero)))  # kept out of the samples
        self.count = len(self.keys)
        if set(AFILIADO_COLUMNS) != set(columns_of(a)):
            sys.exit(f"models.Afiliado changed: bench/scale.py fills {AFILIADO_COLUMNS}")

    def rows(self, target: int, now: datetime):
        """Yield new rows until the table holds target; the columns drawn from small pools (fast)."""
        rng, updated = self.rng, stamp(now)
        born = [
            (now.date() - timedelta(days=rng.randint(18 * 365, 75 * 365))).isoformat()
            for _ in range(2000)
        ]
        mobiles = [f"3{rng.randrange(10**9):09d}" for _ in range(2000)]
        nits = [str(rng.randint(800_000_000, 901_999_999)) for _ in range(300)]
        while self.count < target:
            k = min(10_000, target - self.count)
            names = zip(
                rng.choices(FIRST, k=k),
                rng.choices(SECOND, k=k),
                rng.choices(LAST, k=k),
                rng.choices(LAST, k=k),
                rng.choices(born, k=k),
                rng.choices(mobiles, k=k),
                rng.choices(ESTADOS, k=k),
                rng.choices("AAAAABBBCC", k=k),
                rng.choices(nits, k=k),
                strict=True,
            )
            for first, second, last1, last2, birth, mobile, estado, categoria, nit in names:
                while True:
                    tipo, numero = document(rng)
                    if key(tipo, numero) not in self.keys:
                        break
                self.keys.add(key(tipo, numero))
                self.ordered.append((tipo, numero))
                self.count += 1
                yield (
                    tipo,
                    str(numero),
                    first,
                    second,
                    last1,
                    last2,
                    birth,
                    "",
                    mobile,
                    "",
                    estado,
                    categoria,
                    nit,
                    "EMPRESA DE PRUEBA S.A.S.",
                    "ACTIVA",
                    None,
                    "",
                    "",
                    "",
                    "",
                    updated,
                )

    def fill(self, target: int, now: datetime) -> float:
        import models

        if target <= self.count:
            return 0.0
        return bulk(
            models.Afiliado, self.rows(target, now), rebuild_indexes=target - self.count > 100_000
        )

    def hits(self, n: int, cedulas: bool = False) -> list[tuple[str, str]]:
        pool = self.ordered
        found = []
        while len(found) < n:
            tipo, numero = pool[self.rng.randrange(len(pool))]
            if not cedulas or tipo in ("CC", "CE"):
                found.append((tipo, str(numero)))
        return found

    def misses(self, n: int, cedulas: bool = False) -> list[tuple[str, str]]:
        found = []
        while len(found) < n:
            tipo, numero = document(self.rng)
            if cedulas:
                if key("CC", numero) in self.keys or key("CE", numero) in self.keys:
                    continue
            elif key(tipo, numero) in self.keys:
                continue
            found.append((tipo, str(numero)))
        return found


def time_calls(call, documents, expect_found: bool) -> list[float]:
    """Call call(tipo, numero) for each document (100 unmeasured first); return µs per call."""
    import models

    times = []
    with models.db.connection_context():
        for i, (tipo, numero) in enumerate(documents[:100] + documents):
            start = time.perf_counter()
            found = call(tipo, numero)
            elapsed = time.perf_counter() - start
            if (found is not None) != expect_found:
                sys.exit(f"look-up of {tipo} {numero}: expected found={expect_found}, got {found}")
            if i >= 100:
                times.append(elapsed * 1e6)
    return times


def registration_partial(app, documents, expect_found: bool) -> list[float]:
    """POST /registro/consulta (htmx) for each document; return ms per request."""
    client = app.test_client()
    page = client.get("/registro")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
    if page.status_code != 200 or not token:
        sys.exit(f"GET /registro gave {page.status_code}: no CSRF token")
    mark = b'name="de_caja"' if expect_found else b"No encontramos este documento"
    times = []
    for i, (tipo, numero) in enumerate(documents[:WARMUP] + documents):
        form = {"tipo_documento": tipo, "numero_documento": numero, "csrf_token": token.group(1)}
        start = time.perf_counter()
        response = client.post("/registro/consulta", data=form, headers={**ACCEPT, **HX})
        elapsed = time.perf_counter() - start
        body = decode(response.headers.get("Content-Encoding"), response.data)
        if response.status_code != 200 or mark not in body:
            sys.exit(
                f"POST /registro/consulta {tipo} {numero}: {response.status_code} {body[:300]!r}"
            )
        if i >= WARMUP:
            times.append(elapsed * 1000)
    return times


def lookup_plans(stmts: Statements, backend: str, size: int, figures: Figures, hit) -> None:
    import models
    from blueprints.accounts import service
    from core import convenios

    section = f"scale: look-ups, {backend}"
    calls = {
        "registration Afiliado.find": lambda: service.find_afiliado(*hit),
        "Convenios _find_afiliado": lambda: convenios._find_afiliado(hit[1]),
    }
    with models.db.connection_context():
        for name, call in calls.items():
            (sql, params), *_ = stmts.capture(call)
            plan = explain(sql, params)
            uses_index, verdict = judge(plan, sql, models.Afiliado._meta.table_name)
            show_plan(f"{name}, plan at {size:,}", sql, params, plan, verdict)
            figures.add(section, f"{name} plan at {size:,}", verdict, ok=bool(uses_index))


def lookups(app, backend: str, sizes: list[int], n: int, n_http: int, figures: Figures):
    """Fill afiliado to each size and time the look-ups there; return the partial's p50 per size."""
    from blueprints.accounts import service
    from core import clock, convenios

    section = f"scale: look-ups, {backend}"
    data = Affiliates(random.Random(f"scale-{backend}"))
    now = clock.utcnow()
    partial_p50 = {}
    print(f"\n  {backend}: look-ups ({n:,} documents each, µs in-process; partial in ms)")
    for size in sizes:
        seconds = data.fill(size, now)
        print(f"  {size:>9,} affiliates (filled in {seconds:.1f} s)")
        figures.add(section, f"fill afiliado to {size:,} rows", round(seconds, 1), "s")
        for name, call, cedulas in (
            ("registration Afiliado.find", service.find_afiliado, False),
            ("Convenios _find_afiliado", lambda _t, numero: convenios._find_afiliado(numero), True),
        ):
            for kind, documents, found in (
                ("hit", data.hits(n, cedulas), True),
                ("miss", data.misses(n, cedulas), False),
            ):
                times = time_calls(call, documents, found)
                p50, p95 = statistics.median(times), pct(times, 0.95)
                print(f"    {name + ', ' + kind:<40} p50 {p50:>8.0f} µs   p95 {p95:>8.0f} µs")
                figures.add(
                    section, f"{name}, {kind}, {size:,} p50 / p95", f"{p50:.0f} / {p95:.0f}", "µs"
                )
        for kind, documents, found in (
            ("hit", data.hits(n_http), True),
            ("miss", data.misses(n_http), False),
        ):
            times = registration_partial(app, documents, found)
            p50, p95 = statistics.median(times), pct(times, 0.95)
            partial_p50[(size, kind)] = p50
            label = f"POST /registro/consulta (htmx), {kind}"
            print(f"    {label:<40} p50 {p50:>8.2f} ms   p95 {p95:>8.2f} ms  ({n_http} requests)")
            figures.add(
                section,
                f"partial /registro/consulta, {kind}, {size:,} p50 / p95",
                f"{p50:.2f} / {p95:.2f}",
                "ms",
            )
        with Statements() as stmts:
            lookup_plans(stmts, backend, size, figures, data.hits(1)[0])
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for kind in ("hit", "miss"):
            ratio = partial_p50[(large, kind)] / partial_p50[(small, kind)]
            figures.add(
                section,
                f"partial p50 at {large:,} over {small:,}, {kind}",
                round(ratio, 2),
                "×",
                FLAT_BUDGET,
            )
            print(f"    partial p50, {kind}: {large:,} over {small:,} = {ratio:.2f}×")


# --- 2. queues with 100 000 rows ---------------------------------------------------------

TEXTS = (
    "No puedo cargar el archivo de la resolución 2463: el portal dice que el formato no es válido.",
    "La autorización del afiliado no aparece en el portal aunque la EPS la aprobó ayer.",
    "Necesitamos crear un operador nuevo para la sede de admisiones.",
    "La cuenta de cobro de enero quedó radicada dos veces; pedimos anular una.",
)
MUNICIPIOS = ("08001", "08758", "13001", "20001", "47001", "23001")


def weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def demo_ids():
    """The demo's rows the copies point to: IPS and operators, motivos and asuntos, members, staff."""
    import models as m

    staff = {a.login: a.id for a in m.Account.select().where(m.Account.kind == m.Account.STAFF)}
    return {
        "ips": [i.id for i in m.Ips.select(m.Ips.id)],
        "operators": {
            o.ips_id: o.account_id
            for o in m.IpsOperador.select(m.IpsOperador.ips, m.IpsOperador.account)
        },
        "asuntos": [
            (a.id, a.motivo_id) for a in m.AsuntoMesa.select(m.AsuntoMesa.id, m.AsuntoMesa.motivo)
        ],
        "horas": {mo.id: mo.horas_objetivo for mo in m.MotivoMesa.select()},
        "members": [e.id for e in m.EpsAfiliado.select(m.EpsAfiliado.id)],
        "eps_accounts": [u.account_id for u in m.EpsUser.select(m.EpsUser.account)],
        "people": list(
            m.Afiliado.select(
                m.Afiliado.tipo_documento,
                m.Afiliado.numero_documento,
                m.Afiliado.primer_nombre,
                m.Afiliado.primer_apellido,
            )
            .where(m.Afiliado.id <= 1000)
            .tuples()
        ),
        "staff": staff,
    }


def casos(rng, ids, n, start_numero, now):
    """Help-desk cases: 93 % closed over three years, the open ones from the last weeks."""
    soporte = ids["staff"]["soporte@gestion.test"]
    for i in range(n):
        estado = weighted(
            rng, (("cerrado", 93), ("espera_ips", 3), ("espera_mesa", 2), ("nuevo", 2))
        )
        back = rng.uniform(0, 1095) if estado == "cerrado" else rng.uniform(0, 30)
        created = (now - timedelta(days=back)).replace(microsecond=0)
        asunto, motivo = rng.choice(ids["asuntos"])
        ips = rng.choice(ids["ips"])
        yield {
            "numero": start_numero + i,
            "ips_id": ips,
            "account_id": ids["operators"].get(ips),
            "motivo_id": motivo,
            "asunto_id": asunto,
            "descripcion": rng.choice(TEXTS),
            "estado": estado,
            "asignado_id": soporte if estado != "nuevo" and rng.random() < 0.7 else None,
            "due_at": stamp(created + timedelta(hours=ids["horas"][motivo] * 1.5)),
            "form_key": f"bench-mesa-{start_numero + i}",
            "created_at": stamp(created),
            "updated_at": stamp(created),
            "closed_at": stamp(created + timedelta(days=2)) if estado == "cerrado" else None,
        }


def solicitudes(rng, ids, n, now):
    """Authorization requests: 3 % pending, the rest decided, over three years."""
    decider = ids["staff"]["autorizaciones@gestion.test"]
    for i in range(n):
        estado = weighted(rng, (("PENDIENTE", 3), ("APROBADA", 80), ("RECHAZADA", 17)))
        back = rng.uniform(0, 7) if estado == "PENDIENTE" else rng.uniform(7, 1095)
        created = (now - timedelta(days=back)).replace(microsecond=0)
        decided = estado != "PENDIENTE"
        yield {
            "numero": f"BN-{i:07d}",
            "afiliado_id": rng.choice(ids["members"]),
            "account_id": rng.choice(ids["eps_accounts"]),
            "municipio": rng.choice(MUNICIPIOS),
            "observacion": "Control con medicina interna; adjunto la orden del médico.",
            "estado": estado,
            "motivo_rechazo": "La orden médica no es legible." if estado == "RECHAZADA" else "",
            "form_key": f"bench-sa-{i}",
            "created_at": stamp(created),
            "due_on": stamp(created.date() + timedelta(days=7)),
            "decided_by_id": decider if decided else None,
            "decided_at": stamp(created + timedelta(days=2)) if decided else None,
            "autorizacion_id": None,
        }


def radicado(i: int, year: int) -> str:
    from core.pqrs import RECEIPT_ALPHABET as abc

    code = ""
    for _ in range(6):
        i, digit = divmod(i, len(abc))
        code = abc[digit] + code
    return f"PQR-{year}-{code}"  # "2222…" codes: never one of the demo's "DEM…"


def pqrs_rows(rng, ids, n, now):
    """PQRSF: 4 % open, 6 % answered, 90 % closed, over three years."""
    staff = ids["staff"]["pqrs@gestion.test"]
    tipos = ("peticion", "queja", "reclamo", "denuncia", "sugerencia", "felicitacion", "consulta")
    for i in range(n):
        estado = weighted(
            rng, (("radicada", 3), ("informacion", 1), ("respondida", 6), ("cerrada", 90))
        )
        back = (
            rng.uniform(0, 20) if estado in ("radicada", "informacion") else rng.uniform(20, 1095)
        )
        created = (now - timedelta(days=back)).replace(microsecond=0)
        tipo_documento, numero, nombre, apellido = rng.choice(ids["people"])
        answered = estado in ("respondida", "cerrada")
        yield {
            "radicado": radicado(i, created.year),
            "tipo": rng.choice(tipos),
            "tipo_documento": tipo_documento,
            "numero_documento": numero,
            "nombre": f"{nombre} {apellido}",
            "email": "",
            "celular": f"3{rng.randrange(10**9):09d}",
            "descripcion": "Me cobraron una cuota moderadora dos veces en la misma cita.",
            "account_id": None,
            "cuenta_bloqueada_id": None,
            "estado": estado,
            "term_days": 15,
            "due_on": stamp(created.date() + timedelta(days=21)),
            "extended_days": 0,
            "extension_reason": "",
            "respuesta": "Revisamos su caso y devolvimos el segundo cobro." if answered else "",
            "answered_at": stamp(created + timedelta(days=5)) if answered else None,
            "answered_by_id": staff if answered else None,
            "closed_at": stamp(created + timedelta(days=8)) if estado == "cerrada" else None,
            "form_key": f"bench-pqrs-{i}",
            "created_at": stamp(created),
        }


def audit_rows(rng, ids, n, now):
    """Audit events, one every five minutes back from now, by the demo's six staff members."""
    from core.audit import Action

    actors = sorted(ids["staff"].items())
    actions = [a.value for a in Action]
    for i in range(n):
        login, actor = actors[i % len(actors)]
        yield {
            "at": stamp(now - timedelta(seconds=300 * (n - i) + rng.randrange(300))),
            "actor_id": actor,
            "actor_label": login,
            "action": rng.choice(actions),
            "target_type": rng.choice(("usuario", "solicitud", "staff", "caso_mesa", "pqrs")),
            "target_id": rng.randrange(1, 20_000),
            "before": '{"status":"bloqueado"}',
            "after": '{"status":"activo"}',
            "ip": f"203.0.113.{i % 250}",
        }


def fill_queues(rows: int, figures: Figures, section: str) -> None:
    from peewee import fn

    import models as m
    from core import clock

    rng = random.Random(f"queues-{section}")
    now = clock.utcnow()
    with m.db.connection_context():
        ids = demo_ids()
        have = {
            model: model.select().count()
            for model in (m.CasoMesa, m.SolicitudAutorizacion, m.Pqrs, m.AuditEvent)
        }
        first = (m.CasoMesa.select(fn.MAX(m.CasoMesa.numero)).scalar() or 0) + 1
    fills = {
        m.CasoMesa: casos(rng, ids, rows - have[m.CasoMesa], first, now),
        m.SolicitudAutorizacion: solicitudes(rng, ids, rows - have[m.SolicitudAutorizacion], now),
        m.Pqrs: pqrs_rows(rng, ids, rows - have[m.Pqrs], now),
        m.AuditEvent: audit_rows(rng, ids, rows - have[m.AuditEvent], now),
    }
    for model, generated in fills.items():
        seconds = bulk(model, generated)
        figures.add(
            section, f"fill {model._meta.table_name} to {rows:,} rows", round(seconds, 1), "s"
        )
    with m.db.connection_context():  # the next case number, past the copies
        m.Secuencia.update(valor=first + rows).where(m.Secuencia.nombre == "caso_mesa").execute()


def signed_in(app, login: str):
    """A test client signed in as the demo staff member login, second factor passed.

    As tests/conftest.py's auth does: a server-side session
    opened by core.auth, so every request pays the real session check.
    """
    import models
    from blueprints.auth import idle_limit
    from core import auth as core_auth

    with app.test_request_context(), models.db.connection_context():
        account = models.Account.by_login(models.Account.STAFF, login)
        sid = core_auth.start_session(
            account, "bench", idle=idle_limit(account), second_factor=True
        )
    client = app.test_client()
    with client.session_transaction() as session:
        session.update(sid=sid, _user_id=account.session_token, _fresh=True)
    return client


def deep_cursor(query, order, ascending: bool, fraction: float) -> tuple[str, int]:
    """Return the cursor after the row fraction of the way down the list, and that depth."""
    import models
    from blueprints import queue

    sort, ident = order
    by = (sort.asc(), ident.asc()) if ascending else (sort.desc(), ident.desc())
    with models.db.connection_context():
        depth = int(query.count() * fraction)
        row = query.order_by(*by).offset(depth).limit(1).dicts()[0]  # .get() resets the offset
    return queue.encode_cursor(order, row), depth


def queue_targets():
    """Each queue: the staff member, its table, the row mark, and (label, path, htmx) targets."""
    import models as m
    from blueprints.gestion import auditoria, autorizaciones_service, mesa_service, pqrs_service

    with m.db.connection_context():
        member = m.EpsAfiliado.get(
            (m.EpsAfiliado.tipo_documento == "CC")
            & (m.EpsAfiliado.numero_documento == "1000000120")
        )
    mesa, _ = deep_cursor(mesa_service.queue_query("cerrado"), mesa_service.QUEUE_ORDER, False, 0.9)
    sa, _ = deep_cursor(
        autorizaciones_service.queue_query("APROBADA"),
        autorizaciones_service.QUEUE_ORDER,
        False,
        0.9,
    )
    pq, _ = deep_cursor(pqrs_service.queue_query("cerrada"), pqrs_service.QUEUE_ORDER, False, 0.9)
    with m.db.connection_context():  # a closed one's code, as a citizen reads it out by phone
        closed = m.Pqrs.select(m.Pqrs.radicado).where(m.Pqrs.estado == "cerrada")
        code = closed.order_by(m.Pqrs.id.desc()).get().radicado.rsplit("-", 1)[1]
    au, _ = deep_cursor(auditoria.search_query(), auditoria.ORDER, False, 0.9)
    return {
        "help desk /gestion/mesa": (
            "soporte@gestion.test",
            m.CasoMesa,
            b'<span class="sr-only"> el caso ',
            [
                ("page 1 (por responder)", "/gestion/mesa", False),
                ("filtered ?estado=cerrado", "/gestion/mesa?estado=cerrado", False),
                (
                    "deep Ver más (cerrado, 90 %)",
                    f"/gestion/mesa?estado=cerrado&despues={mesa}",
                    True,
                ),
            ],
        ),
        "authorizations /gestion/autorizaciones": (
            "autorizaciones@gestion.test",
            m.SolicitudAutorizacion,
            b'<span class="sr-only"> la solicitud ',
            [
                ("page 1 (pendientes)", "/gestion/autorizaciones", False),
                (
                    "filtered ?estado=APROBADA&documento=",
                    f"/gestion/autorizaciones?estado=APROBADA&documento={member.numero_documento}",
                    False,
                ),
                (
                    "deep Ver más (aprobadas, 90 %)",
                    f"/gestion/autorizaciones?estado=APROBADA&despues={sa}",
                    True,
                ),
            ],
        ),
        "PQRSF /gestion/pqrs": (
            "pqrs@gestion.test",
            m.Pqrs,
            b'<span class="sr-only"> el PQRSF ',
            [
                ("page 1 (abiertas)", "/gestion/pqrs", False),
                (
                    "filtered ?estado=cerrada&tipo=queja",
                    "/gestion/pqrs?estado=cerrada&tipo=queja",
                    False,
                ),
                (
                    "filtered ?estado=cerrada&buscar=<code>",
                    f"/gestion/pqrs?estado=cerrada&buscar={code}",
                    False,
                ),
                (
                    "deep Ver más (cerradas, 90 %)",
                    f"/gestion/pqrs?estado=cerrada&despues={pq}",
                    True,
                ),
            ],
        ),
        "audit /gestion/auditoria": (
            "admin@gestion.test",
            m.AuditEvent,
            b'<td class="diff">',
            [
                ("page 1", "/gestion/auditoria", False),
                (
                    "filtered funcionario + accion",
                    "/gestion/auditoria?funcionario=admin@gestion.test&accion=usuario.desbloquear",
                    False,
                ),
                ("deep Ver más (90 %)", f"/gestion/auditoria?despues={au}", True),
            ],
        ),
    }


def measure(client, path: str, htmx: bool, mark: bytes, n: int, stmts: Statements) -> dict:
    """GET path n times after WARMUP; every answer must be 200 with rows. ms and statements."""
    headers = {**ACCEPT, **(HX if htmx else {})}
    times, statements = [], []
    for i in range(WARMUP + n):
        before = stmts.n
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = time.perf_counter() - start
        body = decode(response.headers.get("Content-Encoding"), response.data)
        if response.status_code != 200 or mark not in body:
            sys.exit(f"GET {path} gave {response.status_code}: {body[:300]!r}")
        if i >= WARMUP:
            times.append(elapsed * 1000)
            statements.append(stmts.n - before)
    return {
        "p50": statistics.median(times),
        "p95": pct(times, 0.95),
        "sql": statistics.mean(statements),
        "rows": body.count(mark),
        "size": len(body),
    }


def queues(app, backend: str, rows: int, n: int, figures: Figures) -> None:
    import models

    section = f"scale: queues at {rows:,} rows, {backend}"
    print(f"\n  {backend}: queues ({rows:,} rows each; {n} requests per target after {WARMUP})")
    fill_queues(rows, figures, section)
    targets = queue_targets()
    with Statements() as stmts:
        for queue_name, (login, model, mark, views) in targets.items():
            client = signed_in(app, login)
            table = model._meta.table_name
            print(f"\n  {queue_name} (as {login})")
            print(
                f"    {'target':<40} {'p50 ms':>8} {'p95 ms':>8} {'SQL/req':>8} {'rows':>5} {'HTML B':>8}"
            )
            plans = []
            for label, path, htmx in views:
                r = measure(client, path, htmx, mark, n, stmts)
                print(
                    f"    {label:<40} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['sql']:>8.1f} "
                    f"{r['rows']:>5} {r['size']:>8}"
                )
                name = f"{queue_name.split()[0]} {label}"
                figures.add(section, f"{name} p50 / p95", f"{r['p50']:.1f} / {r['p95']:.1f}", "ms")
                figures.add(section, f"{name} SQL statements", round(r["sql"], 1))
                ran = stmts.capture(
                    lambda c=client, p=path, h=htmx: c.get(p, headers=HX if h else {})
                )
                plans.append((label, name, ran))
            print(f"    plans of the statements that read {table} (each plan once):")
            seen = set()
            with models.db.connection_context():
                for label, name, ran in plans:
                    verdicts = []  # (what, reads it well, how) of each statement of this target
                    for sql, params in ran:
                        if not sql.lstrip("(").startswith("SELECT") or f'"{table}"' not in sql:
                            continue
                        plan = explain(sql, params)
                        what = statement_kind(sql)
                        uses_index, verdict = judge(plan, sql, table)
                        if uses_index is not None:
                            verdicts.append((what, uses_index, verdict))
                        if (what, tuple(plan)) not in seen:
                            seen.add((what, tuple(plan)))
                            show_plan(f"{label}, {what}", sql, params, plan, verdict)
                    # One figure a target: the page's plan, or the first statement that reads it all.
                    bad = [v for v in verdicts if not v[1]]
                    shown = bad[0] if bad else next((v for v in verdicts if v[0] == "page"), None)
                    if shown:
                        value = shown[2] if shown[0] == "page" else f"{shown[0]}: {shown[2]}"
                        figures.add(section, f"{name} plans", value, ok=not bad)


def statement_kind(sql: str) -> str:
    if "GROUP BY" in sql:
        return "counts by state"
    if "COUNT(1)" in sql:
        return "capped count"
    if "ORDER BY" in sql and "LIMIT" in sql:
        return "page"
    return "query"


# --- the run -----------------------------------------------------------------------------


def postgres_url(args) -> str:
    """The PostgreSQL to bench: --database-url, or the default one if it answers."""
    if args.sqlite_only:
        return ""
    url = args.database_url or PG
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # any reason it does not answer
        if args.database_url:
            sys.exit(f"PostgreSQL at {url} does not answer: {exc}")
        print(f"PostgreSQL at {url} does not answer ({type(exc).__name__}): SQLite only.")
        return ""
    return url


def in_process(portal: Portal):
    """The portal app in this process, on the portal's database, rate limits off."""
    from app import create_app

    env = portal.env
    return create_app(
        {
            "SECRET_KEY": env["SECRET_KEY"],
            "DATABASE_URL": env["DATABASE_URL"],
            "REDIS_URL": "",
            "RATELIMIT_ENABLED": False,  # the look-up allows 10 a minute per IP
            "BASE_URL": env["BASE_URL"],
            "DEV_MAILBOX": True,
            "SMS_BACKEND": "file",
            "SMS_FILE": env["SMS_FILE"],
            "UPLOAD_DIR": env["UPLOAD_DIR"],
            "CAPTCHA": "off",
        }
    )


def run_backend(name: str, url: str, args, figures: Figures) -> None:
    import models

    start = time.perf_counter()
    with Portal(url) as portal:
        where = f"schema {portal.schema}, dropped at the end" if portal.schema else "temporary file"
        print(f"\n{name} ({where}): init-db + demo-data in {time.perf_counter() - start:.0f} s")
        app = in_process(portal)
        try:
            # No app context held around the requests: each must get its own (its own g).
            if args.sizes:
                lookups(app, name, args.sizes, args.lookups, args.http, figures)
            if args.queue_rows:
                queues(app, name, args.queue_rows, args.requests, figures)
        finally:
            if hasattr(models.db.obj, "close_all"):
                models.db.obj.close_all()  # the pool's connections, before the schema is dropped
            elif not models.db.is_closed():
                models.db.close()
    took = time.perf_counter() - start
    figures.add(f"scale: look-ups, {name}", "whole run on this database", round(took), "s")
    print(f"\n  {name}: {took:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,1000000", help="affiliate counts, comma-separated"
    )
    parser.add_argument("--lookups", type=int, default=3000, help="documents timed per case")
    parser.add_argument("--http", type=int, default=300, help="partial requests per case")
    parser.add_argument("--queue-rows", type=int, default=100_000, help="rows per queue (0: skip)")
    parser.add_argument("--requests", type=int, default=30, help="requests per queue target")
    parser.add_argument(
        "--database-url", default="", help=f"PostgreSQL too (default: {PG} if it answers)"
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--json", help="write the figures here (bench/run.py)")
    args = parser.parse_args()
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if any(s < 1_000 for s in args.sizes) or args.lookups < 10 or args.http < 10:
        sys.exit("--sizes from 1 000 up; --lookups and --http at least 10")
    # A SIGTERM (a CI timeout) ends the run like Ctrl-C: the with blocks drop what they made.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("portal").setLevel(logging.ERROR)  # "CAPTCHA=off" at every create_app

    figures = Figures(args.json)
    began = time.perf_counter()
    print(
        f"Portal Hanna scale bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  Python "
        f"{sys.version.split()[0]}  ·  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print("In-process (Flask test client, one thread), rate limits off, the demo data underneath.")
    backends = [("SQLite", "")]
    postgres = postgres_url(args)
    if postgres:
        backends.append(("PostgreSQL", postgres))
    try:
        for name, url in backends:
            run_backend(name, url, args, figures)
    finally:
        figures.write()
    print(f"\nWhole run: {time.perf_counter() - began:.0f} s")
    for row in figures.failed:
        print(f"FAIL {row['section']}: {row['figure']} = {row['value']}")
    return 1 if figures.failed else 0


if __name__ == "__main__":
    sys.exit(main())
