"""Server throughput of the portal's hot paths, as ratios to a bare Flask endpoint, with wrk.

Run from the project root:  .venv/bin/python bench/throughput.py [--help]

One run, one portal (the demo data on a temporary SQLite file, or a PostgreSQL
schema with --database-url), one bare Flask app (bench/bare.py), both under the
same gunicorn settings. wrk (Debian's package; C, so the load generator is not
the bottleneck) loads each target in turn with the same connections, a warm-up
then a measured window, and a Lua script that counts every answer whose status
is not the one the journey expects. Targets:

  bare           GET  /  of bench/bare.py (a fixed 1.2 KB fragment)
  salud          GET  /salud of the portal (its health check: no database, no
                 session; every request pays at least this: the floor of the
                 portal's own middleware, sessions, CSRF, security headers)
  registro       POST /registro/consulta, HX-Request (the look-up partial; CSRF on)
  convenios      POST /convenios/consultar, HX-Request (the desk, a sede chosen)
  inicio         GET  /inicio signed in as the demo affiliate (a full page)
  quiz           POST /activar/<token>: correct answers to a started quiz (303 →
                 signed in); each request a different pending account, made
                 beforehand in the same database
  sondeo         GET  /ips/solicitudes/<n>/nuevos?despues=<last> (the case
                 thread's poll, nothing new: 204)
  sondeo-min     GET  /sondeo of bench/bare.py: the least a Flask poll can do
                 (a signed session cookie, two indexed SQLite queries, 204;
                 no ORM, CSRF, security headers or compression): the ceiling
                 the portal's poll is measured under

This machine's speed drifts by tens of per cent within minutes (a shared host):
each target's window is paired with a bare window just before it, for several
rounds, and the ratio printed is the median of the rounds' ratios (their range
beside it).

Rate limits are off (bench/portal_app.py) and the Convenios quotas raised, or
the bench would measure the 429 page. Goals (issue 12): look-up partials ≥ 0.5
of bare, a full signed-in page ≥ 0.35, the poll ≥ 0.6.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ACCEPT,
    FORM,
    Client,
    Figures,
    Portal,
    sign_in_desk,
    sign_in_hanna,
    sign_in_ips,
)

GOALS = {"registro": 0.5, "convenios": 0.5, "inicio": 0.35, "sondeo": 0.6}
WRK = shutil.which("wrk") or "/usr/bin/wrk"

# Each thread of wrk runs its own Lua state: counters are read back in done().
LUA = r"""
lines, bad, first_bad, n = {}, 0, "", 0  -- globals: done() reads them per thread
local expect = tonumber(os.getenv("BENCH_EXPECT"))
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local file = os.getenv("BENCH_LINES")
  if file then
    local step, i = tonumber(os.getenv("BENCH_THREADS")), 0
    for line in io.lines(file) do
      if i % step == id then table.insert(lines, line) end
      i = i + 1
    end
  end
end
function request()
  if #lines > 0 then
    n = n + 1
    if lines[n] == nil then return wrk.format("GET", "/agotado") end  -- counted as bad
    local path, body = lines[n]:match("^(%S+) (.*)$")
    return wrk.format("POST", path, nil, body)
  end
  return wrk.request()
end
function response(status, headers, body)
  if status ~= expect then
    bad = bad + 1
    if first_bad == "" then first_bad = tostring(status) end
  end
