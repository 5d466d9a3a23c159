"""Several servers for real: deploy/cluster.py's nginx, two app servers and two workers.

One PostgreSQL schema, one Redis database, one UPLOAD_DIR and one SMTP sink
(aiosmtpd) shared by two gunicorn servers (PROXY_HOPS=1) behind nginx, and two
`flask worker` processes. Each journey runs twice: hopping between the two app
servers by their own ports, and through nginx, which spreads consecutive
requests over both (its access log names the server of each one). What one
server did, the other must see: a session, a rate limit's count, a Convenios
quota, an uploaded file, a QR sign-in's approval and a help-desk message; the
two workers must deliver every queued e-mail once.

The cluster tests run on the PostgreSQL pass of CI (DATABASE_URL=postgresql://…);
SQLite is one server's database and they are skipped there.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller

import models
from core import db as dbmod
from core import mesa, notify
from tests.factories import (
    PASSWORD,
    make_ips,
    make_ips_operador,
    make_user,
    valid_nit,
)
from tests.http_browser import HTMX, Browser
from tests.sample_files import pdf_bytes
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "cluster.py"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"  # emptied here
USER_MINUTE, ENTITY_MINUTE = 4, 6
MAILS = 40  # enough that each of the two workers delivers some

_spec = importlib.util.spec_from_file_location("cluster", SCRIPT)
cluster_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster_script)

on_postgres = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="several app servers need PostgreSQL: run with DATABASE_URL=postgresql://… "
    "(the PostgreSQL pass of CI does)",
)


# --- without servers: the nginx.conf that cluster.py writes -------------------------------------


def test_nginx_takes_the_largest_body_a_view_takes(app):
    largest = max(
        [app.config["MAX_CONTENT_LENGTH"]]
        + [getattr(v, "max_content_length", 0) or 0 for v in app.view_functions.values()]
    )
    assert (
        cluster_script.CLIENT_MAX_BODY == largest
    )  # nginx neither cuts a valid form nor lets more through


def test_the_nginx_conf_is_valid_and_forwards_the_client_as_one_hop(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = cluster_script.nginx_conf(tmp_path, 8080, [8001, 8002])
    for line in (
        "listen 127.0.0.1:8080;",
        "server 127.0.0.1:8001;",
        "server 127.0.0.1:8002;",
        f"client_max_body_size {cluster_script.CLIENT_MAX_BODY};",
        "proxy_request_buffering on;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        f"pid {tmp_path}/nginx.pid;",
    ):
        assert line in conf
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / sub).mkdir(parents=True)
    (tmp_path / "nginx.conf").write_text(conf)
    check = subprocess.run(
        [
            nginx,
            "-t",
            "-q",
            "-p",
            f"{tmp_path}/",
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "error.log"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


# --- the cluster ------------------------------------------------------------------------------


class Sink:
    """An SMTP server that keeps every message, a little slowly (both workers get a share)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook
        await asyncio.sleep(0.02)
        subject = re.search(rb"^Subject: (.*)$", envelope.content, re.M)
        self.received.append(
            (envelope.rcpt_tos[0], subject.group(1).decode().strip() if subject else "")
        )
        return "250 OK"


