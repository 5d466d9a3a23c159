"""Lighthouse, mobile, on the main page of every journey: the median of 3 runs per page.

Run from the project root:  .venv/bin/python bench/lighthouse.py [--runs 3] [--reports DIR]
Takes about 7 minutes on the development machine (8 pages × 3 runs of 13–18 s, plus
the portal's start and the sign-ins; the staff's second factor may wait up to 30 s).

Lighthouse comes from npm into a folder of the project, pinned; the script installs it
there when it is missing (install_lighthouse()), with exactly:

    cp bench/lighthouse-npm/package*.json .cache/lighthouse/ && npm install --prefix .cache/lighthouse

12.8.2 is the last Lighthouse that runs on Node 20 (13.x wants Node >= 22.19). Chromium is
Debian's /usr/bin/chromium (CHROME_PATH), headless: --chrome-flags="--headless=new --no-sandbox".

What one run does: bench/common.py's Portal (temporary SQLite, demo data, gunicorn with 2
workers × 4 threads, rate limits off), the demo accounts signed in over HTTP, then for each
page `--runs` Lighthouse runs (mobile form factor, simulated throttling: Lighthouse's
default "Slow 4G", 150 ms RTT, 1.6 Mbit/s, CPU 4× slower), performance and accessibility
categories only. It prints per page the median of each figure over the runs: performance
score, FCP, LCP, TBT, CLS, total byte weight, accessibility score; and the accessibility
audits that fail. Each figure goes to --json PATH for bench/run.py, informational (no budget).

Signed-in pages: the session cookie goes in `--extra-headers '{"Cookie": ...}'`, which
Lighthouse sets on every request of the page (Network.setExtraHTTPHeaders). Lighthouse still
resets the origin's storage before each run (its default: a cold cache, what it is meant to
measure); that clears the browser's own cookies, not this header, so no run signs the session
out. Each run is checked all the same: the page Lighthouse ended on must be the page asked for
with status 200 (a dropped session is answered with a redirect to a login page), and the
session must still open the page over HTTP after the run. Otherwise the figures are not of
that page: the script says so and exits 1, as on any run that fails to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Figures, Portal  # noqa: E402
from bench.journeys import GENESIS_REQUEST, Accounts, print_table, still_signed_in  # noqa: E402

LIGHTHOUSE_VERSION = "12.8.2"
LIGHTHOUSE_DIR = ROOT / ".cache" / "lighthouse"
LIGHTHOUSE = LIGHTHOUSE_DIR / "node_modules" / ".bin" / "lighthouse"
# The dependency tree is pinned (bench/lighthouse-npm/package-lock.json, which npm
# install follows): a fresh resolution of lighthouse@12.8.2 asked the registry for a
# release it does not have (tar-stream ^3.3.0, on 2026-12-03).
LOCK_DIR = ROOT / "bench" / "lighthouse-npm"
INSTALL = [
    "npm",
    "install",
    "--prefix",
    ".cache/lighthouse",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
]
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CHROME_FLAGS = "--headless=new --no-sandbox"
SECTION = "Lighthouse mobile (median)"
RETRIES = 1  # Lighthouse now and then fails to record the trace on a busy machine

# (page, path, demo account or None): the main page of every journey.
PAGES = [
    ("Registro", "/registro", None),
    ("Hanna, ingreso", "/", None),
    ("Hanna, inicio", "/inicio", "hanna"),
    ("Convenios, consulta", "/convenios/", "desk"),
    ("Génesis, oficina", "/genesis/oficina", "genesis"),
    ("Génesis, solicitud", GENESIS_REQUEST, "genesis"),
    ("IPS, mesa de ayuda", "/ips/mesa", "ips"),
    ("Gestión, cola de la mesa", "/gestion/mesa", "staff"),
]
# (key, column, unit, audit id or category, scale): what is read from each report.
METRICS = [
    ("performance", "perf", "score", "category", 1),
    ("FCP", "FCP s", "s", "first-contentful-paint", 0.001),
    ("LCP", "LCP s", "s", "largest-contentful-paint", 0.001),
    ("TBT", "TBT ms", "ms", "total-blocking-time", 1),
    ("CLS", "CLS", "", "cumulative-layout-shift", 1),
    ("weight", "KB", "KB", "total-byte-weight", 1 / 1024),
    ("accessibility", "a11y", "score", "category", 1),
]


class MeasureError(Exception):
    """A run that gave no figures, or figures of another page."""


class LighthouseFailed(MeasureError):
    """Lighthouse itself failed (e.g. NO_NAVSTART, "Please run Lighthouse again"): retried."""


def installed_version() -> str | None:
    package = LIGHTHOUSE_DIR / "node_modules" / "lighthouse" / "package.json"
    if not LIGHTHOUSE.exists() or not package.exists():
        return None
    return json.loads(package.read_text()).get("version")


def install_lighthouse() -> None:
    """Install the pinned Lighthouse into .cache/lighthouse unless it is there already."""
    if installed_version() == LIGHTHOUSE_VERSION:
        return
    print(f"installing Lighthouse {LIGHTHOUSE_VERSION}: {' '.join(INSTALL)}", flush=True)
    LIGHTHOUSE_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(LOCK_DIR / name, LIGHTHOUSE_DIR / name)
    subprocess.run(INSTALL, cwd=ROOT, check=True)
    if installed_version() != LIGHTHOUSE_VERSION:
        raise MeasureError(f"npm did not install lighthouse@{LIGHTHOUSE_VERSION}")


def descendants(pid: int) -> list[int]:
    """The processes below pid, read from /proc (Chrome is started in its own group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop Lighthouse and the Chrome it started (SIGINT: chrome-launcher then kills Chrome)."""
    below = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in below:  # whatever outlived it, by its own id
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_lighthouse(url: str, cookie: str, report: Path) -> dict:
    """One Lighthouse run of url; return its report (the LHR)."""
    report.unlink(missing_ok=True)  # a failed run's report is not this one's
    cmd = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={report}",
        "--quiet",
        "--only-categories=performance,accessibility",
        f"--chrome-flags={CHROME_FLAGS}",
    ]
    if cookie:
        cmd += ["--extra-headers", json.dumps({"Cookie": cookie})]
    env = dict(os.environ, CHROME_PATH=CHROME)
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = proc.communicate(timeout=180)
    except BaseException:  # Ctrl-C, SIGTERM or the timeout: leave no Chrome behind
        stop_tree(proc)
        raise
    if proc.returncode or not report.exists():
        raise LighthouseFailed(f"lighthouse exited {proc.returncode}: {err.strip()[-800:]}")
    return json.loads(report.read_text())


def read_report(lhr: dict, path: str) -> dict:
    """The figures of one run, after checking that they are of path (not a login page)."""
    if lhr.get("runtimeError"):
        raise MeasureError(f"Lighthouse: {lhr['runtimeError'].get('message')}")
    final = lhr.get("mainDocumentUrl") or lhr.get("finalDisplayedUrl") or ""
    if urlsplit(final).path != path:
        raise MeasureError(f"Lighthouse ended on {final}, not {path}: signed out? run invalid")
    documents = [
        item
        for item in lhr["audits"]["network-requests"]["details"]["items"]
        if item.get("resourceType") == "Document" and item.get("url") == final
    ]
    if not documents or documents[0].get("statusCode") != 200:
        status = documents[0].get("statusCode") if documents else None
        raise MeasureError(f"{path} answered {status} to Lighthouse")
    figures = {}
    for key, _, _, source, scale in METRICS:
        if source == "category":
            value = lhr["categories"][key]["score"]
        else:
            value = lhr["audits"][source]["numericValue"]
        if value is None:
            raise MeasureError(f"no {key} in the report of {path}")
        figures[key] = value * scale
    figures["a11y failing"] = sorted(
        audit_id
        for audit_id, audit in lhr["audits"].items()
        if audit_id in {ref["id"] for ref in lhr["categories"]["accessibility"]["auditRefs"]}
        and audit.get("scoreDisplayMode") == "binary"
        and audit.get("score") == 0
    )
    return figures


def measure_page(accounts: Accounts, name: str, path: str, account, runs: int, tmp: Path):
    client = accounts.client(account)
    path = accounts.path(path)
    results = []
    for n in range(runs):
        if account and not still_signed_in(client, path):
            raise MeasureError(f"{name}: the session no longer opens {path} before run {n + 1}")
        report = tmp / f"{path.strip('/').replace('/', '_') or 'root'}-{n + 1}.json"
        url = f"http://127.0.0.1:{accounts.port}{path}"
        for attempt in range(1 + RETRIES):
            try:
                lhr = run_lighthouse(url, client.cookie_header, report)
                break
            except LighthouseFailed as error:
                if attempt == RETRIES:
                    raise
                print(f"  {name}: run {n + 1} again: {error}", file=sys.stderr, flush=True)
        results.append(read_report(lhr, path))
        if account and not still_signed_in(client, path):
            raise MeasureError(f"{name}: Lighthouse run {n + 1} signed the session out")
    return path, results


def fmt(value: float, unit: str) -> str:
    if unit == "score":
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.2f}"
    if unit == "KB":
        return f"{value:.1f}"
    if unit == "ms":
        return f"{value:.0f}"
    return f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (median)")
    parser.add_argument("--json", metavar="PATH", help="write the figures there (bench/run.py)")
    parser.add_argument("--reports", metavar="DIR", help="keep every Lighthouse JSON report there")
    parser.add_argument(
        "--only", metavar="PATH", action="append", help="only pages whose path has this (repeat)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    figures = Figures(args.json)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="hanna-lighthouse-"))
    rows, failures = [], []
    try:
        install_lighthouse()
        pages = [p for p in PAGES if not args.only or any(o in p[1] for o in args.only)]
        with Portal() as portal:
            port = portal.start(workers=2, threads=4)
            accounts = Accounts(port)
            for name, path, account in pages:
                try:
                    path, results = measure_page(accounts, name, path, account, args.runs, tmp)
                except (MeasureError, RuntimeError) as error:
                    print(f"{name}: {error}", file=sys.stderr, flush=True)
                    failures.append(name)
                    continue
                medians = {key: statistics.median(r[key] for r in results) for key, *_ in METRICS}
                failing = sorted({a for r in results for a in r["a11y failing"]})
                rows.append((name, path, medians, failing))
                for key, _, unit, _, _ in METRICS:
                    figures.add(SECTION, f"{name} ({path}): {key}", round(medians[key], 4), unit)
                print(f"  {name}: done ({len(results)} runs)", file=sys.stderr, flush=True)
    except (MeasureError, RuntimeError, subprocess.CalledProcessError) as error:
        print(error, file=sys.stderr)
        failures.append("setup")
    finally:
        if args.reports:
            shutil.copytree(tmp, args.reports, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\nLighthouse {LIGHTHOUSE_VERSION}, mobile, simulated Slow 4G + CPU 4×; "
        f"median of {args.runs} runs per page"
    )
    header = ["page", "path"] + [column for _, column, *_ in METRICS]
    table = [header] + [
        [name, path] + [fmt(m[key], unit) for key, _, unit, _, _ in METRICS]
        for name, path, m, _ in rows
    ]
    print_table(table)
    for _, path, _, failing in rows:
        if failing:
            print(f"accessibility audits failing on {path}: {', '.join(failing)}")
    print(f"took {time.monotonic() - started:.0f} s")
    figures.write()
    if failures:
        print(f"FAILED to measure: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything started is stopped by then (the finally blocks)
        sys.exit(130)