end
function done(summary, latency, requests)
  local total_bad, example = 0, ""
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
    if example == "" then example = t:get("first_bad") end
  end
  io.write("BENCH-JSON ", string.format(
    '{"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "bad": %d, "example": "%s",' ..
    ' "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, total_bad, example,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""


def wrk(url: str, method: str, body: str, headers: dict, expect: int, args, lines=None) -> dict:
    """Run wrk (warm-up, then the measured window) and return its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        lua = LUA
        setup = f"wrk.method = {json.dumps(method)}\nwrk.body = {json.dumps(body)}\n"
        for name, value in headers.items():
            setup += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
        script.write_text(setup + lua)
        env = {"BENCH_EXPECT": str(expect), "BENCH_THREADS": str(args.threads_wrk)}
        results = []
        for seconds in (args.warmup, args.duration):
            if lines is not None:
                part = Path(tmp) / f"lines{seconds}"
                take = lines[: args.quiz_per_window]
                del lines[: args.quiz_per_window]
                part.write_text("\n".join(take) + "\n")
                env["BENCH_LINES"] = str(part)
            cmd = [WRK, f"-t{args.threads_wrk}", f"-c{args.connections}", f"-d{seconds}s"]
            cmd += ["--timeout", "10s", "-s", str(script), url]
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=env, check=False, timeout=seconds + 60
            )
            found = re.search(r"^BENCH-JSON (.*)$", done.stdout, re.M)
            if done.returncode or not found:
                raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
            results.append(json.loads(found.group(1)))
        measured = results[1]
        measured["rps"] = measured["requests"] / measured["seconds"]
        return measured


def prepare_quiz(count: int, out: Path, first: int = 0) -> None:
    """(In the portal's environment.) Make count pending accounts with a started quiz.

    Numbered from first on: each round makes its own, just before it runs, since a
    started quiz ends after QUIZ_IDLE (2 min) without an answer.

    They all belong to the demo affiliate Ana (CC 1000000001), whose bank is
    drawn once; each line of out is "PATH BODY": the activation URL and the
    correct answers, the CSRF token left for the caller to add.
    """
    from app import create_app
    from blueprints.accounts import service
    from core import passwords
    from models import Account, Afiliado, HannaUser, db

    app = create_app()
    with app.app_context(), db.connection_context():
        ana = Afiliado.find("CC", "1000000001")
        password_hash = passwords.hash_password("Bench2026Quiz!")
        lines = []
        with db.atomic():
            for i in range(first, first + count):
                user = HannaUser.create_account(
                    email=f"quiz{i}@bench.test",
                    tipo_documento="CE",
                    numero_documento=str(900000000 + i),
                    primer_nombre="BENCH",
                    primer_apellido="QUIZ",
                    fecha_nacimiento=ana.fecha_nacimiento,
                    celular=ana.celular,
                    afiliado=ana,
                    password_hash=password_hash,
                    status=Account.PENDING,
                )
                result, attempt, _ = service.start_quiz(user)
                assert result is service.QuizResult.STARTED, result
                link = service.activation_link(user, secret=app.config["SECRET_KEY"], base_url="")
                answers = {"intento": str(attempt.id)}
                for question in json.loads(attempt.questions):
                    answers[question["key"]] = str(question["answer"])
                from urllib.parse import urlencode

                lines.append(f"{link} {urlencode(answers)}")
    out.write_text("\n".join(lines) + "\n")


# What each target is held to besides bare: the stack's own floor in the same run
# (the poll: the least Flask poll; the others: the portal's health check).
FLOORS = {"sondeo": "sondeo-min", "registro": "salud", "convenios": "salud", "inicio": "salud"}


def _floors_and_capacity(figures: Figures, section: str, medians: dict) -> None:
    """Print each target against its floor, and what one server of this kind carries."""
    from blueprints.ips.mesa import POLL_SECONDS

    print("  against the stack's floor, and what this 2-core server carries:")
    for name, floor in FLOORS.items():
        if name not in medians or floor not in medians:
            continue
        ratio = medians[name] / medians[floor]
        if name == "sondeo":
            carries = f"{medians[name] * POLL_SECONDS:,.0f} open case pages (a poll every {POLL_SECONDS} s)"
            figures.add(section, "open case pages per server", round(medians[name] * POLL_SECONDS))
        else:
            carries = f"{medians[name]:,.0f} a second"
        print(f"  {name:<11} {ratio:>5.2f} of {floor:<10}  {carries}")
        figures.add(section, f"{name} ratio to {floor}", round(ratio, 2), "×")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="gunicorn threads per worker (1: sync workers, as behind nginx; see bench/README.md)",
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--threads-wrk", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=int, default=5, help="measured seconds per window")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured seconds first")
    parser.add_argument(
        "--rounds", type=int, default=3, help="windows per target, each after a bare one"
    )
    parser.add_argument(
        "--quiz-per-window",
        type=int,
        default=5000,  # 2,000 ran out at ~450 quiz answers a second (2026-12-06)
        help="quiz accounts per window (at least the window's seconds × the quiz's req/s)",
    )
    parser.add_argument("--only", default="", help="comma-separated targets (default: all)")
    parser.add_argument("--database-url", default="", help="postgresql://… (a throwaway schema)")
    parser.add_argument("--json", help="write the figures here for bench/run.py")
    parser.add_argument("--prepare-quiz", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_quiz:
        prepare_quiz(args.prepare_quiz, Path(args.out), args.first)
        return 0
    if not Path(WRK).exists():
        sys.exit("wrk is not installed: apt-get install -y wrk (make bench does it)")

    figures = Figures(args.json)
    quotas = {
        f"CONVENIOS_LOOKUPS_{who}_{per}": "100000000"
        for who in ("USER", "ENTITY")
        for per in ("MINUTE", "DAY")
    }
    only = set(filter(None, args.only.split(",")))
    with Portal(args.database_url, extra_env=quotas) as portal:
        port = portal.start(args.workers, args.threads)
        bare_port = portal.start_bare(args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        targets: dict[str, tuple] = {
            "bare": (f"http://127.0.0.1:{bare_port}/", "GET", "", {}, 200, None),
            "salud": (f"{base}/salud", "GET", "", {}, 200, None),
        }
        least = Client(bare_port)
        assert least.get("/entrar").status == 200
        assert least.get("/sondeo").status == 204
        targets["sondeo-min"] = (
            f"http://127.0.0.1:{bare_port}/sondeo",
            "GET",
            "",
            {"Cookie": least.cookie_header},
            204,
            None,
        )

        registro = Client(port)
        token = registro.get("/registro").token()
        body = f"tipo_documento=CC&numero_documento=1000000001&csrf_token={token}"
        check = registro.post(
            "/registro/consulta",
            dict(x.split("=") for x in body.split("&")),
            **{"HX-Request": "true"},
        )
        assert check.status == 200 and 'value="ANA"' in check.text, check.text[:300]
        headers = {**FORM, "HX-Request": "true", "Cookie": registro.cookie_header}
        targets["registro"] = (f"{base}/registro/consulta", "POST", body, headers, 200, None)

        desk = Client(port)
        sign_in_desk(desk)
        token = desk.get("/convenios/").token()
        body = f"documento=1000000001&csrf_token={token}"
        check = desk.post(
            "/convenios/consultar",
            {"documento": "1000000001", "csrf_token": token},
            **{"HX-Request": "true"},
        )
        assert check.status == 200 and "INFORMACI" in check.text, check.text[:300]
        headers = {**FORM, "HX-Request": "true", "Cookie": desk.cookie_header}
        targets["convenios"] = (f"{base}/convenios/consultar", "POST", body, headers, 200, None)

        affiliate = Client(port)
        sign_in_hanna(affiliate)
        check = affiliate.get("/inicio")
        assert check.status == 200 and "<html" in check.text, check.status
        targets["inicio"] = (
            f"{base}/inicio",
            "GET",
            "",
            {"Cookie": affiliate.cookie_header},
            200,
            None,
        )

        ips = Client(port)
        sign_in_ips(ips)
        listing = ips.get("/ips/solicitudes")
        numero = re.search(r'href="/ips/solicitudes/(\d+)"', listing.text).group(1)
        case = ips.get(f"/ips/solicitudes/{numero}")
        poll = re.search(r'hx-get="(/ips/solicitudes/\d+/nuevos\?despues=\d+)"', case.text)
        assert poll, "the case page has no poll"
        poll = poll.group(1)
        assert ips.get(poll, **{"HX-Request": "true"}).status == 204
        headers = {"HX-Request": "true", "Cookie": ips.cookie_header}
        targets["sondeo"] = (f"{base}{poll}", "GET", "", headers, 204, None)

        if not only or "quiz" in only:
            quiz = Client(port)
            made, token = [0], []

            def quiz_lines() -> list[str]:
                """A round's accounts (two windows' worth), made now; POST lines with a token."""
                lines_file = portal.tmp / "quiz.lines"
                count = 2 * args.quiz_per_window
                command = [sys.executable, __file__, "--prepare-quiz", str(count)]
                command += ["--first", str(made[0]), "--out", str(lines_file)]
                done = subprocess.run(
                    command, env=portal.env, capture_output=True, text=True, check=False
                )
                if done.returncode:
                    raise RuntimeError(f"preparing the quiz failed:\n{done.stdout}{done.stderr}")
                made[0] += count
                lines = lines_file.read_text().splitlines()
                if not token:  # one session, one CSRF token for all
                    token.append(quiz.get(lines[0].split(" ", 1)[0]).token())
                return [f"{line}&csrf_token={token[0]}" for line in lines]

            quiz_lines_first = quiz_lines()  # also opens the session the header below carries
            headers = {**FORM, "Cookie": quiz.cookie_header}
            targets["quiz"] = (f"{base}/", "POST", "", headers, 303, quiz_lines)

        print(
            f"gunicorn -w {args.workers} --threads {args.threads} for both · wrk "
            f"-t{args.threads_wrk} -c{args.connections} · {args.rounds} rounds of {args.warmup} s "
            f"warm-up + {args.duration} s measured, each after a bare window · {portal.backend}"
        )
        print(
            f"  {'target':<11} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'bad':>5} {'ratio':>6} {'range':>11}  goal"
        )
        section = f"throughput ({portal.backend})"
        bare_runs, medians = [], {}
        # The quiz first: a started quiz ends after QUIZ_IDLE (2 min) without an answer.
        order = sorted(targets, key=lambda name: name != "quiz")
        for name in order:
            url, method, body, headers, expect, lines = targets[name]
            if name == "bare" or (only and name not in only):
                continue
            runs, ratios = [], []
            for round_ in range(args.rounds):
                bare = wrk(*targets["bare"][:5], args)
                feed = lines
                if callable(lines):  # the quiz: accounts made for this round
                    feed = quiz_lines_first if round_ == 0 else lines()
                r = wrk(url, method, body, {**ACCEPT, **headers}, expect, args, feed)
                bare_runs.append(bare)
                runs.append(r)
                ratios.append(r["rps"] / bare["rps"])
            r = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]  # the median round
            medians[name] = r["rps"]
            ratio = statistics.median(ratios)
            bad = sum(run["bad"] + run["errors"] for run in runs)
            goal = GOALS.get(name)
            print(
                f"  {name:<11} {sum(run['requests'] for run in runs):>9} {r['rps']:>8.0f} "
                f"{r['p50']:>8.1f} {r['p99']:>8.1f} {bad:>5} {ratio:>6.2f} "
                f"{min(ratios):>5.2f}–{max(ratios):<5.2f}  {'≥ ' + str(goal) if goal else ''}"
            )
            figures.add(section, f"{name} req/s (median round)", round(r["rps"]), "req/s")
            figures.add(section, f"{name} p50 / p99", f"{r['p50']:.1f} / {r['p99']:.1f}", "ms")
            figures.add(section, f"{name} ratio to bare", round(ratio, 2), "×", at_least=goal)
            if bad or not all(run["requests"] for run in runs):
                figures.add(section, f"{name} wrong answers", bad, "", 0, False)
                example = next((run["example"] for run in runs if run["example"]), "")
                print(f"    FAIL: {bad} answers not {expect} (e.g. {example}) or socket errors")
                if lines is not None and example == "404":
                    print("    (the prepared accounts ran out: raise --quiz-per-window)")
        if {"salud", "sondeo-min"} & set(medians):
            _floors_and_capacity(figures, section, medians)
        if bare_runs:
            rps = statistics.median(run["rps"] for run in bare_runs)
            print(
                f"  {'bare':<11} {sum(run['requests'] for run in bare_runs):>9} {rps:>8.0f}"
                f"  (median of its {len(bare_runs)} windows; "
                f"{min(run['rps'] for run in bare_runs):.0f}–"
                f"{max(run['rps'] for run in bare_runs):.0f})"
            )
            figures.add(section, "bare req/s (median window)", round(rps), "req/s")
    figures.write()
    return 1 if any(f["figure"].endswith("wrong answers") for f in figures.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
