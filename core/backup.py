"""Back up the database and UPLOAD_DIR into one folder, and restore them, checked.

A backup folder holds::

    manifest.json        when, which database, row counts, sha256 of every other file
    database.sqlite3     SQLite: a copy made with the online backup API
    database.pgdump      PostgreSQL: ``pg_dump --format=custom`` (one schema if the URL names one)
    uploads/AA/BB/KEY    the uploaded files, under the same names as in UPLOAD_DIR

Consistency while the portal runs and writes: the database is copied first, as
one snapshot (SQLite's backup API in a single step; PostgreSQL's exported
snapshot, shared by the counts, the list of attachments and pg_dump), and the
files after it. An upload is written to disk before its row commits and is
never changed afterwards (core.files, core.uploads), so every file a row of the
snapshot names is already there; a file added later is only an orphan.

The manifest is written last: a folder without one is an unfinished backup, and
restore refuses it. Its checksums catch a damaged or edited copy; they are not a
signature (whoever can write the folder can write the manifest too), so keep
copies where the portal's own account cannot change them.

Nothing here reads SECRET_KEY and nothing of it is written: sessions, device
cookies and the links already mailed depend on it, so it is kept apart (see
docs/backup.md). The uploaded files are not encrypted, with it or otherwise:
a backup without the key still holds all the data, and is as sensitive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from core import uploads

FORMAT = "portal-hanna-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
UPLOADS = "uploads"
CHUNK = 1024 * 1024
# Rows here say nothing about the data: init-db writes the schema's version.
IGNORED_FOR_EMPTY = {"schema_version"}
_UPLOAD_PATH = re.compile(r"\A([A-Za-z0-9_-]{2})/([A-Za-z0-9_-]{2})/([A-Za-z0-9_-]{32})\Z")


class BackupError(Exception):
    """Why a backup or a restore was refused or failed, in Spanish for the operator."""


@dataclass
class Snapshot:
    counts: dict[str, int]
    attachments: dict[str, str]  # key -> sha256 recorded in its row
    schema_version: int | None
    schema: str | None = None


@dataclass
class Result:
    """What a backup or a restore did: the manifest it wrote or read, and its warnings."""

    manifest: dict
    warnings: list[str] = field(default_factory=list)
    restored_files: int = 0
    kept_files: int = 0

    def summary_lines(self, verb: str) -> list[str]:
        db = self.manifest["database"]
        where = f" (esquema {db['schema']})" if db.get("schema") else ""
        up = self.manifest["uploads"]
        lines = [
            f"{verb}: base de datos {db['kind']}{where}, {len(self.manifest['counts'])} tablas, "
            f"{sum(self.manifest['counts'].values())} filas; {up['files']} archivos "
            f"({_size(up['bytes'])}).",
            f"Respaldo del {self.manifest['created_at']}, versión del esquema "
            f"{db['schema_version']}.",
        ]
        if self.restored_files or self.kept_files:
            lines.append(
                f"Archivos copiados a UPLOAD_DIR: {self.restored_files}; ya estaban iguales: "
                f"{self.kept_files}."
            )
        lines += [f"Aviso: {w}" for w in self.warnings]
        return lines


# --- the database URL ---------------------------------------------------------------------


def database_kind(url: str) -> str:
    """Return "sqlite" or "postgresql" for a DATABASE_URL; BackupError for anything else."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme.split("+", 1)[0] in ("postgres", "postgresql", "postgresext"):
        return "postgresql"
    raise BackupError(
        f"No se puede respaldar una base de datos «{scheme}»: solo SQLite o PostgreSQL."
    )


def sqlite_path(url: str) -> Path:
    """Return the file a sqlite:/// URL names, read the way core.db opens it."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        raise BackupError("Una base de datos SQLite en memoria no se puede respaldar.")
    return Path(path)


@dataclass(frozen=True)
class PgTarget:
    conninfo: str  # without the password: it reaches the tools' environment only
    password: str | None
    schema: str | None  # the first schema of a search_path the URL's options set


def pg_target(url: str) -> PgTarget:
    """Split a postgresql:// DATABASE_URL into what libpq, pg_dump and pg_restore take."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    parts = urlsplit(url)
    params: dict[str, str] = {}
    if parts.hostname:
        params["host"] = unquote(parts.hostname)
    if parts.port:
        params["port"] = str(parts.port)
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.path.strip("/"):
        params["dbname"] = unquote(parts.path.lstrip("/"))
    # Only what libpq knows: a query may also carry peewee's own settings.
    known = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()} - {"password"}
    for key, value in parse_qsl(parts.query):
        if key in known:
            params[key] = value
    password = unquote(parts.password) if parts.password else None
    return PgTarget(make_conninfo(**params), password, _search_path_schema(params.get("options")))


