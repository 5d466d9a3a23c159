"""What every bench script shares: a throwaway portal with the demo data, a tiny
cookie-keeping HTTP client, the demo sign-ins, and the figures file `make bench` reads.

A script that takes `--json PATH` writes there a list of figures, each
{"section", "figure", "value", "unit", "budget", "ok", "command"}; bench/run.py
runs every script and prints them as one table (see bench/README.md).
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
ACCEPT = {"Accept-Encoding": "br, gzip"}  # what every browser sends
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEMO_PASSWORD = "Hanna2026Demo"  # noqa: S105 - the public demo password (README)
AFFILIATE = "afiliada@hanna.test"  # Hanna affiliate: /inicio
DESK = "convenio@hanna.test"  # a partner entity's front desk: /convenios/
GENESIS = ("CC", "1000000120")  # an EPS cotizante with a family group and requests
IPS = ("900.111.222-1", "admision@saludcaribe.test")  # IPS admin operator: /ips/mesa
STAFF = {  # the demo back office (README): login → TOTP secret
    "soporte@gestion.test": "XRTHF3YMFWOCKRFJRVUU5NMC2ZP2CEHZ",
    "autorizaciones@gestion.test": "DH5VPHT237LNUIQL7ABE3DWZXOZU3WSL",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode(encoding: str | None, data: bytes) -> bytes:
    """Return data as the browser sees it after undoing Content-Encoding."""
    if encoding == "br":
        import brotli

        return brotli.decompress(data)
    if encoding == "gzip":
        return gzip.decompress(data)
    return data


def command_line() -> str:
    """The command that runs this script with the arguments it was given (for the table)."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    args = [a for a in sys.argv[1:]]
    if "--json" in args:  # where the figures go is not part of what was measured
        i = args.index("--json")
        del args[i : i + 2]
    return " ".join([".venv/bin/python", str(script), *args])


class Figures:
    """Collects figures; writes them to --json PATH (if given) for bench/run.py."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.rows: list[dict] = []
        self.command = command_line()

    def add(
        self, section, figure, value, unit="", budget=None, ok=None, command=None, at_least=None
    ) -> bool:
        """Record a figure; budget: the most it may be; at_least: the least (a goal)."""
        if at_least is not None:
            budget = at_least
            if ok is None and isinstance(value, int | float):
                ok = value >= at_least
        elif ok is None and budget is not None and isinstance(value, int | float):
            ok = value <= budget
        self.rows.append(
            {
                "section": section,
                "figure": figure,
                "value": value,
                "unit": unit,
                "budget": budget,
                "goal": at_least is not None,  # budget is a floor, not a ceiling
                "ok": ok,
                "command": command or self.command,
            }
        )
        return ok is not False

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["ok"] is False]

    def write(self) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps(self.rows, ensure_ascii=False, indent=1))


class Response:
    def __init__(self, raw: http.client.HTTPResponse, body: bytes) -> None:
        self.status = raw.status
        self.headers = raw.msg
        self.wire = body  # as sent, compressed or not
        self.body = decode(raw.getheader("Content-Encoding"), body)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def token(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        if not found:
            raise RuntimeError(f"no csrf_token in a {self.status} answer: {self.text[:300]!r}")
        return found.group(1)


class Client:
    """One browser: a cookie jar, Accept-Encoding: br, gzip, no redirects followed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> Response:
        sent = {**ACCEPT, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = self.cookie_header
        if isinstance(body, dict):
            body = urlencode(body)
            sent.update(FORM)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            response = Response(raw, raw.read())
        finally:
            conn.close()
        for line in response.headers.get_all("Set-Cookie") or ():
            pair, _, attributes = line.partition(";")
            name, _, value = pair.partition("=")
            if (
                "max-age=0" in attributes.lower()
                or "expires=thu, 01 jan 1970" in attributes.lower()
            ):
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return response

    def get(self, path: str, **headers) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict, **headers) -> Response:
        return self.request("POST", path, form, headers)

    def submit(self, path: str, form: dict, expect: int = 303, **headers) -> Response:
        """GET path for its CSRF token, POST form there; fail unless the answer is expect."""
        token = self.get(path).token()
        response = self.post(path, {**form, "csrf_token": token}, **headers)
        if response.status != expect:
            raise RuntimeError(f"POST {path} gave {response.status}: {response.text[:400]!r}")
        return response


# --- the demo sign-ins (README, "Demo accounts") ---------------------------------------------


def sign_in_hanna(client: Client, email: str = AFFILIATE) -> None:
    client.submit("/", {"email": email, "password": DEMO_PASSWORD})


