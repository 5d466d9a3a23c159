"""The server-drawn bar chart (core/svg_chart.py): valid SVG, accessible, to scale, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from core import svg_chart
from core.svg_chart import Bar, bar_chart, month_bars

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own output, not untrusted input


def draw(values, title="Usos reportados por mes"):
    bars = month_bars([(f"2026-{m:02d}", v) for m, v in enumerate(values, start=1)])
    return parse(bar_chart(bars, title=title, ident="g", unit=("uso", "usos")))


@pytest.mark.parametrize(
    ("month", "name"), [("2026-01", "ene 2026"), ("2025-09", "sep 2025"), ("2024-12", "dic 2024")]
)
def test_months_are_named_in_spanish(month, name):
    assert svg_chart.month_name(month) == name


def test_the_year_shows_under_the_first_bar_and_each_january():
    bars = month_bars([("2025-11", 1), ("2025-12", 2), ("2026-01", 3), ("2026-02", 4)])
    assert [b.label for b in bars] == ["nov", "dic", "ene", "feb"]
    assert [b.sublabel for b in bars] == ["2025", "", "2026", ""]
    assert [b.value for b in bars] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("n", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (40, 50), (51, 100)]
)
def test_the_scale_ends_on_a_round_number(n, ceiling):
    assert svg_chart.nice_ceiling(n) == ceiling


def test_the_chart_is_an_image_labelled_by_its_title_and_a_description():
    svg = draw([2, 8, 4])
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "g-titulo g-desc"
    assert svg.find("s:title", NS).text == "Usos reportados por mes"
    assert svg.find("s:title", NS).get("id") == "g-titulo"
    desc = svg.find("s:desc", NS)
    assert desc.get("id") == "g-desc"
    assert desc.text == "14 usos de ene 2026 a mar 2026; el mes con más: feb 2026, 8 usos."


def test_bars_are_drawn_to_scale_and_carry_their_figure_in_words():
    svg = draw([5, 10, 0])
    rects = svg.findall("s:rect", NS)
    assert len(rects) == 3
    heights = [float(r.get("height")) for r in rects]
    assert heights == [svg_chart.PLOT_HEIGHT / 2, svg_chart.PLOT_HEIGHT, 0]
    bottoms = {float(r.get("y")) + float(r.get("height")) for r in rects}
    assert bottoms == {svg_chart.TOP + svg_chart.PLOT_HEIGHT}  # all on the same baseline
    assert [r.find("s:title", NS).text for r in rects] == [
        "ene 2026: 5 usos",
        "feb 2026: 10 usos",
        "mar 2026: 0 usos",
    ]
    texts = [t.text for t in svg.findall("s:text", NS)]
    assert "ene" in texts and "2026" in texts and "10" in texts


def test_big_figures_use_the_colombian_thousands_separator():
    svg = draw([12345, 1])
    texts = [t.text for t in svg.findall("s:text", NS)]
    assert "12.345" in texts and "20.000" in texts  # a bar's figure, the top of the scale
    assert svg.findall("s:rect", NS)[1].find("s:title", NS).text == "feb 2026: 1 uso"


def test_a_chart_of_zeros_says_so_and_draws_flat_bars():
    svg = draw([0, 0])
    assert svg.find("s:desc", NS).text == "Ningún uso de ene 2026 a feb 2026."
    assert {r.get("height") for r in svg.findall("s:rect", NS)} == {"0"}


def test_no_bars_at_all_is_still_a_valid_image():
    svg = parse(bar_chart([], title="Nada", ident="v", unit=("uso", "usos")))
    assert svg.find("s:desc", NS).text == "Sin datos."
    assert svg.findall("s:rect", NS) == []


def test_text_is_escaped_and_there_is_no_script_or_inline_style():
    bars = [Bar(value=1, label="<b>", name='"x" & <script>', sublabel="")]
    markup = str(
        bar_chart(bars, title="</title><script>alert(1)</script>", ident="e", unit=("uso", "usos"))
    )
    assert "<script" not in markup and "style=" not in markup
    svg = parse(markup)  # still well-formed
    assert svg.find("s:title", NS).text == "</title><script>alert(1)</script>"
    assert svg.find("s:rect/s:title", NS).text == '"x" & <script>: 1 uso'


def test_the_chart_widens_with_its_bars_at_a_fixed_slot_each():
    narrow, wide = draw([1] * 3), draw([1] * 12)
    width = float(wide.get("width"))
    assert width > float(narrow.get("width"))
    assert width == svg_chart.LEFT + 12 * svg_chart.SLOT + svg_chart.RIGHT
    assert wide.get("viewBox") == f"0 0 {wide.get('width')} {wide.get('height')}"