def _search_path_schema(options: str | None) -> str | None:
    """Return the first schema of a ``-c search_path=…`` in libpq options (None without one)."""
    words = shlex.split(options or "")
    for i, word in enumerate(words):
        setting = None
        if word.startswith("-csearch_path=") or word.startswith("--search_path="):
            setting = word.split("=", 1)[1]
        elif word == "-c" and i + 1 < len(words) and words[i + 1].startswith("search_path="):
            setting = words[i + 1].split("=", 1)[1]
        if setting is not None:
            first = setting.split(",")[0].strip().strip('"')
            return first or None
    return None


def _pg_connect(target: PgTarget):
    import psycopg

    try:
        return psycopg.connect(target.conninfo, password=target.password, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise BackupError(f"No se pudo conectar a PostgreSQL: {error}") from error


def _pg_env(target: PgTarget) -> dict[str, str]:
    env = dict(os.environ)
    if target.password:
        env["PGPASSWORD"] = target.password  # not on the command line: `ps` shows that
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"No se encontró {name}: instale el cliente de PostgreSQL (paquete "
            "postgresql-client) de la misma versión del servidor o una más nueva."
        )
    return path


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    # A list, no shell: the tool's path from PATH, and our own arguments.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BackupError(f"{what} falló:\n" + "\n".join(detail))


def _pattern(schema: str) -> str:
    """Return schema as a pg_dump pattern that matches that name exactly."""
    return '"' + schema.replace('"', '""') + '"'


# --- backup ----------------------------------------------------------------------------------


def backup(database_url: str, upload_dir: str | os.PathLike, dest: str | os.PathLike) -> Result:
    """Write a new backup folder dest: database snapshot first, then the uploads, then the manifest."""
    kind = database_kind(database_url)
    dest = Path(dest)
    existed = _prepare_dest(dest)
    try:
        if kind == "sqlite":
            database_file = SQLITE_FILE
            snap = _sqlite_snapshot(sqlite_path(database_url), dest / SQLITE_FILE)
        else:
            database_file = PG_FILE
            snap = _pg_snapshot(pg_target(database_url), dest / PG_FILE)
        checksums = {database_file: _sha256_of(dest / database_file)}
        copied, skipped = _copy_uploads(Path(upload_dir), dest / UPLOADS)
        found = {rel.rsplit("/", 1)[1] for rel in copied}
        if snap.attachments and not found & snap.attachments.keys():
            # Not one of them: the command runs with another UPLOAD_DIR than the portal's.
            raise BackupError(
                f"Ninguno de los {len(snap.attachments)} archivos que nombra la base de datos "
                f"está en UPLOAD_DIR ({upload_dir}): ¿es el UPLOAD_DIR del portal? No se hizo "
                "el respaldo."
            )
        checksums.update({f"{UPLOADS}/{rel}": digest for rel, (digest, _) in copied.items()})
        warnings = _check_referenced(snap.attachments, copied)
        if skipped:
            warnings.append(
                f"{len(skipped)} archivos de UPLOAD_DIR no tienen nombre de archivo subido y no "
                f"se copiaron (p. ej. {skipped[0]})."
            )
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "database": {
                "kind": kind,
                "file": database_file,
                "schema": snap.schema,
                "schema_version": snap.schema_version,
            },
            "counts": snap.counts,
            "uploads": {
                "files": len(copied),
                "bytes": sum(size for _, size in copied.values()),
                "referenced": len(snap.attachments),
            },
            "secret_key": "no incluida: guárdela aparte (docs/backup.md)",
            "sha256": checksums,
        }
        _write_file(dest / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        _fsync_dir(dest)
    except BaseException:
        _discard(dest, existed)
        raise
    return Result(manifest, warnings)


def _prepare_dest(dest: Path) -> bool:
    """Create dest (owner only: it holds personal data); refuse one that has anything in it."""
    if dest.exists():
        if not dest.is_dir():
            raise BackupError(f"{dest} ya existe y no es una carpeta.")
        if any(dest.iterdir()):
            raise BackupError(
                f"La carpeta {dest} ya existe y no está vacía: indique una carpeta nueva."
            )
        return True
    try:
        dest.mkdir(mode=0o700, parents=True)
    except OSError as error:
        raise BackupError(f"No se pudo crear la carpeta {dest}: {error.strerror}.") from error
    return False


def _discard(dest: Path, existed: bool) -> None:
    """Remove what a failed backup wrote, so no half backup looks like a whole one."""
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _sqlite_snapshot(source: Path, target: Path) -> Snapshot:
    if not source.is_file():
        raise BackupError(f"No existe la base de datos SQLite {source}.")
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        dst = sqlite3.connect(target)
        try:
            # pages=-1 (the default): one step under one read transaction, so the
            # copy is one moment of the database while writers go on (WAL).
            src.backup(dst)
            # A file that stands alone: no -wal beside it is needed to read it.
            dst.execute("PRAGMA journal_mode = DELETE")
            snap = _sqlite_facts(dst)
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, 0o600)
    return snap


