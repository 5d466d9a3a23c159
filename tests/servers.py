"""Start the real portal under gunicorn for tests that need whole processes."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask(env: dict, *args: str) -> str:
    """Run `flask --app app ARGS` with env; return its output (raise on failure)."""
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def gunicorn(
    env: dict, port: int, workers: int = 1, log_file: Path | None = None
) -> subprocess.Popen:
    """Start the portal on 127.0.0.1:port and wait until /salud answers.

    With log_file, the server's log and its access log go to that file, for tests
    that read what the server said (CSP reports, errors).
    """
    command = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    # gunicorn's control socket is one per user by default: servers started side by side
    # (and the suite on SQLite and on PostgreSQL at once) would share it.
    command.append("--no-control-socket")
    if log_file is not None:
        command += ["--access-logfile", "-"]
    command.append("app:create_app()")
    if log_file is not None:
        with log_file.open("w") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    else:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def output() -> str:
        if log_file is not None:
            return log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        return process.stderr.read().decode()[-2000:]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{output()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/salud", timeout=2):
                return process
        except OSError:  # not listening yet (URLError, reset, timeout)
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start in 30 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
