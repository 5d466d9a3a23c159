"""Page weight: every page and partial the portal serves, as compressed bytes on the wire.

Run from the project root:  .venv/bin/python bench/weight.py [--json PATH] [--list]

Starts the portal with the demo data and walks it as each kind of user would:
signed out, a Hanna affiliate, a Convenios desk, a Génesis affiliate, an IPS
operator and two staff members. From each one's start pages it follows every
same-site link (``href``) and every htmx GET (``hx-get``, asked with
``HX-Request: true``, so the partial comes back) it finds, breadth first, up to
--max-pages per user, never a sign-out, a download or the development mailbox.
The POST partials that answer typing (the look-ups, the live password check)
are sent as the pages' own forms would send them.

Every answer is fetched with ``Accept-Encoding: br, gzip`` and weighed as sent.
Budgets (issue 12, README): a page ≤ 14 KB, a cold first visit of each user's
main page (HTML + every file it makes the browser fetch) ≤ 40 KB, and the 95th
percentile of the partials ≤ 3 KB. Exit 1 when a budget is exceeded.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import deque
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Client,
    Figures,
    Portal,
    sign_in_desk,
    sign_in_genesis,
    sign_in_hanna,
    sign_in_ips,
    sign_in_staff,
)

PAGE_BUDGET = 14 * 1024
FIRST_VISIT_BUDGET = 40 * 1024
PARTIAL_P95_BUDGET = 3 * 1024
SKIP = re.compile(
    r"/salir|/logout|/cerrar-sesion|/dev/|/static/|/captcha/|\.(pdf|xlsx|csv|png|jpg|mp3|zip)\b"
    r"|/adjunto|/descargar|/archivo|/certificado/|/reporte/(csv|xlsx)|/documento/"
)

USERS = {
    "signed out": (None, ["/", "/registro", "/genesis", "/ips", "/gestion/ingresar", "/pqrs"]),
    "Hanna affiliate": (sign_in_hanna, ["/inicio"]),
    "Convenios desk": (sign_in_desk, ["/convenios/"]),
    "Génesis affiliate": (sign_in_genesis, ["/genesis/oficina"]),
    "IPS operator": (sign_in_ips, ["/ips/mesa"]),
    "staff (soporte)": (lambda c: sign_in_staff(c, "soporte@gestion.test"), ["/gestion/mesa"]),
    "staff (autorizaciones)": (
        lambda c: sign_in_staff(c, "autorizaciones@gestion.test"),
        ["/gestion/"],
    ),
}


def links(html: str) -> tuple[list[str], list[str]]:
    """Return the same-site href targets and hx-get targets of a page."""
    hrefs = [unescape(u) for u in re.findall(r'href="(/[^"#]*)', html)]
    hx = [unescape(u) for u in re.findall(r'hx-get="(/[^"#]*)', html)]
    return hrefs, hx


def first_visit(client: Client, path: str) -> tuple[int, int]:
    """Weigh path cold: its HTML plus every distinct file it references (no audio)."""
    fresh = Client(client.port)
    fresh.cookies = dict(client.cookies)
    page = fresh.get(path)
    total, files = len(page.wire), 0
    for url in dict.fromkeys(re.findall(r'(?:href|src)="(/(?:static|captcha)/[^"]+)"', page.text)):
        if url.endswith(".mp3"):
            continue  # a link: fetched only when the person asks to hear the code
        total += len(fresh.get(unescape(url)).wire)
        files += 1
    return total, files


def post_partials(port: int) -> list[tuple[str, str, int, int]]:
    """The typing-driven POST partials, as the forms send them: (user, what, status, bytes)."""
    out = []
    hx = {"HX-Request": "true"}
    public = Client(port)
    token = public.get("/registro").token()
    for what, path, form in (
        (
            "registration look-up (an affiliate)",
            "/registro/consulta",
            {"tipo_documento": "CC", "numero_documento": "1000000001"},
        ),
        (
            "registration look-up (not an affiliate)",
            "/registro/consulta",
            {"tipo_documento": "CC", "numero_documento": "79999999"},
        ),
        ("live password check", "/registro/clave", {"password": "corta", "confirm": ""}),
    ):
        r = public.post(path, {**form, "csrf_token": token}, **hx)
        out.append(("signed out", f"POST {path}: {what}", r.status, len(r.wire)))
    desk = Client(port)
    sign_in_desk(desk)
    token = desk.get("/convenios/").token()
    for what, documento in (("an affiliate", "1000000001"), ("not an affiliate", "79999999")):
        r = desk.post("/convenios/consultar", {"documento": documento, "csrf_token": token}, **hx)
        out.append(("Convenios desk", f"POST /convenios/consultar: {what}", r.status, len(r.wire)))
    return out


def crawl(client: Client, starts: list[str], limit: int) -> list[tuple[str, bool, int, int, str]]:
    """Breadth-first walk: (path, is_partial, status, bytes, content type) per answer."""
    seen: set[tuple[str, bool]] = set()
    queue = deque((s, False) for s in starts)
    out = []
    while queue and len(out) < limit:
        path, partial = queue.popleft()
        key = (path, partial)
        if key in seen or SKIP.search(path) or urlsplit(path).netloc:
            continue
        seen.add(key)
        r = client.get(path, **({"HX-Request": "true"} if partial else {}))
        kind = r.header("Content-Type").split(";")[0]
        out.append((path, partial, r.status, len(r.wire), kind))
        if r.status != 200 or kind != "text/html":
            continue
        hrefs, hx = links(r.text)
        queue.extend((h, False) for h in hrefs)
        queue.extend((h, True) for h in hx)
    return out


def p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pages", type=int, default=80, help="answers per user at most")
    parser.add_argument("--list", action="store_true", help="print every answer, not only totals")
    parser.add_argument("--json", help="write the figures here for bench/run.py")
    args = parser.parse_args()
    figures = Figures(args.json)
    section = "page weight (bytes on the wire, br)"
    pages: list[tuple[str, str, int]] = []
    partials: list[tuple[str, str, int]] = []
    with Portal() as portal:
        port = portal.start(workers=2, threads=4)
        print(f"{'user':<24} {'answer':<62} {'status':>6} {'bytes':>7}")
        for user, (sign_in, starts) in USERS.items():
            client = Client(port)
            if sign_in:
                sign_in(client)
            for path, partial, status, size, kind in crawl(client, starts, args.max_pages):
                if status >= 400:  # a link or hx-get a page shows, that does not work
                    print(f"{user:<24} {path[:62]:<62} {status:>6}  BROKEN")
                    figures.add(section, f"broken link {path} ({user})", status, "", None, False)
                    continue
                if kind != "text/html":
                    continue
                (partials if partial else pages).append((user, path, size))
                over = size > (PARTIAL_P95_BUDGET if partial else PAGE_BUDGET)
                if args.list or (over and not partial):
                    mark = " (partial)" if partial else ""
                    print(f"{user:<24} {(path + mark)[:62]:<62} {status:>6} {size:>7}")
            for start in starts:
                total, files = first_visit(client, start)
                print(
                    f"{user:<24} {'first visit of ' + start + f' (+{files} files)':<62} "
                    f"{'':>6} {total:>7}"
                )
                figures.add(
                    section,
                    f"first visit {start} ({user}, {files} files)",
                    total,
                    "B",
                    FIRST_VISIT_BUDGET,
                )
        for user, what, status, size in post_partials(port):
            partials.append((user, what, size))
            if args.list:
                print(f"{user:<24} {what[:62]:<62} {status:>6} {size:>7}")

    heaviest = max(pages, key=lambda p: p[2])
    over = [p for p in pages if p[2] > PAGE_BUDGET]
    sizes = [p[2] for p in partials]
    print(
        f"\n{len(pages)} pages, heaviest {heaviest[2]} B ({heaviest[1]}, {heaviest[0]}); "
        f"{len(over)} over {PAGE_BUDGET} B"
    )
    print(
        f"{len(partials)} partials, p95 {p95(sizes)} B, heaviest {max(sizes)} B "
        f"({max(partials, key=lambda p: p[2])[1]})"
    )
    figures.add(section, f"pages weighed ({len(USERS)} kinds of user)", len(pages))
    figures.add(
        section, f"heaviest page: {heaviest[1]} ({heaviest[0]})", heaviest[2], "B", PAGE_BUDGET
    )
    figures.add(section, "pages over 14 KB", len(over), "", 0)
    for user, path, size in over:
        figures.add(section, f"over budget: {path} ({user})", size, "B", PAGE_BUDGET)
    figures.add(section, "partials weighed", len(partials))
    figures.add(section, "partials p95", p95(sizes), "B", PARTIAL_P95_BUDGET)
    figures.add(section, "heaviest partial", max(sizes), "B")
    figures.write()
    for row in figures.failed:
        print(f"FAIL {row['figure']}: {row['value']} > {row['budget']}", file=sys.stderr)
    return 1 if figures.failed else 0


if __name__ == "__main__":
    sys.exit(main())