def _sqlite_facts(conn: sqlite3.Connection) -> Snapshot:
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608 - names from sqlite_master
    attachments = {}
    if "attachment" in tables:
        attachments = dict(conn.execute("SELECT key, sha256 FROM attachment"))
    version = None
    if "schema_version" in tables:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row else None
    return Snapshot(counts, attachments, version)


def _pg_snapshot(target: PgTarget, out: Path) -> Snapshot:
    import psycopg

    pg_dump = _tool("pg_dump")
    with _pg_connect(target) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # The counts, the attachment list and pg_dump all read this one snapshot.
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        schema = target.schema or conn.execute("SELECT current_schema()").fetchone()[0]
        snap = _pg_facts(conn, schema)
        snap.schema = target.schema
        command = [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot_id}"]
        if target.schema:
            command.append(f"--schema={_pattern(target.schema)}")
        command += ["--file", str(out), "--dbname", target.conninfo]
        _run(command, _pg_env(target), "pg_dump")
        conn.rollback()
    os.chmod(out, 0o600)
    return snap


def _pg_tables(conn, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s ORDER BY tablename",
        (schema,),
    ).fetchall()
    return [name for (name,) in rows]


def _pg_facts(conn, schema: str) -> Snapshot:
    from psycopg import sql

    tables = _pg_tables(conn, schema)

    def table(name: str):
        return sql.Identifier(schema, name)

    counts = {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table(t))).fetchone()[0]
        for t in tables
    }
    attachments = {}
    if "attachment" in tables:
        query = sql.SQL("SELECT key, sha256 FROM {}").format(table("attachment"))
        attachments = dict(conn.execute(query).fetchall())
    version = None
    if "schema_version" in tables:
        query = sql.SQL("SELECT max(version) FROM {}").format(table("schema_version"))
        version = conn.execute(query).fetchone()[0]
    return Snapshot(counts, attachments, version)