def cluster_command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is missing on CI: install it (apt-get install -y nginx)")
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    base = tmp_path_factory.mktemp("cluster")
    schema = f"cl_{uuid.uuid4().hex[:10]}"
    admin = dbmod.open_database(DATABASE_URL)
    admin.execute_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in DATABASE_URL else "?"
    url = f"{DATABASE_URL}{sep}options=-csearch_path%3D{schema}"
    store = redis.Redis.from_url(REDIS)
    store.flushdb()
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "UPLOAD_DIR": str(base / "uploads"),  # the one folder both servers store in
        "BASE_URL": "http://127.0.0.1",
        "CAPTCHA": "off",
        "SMS_BACKEND": "http",  # console and file start only on a development machine
        "SMS_HTTP_URL": "http://127.0.0.1:9/sms",  # no test sends an SMS
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "WEB_THREADS": "4",
        "CONVENIOS_LOOKUPS_USER_MINUTE": str(USER_MINUTE),
        "CONVENIOS_LOOKUPS_ENTITY_MINUTE": str(ENTITY_MINUTE),
    }
    run = base / "run"
    started = cluster_command("start", str(run), "--worker-interval", "0.2", env=env)
    database = dbmod.open_database(url)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        info = json.loads((run / "cluster.json").read_text())
        models.db.initialize(database)
        with database.connection_context():
            people = seed()
        yield {
            "nginx": info["url"],
            "a": info["backends"]["web-a"],
            "b": info["backends"]["web-b"],
            "dir": run,
            "pids": info["pids"],
            "db": database,
            "store": store,
            "sink": sink,
            "upload_dir": Path(env["UPLOAD_DIR"]),
            **people,
        }
    finally:
        cluster_command("stop", str(run))
        smtp.stop()
        database.close_all()
        admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.close_all()
        store.flushdb()


def seed() -> dict:
    """Rosa (Hanna), two front desks of one convenio entity, an IPS operator and the desk's motivos."""
    rosa = make_user(email="rosa@example.com", primer_nombre="ROSA", primer_apellido="GIL")
    entidad = models.Entidad.create(nit="9012345671", nombre="Gimnasio Dos Servidores")
    sede = models.Sede.create(entidad=entidad, codigo="S1", nombre="Sede Única")
    desks = [make_user(email=f"taquilla{i}@example.com") for i in (1, 2)]
    for desk in desks:
        acceso = models.Acceso.create(account=desk, aplicacion="convenios", entidad=entidad)
        models.AccesoSede.create(acceso=acceso, sede=sede)
    ips = make_ips(nit=valid_nit())
    operador = make_ips_operador(ips=ips, email="laura@ips.example.com")
    mesa.ensure_default_motivos()
    return {"rosa": rosa, "desks": desks, "ips": ips, "operador": operador}


@pytest.fixture(params=["por-puertos", "por-nginx"])
def pair(request, cluster):
    """(first, second): the two app servers by their ports, or nginx twice (it alternates)."""
    cluster["store"].flushdb()  # each journey starts with no limit spent
    if request.param == "por-puertos":
        return cluster["a"], cluster["b"]
    return cluster["nginx"], cluster["nginx"]


def sign_in(browser: Browser, server: str, email: str) -> None:
    answer = browser.submit(f"{server}/", {"email": email, "password": PASSWORD}, f"{server}/")
    assert answer.status == 303, answer.text[-500:]


@on_postgres
@pytest.mark.slow
def test_a_session_made_on_one_server_works_on_the_other(cluster, pair):
    first, second = pair
    browser = Browser()
    sign_in(browser, first, cluster["rosa"].email)
    for _ in range(2):  # through nginx: on both servers
        status, page = browser.get(f"{second}/inicio")
        assert status == 200 and "Bienvenido(a), Rosa Gil" in page
    assert browser.post(f"{second}/salir", {}, f"{second}/inicio") == 303
    assert browser.get(f"{first}/inicio")[0] == 302  # ended everywhere
    assert browser.get(f"{second}/inicio")[0] == 302


@on_postgres
@pytest.mark.slow
def test_a_rate_limit_counts_the_requests_of_both_servers(cluster, pair):
    first, second = pair
    browser = Browser()
    wrong = {"email": "nadie@example.com", "password": "Mala-1x"}
    codes = []
    for i in range(10):  # the log-in's 10/minute: five on each server
        server = first if i % 2 else second
        # A forged X-Forwarded-For buys nothing: nginx appends the real address and
        # PROXY_HOPS=1 reads only that one (directly, there is no proxy to forge for).
        forged = {"X-Forwarded-For": f"198.51.100.{i}"} if first == second else {}
        codes.append(browser.post(f"{server}/", wrong, f"{server}/", forged))
    assert codes == [422] * 10
    assert browser.post(f"{first}/", wrong, f"{first}/") == 429
    assert browser.post(f"{second}/", wrong, f"{second}/") == 429


