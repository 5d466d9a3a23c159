"""Run the portal as several servers on one machine: nginx, two app servers, two workers.

    DATABASE_URL=postgresql://… REDIS_URL=redis://… SECRET_KEY=… UPLOAD_DIR=/shared/uploads \\
        .venv/bin/python deploy/cluster.py start /tmp/cluster [--port 8080]
    .venv/bin/python deploy/cluster.py status /tmp/cluster
    .venv/bin/python deploy/cluster.py stop /tmp/cluster

``start`` applies the schema (``flask init-db``), starts two gunicorn servers on
their own loopback ports, two outbox workers (``flask worker``) and nginx in
front of them on 127.0.0.1:PORT, and returns once every server answers /salud.
Everything it makes lives in DIR: nginx.conf, one NAME.pid and NAME.log per
process, nginx's logs and temp files, and cluster.json (the addresses). The
processes run as the current user; they outlive this script and are ended by
``stop``, by the PIDs in DIR (TERM, then KILL after --timeout seconds).

The environment is the caller's (see README, Configuration), except PROXY_HOPS,
which is 1 here: nginx is the one proxy in front of the app servers. It is a
try-out of docs/deploy.md ("Several servers") on one machine, not a supervisor:
nothing restarts a process that dies (systemd does that in production).
Python's standard library only.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv's bin/ when run with .venv/bin/python

# The largest request body a view takes: the help desk's message with 5 files of
# 10 MB and 1 MB for the form (blueprints/ips/mesa.py, blueprints/gestion/mesa_service.py
# MAX_BODY). nginx refuses anything larger before the app sees it; the app keeps
# each route's own, smaller cap. tests/test_cluster.py checks this against the app.
CLIENT_MAX_BODY = 51 * 1024 * 1024

WEB = ("web-a", "web-b")
WORKERS = ("worker-1", "worker-2")
# Stop the door first, then the app servers, then the workers (they finish a send).
STOP_ORDER = ("nginx", *WEB, *WORKERS)
# A word each process's command line has: a PID file whose number now belongs to
# another program (reused after a crash) is not ours to signal.
MARK = {"nginx": "nginx", "web": "gunicorn", "worker": "worker"}

NGINX_CONF = """\
# Written by deploy/cluster.py: nginx in front of two app servers on loopback.
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections 512;
}}

