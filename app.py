"""Portal Hanna / Génesis: the application factory and its command line."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import signal
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, Request, abort, g, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.templating import Environment
from markupsafe import Markup, escape
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

import models
from blueprints.forms import field as form_field
from blueprints.web import check_shared_limits, csrf, limiter, login_manager, mail
from core import assets, colombia, notify, passwords, throttle
from core import db as dbmod

log = logging.getLogger("portal")

HERE = Path(__file__).resolve().parent

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MAX_ID = 2**53  # the largest integer every database and JSON reader holds exactly
WEAK_SECRET_WORDS = ("change", "cambia", "secret", "secreto", "example", "ejemplo", "placeholder")

# Every environment variable the portal reads, with its default (README lists them).
ENV_DEFAULTS = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,  # a SQLite file under instance/
    "REDIS_URL": "",
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": "25",
    "MAIL_USE_TLS": "false",
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",
    "MAIL_DEFAULT_SENDER": "Plataforma Hanna <no-responder@hanna.localhost>",
    "SMS_BACKEND": "console",
    "SMS_FILE": "",
    "SMS_HTTP_URL": "",
    "SMS_HTTP_TOKEN": "",
    "UPLOAD_DIR": "",
    "BASE_URL": "http://127.0.0.1:5000",
    "CAPTCHA": "image",
    "IDLE_MINUTES": "15",
    "IDLE_MINUTES_SHARED": "10",
    "SESSION_MAX_HOURS": "12",
    "PROXY_HOPS": "0",
    "DEV_MAILBOX": "false",
    "OUTBOX_BODY_RETENTION_HOURS": "48",
    "OUTBOX_RETRY_SECONDS": "60",  # the first wait after a failed send; then 2, 4 … times it
    "OUTBOX_CLAIM_SECONDS": "300",  # how long a worker holds the message it is sending
    # Convenio look-ups (H6): per operator and per entity, per minute and per 24 h.
    "CONVENIOS_LOOKUPS_USER_MINUTE": "10",
    "CONVENIOS_LOOKUPS_USER_DAY": "300",
    "CONVENIOS_LOOKUPS_ENTITY_MINUTE": "40",
    "CONVENIOS_LOOKUPS_ENTITY_DAY": "3000",
}


def _flag(value: str | bool) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def load_config(app: Flask) -> None:
    """Read the environment into app.config."""
    env = {k: os.environ.get(k, v) for k, v in ENV_DEFAULTS.items()}
    instance = Path(app.instance_path)
    app.config.update(
        SECRET_KEY=env["SECRET_KEY"],
        DATABASE_URL=env["DATABASE_URL"] or f"sqlite:///{instance / 'portal.sqlite3'}",
        REDIS_URL=env["REDIS_URL"],
        MAIL_SERVER=env["MAIL_SERVER"],
        MAIL_PORT=int(env["MAIL_PORT"]),
        MAIL_USE_TLS=_flag(env["MAIL_USE_TLS"]),
        MAIL_USERNAME=env["MAIL_USERNAME"] or None,
        MAIL_PASSWORD=env["MAIL_PASSWORD"] or None,
        MAIL_DEFAULT_SENDER=env["MAIL_DEFAULT_SENDER"],
        SMS_BACKEND=env["SMS_BACKEND"],
        SMS_FILE=env["SMS_FILE"] or str(instance / "sms.jsonl"),
        SMS_HTTP_URL=env["SMS_HTTP_URL"],
        SMS_HTTP_TOKEN=env["SMS_HTTP_TOKEN"],
        UPLOAD_DIR=env["UPLOAD_DIR"] or str(instance / "uploads"),
        BASE_URL=env["BASE_URL"].rstrip("/"),
        CAPTCHA=env["CAPTCHA"],
        IDLE_MINUTES=int(env["IDLE_MINUTES"]),
        IDLE_MINUTES_SHARED=int(env["IDLE_MINUTES_SHARED"]),
        SESSION_MAX_HOURS=int(env["SESSION_MAX_HOURS"]),
        PROXY_HOPS=int(env["PROXY_HOPS"]),
        DEV_MAILBOX=_flag(env["DEV_MAILBOX"]),
        OUTBOX_BODY_RETENTION_HOURS=int(env["OUTBOX_BODY_RETENTION_HOURS"]),
        OUTBOX_RETRY_SECONDS=float(env["OUTBOX_RETRY_SECONDS"]),
        OUTBOX_CLAIM_SECONDS=float(env["OUTBOX_CLAIM_SECONDS"]),
        CONVENIOS_LOOKUPS_USER_MINUTE=int(env["CONVENIOS_LOOKUPS_USER_MINUTE"]),
        CONVENIOS_LOOKUPS_USER_DAY=int(env["CONVENIOS_LOOKUPS_USER_DAY"]),
        CONVENIOS_LOOKUPS_ENTITY_MINUTE=int(env["CONVENIOS_LOOKUPS_ENTITY_MINUTE"]),
        CONVENIOS_LOOKUPS_ENTITY_DAY=int(env["CONVENIOS_LOOKUPS_ENTITY_DAY"]),
        PASSWORD_HASH=dict(time_cost=2, memory_cost=19456, parallelism=1),
        # Over HTTPS the __Host- prefix makes the browser refuse a cookie set
        # by a sub-domain or without Secure (no session fixation from outside).
        SESSION_COOKIE_NAME="__Host-hanna_sesion"
        if env["BASE_URL"].startswith("https://")
        else "hanna_sesion",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env["BASE_URL"].startswith("https://"),
        WTF_I18N_ENABLED=False,  # WTForms' own Spanish messages, without Flask-Babel
        WTF_CSRF_TIME_LIMIT=None,  # the session bounds it; a stale form must not 400
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )


class PortalRequest(Request):
    """A request whose form and files leave out multipart parts that have no name."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        # A part with an empty Content-Disposition arrives under the key None,
        # which Flask-WTF and the views would trip over (a 500).
        for attr in ("form", "files"):
            data = self.__dict__.get(attr)
            if data is not None and None in data:
                self.__dict__[attr] = type(data)(
                    (k, v) for k, v in data.items(multi=True) if k is not None
                )


