"""`make bench`: run every benchmark and print one table, each figure with its command.

Run from the project root:  .venv/bin/python bench/run.py [--quick] [--only NAME,…]

Each script below writes its figures to a JSON file (``--json PATH``, see
bench/common.py's Figures); this prints them grouped by section, with the
budget where there is one, and the command that printed each figure, so any
line can be re-run alone. A figure over its budget fails the run (exit 1), as
does a script that fails.

Every script compares with a bare Flask endpoint in the same run or measures
sizes and plans, which do not depend on the machine; absolute times here are
noise (see bench/README.md). --quick shortens the long ones, for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def scripts(quick: bool) -> dict[str, list[str]]:
    """name → arguments of bench/NAME.py (the --json is added by run())."""
    short = ["--duration", "3", "--rounds", "2", "--quiz-per-window", "1500"] if quick else []
    return {
        "weight": [],
        "throughput": short,
        "throughput-pg": [*short, "--database-url", PG],
        "lighthouse": ["--runs", "1"] if quick else [],
        "slow3g": ["--repeats", "1"] if quick else [],
        "scale": ["--sizes", "10000,100000", "--queue-rows", "20000"] if quick else [],
        "convenios_report": ["--rows", "20000"] if quick else ["--database-url", PG],
        "genesis_upload": ["--repeats", "1"] if quick else ["--repeats", "3"],
    }


def run(name: str, args: list[str], tmp: Path) -> tuple[list[dict], str]:
    script = ROOT / "bench" / f"{name.removesuffix('-pg')}.py"
    out = tmp / f"{name}.json"
    command = [sys.executable, str(script), *args, "--json", str(out)]
    print(f"\n$ {' '.join(['.venv/bin/python', f'bench/{script.name}', *args])}", flush=True)
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, check=False)
    took = time.monotonic() - began
    rows = json.loads(out.read_text()) if out.exists() else []
    problem = "" if done.returncode == 0 else f"exit {done.returncode}"
    if not rows and not problem:
        problem = "no figures"
    print(f"  ({took:.0f} s{', ' + problem if problem else ''})", flush=True)
    return rows, problem


def table(rows: list[dict]) -> None:
    sections: dict[str, list[dict]] = {}
    for row in rows:
        sections.setdefault(row["section"], []).append(row)
    for section, items in sections.items():
        print(f"\n## {section}")
        commands = list(dict.fromkeys(r["command"] for r in items))
        for i, command in enumerate(commands, 1):
            print(f"   [{i}] {command}")
        width = min(70, max(len(r["figure"]) for r in items))
        for r in items:
            value = r["value"]
            if isinstance(value, float):
                value = f"{value:,.2f}".rstrip("0").rstrip(".")
            elif isinstance(value, int):
                value = f"{value:,}"
            sign = "goal ≥" if r.get("goal") else "budget"
            budget = "" if r["budget"] is None else f"{sign} {r['budget']:,}"
            verdict = {True: "ok", False: "FAIL", None: ""}[r["ok"]]
            tag = f"[{commands.index(r['command']) + 1}]" if len(commands) > 1 else ""
            print(
                f"   {r['figure'][:70]:<{width}} {value!s:>14} {r['unit']:<6} {budget:<16} "
                f"{verdict:<4} {tag}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke test")
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    chosen = scripts(args.quick)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - set(chosen)
        if unknown:
            sys.exit(f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    began = time.monotonic()
    rows: list[dict] = []
    problems: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="hanna-bench-run-") as tmp:
        for name, script_args in chosen.items():
            got, problem = run(name, script_args, Path(tmp))
            rows += got
            if problem:
                problems[name] = problem
    print(
        f"\n# Portal Hanna / Génesis — make bench, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
        f"{(time.monotonic() - began) / 60:.1f} min"
    )
    table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    failed = [r for r in rows if r["ok"] is False]
    print()
    for r in failed:
        sign = "goal ≥" if r.get("goal") else "budget"
        print(f"FAIL {r['section']}: {r['figure']} = {r['value']} ({sign} {r['budget']})")
    for name, problem in problems.items():
        print(f"FAIL bench/{name.removesuffix('-pg')}.py: {problem}")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