http {{
    # No URI: activation, reset and QR paths carry one-time tokens. Who answered
    # each request ($upstream_addr) is here, not in a header.
    log_format cluster '$remote_addr [$time_local] $request_method $status $body_bytes_sent '
                       'upstream=$upstream_addr time=$request_time';
    access_log {dir}/nginx-access.log cluster;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server_tokens off;

    upstream portal {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name localhost 127.0.0.1;

        # The app's largest body; a bigger one gets 413 here, before any app server.
        client_max_body_size {max_body};
        # Read the whole request (a phone's slow upload) before a gunicorn thread
        # takes it, and take the whole answer from gunicorn at once (nginx sends it
        # on at the client's pace): a slow client never holds an app thread.
        proxy_request_buffering on;
        client_body_buffer_size 256k;
        proxy_buffering on;

        proxy_connect_timeout 5s;
        proxy_send_timeout 60s;
        proxy_read_timeout 60s;
        # Only a GET or HEAD whose server failed to answer is tried on the other one;
        # a POST is never sent twice.
        proxy_next_upstream error timeout;

        location / {{
            proxy_pass http://portal;
            proxy_set_header Host $http_host;
            # Overwritten here, so a client cannot choose them (PROXY_HOPS=1 trusts one hop).
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def program(name: str) -> str:
    """Return the virtualenv's NAME, else the one on PATH."""
    local = BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"cluster: no se encontró {name} (¿activó el entorno virtual?)")
    return found


def nginx_binary() -> str:
    found = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise SystemExit("cluster: falta nginx (Debian: apt-get install -y nginx).")
    return found


def nginx_conf(directory: Path, port: int, backends: list[int]) -> str:
    """Return the nginx.conf text: listen on 127.0.0.1:port, spread over backends."""
    user = ""
    if os.geteuid() == 0:  # nginx would hand its workers to "nobody": keep the caller
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in backends)
    return NGINX_CONF.format(
        user=user, dir=directory, servers=servers, port=port, max_body=CLIENT_MAX_BODY
    )


# --- processes by PID file -------------------------------------------------------------------


def kind(name: str) -> str:
    return name.split("-")[0]


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int, name: str) -> bool:
    """Tell whether pid runs and is still the process we started as name."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process now: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust the signal
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return state not in ("Z", "X") and MARK[kind(name)] in command


def pid_files(directory: Path) -> list[tuple[str, Path]]:
    found = {p.stem: p for p in directory.glob("*.pid")}
    ordered = [n for n in STOP_ORDER if n in found] + sorted(set(found) - set(STOP_ORDER))
    return [(n, found[n]) for n in ordered if kind(n) in MARK]


def running(directory: Path) -> dict[str, int]:
    """Return {name: pid} of the processes of DIR that still run."""
    out = {}
    for name, path in pid_files(directory):
        pid = read_pid(path)
        if pid is not None and alive(pid, name):
            out[name] = pid
    return out


def signal_group(pid: int, sig: int) -> None:
    """Signal pid's process group (each process leads its own: a gunicorn and its workers)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (never a bare kill: the number may be another's by now)


def stop(directory: Path, timeout: float = 10.0) -> int:
    """TERM every process of DIR, KILL what is left after timeout, wait; return 0."""
    targets = running(directory)
    for name, pid in targets.items():
        try:
            os.kill(pid, signal.SIGTERM)  # the leader only: gunicorn stops its own workers
        except ProcessLookupError:
            pass
        print(f"{name}: TERM {pid}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p, n) for n, p in targets.items()):
        time.sleep(0.05)
    for name, pid in targets.items():
        if alive(pid, name):
            signal_group(pid, signal.SIGKILL)
            print(f"{name}: KILL {pid} (seguía después de {timeout:g} s)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p, n) for n, p in targets.items()):
        time.sleep(0.05)
    for pid in targets.values():
        signal_group(pid, signal.SIGKILL)  # a gunicorn worker left behind by its master
    left = [n for n, p in targets.items() if alive(p, n)]
    for _name, path in pid_files(directory):
        path.unlink(missing_ok=True)
    if left:
        print(f"cluster: no terminaron: {', '.join(left)}", file=sys.stderr)
        return 1
    print("cluster: detenido")
    return 0


def status(directory: Path) -> int:
    """Print each process of DIR and whether it runs; 0 only when all of them do."""
    files = pid_files(directory)
    if not files:
        print(f"cluster: nada iniciado en {directory}")
        return 1
    up = running(directory)
    for name, path in files:
        pid = read_pid(path)
        print(f"{name}: {pid} {'en marcha' if name in up else 'detenido'}")
    info = directory / "cluster.json"
    if info.exists():
        print(f"url: {json.loads(info.read_text())['url']}")
    return 0 if len(up) == len(files) else 1


# --- start -------------------------------------------------------------------------------------


def cluster_env() -> dict[str, str]:
    env = dict(os.environ)
    missing = [
        k for k in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "UPLOAD_DIR") if not env.get(k)
    ]
    if missing:
        raise SystemExit(f"cluster: defina {', '.join(missing)} (varios servidores los comparten).")
    if not env["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("cluster: DATABASE_URL debe ser PostgreSQL: SQLite no se comparte.")
    env["PROXY_HOPS"] = "1"  # exactly one proxy, this nginx, in front of the app servers
    env["PYTHONUNBUFFERED"] = "1"  # each line reaches its log at once
    return env


def spawn(directory: Path, name: str, command: list[str], env: dict) -> subprocess.Popen:
    with (directory / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a Ctrl-C in this terminal leaves it be
        )
    (directory / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


def wait_ready(urls: dict[str, str], processes: dict[str, subprocess.Popen], seconds: float) -> str:
    """Wait until every url answers; return "" or what went wrong."""
    deadline = time.monotonic() + seconds
    waiting = dict(urls)
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            if processes[name].poll() is not None:
                return f"{name} terminó (código {processes[name].returncode})"
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        del waiting[name]
            except OSError:
                pass
        time.sleep(0.1)
    return f"{', '.join(waiting)} no respondió en {seconds:g} s" if waiting else ""


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(directory: Path, port: int, worker_interval: float, wait_seconds: float) -> int:
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if running(directory):
        print(f"cluster: ya está en marcha en {directory} (use stop primero)", file=sys.stderr)
        return 1
    env = cluster_env()
    nginx = nginx_binary()
    Path(env["UPLOAD_DIR"]).mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    backends = [free_port() for _ in WEB]

    conf = directory / "nginx.conf"
    conf.write_text(nginx_conf(directory, port, backends))
    nginx_args = [nginx, "-p", f"{directory}/", "-c", str(conf), "-e", str(directory / "nginx-error.log")]  # fmt: skip
    check = subprocess.run([*nginx_args, "-t", "-q"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        print(f"cluster: nginx.conf no es válido:\n{check.stderr}", file=sys.stderr)
        return 1

    threads = env.get("WEB_THREADS", "8")
    processes: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    for name, backend in zip(WEB, backends, strict=True):
        command = [
            program("gunicorn"), "-b", f"127.0.0.1:{backend}", "--threads", threads,
            "--graceful-timeout", "10",
            "--no-control-socket",  # one per user by default: two servers would share it
            "app:create_app()",
        ]  # fmt: skip
        processes[name] = spawn(directory, name, command, env)
        urls[name] = f"http://127.0.0.1:{backend}/salud"
    # The schema while the app servers boot (they touch the database only per request);
    # the workers poll the outbox at once, so they start after it.
    init = subprocess.run(
        [program("flask"), "--app", "app", "init-db"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        print(f"cluster: init-db falló:\n{init.stdout}{init.stderr}", file=sys.stderr)
        stop(directory)
        return 1
    for name in WORKERS:
        command = [program("flask"), "--app", "app", "worker", "--interval", f"{worker_interval:g}"]
        processes[name] = spawn(directory, name, command, env)
    # nginx only once both answer: a refused connection would mark a server down
    # for its fail_timeout (10 s), and the first requests would find none up.
    problem = wait_ready(urls, processes, wait_seconds)
    if not problem:
        processes["nginx"] = spawn(directory, "nginx", nginx_args, env)
        problem = wait_ready(
            {"nginx": f"http://127.0.0.1:{port}/salud"}, processes, min(wait_seconds, 10)
        )
    if not problem:
        problem = next((f"{n} terminó" for n in WORKERS if processes[n].poll() is not None), "")
    if problem:
        print(f"cluster: {problem}", file=sys.stderr)
        for name in processes:
            log = directory / ("nginx-error.log" if name == "nginx" else f"{name}.log")
            if text := tail(log):
                print(f"--- {log.name}\n{text}", file=sys.stderr)
        stop(directory)
        return 1
    info = {
        "url": f"http://127.0.0.1:{port}",
        "backends": {n: f"http://127.0.0.1:{p}" for n, p in zip(WEB, backends, strict=True)},
        "pids": {n: p.pid for n, p in processes.items()},
    }
    (directory / "cluster.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"cluster: en marcha en {info['url']} ({', '.join(info['backends'].values())})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    begin = sub.add_parser("start", help="init-db, then nginx, two app servers, two workers")
    begin.add_argument("dir", type=Path)
    begin.add_argument("--port", type=int, default=0, help="nginx's port (default: a free one)")
    begin.add_argument(
        "--worker-interval", type=float, default=2.0, help="seconds between outbox polls"
    )
    begin.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /salud")
    end = sub.add_parser("stop", help="TERM by PID, KILL after --timeout")
    end.add_argument("dir", type=Path)
    end.add_argument("--timeout", type=float, default=10.0)
    show = sub.add_parser("status", help="which processes run")
    show.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.dir, args.port, args.worker_interval, args.wait)
    if not args.dir.is_dir():
        print(f"cluster: {args.dir} no existe", file=sys.stderr)
        return 1
    if args.command == "stop":
        return stop(args.dir.resolve(), args.timeout)
    return status(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