class PortalEnvironment(Environment):
    """Jinja's environment with each template's globals in one dict, not a ChainMap.

    Every render and every {% from … import … %} compares the template's globals
    with the context's; over a ChainMap that comparison walked every map and took
    5 % of a signed-in page (bench/throughput.py, profiled). The globals are all
    set while the app is made, before any template loads.
    """

    def make_globals(self, d):
        return {**self.globals, **(d or {})}


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer made once per set of keys, not per request.

    (Making it, and deriving its key, was a twentieth of a small signed-in answer.)
    """

    def __init__(self) -> None:
        self._signers: dict = {}

    def get_signing_serializer(self, app: Flask):
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        signer = self._signers.get(keys)
        if signer is None:
            signer = super().get_signing_serializer(app)
            self._signers = {keys: signer}  # a rotated key replaces the old signer
        return signer


class Portal(Flask):
    """Flask whose error log names the route, never the URL that was asked."""

    request_class = PortalRequest
    jinja_environment = PortalEnvironment
    session_interface = CookieSessions()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sync_cache: dict = {}

    def ensure_sync(self, func):
        # Flask asks inspect whether each hook is a coroutine, for every hook of
        # every request (ten a request): ask once per function.
        try:
            return self._sync_cache[func]
        except KeyError:
            sync = self._sync_cache[func] = super().ensure_sync(func)
            return sync
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)

    def log_exception(self, exc_info) -> None:
        # The URL may carry an activation or reset token, or a query string
        # with personal data: log the rule ("/activar/<token>") instead.
        rule = request.url_rule.rule if request.url_rule else redact_path(request.path)
        self.logger.error(f"Exception on {rule} [{request.method}]", exc_info=exc_info)


class BoundedIntConverter(IntegerConverter):
    """An <int:…> that stops at 2**53, so no database sees a number it cannot hold."""

    def __init__(self, map, fixed_digits=0, min=0, max=MAX_ID, signed=False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the portal: config, database, extensions, blueprints, hooks, CLI."""
    app = Portal(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = BoundedIntConverter
    load_config(app)
    if test_config:
        app.config.update(test_config)
    check_startup(app)
    check_shared_limits(app)
    install_log_redaction()
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["CAPTCHA"] == "off":
        log.warning("CAPTCHA=off: los formularios públicos no piden captcha.")

    passwords.configure(**app.config["PASSWORD_HASH"])
    models.db.initialize(dbmod.open_database(app.config["DATABASE_URL"]))

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    from blueprints import compression

    compression.init_app(app)  # first registered, so it runs after every other hook

    @app.before_request
    def per_view_body_limit() -> None:
        # Before CSRF and the NUL check read request.form: an upload route's own
        # cap (web.body_limit) must refuse a big body before it is parsed.
        view = app.view_functions.get(request.endpoint)
        limit = getattr(view, "max_content_length", None)
        if limit is not None:
            request.max_content_length = limit

    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    throttle.configure(app.config["REDIS_URL"])
    login_manager.init_app(app)

    from blueprints import accounts, aplicaciones, auth, convenios, genesis, gestion, security
    from blueprints.certificados import bp as certificados_bp
    from blueprints.ips import bp as ips_bp
    from blueprints.pqrs import bp as pqrs_bp
    from blueprints.public import views as public

    security.init_app(app)
    auth.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(gestion.bp)
    app.register_blueprint(aplicaciones.bp)
    app.register_blueprint(convenios.bp)
    app.register_blueprint(genesis.bp)
    app.register_blueprint(certificados_bp)
    app.register_blueprint(pqrs_bp)
    app.register_blueprint(ips_bp)
    if dev_mailbox_allowed(app):
        from blueprints.dev import views as dev

        app.register_blueprint(dev.bp)

    @app.before_request
    def refuse_nul_bytes() -> None:
        # No person types a NUL, and PostgreSQL refuses it in text (a 500):
        # answer 400 before any view takes it to the database.
        values = [request.path]
        # A GET's body is never read (forms read it only on submit methods).
        sources = (
            (request.args,) if request.method in ("GET", "HEAD") else (request.args, request.form)
        )
        for data in sources:
            values += [v for vs in data.listvalues() for v in vs]
        if any("\x00" in value for value in values):
            abort(400)

    @app.before_request
    def open_db() -> None:
        if request.endpoint != "static":
            models.db.connect(reuse_if_open=True)

    @app.teardown_request
    def close_db(_exc: BaseException | None) -> None:
        if not models.db.is_closed():
            models.db.close()

    register_errors(app)
    serve_static(app)
    register_template_helpers(app)
    register_cli(app)
    return app


def dev_mailbox_allowed(app: Flask) -> bool:
    """Tell whether this is a development machine: debug/testing, or DEV_MAILBOX on loopback.

    The same answer allows the /dev/buzon page and the console and file SMS
    backends, which all show codes and links in clear.
    """
    if app.debug or app.testing:
        return True
    host = urlsplit(app.config["BASE_URL"]).hostname or ""
    return app.config["DEV_MAILBOX"] and host in LOOPBACK_NAMES


def check_startup(app: Flask) -> None:
    """Refuse to start with a weak SECRET_KEY or a development SMS backend in production."""
    relaxed = app.debug or app.testing
    key = app.config["SECRET_KEY"] or ""
    if not key:
        if not relaxed:
            raise RuntimeError("Defina SECRET_KEY (variable de entorno) antes de iniciar.")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    elif not relaxed and (
        len(key) < 32
        or len(set(key)) < 10
        or any(word in key.lower() for word in WEAK_SECRET_WORDS)
    ):
        raise RuntimeError(
            "SECRET_KEY es débil: use al menos 32 caracteres al azar, por ejemplo la salida "
            "de: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    backend = app.config["SMS_BACKEND"]
    if backend in ("console", "file") and not dev_mailbox_allowed(app):
        raise RuntimeError(
            f"SMS_BACKEND={backend} deja los códigos SMS a la vista: solo se permite en "
            "desarrollo (DEV_MAILBOX=true con un BASE_URL local). En producción use "
            "SMS_BACKEND=http."
        )


def redact_path(path: str) -> str:
    """Return path without its query string and with every token-like segment as "…"."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(s if _PLAIN_SEGMENT.fullmatch(s) else "…" for s in segments)


# Our routes' fixed parts are lowercase words; ids are short numbers. Anything
# else in a path (tokens, keys, file names) may be a secret.
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z-]*|[0-9]{1,6}|")
# The development server colours a non-200 line: ANSI codes may wrap it inside the quotes.
_ANSI = r"((?:\x1b\[[0-9;]*m)*)"
_REQUEST_LINE = re.compile(rf'"{_ANSI}([A-Z]+) (\S+) (HTTP/[0-9.]+){_ANSI}"')
# A full address anywhere in the line: the Referer of a request made from a
# reset or activation page carries that page's token.
_URL = re.compile(r'(https?://[^/\s"]+)(/[^\s"]*)')


class RedactRequestLines(logging.Filter):
    """Rewrite "GET /activar/<token>?… HTTP/1.1" and any logged address without the secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _REQUEST_LINE.sub(
            lambda m: f'"{m[1]}{m[2]} {redact_path(m[3])} {m[4]}{m[5]}"', message
        )
        redacted = _URL.sub(lambda m: m[1] + redact_path(m[2]), redacted)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_log_redaction() -> None:
    """Filter the request lines of the development server and of gunicorn's access log."""
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactRequestLines) for f in logger.filters):
            logger.addFilter(RedactRequestLines())


