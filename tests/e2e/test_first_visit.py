"""What a phone downloads on its first visit to /registro, as Chromium counts it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.helpers import markup_audit

pytestmark = [pytest.mark.e2e, markup_audit]

FIRST_VISIT_BUDGET = 40 * 1024  # headers included: what the radio really carries


def test_a_first_visit_fetches_each_file_once_compressed_and_within_budget(visit):
    v = visit()
    cdp = v.context.new_cdp_session(v.page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    from_network: Counter[str] = Counter()
    transferred: dict[str, int] = {}
    headers: dict[str, dict] = {}

    def on_response(event) -> None:
        response = event["response"]
        urls[event["requestId"]] = response["url"]
        if not (response.get("fromDiskCache") or response.get("fromPrefetchCache")):
            from_network[response["url"]] += 1
            headers[response["url"]] = {k.lower(): v for k, v in response["headers"].items()}

    def on_finished(event) -> None:
        url = urls.get(event["requestId"])
        if url:
            transferred[url] = transferred.get(url, 0) + int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    v.page.goto("/registro", wait_until="networkidle")
    v.page.wait_for_timeout(500)  # Chromium asks for the favicon after the load

    assert all(n == 1 for n in from_network.values()), from_network
    static = [url for url in from_network if "/static/" in url]
    assert any(url.endswith(".svg") for url in static)  # logo and favicon: one fetch
    for url in static:
        h = headers[url]
        assert "immutable" in h["cache-control"], url
        assert "cookie" not in h.get("vary", "").lower() and "set-cookie" not in h, url
        if url.endswith((".css", ".js")):
            assert h.get("content-encoding") == "br", url
    page_url = next(url for url in from_network if url.endswith("/registro"))
    assert headers[page_url].get("content-encoding") == "br"
    assert sum(transferred.values()) <= FIRST_VISIT_BUDGET, transferred
