"""Bench the Convenios look-up partial (H6) against a bare Flask endpoint in one run.

Run from the project root:  .venv/bin/python bench/convenios_lookup.py [--help]

Like bench/lookup.py (whose server and load helpers it uses): two gunicorn
servers on loopback with the same worker count, the portal with the demo data
and the bare app, each loaded for a fixed time by N connections; it prints
requests/s, p50/p95/p99 and the ratio portal/bare.

Each portal connection signs in as the demo desk (convenio@hanna.test), picks
the first sede, and then POSTs "Consultar Trabajador" for an ACTIVO affiliate
with HX-Request: true, as the browser does on Enter. Every look-up is the real
one: quotas spent (in the database, or in Redis with --redis-url), the look-up
logged, the result rendered. The quotas are raised for the run (the defaults
would stop a load test after 10 look-ups a minute); the run says so.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lookup import (  # noqa: E402
    ACCEPT,
    BARE_MARK,
    Load,
    free_port,
    start_server,
    stop_server,
    wait_until_up,
)

DESK = ("convenio@hanna.test", "Hanna2026Demo")
DOCUMENT = "1000000001"  # ANA MARÍA PÉREZ GÓMEZ, ACTIVO (core/demo.py)
MARKS = (b"INFORMACI", "PÉREZ".encode(), b"Reportar Uso")
HUGE = "1000000000"


def request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body or None, headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def _cookie(response, current: str) -> str:
    """Return the Cookie header after response's Set-Cookie lines (a tiny cookie jar)."""
    jar = dict(part.split("=", 1) for part in current.split("; ") if "=" in part)
    for line in response.msg.get_all("Set-Cookie") or ():
        name, _, value = line.split(";", 1)[0].partition("=")
        jar[name.strip()] = value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def desk_session(port: int) -> tuple[str, str]:
    """Sign in as the demo desk and choose its first sede; return the cookie and a CSRF token."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = request(port, "GET", "/")
    cookie = _cookie(r, "")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', r.body).group(1).decode()
    body = urlencode({"email": DESK[0], "password": DESK[1], "csrf_token": token})
    r = request(port, "POST", "/", body, {**form, "Cookie": cookie})
    if r.status != 303:
        sys.exit(f"signing in as {DESK[0]} gave {r.status}")
    cookie = _cookie(r, cookie)
    r = request(port, "GET", "/convenios/sede", headers={"Cookie": cookie})
    cookie = _cookie(r, cookie)
    sede = re.search(rb'name="sede"[^>]*value="(\d+)"', r.body)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', r.body)
    if r.status != 200 or not sede or not token:
        sys.exit(f"GET /convenios/sede gave {r.status}: is the demo desk granted a sede?")
    body = urlencode({"sede": sede.group(1).decode(), "csrf_token": token.group(1).decode()})
    r = request(port, "POST", "/convenios/sede", body, {**form, "Cookie": cookie})
    if r.status != 303:
        sys.exit(f"choosing the sede gave {r.status}: {r.body[:300]!r}")
    cookie = _cookie(r, cookie)
    r = request(port, "GET", "/convenios/", headers={"Cookie": cookie})
    cookie = _cookie(r, cookie)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', r.body).group(1).decode()
    return cookie, token


def percentile(latencies: list[float], p: float) -> float:
    lat = sorted(latencies) or [0.0]
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first")
    parser.add_argument("--database-url", default="", help="postgresql://... (a throwaway schema)")
    parser.add_argument("--redis-url", default="", help="count the quotas in Redis (redis://...)")
    args = parser.parse_args()
    args.duration, args.warmup = min(args.duration, 120), min(args.warmup, 30)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-convenios-"))
    procs: list[subprocess.Popen] = []
    stop = threading.Event()
    schema = None
    try:
        portal_port, bare_port = free_port(), free_port()
        if args.database_url:
            import psycopg

            schema = f"bench_{secrets.token_hex(4)}"
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            sep = "&" if "?" in args.database_url else "?"
            database_url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
            backend = f"PostgreSQL (schema {schema}, dropped at the end)"
        else:
            database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
            backend = "SQLite (temporary file, WAL)"
        env = dict(
            os.environ,
            SECRET_KEY=secrets.token_hex(32),
            DEV_MAILBOX="true",
            SMS_BACKEND="file",
            DATABASE_URL=database_url,
            REDIS_URL=args.redis_url,
            BASE_URL=f"http://127.0.0.1:{portal_port}",
            CAPTCHA="off",
            UPLOAD_DIR=str(tmp / "uploads"),
            SMS_FILE=str(tmp / "sms.jsonl"),
            CONVENIOS_LOOKUPS_USER_MINUTE=HUGE,
            CONVENIOS_LOOKUPS_USER_DAY=HUGE,
            CONVENIOS_LOOKUPS_ENTITY_MINUTE=HUGE,
            CONVENIOS_LOOKUPS_ENTITY_DAY=HUGE,
        )
        for command in ("init-db", "demo-data"):
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "app", command],
                check=False,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                sys.exit(f"flask {command} failed:\n{done.stdout}{done.stderr}")
        portal_log, bare_log = tmp / "portal.log", tmp / "bare.log"
        procs.append(
            start_server("bench.portal_app:create()", portal_port, args.workers, env, portal_log)
        )
        procs.append(start_server("bench.bare:app", bare_port, args.workers, env, bare_log))
        wait_until_up(portal_port, "/salud", procs[0], portal_log)
        wait_until_up(bare_port, "/", procs[1], bare_log)

        sessions = [desk_session(portal_port) for _ in range(args.connections)]

        def portal_request(i):
            cookie, token = sessions[i]
            body = urlencode({"documento": DOCUMENT, "csrf_token": token})
            return body, {
                "Content-Type": "application/x-www-form-urlencoded",
                "HX-Request": "true",
                "Cookie": cookie,
                **ACCEPT,
            }

        def bare_request(_i):
            return portal_request(0)

        def is_result(data: bytes) -> bool:
            return all(mark in data for mark in MARKS)

        print(
            f"Convenios look-up bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  "
            f"Python {sys.version.split()[0]}"
        )
        print(
            f"gunicorn -w {args.workers} (sync) for both servers · {args.connections} "
            f"connections · {args.warmup:g} s warm-up + {args.duration:g} s measured each"
        )
        print(
            f"database: {backend} · quotas counted in {'Redis' if args.redis_url else 'the database'}"
        )
        print("portal: quotas raised to 10^9 for the run; CSRF ON; every look-up logged")
        print(
            f"look-up: POST /convenios/consultar documento={DOCUMENT} HX-Request: true -> #consulta\n"
        )
        targets = {
            "convenios look-up partial": (
                portal_port,
                "/convenios/consultar",
                portal_request,
                is_result,
            ),
            "bare Flask fragment": (bare_port, "/", bare_request, lambda d: BARE_MARK in d),
        }
        timing = (args.connections, args.warmup, args.duration, stop)
        loads = {name: Load(*target, *timing) for name, target in targets.items()}
        results = {name: load.run() for name, load in loads.items()}
        print(
            f"  {'target':<28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'p99 ms':>8} {'errors':>7} {'body B':>7}"
        )
        for name, r in results.items():
            p99 = percentile(loads[name].latencies, 0.99)
            print(
                f"  {name:<28} {r['n']:>9} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                f"{p99:>8.1f} {len(r['bad']):>7} {r['size']:>7}"
            )
        p, b = results["convenios look-up partial"], results["bare Flask fragment"]
        if p["n"] and b["n"]:
            print(f"  {'ratio portal/bare (req/s)':<28} {'':>9} {p['rps'] / b['rps']:>8.2f}")
        failed = {name: r["bad"] for name, r in results.items() if r["bad"] or not r["n"]}
        for name, bad in failed.items():
            print(f"\nFAIL {name}: {len(bad)} bad responses, e.g. {bad[:3]}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        stop.set()
        for proc in procs:
            stop_server(proc)
        if schema:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