def serve_static(app: Flask) -> None:
    """Serve content-hashed, precompressed copies of static/ through WhiteNoise.

    The copies are built into instance/static at start (core/assets.py: only
    what changed is compressed again) and answered before Flask, so they carry
    no cookie, no Vary: Cookie and a one-year immutable cache. Any other
    /static/ path reaches Flask (security.py: no-cache, or no-store if missing).
    """
    app.extensions["hashed_static"] = {}
    if app.debug:
        return  # edits show at once: Flask serves static/ itself
    target = Path(app.instance_path) / "static"
    try:
        manifest = assets.build(Path(app.static_folder), target)
    except OSError as error:  # e.g. a read-only instance folder: slower, still correct
        log.warning("No se pudieron preparar los archivos estáticos comprimidos: %s", error)
        return
    from whitenoise import WhiteNoise

    from blueprints.security import CSP

    def add_headers(headers, _path: str, _url: str) -> None:
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Content-Security-Policy"] = CSP

    static = WhiteNoise(
        app.wsgi_app,
        max_age=None,
        allow_all_origins=False,
        add_headers_function=add_headers,
        immutable_file_test=lambda _path, _url: True,  # only hashed names are added
    )
    prefix = app.static_url_path.rstrip("/") + "/"
    for name in manifest.values():
        static.add_file_to_dictionary(prefix + name, str(target / name))
    app.wsgi_app = static
    app.extensions["hashed_static"] = manifest


