"""Bench the affiliate look-up against a bare Flask endpoint, and weigh the pages.

Run from the project root:  .venv/bin/python bench/lookup.py [--help]

Starts two gunicorn servers on loopback (the portal and bench/bare.py) with the
same worker count, loads each for a fixed time with N concurrent connections,
prints requests/s and p50/p95 latency with the ratio portal/bare, then the raw
and on-the-wire (br/gzip) sizes of the main pages and their static files, as the
server really sends them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ("CC", "1000000001")
NAME_MARKS = (b'value="ANA"', 'value="PÉREZ"'.encode())  # ANA MARÍA PÉREZ GÓMEZ
BARE_MARK = b'id="datos-afiliado"'
ACCEPT = {"Accept-Encoding": "br, gzip"}  # what every browser sends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def wait_until_up(port: int, path: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn stopped (exit {proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if get(port, path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"gunicorn on port {port} did not answer in 30 s:\n{log.read_text()[-2000:]}")


def start_server(target: str, port: int, workers: int, env: dict, log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        "--error-logfile",
        str(log),
        target,
    ]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def portal_session(port: int) -> tuple[str, str]:
    """Open /registro like a browser: return the session cookie and its CSRF token."""
    r = get(port, "/registro")
    cookie = r.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', r.body)
    if r.status != 200 or not cookie or not token:
        sys.exit(f"GET /registro gave {r.status}, cookie {cookie!r}: no CSRF token to use")
    return cookie, token.group(1).decode()


class Load:
    """N threads, one connection each, POSTing until a fixed deadline."""

    def __init__(self, port, path, make_request, check, conns, warmup, duration, stop):
        self.port = port
        self.path = path
        self.make_request = make_request
        self.check = check
        self.conns = conns
        self.warmup = warmup
        self.duration = duration
        self.stop = stop
        self.latencies: list[float] = []
        self.bad: list[str] = []
        self.size = 0
        self.lock = threading.Lock()

    def worker(self, index: int) -> None:
        body, headers = self.make_request(index)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        mine, bad = [], []
        while not self.stop.is_set():
            start = time.perf_counter()
            if start >= self.end:
                break
            try:
                conn.request("POST", self.path, body, headers)
                response = conn.getresponse()
                data = response.read()
                # gunicorn's sync workers close after each reply: reconnect next time
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                bad.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - start
            plain = decode(response.getheader("Content-Encoding"), data)
            if response.status != 200 or not self.check(plain):
                bad.append(f"{response.status}: {data[:120]!r}")
            elif start >= self.measure_from:
                mine.append(elapsed)
                self.size = len(data)
        conn.close()
        with self.lock:
            self.latencies += mine
            self.bad += bad

    def run(self) -> dict:
        self.measure_from = time.perf_counter() + self.warmup
        self.end = self.measure_from + self.duration
        threads = [
            threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.conns)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.warmup + self.duration + 30)
        lat = sorted(self.latencies) or [0.0]

        def ms(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        return {
            "n": len(self.latencies),
            "rps": len(self.latencies) / self.duration,
            "p50": ms(0.50),
            "p95": ms(0.95),
            "bad": self.bad,
            "size": self.size,
        }


def size(n: int) -> str:
    return f"{n:>8,} B"


def decode(encoding: str | None, data: bytes) -> bytes:
    """Return data as the browser sees it after undoing Content-Encoding."""
    if encoding == "br":
        import brotli

        return brotli.decompress(data)
    if encoding == "gzip":
        return gzip.decompress(data)
    return data


def decoded(response: http.client.HTTPResponse) -> bytes:
    return decode(response.getheader("Content-Encoding"), response.body)


def page_weight(port: int) -> None:
    print(
        "\nPage weight (portal; what the server sends to a browser with Accept-Encoding: br, gzip)"
    )
    print(f"  {'what':<40} {'status':>6} {'raw':>10} {'on the wire':>12}  encoding")
    registro = b""
    pages = ("/", "/registro", "/restablecer", "/descubre", "/qr", "/no-existe-bench")
    for path in pages:
        r = get(port, path, ACCEPT)
        body = decoded(r)
        label = path + ("  (404 page)" if path == "/no-existe-bench" else "")
        encoding = r.getheader("Content-Encoding") or "none"
        print(f"  {label:<40} {r.status:>6} {size(len(body))} {size(len(r.body)):>12}  {encoding}")
        if path == "/registro":
            registro, registro_wire = body, len(r.body)
    assets = dict.fromkeys(re.findall(rb'(?:href|src)="(/static/[^"]+)"', registro))
    total_raw, total_wire = len(registro), registro_wire
    for url in assets:
        r = get(port, url.decode(), ACCEPT)
        body = decoded(r)
        name = url.decode().removeprefix("/static/")
        encoding = r.getheader("Content-Encoding") or "none"
        print(f"  {name:<40} {r.status:>6} {size(len(body))} {size(len(r.body)):>12}  {encoding}")
        print(f"  {'':<40} {'':>6} Cache-Control: {r.getheader('Cache-Control')}")
        total_raw += len(body)
        total_wire += len(r.body)
    print(
        f"  {'first visit of /registro (total)':<40} {'':>6} {size(total_raw)} "
        f"{size(total_wire):>12}  = HTML + {len(assets)} distinct files"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first")
    parser.add_argument(
        "--database-url",
        default="",
        help="postgresql://... to bench on PostgreSQL (a throwaway schema); "
        "default: a temporary SQLite file",
    )
    args = parser.parse_args()
    args.duration = min(args.duration, 120)  # bounded, whatever is asked
    args.warmup = min(args.warmup, 30)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-"))
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
            # The portal refuses SMS codes in clear outside development: a
            # loopback BASE_URL with DEV_MAILBOX makes this run one.
            DEV_MAILBOX="true",
            SMS_BACKEND="file",
            DATABASE_URL=database_url,
            BASE_URL=f"http://127.0.0.1:{portal_port}",
            CAPTCHA="off",
            UPLOAD_DIR=str(tmp / "uploads"),
            SMS_FILE=str(tmp / "sms.jsonl"),
        )
        for command in ("init-db", "demo-data"):
            cmd = [sys.executable, "-m", "flask", "--app", "app", command]
            done = subprocess.run(
                cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True
            )
            if done.returncode:
                sys.exit(f"flask {command} failed:\n{done.stdout}{done.stderr}")

        portal_log, bare_log = tmp / "portal.log", tmp / "bare.log"
        target = "bench.portal_app:create()"
        procs.append(start_server(target, portal_port, args.workers, env, portal_log))
        procs.append(start_server("bench.bare:app", bare_port, args.workers, env, bare_log))
        wait_until_up(portal_port, "/salud", procs[0], portal_log)
        wait_until_up(bare_port, "/", procs[1], bare_log)

        sessions = [portal_session(portal_port) for _ in range(args.connections)]

        def portal_request(i):
            cookie, token = sessions[i]
            body = urlencode(
                {
                    "tipo_documento": DOCUMENT[0],
                    "numero_documento": DOCUMENT[1],
                    "csrf_token": token,
                }
            )
            return body, {
                "Content-Type": "application/x-www-form-urlencoded",
                "HX-Request": "true",
                "Cookie": cookie,
                **ACCEPT,  # as a browser sends it: the body B column is what travels
            }

        # The bare app gets the same bytes on the wire, and ignores them.
        def bare_request(_i):
            return portal_request(0)

        print(
            f"Portal Hanna look-up bench  ·  {time.strftime('%Y-%m-%d %H:%M')}  ·  "
            f"Python {sys.version.split()[0]}"
        )
        print(
            f"gunicorn -w {args.workers} (sync) for both servers · {args.connections} "
            f"connections · {args.warmup:g} s warm-up + {args.duration:g} s measured each"
        )
        print(f"database: {backend}")
        print(
            "portal: rate limiting OFF (bench/portal_app.py sets RATELIMIT_ENABLED=False); "
            "CSRF ON (a session cookie + token per connection from GET /registro)"
        )
        print(
            f"look-up: POST /registro/consulta {DOCUMENT[0]} {DOCUMENT[1]} with HX-Request: "
            "true -> #datos-afiliado partial\n"
        )

        def has_name(data: bytes) -> bool:
            return all(mark in data for mark in NAME_MARKS)

        def is_fragment(data: bytes) -> bool:
            return BARE_MARK in data

        targets = {
            "portal look-up partial": (
                portal_port,
                "/registro/consulta",
                portal_request,
                has_name,
            ),
            "bare Flask fragment": (bare_port, "/", bare_request, is_fragment),
        }
        timing = (args.connections, args.warmup, args.duration, stop)
        results = {name: Load(*target, *timing).run() for name, target in targets.items()}

        print(
            f"  {'target':<24} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'errors':>7} {'body B':>7}"
        )
        for name, r in results.items():
            print(
                f"  {name:<24} {r['n']:>9} {r['rps']:>9.0f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                f"{len(r['bad']):>7} {r['size']:>7}"
            )
        p, b = results["portal look-up partial"], results["bare Flask fragment"]
        if p["n"] and b["n"]:
            print(
                f"  {'ratio portal/bare':<24} {'':>9} {p['rps'] / b['rps']:>9.2f} "
                f"{p['p50'] / b['p50']:>8.1f} {p['p95'] / b['p95']:>8.1f}"
            )

        page_weight(portal_port)

        failed = {name: r["bad"] for name, r in results.items() if r["bad"] or not r["n"]}
        if failed:
            for name, bad in failed.items():
                print(
                    f"\nFAIL {name}: {len(bad)} bad responses, e.g. {bad[:3]}",
                    file=sys.stderr,
                )
            return 1
        return 0
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
