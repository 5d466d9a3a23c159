"""Browser tests against a real server: gunicorn, an SMTP sink, the delivery worker.

One portal (gunicorn + its own SQLite file or PostgreSQL schema) per test module,
one Chromium per session, one browser context per test. Mail travels over real
SMTP into an aiosmtpd sink; SMS land in the file gateway's JSON lines.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

import models
from core import db as dbmod
from core import passwords
from tests.e2e.helpers import MOBILE
from tests.servers import ROOT, flask, free_port, gunicorn, stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / ".cache" / "axe" / "package" / "axe.min.js"
# Two suites may run at once (CI: SQLite and PostgreSQL): each keeps its own screenshots.
SHOTS = Path(os.environ.get("E2E_SHOTS", "/tmp/e2e-shots"))
SECRET = "e2e-" + uuid.uuid4().hex


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: browser journeys against a real server (Chromium, SMTP sink)"
    )


# --- SMTP sink --------------------------------------------------------------


class MailSink:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address.lower() in m["X-Envelope-To"].lower()]


@pytest.fixture(scope="session")
def smtp():
    from aiosmtpd.controller import Controller

    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


# --- the portal: database, gunicorn, worker ---------------------------------


STAFF_PASSWORD = "Gestion#Segura2026"


@dataclass
class Portal:
    """A running portal and the back doors a test may use (seed data, mail, SMS)."""

    base_url: str
    env: dict
    database_url: str
    sms_file: Path
    log_file: Path
    smtp: MailSink
    process: subprocess.Popen | None = None
    _db: object = None
    _numbers: itertools.count = field(
        default_factory=lambda: itertools.count(random.randint(10**7, 9 * 10**7))
    )

    # Database access from the test process (the same file or schema as the server).
    def db(self):
        if self._db is None:
            self._db = dbmod.open_database(self.database_url)
        models.db.initialize(self._db)
        return self._db

    def close_db(self) -> None:
        if self._db is not None and not self._db.is_closed():
            self._db.close()

    def new_document(self) -> str:
        return str(next(self._numbers))

    def load_population(self) -> None:
        """Load a few hundred fake affiliates: the quiz draws its options from them."""
        from core.demo import demo_afiliados
        from core.importer import upsert_afiliados

        with self.db().connection_context(), models.db.atomic():
            upsert_afiliados(demo_afiliados(seed=3, count=1000))

    def seed_afiliado(self, **over) -> models.Afiliado:
        """Insert a person into the Caja's master data."""
        data = dict(
            tipo_documento="CC",
            numero_documento=self.new_document(),
            primer_nombre="LUZ",
            segundo_nombre="MARINA",
            primer_apellido="ORTEGA",
            segundo_apellido="PALACIO",
            estado="ACTIVO",
            categoria="A",
            email="",
            celular="",
            telefono="",
        )
        data.update(over)
        with self.db().connection_context():
            return models.Afiliado.create(**data)

    def seed_user(self, password: str | None = None, **over) -> models.Account:
        """Insert an account directly; with password it can sign in ("!" never matches)."""
        data = dict(
            tipo_documento="CC",
            primer_nombre="Ana",
            primer_apellido="Pérez",
            celular="3104567890",
            fecha_nacimiento=date(1985, 3, 24),
            password_hash="!",
            status=models.Account.ACTIVE,
        )
        data.update(over)
        if password is not None:
            data["password_hash"] = passwords.hash_password(password)
        with self.db().connection_context():
            return models.HannaUser.create_account(**data)

    def seed_staff(self, roles=("admin",), totp_secret: str | None = None) -> tuple[str, str]:
        """Create an active staff account; return its (e-mail, password)."""
        from blueprints.gestion.service import create_staff

        password = STAFF_PASSWORD
        email_address = f"funcionario{self.new_document()}@cajacopi.example"
        with self.db().connection_context():
            create_staff(
                email_address, roles, password, nombre="Laura Gestión", totp_secret=totp_secret
            )
        return email_address, password

    def seed_entidad(
        self, nombre: str, sedes=("Sede Norte", "Sede Sur")
    ) -> tuple[models.Entidad, list[models.Sede]]:
        """Insert an active convenio entity (a NIT with its DIAN check digit) and its sedes."""
        from stdnum.co import nit as stdnum_nit

        base = "9" + self.new_document()
        with self.db().connection_context(), models.db.atomic():
            entidad = models.Entidad.create(
                nit=base + stdnum_nit.calc_check_digit(base), nombre=nombre
            )
            made = [
                models.Sede.create(entidad=entidad, codigo=f"S{i}", nombre=name, municipio="08001")
                for i, name in enumerate(sedes, start=1)
            ]
        return entidad, made

    def grant_convenios(self, account: models.Account, sedes) -> None:
        """Give account CONVENIOS for these sedes directly, as an approved request does."""
        from tests.factories import grant_convenios

        with self.db().connection_context():
            grant_convenios(account, sedes)

    def seed_eps_family(self, celular: str) -> tuple[models.EpsAfiliado, models.EpsAfiliado, str]:
        """Insert an ACTIVO cotizante (CC) with a child beneficiary (TI); return them and their IPS's name."""
        from tests.factories import make_eps_afiliado, make_ips

        with self.db().connection_context(), models.db.atomic():
            n = self.new_document()
            ips = make_ips(nit=f"8{n}1", nombre=f"IPS Clínica del Norte {n}")
            head = make_eps_afiliado(
                numero_documento=self.new_document(),
                primer_nombre="MARTHA",
                segundo_nombre="LUCÍA",
                primer_apellido="CASTRO",
                segundo_apellido="ROMERO",
                celular=celular,
                email="",
                fecha_expedicion=date(2004, 8, 19),
                ips=ips,
            )
            child = make_eps_afiliado(
                cabeza=head,
                tipo_documento="TI",
                numero_documento="1" + self.new_document() + "7",
                primer_nombre="SAMUEL",
                segundo_nombre="",
                primer_apellido="CASTRO",
                segundo_apellido="ROMERO",
                fecha_nacimiento=date.today().replace(year=date.today().year - 11, day=1),
                fecha_expedicion=None,
                celular="",
                email="",
                ips=ips,
            )
        return head, child, ips.nombre

    def seed_eps_user(self, afiliado: models.EpsAfiliado, password: str, **over) -> models.Account:
        """Give an EPS affiliate a Génesis account (over: carta=False, must_change_password…)."""
        from tests.factories import make_eps_user

        with self.db().connection_context():
            return make_eps_user(afiliado, password=password, **over)

    def seed_ips_operador(self, password: str) -> tuple[str, str]:
        """Create an IPS with an active admin operator and the help desk's motivos; return (NIT, e-mail)."""
        from core import mesa
        from tests.factories import make_ips_operador

        with self.db().connection_context():
            mesa.ensure_default_motivos()
            account = make_ips_operador(
                email=f"operador{self.new_document()}@ips.example.com", nombre="Laura Gómez Ruiz"
            )
            models.Account.update(password_hash=passwords.hash_password(password)).where(
                models.Account.id == account.id
            ).execute()
            return account.login.split(":")[0], account.email

    def autorizaciones_of(self, afiliado_id: int) -> list[models.Autorizacion]:
        with self.db().connection_context():
            return list(
                models.Autorizacion.select().where(models.Autorizacion.afiliado == afiliado_id)
            )

    def usos_of(self, cedula: str) -> list[models.UsoConvenio]:
        """Return the uses of the convenio reported from look-ups of this cédula."""
        with self.db().connection_context():
            return list(
                models.UsoConvenio.select()
                .join(models.ConsultaConvenio)
                .where(models.ConsultaConvenio.numero_documento == cedula)
            )

    def user_exists(self, email_address: str) -> bool:
        with self.db().connection_context():
            return (
                models.Account.select()
                .where(models.Account.email == email_address.lower())
                .exists()
            )

    def user(self, email_address: str) -> models.Account:
        with self.db().connection_context():
            account = models.Account.get(models.Account.email == email_address.lower())
            assert account.hanna is not None  # read the profile while connected
            return account

    def open_quiz(self, email_address: str) -> list[dict]:
        """Return the open quiz attempt's questions, right answers included."""
        with self.db().connection_context():
            user = models.Account.get(models.Account.email == email_address.lower())
            attempt = (
                models.QuizAttempt.select()
                .where(
                    (models.QuizAttempt.account == user) & models.QuizAttempt.finished_at.is_null()
                )
                .order_by(models.QuizAttempt.id.desc())
                .first()
            )
            assert attempt is not None, "no open quiz attempt"
            return json.loads(attempt.questions)

    # Delivery: the real worker command, then what reached SMTP or the SMS file.
    def run_worker(self) -> str:
        return flask(self.env, "worker", "--once")

    def mail_to(self, address: str, wait: float = 5.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + wait
        while True:
            found = self.smtp.to(address)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def delivered(self, address: str, subject: str) -> email.message.EmailMessage:
        """Deliver the outbox and return the last mail with subject that reached address."""
        self.run_worker()
        deadline = time.monotonic() + 5.0
        while True:
            found = [m for m in self.smtp.to(address) if m["Subject"] == subject]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, (
                f"no mail {subject!r} for {address}; got "
                f"{[m['Subject'] for m in self.smtp.to(address)]}"
            )
            time.sleep(0.05)

    def activation_link(self, address: str) -> str:
        """Deliver the outbox and return the link of the activation mail sent to address."""
        self.run_worker()
        messages = self.mail_to(address)
        assert messages, f"no mail reached the SMTP sink for {address}"
        texts = [m.get_body(preferencelist=("plain",)).get_content() for m in messages]
        for text in reversed(texts):  # the newest activation mail, past any other notice
            found = re.search(r"https?://\S+/activar/\S+", text)
            if found:
                return found.group(0)
        raise AssertionError(f"no activation link in:\n{texts[-1]}")

    def sms_to(self, mobile: str) -> list[dict]:
        if not self.sms_file.exists():
            return []
        lines = self.sms_file.read_text(encoding="utf-8").splitlines()
        return [sms for sms in map(json.loads, filter(None, lines)) if sms["to"] == mobile]

    def sms_code(self, mobile: str) -> str:
        """Deliver the outbox and return the last 6-digit code sent to mobile."""
        self.run_worker()
        messages = self.sms_to(mobile)
        assert messages, f"no SMS to {mobile} in {self.sms_file}"
        return re.search(r"\b(\d{6})\b", messages[-1]["body"]).group(1)

    def server_log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")


def _database(tmp: Path) -> tuple[str, str | None]:
    """A temp SQLite file, or a fresh PostgreSQL schema when DATABASE_URL says so."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp / 'e2e.sqlite3'}", None
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = dbmod.open_database(url)
    admin.execute_sql(f"CREATE SCHEMA {schema}")
    admin.close()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    admin = dbmod.open_database(os.environ["DATABASE_URL"])
    admin.execute_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


@pytest.fixture(scope="module")
def portal(tmp_path_factory, smtp):
    tmp = tmp_path_factory.mktemp("portal")
    url, schema = _database(tmp)
    port = free_port()
    env = {  # tests.servers adds the rest of os.environ
        "SECRET_KEY": SECRET,
        "DATABASE_URL": url,
        "BASE_URL": f"http://127.0.0.1:{port}",
        "CAPTCHA": "off",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "MAIL_USE_TLS": "false",
        "MAIL_USERNAME": "",
        "MAIL_PASSWORD": "",
        # A development machine (loopback BASE_URL): the only place where the
        # file SMS backend, which the tests read codes from, may start.
        "DEV_MAILBOX": "true",
        "SMS_BACKEND": "file",
        "SMS_FILE": str(tmp / "sms.jsonl"),
        "UPLOAD_DIR": str(tmp / "uploads"),
        "REDIS_URL": "",
        # Each browser context sends its own X-Forwarded-For, so the per-client
        # rate limits see one person per test, as in production behind a proxy.
        "PROXY_HOPS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    portal = Portal(
        base_url=env["BASE_URL"],
        env=env,
        database_url=url,
        sms_file=tmp / "sms.jsonl",
        log_file=tmp / "server.log",
        smtp=smtp,
    )
    try:
        flask(env, "init-db")
        portal.load_population()
        portal.process = gunicorn(env, port, workers=1, log_file=portal.log_file)
        yield portal
    finally:
        if portal.process is not None:
            stop(portal.process)
        portal.close_db()
        if schema:
            _drop_schema(schema)


# --- the browser --------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (or run `make test`).")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a loaded CI machine is slower than a phone
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


_client_ips = itertools.count(1)


class Visit:
    """A browser context for one person, with its console messages kept.

    options go to Playwright's new_context (e.g. a desktop viewport, a user_agent).
    """

    def __init__(
        self, browser, portal: Portal, *, js: bool = True, bypass_csp: bool = False, **options
    ) -> None:
        n = next(_client_ips)
        self.js = js
        self.context = browser.new_context(
            **{
                "base_url": portal.base_url,
                "viewport": MOBILE,
                "locale": "es-CO",
                "java_script_enabled": js,
                "bypass_csp": bypass_csp,
                "extra_http_headers": {
                    "X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
                },
                **options,
            }
        )
        self.context.set_default_timeout(15_000)
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.on("page", self._watch)
        self.page = self.context.new_page()

    def _watch(self, page) -> None:
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def csp_messages(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="session")
def visit_class():
    return Visit


@pytest.fixture
def visit(browser, portal):
    """Open browser contexts for a test (JS on by default) and check CSP at the end."""
    opened: list[Visit] = []
    log_start = portal.log_file.stat().st_size

    def open_visit(**kwargs) -> Visit:
        v = Visit(browser, portal, **kwargs)
        opened.append(v)
        return v

    yield open_visit
    problems = []
    for v in opened:
        if v.js:
            problems += v.csp_messages() + [f"pageerror: {e}" for e in v.errors]
        v.close()
    with portal.log_file.open("rb") as log:  # reports the browsers sent to report-uri
        log.seek(log_start)
        problems += [
            line
            for line in log.read().decode("utf-8", "replace").splitlines()
            if "CSP violation" in line
        ]
    assert not problems, "CSP violations or script errors in the browser:\n" + "\n".join(problems)


@pytest.fixture(params=[True, False], ids=["js", "sin-js"])
def js(request) -> bool:
    return request.param


@pytest.fixture
def page(visit, js):
    """A page at 360x740, with JavaScript on or off (each journey runs both ways)."""
    return visit(js=js).page


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make test` (it fetches axe-core).")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