def register_template_helpers(app: Flask) -> None:
    """Give templates asset URLs with a content hash, and Bogotá dates."""
    static = Path(app.static_folder)
    hashed = app.extensions.get("hashed_static", {})
    hashes: dict[str, str] = {}

    # field(f, help=None, class_="", wrapper_id=None, oob=None, live=False, **attributes):
    # a global, not a macro to import (an import costs each render a module look-up).
    app.jinja_env.globals["field"] = form_field

    urls: dict[tuple[str, str], str] = {}

    @app.template_global()
    def asset(path: str) -> str:
        if path in hashed:  # app.<hash>.css, served immutable by WhiteNoise
            # The same URL every time under one script root: built once (url_for is
            # a good part of a small page's time).
            key = (request.script_root, path)
            url = urls.get(key)
            if url is None:
                url = urls[key] = url_for("static", filename=hashed[path])
            return url
        # Debug, or a file added since start: Flask serves it, revalidated each time.
        if path not in hashes or app.debug:
            digest = hashlib.sha256((static / path).read_bytes()).hexdigest()[:10]
            hashes[path] = digest
        return url_for("static", filename=path, v=hashes[path])

    @app.template_filter("fecha")
    def fecha(value) -> str:
        return colombia.format_date(value) if value else ""

    @app.template_filter("fecha_hora")
    def fecha_hora(value) -> str:
        return colombia.format_datetime(value) if value else ""

    app.add_template_filter(colombia.document_type_name, "tipo_documento")
    from core.ips_accounts import format_nit

    app.add_template_filter(format_nit, "nit")  # 9001112221 → 900111222-1

    @app.template_filter("linkify")
    def linkify(text: str) -> Markup:
        linked = re.sub(r"(https?://[^\s<]+)", r'<a href="\1">\1</a>', str(escape(text)))
        return Markup(linked)  # noqa: S704 - built from escaped text only


