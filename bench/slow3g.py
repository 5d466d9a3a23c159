"""Time until each form is usable on a Regular-3G phone, cold and warm: the median of 3.

Run from the project root:  .venv/bin/python bench/slow3g.py [--repeats 3]
Takes about 1.5 minutes on the development machine (4 forms × 3 repeats × a cold and a
warm load, plus the portal's start and the sign-ins).

Chromium (/usr/bin/chromium, headless, through Playwright) with, applied over the DevTools
protocol to each page before it loads:
  - Network.emulateNetworkConditions: latency 300 ms, download 700 kbit/s
    (700 * 1024 / 8 bytes/s), upload the same: DevTools' "Regular 3G"-like profile;
  - Emulation.setCPUThrottlingRate: rate 4 (the main thread 4× slower);
  - a 360 × 740 mobile viewport.
The sign-ins are done first, over HTTP without throttling (bench/common.py), and their
cookies are put in each browser context; the throttling is for the form's page only.

The forms: registration (/registro: Tipo and número de documento and "Consultar"), the
Convenios look-up (/convenios/, desk signed in, "Consultar Trabajador"), the Génesis
authorization request for a family member (/genesis/solicitud/<id>, "Enviar Solicitud") and
the IPS help desk (/ips/mesa, "Generar Servicio").

"Usable", from the navigation's start (performance.timeOrigin): every page works without
JavaScript, so a form is usable once its fields and its submit button are on screen and
enabled, and the DOM is interactive:
    usable = max(domInteractive, first frame with the fields and button visible)
A script added before the page's own (Playwright's add_init_script) checks on every
animation frame whether the fields and the button are visible (checkVisibility(), a box of
non-zero size) and not disabled; a frame is not run while the page is render-blocked (its
stylesheet still loading), so the first such frame is about when they are painted. Playwright
then waits for the button to be visible and enabled, as a person would see it.
Also shown: "htmx" = DOMContentLoaded's end, when the deferred scripts (htmx, app.js) have
run and the enhancements work (checked: window.htmx is there), and the bytes the page
brought over the network (the HTML plus each resource's transferSize).

Cold: a new browser context (empty cache, no connection open). Warm: a second navigation
to the same URL in the same context (the static files come from the cache: content-hashed
names, a year's immutable caching). Each of --repeats repeats has its own context.
Figures go to --json PATH for bench/run.py, informational (no budget); exit 1 when a form
could not be measured (not usable within 60 s, or the page was not the form's: signed out).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Figures, Portal  # noqa: E402
from bench.journeys import GENESIS_REQUEST, Accounts, print_table  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOBILE = {"width": 360, "height": 740}
KBIT = 1024 / 8  # bytes/s in one kbit/s, as DevTools counts
NETWORK = {
    "offline": False,
    "latency": 300,
    "downloadThroughput": 700 * KBIT,
    "uploadThroughput": 700 * KBIT,
}
CPU_RATE = 4
TIMEOUT_MS = 60_000
SECTION = "Regular 3G (300 ms, 700 kbit/s, CPU 4×), median"


@dataclass
class Form:
    name: str
    path: str
    account: str | None
    fields: list[str]  # CSS selectors of the fields that must be on screen
    button: str  # the submit button's CSS selector


FORMS = [
    Form(
        "Registro",
        "/registro",
        None,
        ["#tipo_documento", "#numero_documento"],
        "#form-registro button[formaction='/registro/consulta']",
    ),
    Form(
        "Convenios, consulta",
        "/convenios/",
        "desk",
        ["#documento"],
        "form[action='/convenios/consultar'] button[type=submit]",
    ),
    Form(
        "Génesis, solicitud",
        GENESIS_REQUEST,
        "genesis",
        ["#departamento", "#observacion", "#soporte"],
        "#form-solicitud button[value=enviar]",
    ),
    Form(
        "IPS, mesa de ayuda",
        "/ips/mesa",
        "ips",
        ["#motivo", "#descripcion"],
        "form[action='/ips/mesa'] button[value=generar]",
    ),
]

# Runs before the page's scripts, on every document of the context.
WATCH = """
(() => {
  const selectors = %s;
  const ready = (el) => el && !el.disabled && el.getClientRects().length > 0
    && el.checkVisibility({opacityProperty: true, visibilityProperty: true});
  const frame = () => {
    if (selectors.every((s) => ready(document.querySelector(s)))) {
      window.__usableVisibleAt = performance.now();
    } else {
      requestAnimationFrame(frame);
    }
  };
  requestAnimationFrame(frame);
})();
"""
DONE = "() => window.__usableVisibleAt !== undefined && document.readyState === 'complete'"
TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const bytes = performance.getEntriesByType('resource')
    .reduce((sum, r) => sum + r.transferSize, nav.transferSize);
  return {visible: window.__usableVisibleAt, domInteractive: nav.domInteractive,
          dcl: nav.domContentLoadedEventEnd, fcp: fcp ? fcp.startTime : null,
          bytes, htmx: typeof window.htmx === 'object' || typeof window.htmx === 'function',
          status: nav.responseStatus};
}"""