def _upload_files(upload_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (relative path, path) of every regular file under upload_dir but tmp/."""
    if not upload_dir.is_dir():
        return
    for root, dirs, files in os.walk(upload_dir):
        if Path(root) == upload_dir:
            dirs[:] = [d for d in dirs if d != "tmp"]  # uploads still being checked
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            yield path.relative_to(upload_dir).as_posix(), path


def _copy_uploads(upload_dir: Path, target: Path) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """Copy the stored files; return {relative path: (sha256, size)} and the paths skipped."""
    copied: dict[str, tuple[str, int]] = {}
    skipped: list[str] = []
    for rel, path in _upload_files(upload_dir):
        if not _is_upload_path(rel) or path.is_symlink():
            skipped.append(rel)
            continue
        out = target / rel
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            copied[rel] = _copy(path, out)
        except FileNotFoundError:
            continue  # removed meanwhile: an upload whose transaction failed
    return copied, skipped


def _is_upload_path(rel: str) -> bool:
    match = _UPLOAD_PATH.match(rel)
    return bool(match) and match[3][:2] == match[1] and match[3][2:4] == match[2]


def _check_referenced(attachments: dict[str, str], copied: dict[str, tuple[str, int]]) -> list[str]:
    """Tell about rows of the snapshot whose file is missing or differs from its recorded sha256."""
    by_key = {rel.rsplit("/", 1)[1]: digest for rel, (digest, _) in copied.items()}
    missing = sorted(k for k in attachments if k not in by_key)
    differs = sorted(k for k, d in attachments.items() if k in by_key and by_key[k] != d)
    warnings = []
    if missing:
        warnings.append(
            f"{len(missing)} adjuntos de la base de datos no tienen su archivo en UPLOAD_DIR "
            f"(p. ej. {missing[0]}): faltaban ya antes de este respaldo."
        )
    if differs:
        warnings.append(
            f"{len(differs)} archivos de UPLOAD_DIR no coinciden con el sha256 guardado en su "
            f"fila (p. ej. {differs[0]}): UPLOAD_DIR está dañado; revise el disco."
        )
    return warnings


# --- restore ---------------------------------------------------------------------------------


def restore(
    src: str | os.PathLike,
    database_url: str,
    upload_dir: str | os.PathLike,
    force: bool = False,
) -> Result:
    """Check a backup folder whole, then put its files into upload_dir and its database in place."""
    src = Path(src)
    manifest = read_manifest(src)
    verify(src, manifest)
    kind = database_kind(database_url)
    db = manifest["database"]
    if db["kind"] != kind:
        raise BackupError(
            f"El respaldo es de una base de datos {db['kind']} y DATABASE_URL apunta a una {kind}."
        )
    if kind == "sqlite":
        path = sqlite_path(database_url)
        _check_sqlite_source(src / db["file"])
        if not force and _sqlite_has_data(path):
            raise _not_empty()
    else:
        target = pg_target(database_url)
        if target.schema != db.get("schema"):
            raise BackupError(
                f"El respaldo es del esquema {db.get('schema') or '(toda la base)'} y "
                f"DATABASE_URL usa {target.schema or '(toda la base)'}: deben coincidir."
            )
        if not force and _pg_has_data(target):
            raise _not_empty()
    # Files before rows, as when they were uploaded: no restored row names a missing file.
    restored, kept = _restore_uploads(src, manifest, Path(upload_dir))
    if kind == "sqlite":
        counts = _restore_sqlite(src / db["file"], path)
    else:
        counts = _restore_pg(src / db["file"], target)
    wrong = [
        f"{t} {counts.get(t)} ≠ {n}" for t, n in manifest["counts"].items() if counts.get(t) != n
    ]
    if wrong:
        raise BackupError(
            "La base de datos restaurada no tiene las filas que el respaldo anota: "
            + ", ".join(wrong[:5])
        )
    result = Result(manifest, restored_files=restored, kept_files=kept)
    from core.db import migration_files

    steps = migration_files()
    head = steps[-1][0] if steps else 0
    version = db.get("schema_version")
    if version is not None and version < head:
        result.warnings.append(
            f"El respaldo es del esquema {version} y este código llega a {head}: ejecute "
            "`flask --app app init-db` antes de iniciar el portal."
        )
    elif version is not None and version > head:
        result.warnings.append(
            f"El respaldo es del esquema {version}, más nuevo que este código ({head}): "
            "inicie el portal con la versión que lo creó."
        )
    return result


def _not_empty() -> BackupError:
    return BackupError(
        "La base de datos de destino ya tiene datos: no se sobrescribe. Use --force para "
        "reemplazarla por el respaldo."
    )


def read_manifest(src: Path) -> dict:
    """Return the manifest of a backup folder, or BackupError if it is missing or not ours."""
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BackupError(
            f"{src} no tiene {MANIFEST}: no es un respaldo, o el respaldo no terminó."
        ) from error
    except (OSError, ValueError) as error:
        raise BackupError(f"No se pudo leer {src / MANIFEST}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{src / MANIFEST} no es un manifiesto de respaldo de este portal.")
    db = manifest.get("database") or {}
    sums = manifest.get("sha256") or {}
    if db.get("file") not in (SQLITE_FILE, PG_FILE) or db["file"] not in sums:
        raise BackupError(f"{src / MANIFEST} no nombra el archivo de la base de datos.")
    for rel in sums:
        if rel != db["file"] and not (
            rel.startswith(UPLOADS + "/") and _is_upload_path(rel[len(UPLOADS) + 1 :])
        ):
            raise BackupError(
                f"{src / MANIFEST} nombra un archivo que no es del respaldo: {rel!r}."
            )
    return manifest


def verify(src: Path, manifest: dict) -> None:
    """Refuse a backup in which any file is missing or differs from its sha256 in the manifest."""
    bad = []
    for rel, digest in sorted(manifest["sha256"].items()):
        path = src / rel
        if path.is_symlink() or not path.is_file():
            bad.append(f"falta {rel}")
        elif _sha256_of(path) != digest:
            bad.append(f"cambió {rel}")
    if bad:
        shown = "; ".join(bad[:5]) + (f" y {len(bad) - 5} más" if len(bad) > 5 else "")
        raise BackupError(
            f"El respaldo no coincide con su manifiesto ({shown}): no se restauró nada."
        )


def _restore_uploads(src: Path, manifest: dict, upload_dir: Path) -> tuple[int, int]:
    restored = kept = 0
    incoming = upload_dir / "tmp"
    incoming.mkdir(parents=True, exist_ok=True)
    for rel, digest in sorted(manifest["sha256"].items()):
        if not rel.startswith(UPLOADS + "/"):
            continue
        final = uploads.path_for(rel.rsplit("/", 1)[1], upload_dir)
        if final.is_file() and _sha256_of(final) == digest:
            kept += 1
            continue
        fd, tmp_name = tempfile.mkstemp(dir=incoming, prefix="restore-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            copied, _ = _copy(src / rel, tmp)
            if copied != digest:  # changed since verify() read it
                raise BackupError(f"El archivo {rel} del respaldo cambió durante la restauración.")
            os.chmod(tmp, 0o640)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        restored += 1
    return restored, kept


def _readonly(path: Path) -> sqlite3.Connection:
    # immutable: a backup file never changes, and the folder may be read-only (no -shm).
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1", uri=True)


def _check_sqlite_source(path: Path) -> None:
    conn = _readonly(path)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise BackupError(
            f"El archivo de base de datos del respaldo no es válido: {error}"
        ) from error
    finally:
        conn.close()
    if verdict != "ok":
        raise BackupError(f"El archivo de base de datos del respaldo está dañado: {verdict}")


def _sqlite_has_data(path: Path) -> bool:
    if not path.exists():
        return False
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=10)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return any(
            conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()  # noqa: S608 - from sqlite_master
            for t in tables
            if t not in IGNORED_FOR_EMPTY
        )
    finally:
        conn.close()


def _restore_sqlite(source: Path, target: Path) -> dict[str, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        # A -wal left by a deleted database would be replayed into the new file.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = _readonly(source)
    try:
        # The backup API writes through SQLite's own locks and journal: an old
        # database in WAL mode is replaced page by page, never left half new.
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")  # as core.db opens it
            return _sqlite_facts(dst).counts
        finally:
            dst.close()
    finally:
        src.close()


def _pg_has_data(target: PgTarget) -> bool:
    from psycopg import sql

    with _pg_connect(target) as conn:
        schema = target.schema or conn.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            return False  # a search_path naming a schema that does not exist (dropped)
        for name in _pg_tables(conn, schema):
            if name in IGNORED_FOR_EMPTY:
                continue
            query = sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, name))
            if conn.execute(query).fetchone():
                return True
    return False


def _restore_pg(dump: Path, target: PgTarget) -> dict[str, int]:
    command = [
        _tool("pg_restore"),
        "--clean",
        "--if-exists",
        # Objects belong to whoever restores (DATABASE_URL's user), and grants to
        # roles the new server may lack are left out: see docs/backup.md.
        "--no-owner",
        "--no-privileges",
        "--single-transaction",  # all or nothing: a failure leaves the database as it was
        "--exit-on-error",
        "--no-password",
        "--dbname",
        target.conninfo,
        str(dump),
    ]
    try:
        _run(command, _pg_env(target), "pg_restore")
    except BackupError as error:
        raise BackupError(f"{error}\nLa base de datos quedó como estaba.") from error
    with _pg_connect(target) as conn:
        schema = target.schema or conn.execute("SELECT current_schema()").fetchone()[0]
        return _pg_facts(conn, schema).counts


# --- files -------------------------------------------------------------------------------------


def _copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy source to target (fsynced, owner-only); return its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as f, open(target, "wb") as out:
        os.chmod(target, 0o600)
        while block := f.read(CHUNK):
            digest.update(block)
            out.write(block)
            size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        os.chmod(tmp, 0o600)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