def register_errors(app: Flask) -> None:
    """Show Spanish error pages instead of the framework's."""

    def page(code: int, template: str):
        def handler(_error):
            g.private = True
            return render_template(f"errors/{template}.html"), code

        return handler

    for code in (400, 403, 404, 405, 413, 429, 500):
        app.register_error_handler(code, page(code, str(code)))

    from flask_wtf.csrf import CSRFError

    app.register_error_handler(CSRFError, page(400, "csrf"))


def register_cli(app: Flask) -> None:
    """Attach the operator commands (SPEC K)."""

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or migrate the schema; safe to run at every deploy."""
        with models.db.connection_context():
            applied = dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
        click.echo(f"Esquema listo (migraciones aplicadas: {applied or 'ninguna'}).")

    @app.cli.group("import")
    def import_group() -> None:
        """Load master data from CSV files (all or nothing)."""

    def run_import(run, path: str) -> None:
        with models.db.connection_context():
            report = run(path)
        for line in report.summary_lines():
            click.echo(line)
        if not report.ok:
            raise SystemExit(1)

    @import_group.command("afiliados")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def import_afiliados(path: str) -> None:
        """Upsert the Caja's affiliates from PATH."""
        from core.importer import import_afiliados as run

        run_import(run, path)

    @import_group.command("convenios")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def import_convenios(path: str) -> None:
        """Upsert the convenio entities and their sedes from PATH (one row a sede)."""
        from core.convenios_data import import_convenios as run

        run_import(run, path)

    @import_group.command("ips")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def import_ips(path: str) -> None:
        """Upsert the EPS's IPS from PATH (load them before eps and autorizaciones)."""
        from core.eps_data import import_ips as run

        run_import(run, path)

    @import_group.command("eps")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def import_eps(path: str) -> None:
        """Upsert the EPS's affiliates and their núcleos familiares from PATH."""
        from core.eps_data import import_eps as run

        run_import(run, path)

    @import_group.command("autorizaciones")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def import_autorizaciones(path: str) -> None:
        """Upsert the EPS's medical authorizations from PATH."""
        from core.eps_data import import_autorizaciones as run

        run_import(run, path)

    @app.cli.command("create-staff")
    @click.argument("email")
    @click.option("--role", "roles", multiple=True, required=True, help="admin, afiliaciones, …")
    @click.option("--password", required=True, help="Follows the H1 password rules.")
    @click.option("--name", default="", help="The name shown in the back office.")
    @click.option("--totp-secret", default=None, help="Base32; without it, enrol at first login.")
    def create_staff(email, roles, password, name, totp_secret) -> None:
        """Create an active staff account for the back office (SPEC K)."""
        from blueprints.gestion.service import StaffError
        from blueprints.gestion.service import create_staff as run
        from core.permissions import Role

        unknown = [r for r in roles if r not in Role.__members__.values()]
        if unknown:
            raise click.ClickException(
                f"Rol desconocido: {', '.join(unknown)}. Use: {', '.join(Role)}."
            )
        with models.db.connection_context():
            try:
                account = run(email, roles, password, nombre=name, totp_secret=totp_secret)
            except StaffError as error:
                raise click.ClickException(str(error)) from error
        click.echo(f"Funcionario creado: {account.email} ({', '.join(roles)}).")

    @app.cli.command("demo-data")
    def demo_data() -> None:
        """Load the fake demo data set (Faker es_CO)."""
        from core.demo import load_demo, summary_lines

        with models.db.connection_context():
            dbmod.init_schema(models.db, models.MODELS, models.SchemaVersion)
            result = load_demo(upload_dir=app.config["UPLOAD_DIR"])
        for line in summary_lines(result):
            click.echo(line)

    @app.cli.command("backup")
    @click.argument("dest", type=click.Path(file_okay=False))
    def backup_command(dest: str) -> None:
        """Copy the database (a consistent snapshot) and UPLOAD_DIR into the new folder DEST."""
        from core import backup

        try:
            result = backup.backup(app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], dest)
        except backup.BackupError as error:
            raise click.ClickException(str(error)) from error
        except OSError as error:  # a full or read-only disk: what failed was removed
            raise click.ClickException(f"No se hizo el respaldo: {error}") from error
        for line in result.summary_lines(f"Respaldo listo en {dest}"):
            click.echo(line)
        click.echo(
            "SECRET_KEY no va en el respaldo: guárdela aparte. Sin ella los datos se "
            "restauran igual, pero las sesiones y los enlaces ya enviados dejan de valer."
        )

    @app.cli.command("restore")
    @click.argument("src", type=click.Path(exists=True, file_okay=False))
    @click.option("--force", is_flag=True, help="Replace a database that already has data.")
    def restore_command(src: str, force: bool) -> None:
        """Check the backup SRC against its manifest, then restore its database and files."""
        from core import backup

        try:
            result = backup.restore(
                src, app.config["DATABASE_URL"], app.config["UPLOAD_DIR"], force=force
            )
        except backup.BackupError as error:
            raise click.ClickException(str(error)) from error
        except OSError as error:
            raise click.ClickException(f"La restauración se detuvo: {error}") from error
        for line in result.summary_lines(f"Restaurado desde {src}"):
            click.echo(line)
        click.echo(
            "Inicie el portal con la misma SECRET_KEY de antes: con otra, todos deben ingresar "
            "de nuevo y los enlaces ya enviados dejan de valer."
        )

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="Deliver what is due and exit.")
    @click.option("--interval", default=2.0, help="Seconds between polls.")
    def worker(once: bool, interval: float) -> None:
        """Deliver queued e-mail and SMS, retrying with back-off."""
        senders = delivery_senders(app)
        retention = timedelta(hours=app.config["OUTBOX_BODY_RETENTION_HOURS"])
        # SIGTERM (systemd, a deploy, deploy/cluster.py stop): finish the message being
        # sent, claim no other, exit. A kill mid-send would leave its claim to expire
        # and that one message to go out again.
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        timing = dict(
            retry_seconds=app.config["OUTBOX_RETRY_SECONDS"],
            claim_seconds=app.config["OUTBOX_CLAIM_SECONDS"],
            stopping=stop.is_set,
        )
        while not stop.is_set():
            with models.db.connection_context():
                notify.purge_bodies(retention)
                counts = notify.deliver_due(senders, **timing)
            if any(counts.values()):
                click.echo(
                    f"enviados {counts['sent']}, reintentos {counts['retry']}, "
                    f"fallidos {counts['failed']}"
                )
            if once:
                if not any(counts.values()):
                    return  # drained: nothing more is due now
            else:
                stop.wait(interval)


