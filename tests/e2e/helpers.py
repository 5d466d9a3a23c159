"""Steps every browser journey shares: screenshots, page loads, axe-core audits."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page

HTMX = re.compile(r"/static/vendor/htmx")
MOBILE = {"width": 360, "height": 740}  # a cheap Android phone


def shot(page: Page, shots, name: str, js: bool | None = None, full_page: bool = True) -> None:
    """Save a screenshot under /tmp/e2e-shots (never into the repository)."""
    suffix = "" if js is None else ("-js" if js else "-sin-js")
    page.screenshot(path=str(shots / f"{name}{suffix}.png"), full_page=full_page)


def navigations(page: Page) -> list[str]:
    """Record document loads (not history updates), to tell an htmx swap from a page load."""
    seen: list[str] = []
    page.on("domcontentloaded", lambda p: seen.append(p.url))
    return seen


def axe_violations(page: Page, source: str) -> list[dict]:
    """Run axe-core on the page (its context must bypass the CSP to inject it)."""
    page.evaluate(source)
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' '))}));
    }""")


def audit_with_and_without_htmx(browser, portal, visit_class, walk: Callable) -> dict:
    """Run walk(open_visit) twice: with htmx, and with htmx blocked (the no-JS pages).

    open_visit(**options) opens a context that may inject axe-core; walk returns
    {page name: violations}. The result is {"htmx": …, "sin-htmx": …}.
    """
    results = {}
    for mode in ("htmx", "sin-htmx"):
        opened: list = []
        try:
            results[mode] = walk(_opener(browser, portal, visit_class, opened, mode == "htmx"))
        finally:
            for v in opened:
                v.close()
    return results


def _opener(browser, portal, visit_class, opened: list, htmx: bool) -> Callable:
    def open_visit(**options):
        v = visit_class(browser, portal, js=True, bypass_csp=True, **options)
        opened.append(v)
        if not htmx:
            v.context.route(HTMX, lambda route: route.abort())
        return v

    return open_visit


def axe_problems(found: dict[str, list[dict]]) -> list[str]:
    """Flatten {page name: violations} into one readable line per violation."""
    return [
        f"[{name}] {v['id']} ({v['impact']}): {v['help']} -> {v['targets']}"
        for name, violations in found.items()
        for v in violations
    ]
