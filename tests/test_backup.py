"""Backups (issue 12): the restore drill over real processes, and the refusals of core.backup.

The drill, on the database the suite runs on (SQLite, or a fresh PostgreSQL
schema when DATABASE_URL says so): demo data, gunicorn, an IPS operator signs
in and attaches a file to a help-desk case, `flask backup` runs while the
operator keeps writing, the server stops, the database and UPLOAD_DIR are
destroyed, `flask restore` brings them back, a new server starts, the operator
signs in with the same password and downloads the same bytes.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import backup, uploads
from core import db as dbmod
from tests.sample_files import pdf_bytes
from tests.servers import flask, free_port, gunicorn, stop

PASSWORD = "Hanna2026Demo"  # the demo accounts' (core/demo.py)
NIT = "900111222-1"
CASE = 40914  # admision's, NUEVO in the demo
OTHER_CASE = 40913  # facturacion's, NUEVO
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- a small browser: cookies, CSRF from the page, forms with files ----------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def open(self, path: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get(self, path: str) -> tuple[int, str]:
        status, body = self.open(path)
        return status, body.decode()

    def token(self, form_page: str) -> str:
        return CSRF.search(self.get(form_page)[1]).group(1)

    def post(self, path: str, fields: dict, form_page: str, files=(), token=None) -> int:
        fields = {**fields, "csrf_token": token or self.token(form_page)}
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        for name, filename, content in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
                + content
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.open(path, body, headers)[0]

    def sign_in(self, correo: str) -> None:
        fields = {"nit": NIT, "correo": correo, "password": PASSWORD}
        assert self.post("/ips", fields, "/ips") == 303


def write_on_case(browser: Browser, numero: int, text: str, pdf=None, token=None) -> int:
    files = [("adjunto", "soporte.pdf", pdf)] if pdf else []
    url = f"/ips/solicitudes/{numero}"
    return browser.post(f"{url}/mensajes", {"texto": text}, url, files, token)


def unique_pdf(label: str) -> bytes:
    return pdf_bytes(f"BT /F1 12 Tf 72 720 Td (Respaldo {label}) Tj ET".encode())


# --- whole processes -----------------------------------------------------------------------------


def query(url: str, sql: str) -> list[tuple]:
    database = dbmod.open_database(url)
    try:
        cursor = database.execute_sql(sql)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        database.close()
        if hasattr(database, "close_all"):
            database.close_all()


POSTGRES = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = POSTGRES.startswith("postgres")


class Target:
    """A database and UPLOAD_DIR to back up or restore into: a SQLite file or a PostgreSQL schema."""

    def __init__(self, folder: Path, create: bool = True):
        self.upload_dir = folder / "uploads"
        if ON_POSTGRES:
            self.schema = f"bk_{uuid.uuid4().hex[:10]}"
            sep = "&" if "?" in POSTGRES else "?"
            # No wait for the WAL at each commit (as conftest): the demo's many commits.
            options = f"-csearch_path%3D{self.schema}%20-csynchronous_commit%3Doff"
            self.url = f"{POSTGRES}{sep}options={options}"
            if create:
                self.admin(f"CREATE SCHEMA {self.schema}")
        else:
            self.path = folder / "portal.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def admin(self, sql: str) -> list[tuple]:
        return query(POSTGRES, sql)

    def exists(self) -> bool:
        if ON_POSTGRES:
            found = self.admin(
                f"SELECT 1 FROM pg_namespace WHERE nspname = '{self.schema}'"  # noqa: S608
            )
            return bool(found)
        return self.path.exists()

    def destroy(self) -> None:
        if ON_POSTGRES:
            self.admin(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(self.upload_dir, ignore_errors=True)

    def env(self, secret: str) -> dict:
        return {
            "SECRET_KEY": secret,
            "DATABASE_URL": self.url,
            "UPLOAD_DIR": str(self.upload_dir),
            "REDIS_URL": "",
            "BASE_URL": "http://127.0.0.1",
            "CAPTCHA": "off",
            "DEV_MAILBOX": "true",  # the demo's @….test addresses sign in only on such a machine
            "SMS_BACKEND": "http",  # console and file start only on a development machine
            "SMS_HTTP_URL": "http://127.0.0.1:9/sms",  # nothing is sent here
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A demo portal backed up while an IPS operator writes; the server is stopped after."""
    folder = tmp_path_factory.mktemp("drill")
    target = Target(folder)
    env = target.env(f"respaldo-{uuid.uuid4().hex}{uuid.uuid4().hex}")
    servers = []
    done = threading.Event()
    started = time.monotonic()
    try:
        flask(env, "demo-data")
        port = free_port()
        servers.append(gunicorn(env, port))
        base = f"http://127.0.0.1:{port}"
        laura = Browser(base)
        laura.sign_in("admision@saludcaribe.test")
        uploaded = unique_pdf("original")
        assert write_on_case(laura, CASE, "Va la orden escaneada.", uploaded) == 303
        _, page = laura.get(f"/ips/solicitudes/{CASE}")
        link = re.search(rf'href="(/ips/solicitudes/{CASE}/adjuntos/\d+)" download>', page)
        assert link, "the case page links the file just attached"
        other = Browser(base)
        other.sign_in("facturacion@saludcaribe.test")

        writes: list[tuple[float, int]] = []

        def keep_writing(browser: Browser, numero: int) -> None:
            token = browser.token(f"/ips/solicitudes/{numero}")  # the session's, for every form
            for i in range(18):  # 20 a minute per account: stay under it
                if done.is_set():
                    return
                pdf = unique_pdf(f"{numero}-{i}") if i % 2 else None
                text = f"Mensaje {i} durante el respaldo."
                status = write_on_case(browser, numero, text, pdf, token)
                writes.append((time.monotonic(), status))
                time.sleep(0.05)

        writers = [
            threading.Thread(target=keep_writing, args=(laura, CASE)),
            threading.Thread(target=keep_writing, args=(other, OTHER_CASE)),
        ]
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 10
        while not writes:  # the writers are at it before the backup starts
            assert time.monotonic() < deadline, "no write got through"
            time.sleep(0.01)
        messages_before = query(target.url, "SELECT count(*) FROM mensaje_mesa")[0][0]
        dest = folder / "respaldo"
        began = time.monotonic()
        output = flask(env, "backup", str(dest))
        ended = time.monotonic()
        done.set()
        for writer in writers:
            writer.join()
        messages_after = query(target.url, "SELECT count(*) FROM mensaje_mesa")[0][0]
        stop(servers.pop())
        during = [status for at, status in writes if began <= at <= ended]
        assert during and set(during) == {303}, writes  # the server took writes meanwhile
        yield SimpleNamespace(
            target=target,
            env=env,
            dest=dest,
            output=output,
            uploaded=uploaded,
            download=link.group(1),
            messages=(messages_before, messages_after),
            setup_seconds=time.monotonic() - started,
        )
    finally:
        done.set()
        for server in servers:
            stop(server)
        target.destroy()


