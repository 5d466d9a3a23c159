"""Bench "Generar Reporte de Convenio": the CSV and XLSX of 100 000 uses, time and peak memory.

Run from the project root:  .venv/bin/python bench/convenios_report.py [--help]

Fills a scratch database (a temporary SQLite file; also a throwaway PostgreSQL
schema when DATABASE_URL or --database-url says postgresql://…) with N look-ups
of one sede, each with its reported use, then downloads the report through the
Flask test client, each download in a fresh Python process so that its memory
is its own: seconds, time to the first byte, and peak memory measured twice
(the growth of the process's max RSS, and tracemalloc's peak in a second run,
since tracing slows Python down). For contrast, the same CSV joined in memory
instead of streamed. Every download is checked (row count) before its figures
are printed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOGIN = "mostrador.bench@example.com"
CHUNK = 1_000  # rows per INSERT: under SQLite's variable limit, few round trips
NAMES = ("MARÍA JOSÉ PÉREZ GÓMEZ", "JUAN CARLOS DE LA HOZ", "ANA LUCÍA OÑATE", "LUIS ÁNGEL MEZA")
TARGETS = {
    "csv": "CSV, streamed",
    "xlsx": "XLSX, temporary file",
    "csv-joined": "CSV joined in memory (contrast)",
}


def make_app(database_url: str, tmp: Path):
    """Return the portal on database_url, as the bench runs it (no rate limits, development)."""
    from app import create_app

    return create_app(
        {
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": False,
            "BASE_URL": "http://127.0.0.1:5000",
            "DEV_MAILBOX": True,
            "SMS_BACKEND": "file",
            "SMS_FILE": str(tmp / "sms.jsonl"),
            "UPLOAD_DIR": str(tmp / "uploads"),
            "CAPTCHA": "off",
        }
    )


def fill(app, rows: int) -> dict:
    """Create the schema, a desk user granted one sede, and rows look-ups each with its use."""
    import models
    from blueprints.convenios.reporte import months_before
    from core import clock, convenios, passwords
    from core import db as dbmod

    hasta = clock.today()
    desde = months_before(hasta, 12) + timedelta(days=1)
    start, end = convenios.utc_bounds(desde, hasta)
    step = (end - start) / rows
    c, u = models.ConsultaConvenio, models.UsoConvenio
    with app.app_context(), models.db.connection_context():
        dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
        with models.db.atomic():
            entidad = models.Entidad.create(nit="900123456", nombre="Gimnasio Bench S.A.S.")
            sede = models.Sede.create(entidad=entidad, codigo="S1", nombre="Sede Norte")
            account = models.HannaUser.create_account(
                email=LOGIN,
                tipo_documento="CC",
                numero_documento="80000001",
                primer_nombre="MOSTRADOR",
                primer_apellido="BENCH",
                celular="3001234567",
                fecha_nacimiento=date(1990, 5, 17),
                password_hash=passwords.hash_password(secrets.token_hex(16)),
                status=models.Account.ACTIVE,
            )
            acceso = models.Acceso.create(account=account, aplicacion="convenios", entidad=entidad)
            models.AccesoSede.create(acceso=acceso, sede=sede)
            fields = [
                c.account, c.entidad, c.sede, c.numero_documento, c.resultado, c.nombre,
                c.estado_afiliado, c.tarifa, c.clave, c.created_at,
            ]  # fmt: skip
            for first in range(0, rows, CHUNK):
                c.insert_many(
                    [
                        (
                            account.id,
                            entidad.id,
                            sede.id,
                            str(10_000_000 + i % 20_000),
                            c.ACTIVO,
                            NAMES[i % len(NAMES)],
                            "ACTIVO",
                            "ABC"[i % 3],
                            f"B{i:07d}",
                            start + step * i,
                        )  # fmt: skip
                        for i in range(first, min(first + CHUNK, rows))
                    ],
                    fields=fields,
                ).execute()
            # One use per look-up, its receipt number the look-up's key (unique, 8 characters).
            u.insert_from(
                c.select(c.id, c.clave, c.account, c.entidad, c.sede, c.created_at),
                fields=[u.consulta, u.numero, u.account, u.entidad, u.sede, u.created_at],
            ).execute()
        if dbmod.is_sqlite(models.db):
            models.db.execute_sql("ANALYZE")
        else:
            for model in (c, u):
                models.db.execute_sql(f'ANALYZE "{model._meta.table_name}"')
    return {"sede": sede.id, "desde": desde.isoformat(), "hasta": hasta.isoformat()}


def signed_in_client(app):
    """A test client signed in as the desk user, as the login would leave it."""
    import models
    from blueprints.auth import idle_limit
    from core import auth as core_auth

    with app.app_context(), models.db.connection_context():
        account = models.Account.get(models.Account.login == LOGIN)
    client = app.test_client()
    with app.test_request_context(), models.db.connection_context():
        sid = core_auth.start_session(account, "bench", idle=idle_limit(account))
    with client.session_transaction() as session:
        session.update(sid=sid, _user_id=account.session_token, _fresh=True)
    return client


def max_rss_kib() -> int:
    """This process's peak resident memory since it started, in KiB (ru_maxrss, Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int | None:
    """Restart the kernel's RSS high-water mark (Linux clear_refs); return the RSS now, KiB.

    ru_maxrss cannot go down: after the imports and create_app it may already
    be above what a download needs. With the mark reset, VmHWM afterwards is
    the download's own peak. None where /proc does not allow it.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def child(args) -> int:
    """Download one format once in this fresh process and print its figures as JSON."""
    import tracemalloc

    import models
    from core import convenios, export

    tmp = Path(args.tmp)
    app = make_app(args.database_url, tmp)
    client = signed_in_client(app)
    filters = json.loads(args.filters)
    rss_before = reset_peak_rss()
    if args.trace:
        tracemalloc.start()
    start = time.perf_counter()
    first_byte = None
    size = 0
    with open(args.out, "wb") as out:
        if args.target == "csv-joined":
            with app.app_context(), models.db.connection_context():
                rows = convenios.report_rows(
                    [filters["sede"]],
                    date.fromisoformat(filters["desde"]),
                    date.fromisoformat(filters["hasta"]),
                )
                body = b"".join(
                    export.csv_chunks(export.CONVENIO_COLUMNS, map(export.convenio_cells, rows))
                )
            first_byte = time.perf_counter() - start
            out.write(body)
            size = len(body)
            del body
        else:
            response = client.get(f"/convenios/reporte.{args.target}", query_string=filters)
            if response.status_code != 200:
                print(json.dumps({"error": f"HTTP {response.status_code}"}))
                return 1
            for piece in response.response:
                if first_byte is None:
                    first_byte = time.perf_counter() - start
                out.write(piece)
                size += len(piece)
            response.close()
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if args.trace else None
    print(
        json.dumps(
            {
                "seconds": seconds,
                "first_byte": first_byte,
                "bytes": size,
                "rss_before_kib": rss_before,
                "rss_peak_kib": _status_kib("VmHWM") if rss_before is not None else None,
                "max_rss_kib": max_rss_kib(),
                "traced_peak": traced,
            }
        )
    )
    return 0


def count_rows(path: Path, target: str) -> int:
    """Count the data rows of a downloaded report (header left out)."""
    if target.startswith("csv"):
        with open(path, "rb") as f:
            return sum(chunk.count(b"\r\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    n = sum(1 for _ in workbook.active.iter_rows(min_row=2, values_only=True))
    workbook.close()
    return n


def run_child(target: str, trace: bool, database_url: str, tmp: Path, filters: dict) -> dict:
    out = tmp / f"report-{target}-{int(trace)}.{target.split('-')[0]}"
    cmd = [
        sys.executable, __file__, "--child", target, "--database-url", database_url,
        "--tmp", str(tmp), "--out", str(out), "--filters", json.dumps(filters),
    ] + (["--trace"] if trace else [])  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{target} download failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows"] = count_rows(out, target)
    out.unlink()
    return figures


FIGURES = None  # bench.common.Figures when --json is given


def bench(label: str, database_url: str, rows: int, tmp: Path) -> None:
    app = make_app(database_url, tmp)
    start = time.perf_counter()
    filters = fill(app, rows)
    filled = time.perf_counter() - start
    print(f"\n{label}: {rows:,} look-ups with {rows:,} uses, one sede, filled in {filled:.1f} s")
    print(
        f"  {'download':<32} {'rows':>8} {'MB':>6} {'s':>6} {'1st byte s':>10} {'rows/s':>8} "
        f"{'RSS MB':>7} {'peak +MB':>8} {'maxrss MB':>9} {'traced MB':>9}"
    )
    for target, name in TARGETS.items():
        timed = run_child(target, False, database_url, tmp, filters)
        traced = run_child(target, True, database_url, tmp, filters)
        if timed["rows"] != rows or traced["rows"] != rows:
            sys.exit(f"{name}: {timed['rows']:,} rows instead of {rows:,}")
        if timed["rss_before_kib"] is None:
            before = grown = "n/a"
        else:
            before = f"{timed['rss_before_kib'] / 1024:.0f}"
            grown = f"{(timed['rss_peak_kib'] - timed['rss_before_kib']) / 1024:.1f}"
        print(
            f"  {name:<32} {timed['rows']:>8,} {timed['bytes'] / 1e6:>6.1f} "
            f"{timed['seconds']:>6.2f} {timed['first_byte']:>10.2f} "
            f"{timed['rows'] / timed['seconds']:>8,.0f} {before:>7} {grown:>8} "
            f"{timed['max_rss_kib'] / 1024:>9.0f} {traced['traced_peak'] / 2**20:>9.1f}"
        )
        if FIGURES is not None:
            section = f"usage report, {rows:,} rows ({label.split(' ')[0]})"
            FIGURES.add(section, f"{name}: time", round(timed["seconds"], 2), "s")
            FIGURES.add(section, f"{name}: first byte", round(timed["first_byte"], 2), "s")
            FIGURES.add(section, f"{name}: peak memory above start", grown, "MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="look-ups (each with a use)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="postgresql://… to bench PostgreSQL too, in a throwaway schema (default: "
        "DATABASE_URL when it is one)",
    )
    parser.add_argument("--json", help="write the figures here for bench/run.py")
    parser.add_argument("--child", choices=sorted(TARGETS), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--filters", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.target = args.child
        return child(args)
    args.rows = max(1_000, min(args.rows, 1_000_000))
    global FIGURES
    if args.json:
        from bench.common import Figures

        FIGURES = Figures(args.json)

    logging.getLogger("portal").setLevel(logging.ERROR)  # "CAPTCHA=off" at every create_app
    tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-reporte-"))
    schema = None
    postgres = args.database_url if args.database_url.startswith("postgres") else ""
    try:
        print(
            f"Portal Hanna convenio report bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  "
            f"Python {sys.version.split()[0]}  ·  Flask test client, each download in a "
            "fresh process"
        )
        bench("SQLite (temporary file, WAL)", f"sqlite:///{tmp / 'bench.sqlite3'}", args.rows, tmp)
        if postgres:
            import psycopg

            schema = f"bench_{secrets.token_hex(4)}"
            with psycopg.connect(postgres, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            sep = "&" if "?" in postgres else "?"
            url = f"{postgres}{sep}options=-csearch_path%3D{schema}"
            bench(f"PostgreSQL (schema {schema}, dropped at the end)", url, args.rows, tmp)
        print(
            "\n  RSS MB: the process's resident memory once the app is built, before the download;"
            "\n  peak +MB: how far the download took it above that (kernel high-water mark, reset"
            "\n  first); maxrss MB: ru_maxrss, the process's peak over its whole life (startup"
            "\n  included); traced MB: tracemalloc's peak of Python allocations, in a second run."
        )
        if FIGURES is not None:
            FIGURES.write()
        return 0
    finally:
        if schema:
            import psycopg

            with psycopg.connect(postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