def delivery_senders(app: Flask) -> dict:
    """Return the e-mail (SMTP, composed by Flask-Mail) and SMS senders for the worker."""
    from flask_mail import Message as MailMessage
    from flask_mail import sanitize_address

    timeout = notify.send_timeout(app.config["OUTBOX_CLAIM_SECONDS"])

    def send_email(message: models.Message) -> None:
        sender = app.config["MAIL_DEFAULT_SENDER"]
        with app.app_context():
            mail_message = MailMessage(
                subject=message.subject,
                recipients=[message.recipient],
                body=message.body_text,
                html=message.body_html or None,
                sender=sender,
            )
            mail_message.msgId = notify.message_id(message, app.config["SECRET_KEY"], sender)
            data = mail_message.as_bytes()
            state = app.extensions["mail"]  # read now: a test may init_app again
        if state.suppress:  # MAIL_SUPPRESS_SEND (on by default under TESTING), as Flask-Mail
            return
        send = notify.smtp_transport(
            state.server,
            state.port,
            timeout=timeout,
            use_tls=state.use_tls,
            use_ssl=state.use_ssl,
            username=state.username,
            password=state.password,
        )
        send(sanitize_address(sender), sanitize_address(message.recipient), data)

    sms = notify.sms_sender(
        app.config["SMS_BACKEND"],
        file=app.config["SMS_FILE"],
        url=app.config["SMS_HTTP_URL"],
        token=app.config["SMS_HTTP_TOKEN"],
        timeout=min(10.0, timeout),
    )
    return {models.Message.EMAIL: notify.smtp_sender(send_email), models.Message.SMS: sms}