@on_postgres
@pytest.mark.slow
def test_convenio_quotas_count_the_look_ups_of_both_servers(cluster, pair):
    first, second = pair
    uno, dos = cluster["desks"]

    def desk(email: str) -> Browser:
        browser = Browser()
        sign_in(browser, first, email)
        status, page = browser.get(f"{second}/convenios/")  # one sede: chosen for the session
        assert status == 200 and "Sede Única" in page
        return browser

    def look_up(browser: Browser, server: str, documento: str) -> int:
        return browser.post(
            f"{server}/convenios/consultar", {"documento": documento}, f"{server}/convenios/"
        )

    browser = desk(uno.email)
    codes = [look_up(browser, second if i % 2 else first, f"9000000{i}") for i in range(5)]
    assert codes == [200] * USER_MINUTE + [429]  # the operator's budget, spent on both
    browser = desk(dos.email)
    left = ENTITY_MINUTE - USER_MINUTE
    codes = [look_up(browser, first if i % 2 else second, f"9100000{i}") for i in range(left + 1)]
    assert codes == [200] * left + [429]  # the entity's budget: both desks, both servers


@on_postgres
@pytest.mark.slow
def test_a_file_sent_to_one_server_is_polled_and_downloaded_from_the_other(cluster, pair):
    first, second = pair
    with cluster["db"].connection_context():
        motivo = mesa.motivos()[0]
        caso = mesa.open_case(
            cluster["operador"], motivo, mesa.asuntos_of(motivo.id)[0], "No cargan los RIPS.",
            f"clave-{uuid.uuid4().hex}", [], str(cluster["upload_dir"]),
        )  # fmt: skip
    laura = Browser()
    answer = laura.submit(
        f"{first}/ips",
        {"nit": cluster["ips"].nit, "correo": "laura@ips.example.com", "password": PASSWORD},
        f"{first}/ips",
    )
    assert answer.status == 303, answer.text[-500:]
    case_url = f"/ips/solicitudes/{caso.numero}"
    status, page = laura.get(f"{second}{case_url}")
    assert status == 200
    poll = re.search(r'id="sondeo" hx-get="([^"]+)"', page).group(1)
    assert laura.open(f"{second}{poll}", headers=HTMX).status == 204

    # 1.5 MB: more than nginx keeps in memory, so it buffers the body to a file first.
    scan = pdf_bytes(
        b"BT /F1 12 Tf 72 720 Td (RIPS) Tj ET\n% " + secrets.token_hex(750_000).encode()
    )
    sent = laura.upload(
        f"{first}{case_url}/mensajes",
        {"texto": "Adjunto el RIPS de enero."},
        {"adjunto": ("rips-enero.pdf", scan)},
        f"{first}{case_url}",
    )
    assert sent.status == 303, sent.text[-500:]
    news = laura.open(f"{second}{poll}", headers=HTMX)
    assert news.status == 200 and "Adjunto el RIPS de enero." in news.text
    link = re.search(r'href="(/ips/solicitudes/\d+/adjuntos/\d+)"', news.text).group(1)
    for _ in range(2):  # through nginx: from both servers
        download = laura.open(f"{second}{link}")
        assert download.status == 200 and download.body == scan
        assert "rips-enero.pdf" in download.headers["Content-Disposition"]
    if first == cluster["nginx"]:  # the upload waited in nginx's temp folder, not in a thread
        assert "buffered to a temporary file" in (cluster["dir"] / "nginx-error.log").read_text()