def files_in(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_restore_drill_brings_back_the_accounts_and_the_files(site):
    started = time.monotonic()
    assert "SECRET_KEY no va en el respaldo" in site.output
    manifest = json.loads((site.dest / "manifest.json").read_text())
    assert site.env["SECRET_KEY"] not in (site.dest / "manifest.json").read_text()
    assert manifest["database"]["kind"] == ("postgresql" if ON_POSTGRES else "sqlite")
    assert manifest["counts"]["attachment"] >= 7  # the demo's 6 and the one attached

    site.target.destroy()
    assert not site.target.exists() and not site.target.upload_dir.exists()
    restored = flask(site.env, "restore", str(site.dest))
    assert "Restaurado desde" in restored

    # The snapshot is one moment between the first and the last write of the backup's time.
    messages = query(site.target.url, "SELECT count(*) FROM mensaje_mesa")[0][0]
    assert site.messages[0] <= messages <= site.messages[1]
    # Every file a restored row names is there, with the bytes its row recorded.
    for key, digest in query(site.target.url, "SELECT key, sha256 FROM attachment"):
        path = uploads.path_for(key, site.target.upload_dir)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest

    port = free_port()
    server = gunicorn(site.env, port)
    try:
        laura = Browser(f"http://127.0.0.1:{port}")
        laura.sign_in("admision@saludcaribe.test")  # the same password, from the restored hash
        status, body = laura.open(site.download)
        assert status == 200 and body == site.uploaded
    finally:
        stop(server)
    drill = site.setup_seconds + time.monotonic() - started
    print(f"restore drill ({'PostgreSQL' if ON_POSTGRES else 'SQLite'}): {drill:.1f} s")


# The two refusals run the commands in this process (the CLI runner): a process each
# would cost a second of start-up for a check that reads files only.


@pytest.mark.slow
def test_restore_refuses_a_backup_with_one_byte_changed_and_restores_nothing(
    site, app, runner, tmp_path
):
    tampered = tmp_path / "cambiado"
    shutil.copytree(site.dest, tampered)
    copy = max(p for p in (tampered / "uploads").rglob("*") if p.is_file())
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    fresh = Target(tmp_path, create=False)  # a target that is not there yet
    try:
        app.config.update(DATABASE_URL=fresh.url, UPLOAD_DIR=str(fresh.upload_dir))
        answer = runner.invoke(args=["restore", "--force", str(tampered)])
        assert answer.exit_code == 1
        assert "no coincide con su manifiesto" in answer.output
        assert "cambió uploads/" in answer.output and "no se restauró nada" in answer.output
        assert not fresh.exists() and files_in(fresh.upload_dir) == {}
    finally:
        fresh.destroy()


@pytest.mark.slow
def test_backup_refuses_a_folder_that_is_not_empty(site, app, runner):
    before = files_in(site.dest)
    app.config.update(DATABASE_URL=site.target.url, UPLOAD_DIR=str(site.target.upload_dir))
    answer = runner.invoke(args=["backup", str(site.dest)])
    assert answer.exit_code == 1 and "ya existe y no está vacía" in answer.output
    assert files_in(site.dest) == before


# --- core.backup on its own (SQLite files, no processes) -----------------------------------------


@pytest.fixture
def small(tmp_path):
    """A SQLite database with two attachments whose files are in UPLOAD_DIR."""
    upload_dir = tmp_path / "uploads"
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_version (version) VALUES (0)")
    conn.execute("CREATE TABLE attachment (id INTEGER PRIMARY KEY, key TEXT, sha256 TEXT)")
    keys = []
    for label in ("uno", "dos"):
        stored = uploads.store([unique_pdf(label)], f"{label}.pdf", uploads.HELP_DESK, upload_dir)
        conn.execute(
            "INSERT INTO attachment (key, sha256) VALUES (?, ?)", (stored.key, stored.sha256)
        )
        keys.append(stored.key)
    conn.commit()
    conn.close()
    return SimpleNamespace(url=f"sqlite:///{path}", path=path, upload_dir=upload_dir, keys=keys)


def test_backup_and_restore_of_a_sqlite_file_round_trip(small, tmp_path):
    result = backup.backup(small.url, small.upload_dir, tmp_path / "b")
    assert result.warnings == []
    assert result.manifest["counts"] == {"attachment": 2, "schema_version": 1}
    assert result.manifest["uploads"] == {
        "files": 2,
        "bytes": result.manifest["uploads"]["bytes"],
        "referenced": 2,
    }
    assert oct((tmp_path / "b").stat().st_mode & 0o777) == "0o700"
    target = tmp_path / "otro" / "db.sqlite3"
    again = backup.restore(tmp_path / "b", f"sqlite:///{target}", tmp_path / "otro" / "up")
    assert again.restored_files == 2
    assert files_in(tmp_path / "otro" / "up") == files_in(small.upload_dir)
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM attachment").fetchone()[0] == 2
    conn.close()


def test_a_database_with_data_is_replaced_only_with_force(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    conn = sqlite3.connect(small.path)
    conn.execute("INSERT INTO attachment (key, sha256) VALUES ('nueva', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(backup.BackupError, match="ya tiene datos"):
        backup.restore(tmp_path / "b", small.url, small.upload_dir)
    backup.restore(tmp_path / "b", small.url, small.upload_dir, force=True)
    conn = sqlite3.connect(small.path)
    assert conn.execute("SELECT count(*) FROM attachment").fetchone()[0] == 2
    conn.close()


def test_an_initialised_empty_database_is_not_data(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    target = tmp_path / "vacia.sqlite3"
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_version (version) VALUES (0)")  # what init-db leaves
    conn.execute("CREATE TABLE attachment (id INTEGER PRIMARY KEY, key TEXT, sha256 TEXT)")
    conn.commit()
    conn.close()
    backup.restore(tmp_path / "b", f"sqlite:///{target}", tmp_path / "up")


def test_a_row_whose_file_is_gone_is_told_about(small, tmp_path):
    uploads.remove(small.keys[0], small.upload_dir)
    result = backup.backup(small.url, small.upload_dir, tmp_path / "b")
    assert any("no tienen su archivo" in w for w in result.warnings)


def test_a_backup_run_with_another_upload_dir_fails_instead_of_missing_every_file(small, tmp_path):
    with pytest.raises(backup.BackupError, match="¿es el UPLOAD_DIR del portal?"):
        backup.backup(small.url, tmp_path / "otra", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_changed_database_copy_is_refused(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    with open(tmp_path / "b" / backup.SQLITE_FILE, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(backup.BackupError, match="cambió database.sqlite3"):
        backup.restore(tmp_path / "b", f"sqlite:///{tmp_path / 'nuevo.sqlite3'}", tmp_path / "up")
    assert not (tmp_path / "nuevo.sqlite3").exists() and not (tmp_path / "up").exists()


def test_a_manifest_naming_a_path_outside_uploads_is_refused(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    manifest_path = tmp_path / "b" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    (tmp_path / "b" / "uploads" / "x").write_bytes(b"x")
    manifest["sha256"]["uploads/../../../x"] = hashlib.sha256(b"x").hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="no es del respaldo"):
        backup.restore(tmp_path / "b", f"sqlite:///{tmp_path / 'n.sqlite3'}", tmp_path / "up")


def test_an_unfinished_backup_without_manifest_is_refused(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    (tmp_path / "b" / "manifest.json").unlink()
    with pytest.raises(backup.BackupError, match="no terminó"):
        backup.restore(tmp_path / "b", f"sqlite:///{tmp_path / 'n.sqlite3'}", tmp_path / "up")


def test_a_non_empty_folder_is_refused_and_left_as_it_was(small, tmp_path):
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / "notas.txt").write_text("mías")
    with pytest.raises(backup.BackupError, match="no está vacía"):
        backup.backup(small.url, small.upload_dir, dest)
    assert files_in(dest) == {"notas.txt": "mías".encode()}


def test_a_failed_backup_leaves_no_folder_behind(tmp_path):
    with pytest.raises(backup.BackupError, match="No existe la base de datos"):
        backup.backup(f"sqlite:///{tmp_path / 'no.sqlite3'}", tmp_path / "up", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_sqlite_backup_is_not_restored_into_postgresql(small, tmp_path):
    backup.backup(small.url, small.upload_dir, tmp_path / "b")
    with pytest.raises(backup.BackupError, match="sqlite y DATABASE_URL apunta a una postgresql"):
        backup.restore(tmp_path / "b", "postgresql://nadie@127.0.0.1:9/x", tmp_path / "up")


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("postgresql://u@h/db?options=-csearch_path%3Dbk_1", "bk_1"),
        ("postgresql://u@h/db?options=-c%20search_path%3Dbk_2,public", "bk_2"),
        ("postgresql://u@h/db?options=-csearch_path%3Dt_1%20-csynchronous_commit%3Doff", "t_1"),
        ("postgresql://u@h/db?options=-csynchronous_commit%3Doff", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_the_schema_comes_from_the_urls_search_path(url, schema):
    assert backup.pg_target(url).schema == schema


def test_the_password_and_peewees_settings_stay_out_of_the_tools_command_line():
    target = backup.pg_target(
        "postgresql://app:s%40cret@db.local:5433/portal?max_connections=20&sslmode=require"
    )
    assert target.password == "s@cret"
    assert "cret" not in target.conninfo and "max_connections" not in target.conninfo
    assert "sslmode=require" in target.conninfo and "port=5433" in target.conninfo