class MeasureError(Exception):
    """A form that did not become usable, or a page that was not the form's."""


def load(page, url: str, form: Form, path: str) -> dict:
    """Navigate page to url and return the timings of that load, in ms from its start."""
    page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    button = page.locator(form.button)
    try:
        button.wait_for(state="visible", timeout=TIMEOUT_MS)
    except Exception as error:  # a Playwright timeout: which page was it?
        raise MeasureError(f"{form.name}: no button on {page.url}: {error}") from error
    # Polled from here: wait_for_function would eval a string, which the CSP forbids.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(DONE):
        if time.monotonic() > deadline:
            raise MeasureError(f"{form.name}: {page.url} never had its fields visible")
        time.sleep(0.05)
    if urlsplit(page.url).path != path:
        raise MeasureError(f"{form.name}: ended on {page.url}, not {path}: signed out?")
    if not button.is_enabled():
        raise MeasureError(f"{form.name}: the button is disabled")
    timings = page.evaluate(TIMINGS)
    if timings["status"] not in (200, 0):  # 0: a browser that does not report it
        raise MeasureError(f"{form.name}: {path} answered {timings['status']}")
    if not timings["htmx"]:
        raise MeasureError(f"{form.name}: htmx did not load")
    # Nothing is on screen before the first paint, whatever the frame check saw.
    visible = max(timings["visible"], timings["fcp"] or 0)
    timings["usable"] = max(timings["domInteractive"], visible)
    return timings


def throttle(context, page) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", NETWORK)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_RATE})


def measure_form(browser, accounts: Accounts, form: Form, repeats: int) -> tuple[str, dict]:
    client = accounts.client(form.account)
    path = accounts.path(form.path)
    url = f"http://127.0.0.1:{accounts.port}{path}"
    cookies = [{"name": k, "value": v, "url": url} for k, v in client.cookies.items()]
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    for _ in range(repeats):
        context = browser.new_context(viewport=MOBILE, is_mobile=True, has_touch=True)
        try:
            if form.account:
                context.add_cookies(cookies)
            context.add_init_script(WATCH % json.dumps([*form.fields, form.button]))
            page = context.new_page()
            throttle(context, page)
            runs["cold"].append(load(page, url, form, path))
            runs["warm"].append(load(page, url, form, path))
            # The session may have renewed its cookie in the browser: the next context gets it.
            cookies = [
                {"name": c["name"], "value": c["value"], "url": url} for c in context.cookies(url)
            ]
        finally:
            context.close()
    return path, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold + warm loads per form")
    parser.add_argument("--json", metavar="PATH", help="write the figures there (bench/run.py)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    from playwright.sync_api import sync_playwright

    figures = Figures(args.json)
    started = time.monotonic()
    rows, failures = [], []
    with Portal() as portal, sync_playwright() as p:
        port = portal.start(workers=2, threads=4)
        accounts = Accounts(port)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for form in FORMS:
                try:
                    path, runs = measure_form(browser, accounts, form, args.repeats)
                except (MeasureError, RuntimeError) as error:
                    print(error, file=sys.stderr, flush=True)
                    failures.append(form.name)
                    continue
                row = {"name": form.name, "path": path}
                for kind in ("cold", "warm"):
                    for key in ("usable", "dcl", "bytes"):
                        row[f"{kind} {key}"] = statistics.median(r[key] for r in runs[kind])
                    figures.add(
                        SECTION,
                        f"{form.name}: usable, {kind}",
                        round(row[f"{kind} usable"] / 1000, 3),
                        "s",
                    )
                    figures.add(
                        SECTION,
                        f"{form.name}: htmx ran, {kind}",
                        round(row[f"{kind} dcl"] / 1000, 3),
                        "s",
                    )
                    figures.add(
                        SECTION,
                        f"{form.name}: transferred, {kind}",
                        round(row[f"{kind} bytes"] / 1024, 1),
                        "KB",
                    )
                rows.append(row)
        finally:
            browser.close()

    print(f"\nRegular 3G (300 ms, 700 kbit/s down and up), CPU 4×; median of {args.repeats}")
    header = ["form", "path", "cold usable s", "htmx s", "KB", "warm usable s", "htmx s", "KB"]
    table = [header] + [
        [r["name"], r["path"]]
        + [
            value
            for kind in ("cold", "warm")
            for value in (
                f"{r[f'{kind} usable'] / 1000:.2f}",
                f"{r[f'{kind} dcl'] / 1000:.2f}",
                f"{r[f'{kind} bytes'] / 1024:.1f}",
            )
        ]
        for r in rows
    ]
    print_table(table)
    print(f"took {time.monotonic() - started:.0f} s")
    figures.write()
    if failures:
        print(f"FAILED to measure: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the browser and the portal are stopped by then
        sys.exit(130)