def sign_in_desk(client: Client) -> None:
    """The Convenios front desk, with its first sede chosen."""
    sign_in_hanna(client, DESK)
    picker = client.get("/convenios/sede")
    sede = re.search(r'name="sede"[^>]*value="(\d+)"', picker.text)
    if not sede:
        raise RuntimeError("the demo desk has no sede to choose")
    client.post("/convenios/sede", {"sede": sede.group(1), "csrf_token": picker.token()})


def sign_in_genesis(client: Client) -> None:
    client.submit(
        "/genesis/afiliados",
        {"tipo_documento": GENESIS[0], "numero_documento": GENESIS[1], "password": DEMO_PASSWORD},
    )


def sign_in_ips(client: Client) -> None:
    client.submit("/ips", {"nit": IPS[0], "correo": IPS[1], "password": DEMO_PASSWORD})


def sign_in_staff(client: Client, email: str = "soporte@gestion.test") -> None:
    """Password, then a TOTP code; a code is taken once per 30 s window, so wait for a new one."""
    import pyotp

    client.submit("/gestion/ingresar", {"email": email, "password": DEMO_PASSWORD})
    totp = pyotp.TOTP(STAFF[email])
    for _ in range(3):
        page = client.get("/gestion/segundo-factor")
        response = client.post(
            "/gestion/segundo-factor", {"code": totp.now(), "csrf_token": page.token()}
        )
        if response.status == 303:
            return
        time.sleep(31 - time.time() % 30)  # the code of this window was used: the next one
    raise RuntimeError(f"staff {email}: the TOTP code was refused")


# --- a throwaway portal ------------------------------------------------------------------------


def gunicorn(target: str, port: int, env: dict, log: Path, workers=2, threads=1):
    """Start gunicorn on 127.0.0.1:port (threads > 1: the gthread worker, as the Procfile)."""
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads)]
    cmd.append("--no-control-socket")  # one per user by default: the two servers would share it
    cmd += ["-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--error-logfile", str(log), target]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until_up(port: int, path: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn stopped ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if Client(port).get(path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not answer in 60 s")


class Portal:
    """The real portal with the demo data on a temporary SQLite file (or a PostgreSQL schema).

    with Portal() as portal:  portal.start() → port;  portal.start_bare() → port
    Rate limits stay on unless ratelimit=False (bench/portal_app.py), as a load
    from one address would otherwise measure the 429 page.
    """

    def __init__(self, database_url: str = "", ratelimit: bool = False, extra_env=None) -> None:
        self.database_url = database_url
        self.ratelimit = ratelimit
        self.extra_env = extra_env or {}
        self.procs: list[subprocess.Popen] = []
        self.schema = None

    def __enter__(self) -> Portal:
        self.tmp = Path(tempfile.mkdtemp(prefix="hanna-bench-"))
        self.port = free_port()
        if self.database_url.startswith("postgres"):
            import psycopg

            self.schema = f"bench_{secrets.token_hex(4)}"
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            sep = "&" if "?" in self.database_url else "?"
            url = f"{self.database_url}{sep}options=-csearch_path%3D{self.schema}"
            self.backend = "PostgreSQL"
        else:
            url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
            self.backend = "SQLite"
        self.env = dict(
            os.environ,
            SECRET_KEY=secrets.token_hex(32),
            DEV_MAILBOX="true",  # with a loopback BASE_URL: a development machine
            SMS_BACKEND="file",
            DATABASE_URL=url,
            BASE_URL=f"http://127.0.0.1:{self.port}",
            CAPTCHA="off",
            UPLOAD_DIR=str(self.tmp / "uploads"),
            SMS_FILE=str(self.tmp / "sms.jsonl"),
            REDIS_URL=os.environ.get("BENCH_REDIS_URL", ""),
            **self.extra_env,
        )
        try:
            for command in ("init-db", "demo-data"):
                self.flask(command)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def flask(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            check=False,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self, workers: int = 2, threads: int = 1) -> int:
        target = "app:create_app()" if self.ratelimit else "bench.portal_app:create()"
        log = self.tmp / "portal.log"
        proc = gunicorn(target, self.port, self.env, log, workers, threads)
        self.procs.append(proc)
        wait_until_up(self.port, "/salud", proc, log)
        return self.port

    def start_bare(self, workers: int = 2, threads: int = 1) -> int:
        port = free_port()
        log = self.tmp / "bare.log"
        proc = gunicorn("bench.bare:app", port, self.env, log, workers, threads)
        self.procs.append(proc)
        wait_until_up(port, "/", proc, log)
        return port

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            stop(proc)
        if self.schema:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        shutil.rmtree(self.tmp, ignore_errors=True)