@on_postgres
@pytest.mark.slow
def test_a_qr_approved_on_one_server_signs_in_the_pc_polling_the_other(cluster, pair):
    first, second = pair
    phone = Browser()
    sign_in(phone, second, cluster["rosa"].email)
    pc = Browser()
    status, page = pc.get(f"{first}/qr")
    assert status == 200
    number = re.search(r'<strong class="match">(\d\d)</strong>', page).group(1)
    key = re.search(r"/qr/([A-Za-z0-9_-]+)</span>", page).group(1)
    assert pc.open(f"{second}/qr/estado", headers=HTMX).status == 204  # waiting, on B too
    status, confirm = phone.get(f"{second}/qr/{key}")
    assert status == 200 and f'value="{number}"' in confirm
    approved = phone.submit(
        f"{first}/qr/{key}", {"accion": "aprobar", "numero": number}, f"{second}/qr/{key}"
    )
    assert approved.status == 200 and "el equipo iniciará sesión" in approved.text
    done = pc.open(f"{second}/qr/estado", headers=HTMX)
    assert done.status == 200 and done.headers["HX-Redirect"] == "/inicio"
    status, home = pc.get(f"{first}/inicio")
    assert status == 200 and "Bienvenido(a), Rosa Gil" in home


@on_postgres
@pytest.mark.slow
def test_nginx_refuses_a_body_over_the_largest_limit_before_any_app_server(cluster):
    target = urllib.parse.urlsplit(cluster["nginx"])
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    connection.putrequest("POST", "/ips/mesa")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(cluster_script.CLIENT_MAX_BODY + 1))
    connection.endheaders()  # and no body: nginx answers from the header alone
    response = connection.getresponse()
    page = response.read().decode()
    connection.close()
    assert response.status == 413 and "<center>nginx</center>" in page  # nginx's own page


@on_postgres
@pytest.mark.slow
def test_nginx_spreads_requests_over_both_servers_and_logs_no_path(cluster):
    browser = Browser()
    for _ in range(6):
        assert browser.get(f"{cluster['nginx']}/")[0] == 200
    log = (cluster["dir"] / "nginx-access.log").read_text()
    served = collections.Counter(re.findall(r"upstream=(127\.0\.0\.1:\d+)", log))
    ports = {urllib.parse.urlsplit(cluster[name]).port for name in ("a", "b")}
    assert {int(address.split(":")[1]) for address in served} == ports
    assert min(served.values()) >= 3
    assert " /" not in log  # no path: the QR's and the links' tokens stay out of the log


@on_postgres
@pytest.mark.slow
def test_two_workers_deliver_every_queued_mail_exactly_once(cluster):
    Message = models.Message
    with cluster["db"].connection_context():
        with cluster["db"].atomic():
            for i in range(MAILS):
                notify.queue_email(f"persona{i}@example.com", f"Aviso {i}", f"Mensaje {i}.")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = Message.select().where(Message.status.in_([Message.PENDING, Message.SENDING]))
            if not waiting.exists():
                break
            time.sleep(0.1)
        rows = list(Message.select().where(Message.channel == Message.EMAIL))
    assert {row.status for row in rows} == {Message.SENT}
    queued = collections.Counter((row.recipient, row.subject) for row in rows)
    assert collections.Counter(cluster["sink"].received) == queued  # each one, once
    assert len(queued) >= MAILS and max(queued.values()) == 1
    counts = {}
    for worker in ("worker-1", "worker-2"):
        text = (cluster["dir"] / f"{worker}.log").read_text()
        counts[worker] = sum(int(n) for n in re.findall(r"enviados (\d+)", text))
    assert sum(counts.values()) == len(rows)
    assert min(counts.values()) > 0, counts  # both took a share


@on_postgres
@pytest.mark.slow
def test_stop_ends_every_process_by_its_pid(cluster):
    run = cluster["dir"]
    assert cluster_command("status", str(run)).returncode == 0
    stopped = cluster_command("stop", str(run))
    assert stopped.returncode == 0, stopped.stderr
    for name, pid in cluster["pids"].items():
        assert not cluster_script.alive(pid, name), name
    assert not list(run.glob("*.pid"))
    assert cluster_command("status", str(run)).returncode == 1
