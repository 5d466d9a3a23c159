"""A small bar chart drawn on the server as inline SVG: no chart library, no JavaScript.

The page carries the SVG in its HTML, so there is no extra request, nothing for
the CSP to allow (no inline style: colours are presentation attributes the
stylesheet may override through the classes) and nothing to load on a slow
desk connection. The chart is an image for screen readers (``role="img"`` with
a title and a description); the page repeats its figures as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")

# Geometry in SVG user units (the CSS scales it down on a narrow screen).
LEFT = 44  # room for the scale's figures
RIGHT = 8
TOP = 18  # room for the figure above the tallest bar
BOTTOM = 36  # two lines of labels under the bars
PLOT_HEIGHT = 140
SLOT = 34  # the width each bar takes, gap included
BAR = 24
FONT = 11
BAR_FILL = "#00539b"  # the portal's --azul
RULE = "#d0d5da"


@dataclass(frozen=True)
class Bar:
    """One bar: its value, the short label under it, its name in words, an optional second line."""

    value: int
    label: str  # under the bar: "ene"
    name: str  # in the bar's tooltip and the description: "ene 2026"
    sublabel: str = ""  # a second line under the label, e.g. the year where it changes


def thousands(n: int) -> str:
    """Write an integer the Colombian way: 12.345."""
    return f"{n:,}".replace(",", ".")


def month_name(month: str) -> str:
    """Turn "2026-01" into "ene 2026"."""
    year, number = month.split("-")
    return f"{MONTHS[int(number) - 1]} {year}"


def month_bars(per_month: Sequence[tuple[str, int]]) -> list[Bar]:
    """Bars for (AAAA-MM, n) pairs: the month under each bar, the year under the first and each January."""
    bars = []
    for i, (month, value) in enumerate(per_month):
        year, number = month.split("-")
        bars.append(
            Bar(
                value=int(value),
                label=MONTHS[int(number) - 1],
                name=month_name(month),
                sublabel=year if i == 0 or number == "01" else "",
            )
        )
    return bars


def nice_ceiling(n: int) -> int:
    """Return the smallest 1, 2 or 5 times a power of ten that is at least n (and at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= n:
                return step * factor
        step *= 10


def _attrs(**values) -> str:
    return "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in values.items())


def _text(x: float, y: float, content: str, anchor: str = "middle", cls: str = "") -> str:
    extra = {"class_": cls} if cls else {}
    return (
        f"<text{_attrs(x=f'{x:g}', y=f'{y:g}', text_anchor=anchor, **extra)}>"
        f"{escape(content)}</text>"
    )


def bar_chart(bars: Sequence[Bar], *, title: str, ident: str, unit: tuple[str, str]) -> Markup:
    """Draw bars as an inline <svg>, labelled by title and a description built from the figures.

    ident prefixes the ids of the title and description (unique in the page);
    unit is the singular and plural word for a value ("uso", "usos").
    """
    top = max((b.value for b in bars), default=0)
    scale = nice_ceiling(top)
    width = LEFT + SLOT * max(len(bars), 1) + RIGHT
    height = TOP + PLOT_HEIGHT + BOTTOM
    base = TOP + PLOT_HEIGHT

    def word(n: int) -> str:
        return unit[0] if n == 1 else unit[1]

    if bars and top:
        peak = next(b for b in bars if b.value == top)
        summary = (
            f"{thousands(sum(b.value for b in bars))} {word(sum(b.value for b in bars))} "
            f"de {bars[0].name} a {bars[-1].name}; el mes con más: {peak.name}, "
            f"{thousands(top)} {word(top)}."
        )
    elif bars:
        summary = f"Ningún {unit[0]} de {bars[0].name} a {bars[-1].name}."
    else:
        summary = "Sin datos."
    parts = [
        f"<svg{_attrs(xmlns='http://www.w3.org/2000/svg', viewBox=f'0 0 {width} {height}')}"
        f"{_attrs(width=width, height=height, role='img', class_='grafica-svg')}"
        f"{_attrs(aria_labelledby=f'{ident}-titulo {ident}-desc', font_size=FONT)}>",
        f'<title id="{escape(ident)}-titulo">{escape(title)}</title>',
        f'<desc id="{escape(ident)}-desc">{escape(summary)}</desc>',
    ]
    # The scale: zero, half and the top, as thin rules with their figures.
    for fraction in (0, 0.5, 1):
        y = base - PLOT_HEIGHT * fraction
        rule = _attrs(x1=LEFT, x2=width - RIGHT, y1=f"{y:g}", y2=f"{y:g}", stroke=RULE)
        parts.append(f'<line{rule} class="grafica-regla"/>')
        figure = thousands(round(scale * fraction)) if fraction != 0.5 or scale > 1 else ""
        if figure:
            parts.append(_text(LEFT - 4, y + FONT / 3, figure, anchor="end"))
    for i, b in enumerate(bars):
        x = LEFT + SLOT * i + (SLOT - BAR) / 2
        h = PLOT_HEIGHT * b.value / scale
        centre = x + BAR / 2
        tooltip = f"{b.name}: {thousands(b.value)} {word(b.value)}"
        rect = _attrs(x=f"{x:g}", y=f"{base - h:g}", width=BAR, height=f"{h:g}", fill=BAR_FILL)
        parts.append(f'<rect{rect} class="grafica-barra"><title>{escape(tooltip)}</title></rect>')
        if b.value:
            parts.append(_text(centre, base - h - 4, thousands(b.value), cls="grafica-valor"))
        parts.append(_text(centre, base + FONT + 4, b.label))
        if b.sublabel:
            parts.append(_text(centre, base + 2 * FONT + 8, b.sublabel))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text and attribute above is escaped
