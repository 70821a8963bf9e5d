"""Charts as inline SVG, generated server-side (no JavaScript, no network).

Every function returns :class:`markupsafe.Markup`; every piece of text that
comes from data (domain names, labels) goes through :func:`markupsafe.escape`,
so a hostile name cannot break out of the SVG. Only presentation attributes
are used (``fill``, ``stroke``, ...), never ``style=""``, so the reports'
Content-Security-Policy can forbid inline styles it did not ship.

The charts are written for inline use in the HTML reports, and small: no
``xmlns`` (an HTML parser puts ``<svg>`` in its namespace), integer or
one-decimal coordinates, shared attributes on a ``<g>``, the meters'
background from the report's style sheet, and the heat map's empty cells
drawn as one grid (see docs/reports.md, "Size").

The Markdown reports use the text counterparts :func:`sparkline` and
:func:`shade_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D1F", "#555555")
TREND_MARK = {"rising": "\u25b2", "fading": "\u25bc", "steady": "\u25cf"}
FONT = 'font-family="system-ui, sans-serif"'
INK = "#1f2933"
MUTED = "#6b7785"


def color(index: int) -> str:
    """The palette colour of the ``index``-th series (colour-blind safe, cycles)."""
    return PALETTE[index % len(PALETTE)]


def _attrs(attrs: Mapping[str, object]) -> str:
    return "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())


def _el(tag: str, text: object = None, **attrs: object) -> str:
    if text is None:
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{escape(str(text))}</{tag}>"


def _svg(
    kind: str, title: str, width: float, height: float, body: Sequence[str], text: bool = True
) -> Markup:
    """One chart: ``data-chart`` its kind, a ``<title>``; the font only on charts with text.

    ``width`` 0: no size or view box (the small meters take theirs from the style sheet).
    """
    font = f' {FONT} font-size="11"' if text else ""
    size = f' viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}"' if width else ""
    head = f'<svg class="chart" data-chart="{escape(kind)}" role="img"{size}{font}>'
    return Markup(head + _el("title", title) + "".join(body) + "</svg>")


def _fmt(v: float) -> str:
    return f"{v:.0%}" if v <= 1.0 else f"{v:g}"


def heatmap(matrix: Sequence[Sequence[float]], *, title: str, unit: str = "events") -> Markup:
    """Hour-of-day (columns) x weekday (rows, Monday first) heat map.

    ``matrix`` is 7 rows of 24 values (counts, or shares when ``unit`` is
    ``"share"``). The empty grid is one background rectangle cut by one path
    of gaps; only the cells with a value are drawn (``g.cells path``), each with
    a ``<title>`` tooltip and its ``data-value``, so the chart weighs what
    the user's activity holds, not 168 cells.
    """
    cell, left, top = 22, 36, 18
    width, height = 24 * cell, 7 * cell
    peak = max((v for row in matrix for v in row), default=0.0) or 1.0
    hours = "".join(_el("text", f"{h:02d}", x=left + h * cell + cell // 2, y=12) for h in range(0, 24, 3))
    days = "".join(_el("text", WEEKDAYS[d], x=left - 6, y=top + d * cell + 15) for d in range(len(matrix)))
    gaps = "".join(f"M{left + h * cell - 1} {top}v{height}" for h in range(1, 24)) + "".join(
        f"M{left} {top + d * cell - 1}h{width}" for d in range(1, 7)
    )
    body = [
        f'<g text-anchor="middle" fill="{MUTED}">{hours}</g>',
        f'<g text-anchor="end" fill="{INK}">{days}</g>',
        f'<rect x="{left}" y="{top}" width="{width - 2}" height="{height - 2}" fill="#f4f6f8"/>',
        f'<path d="{gaps}" stroke="#fff" stroke-width="2"/>',
        '<g class="cells" fill="#0b6e4f">',
    ]
    for d, row in enumerate(matrix):
        for h, v in enumerate(row):
            if v <= 0:
                continue
            label = f"{WEEKDAYS[d]} {h:02d}:00 \u2013 " + (f"{v:.1%}" if unit == "share" else f"{v:g} {unit}")
            opacity = f"{0.06 + 0.94 * v / peak:.2f}".lstrip("0")
            body.append(
                f'<path d="M{left + h * cell} {top + d * cell}h{cell - 2}v{cell - 2}h-{cell - 2}z" '
                f'fill-opacity="{opacity}" data-value="{v:g}">' + _el("title", label) + "</path>"
            )
    body.append("</g>")
    return _svg("heatmap", title, left + width + 4, top + height + 4, body)


@dataclass
class Series:
    """One line of an activity chart: a name, counts per period and a trend label."""

    name: str
    values: list[float]
    trend: str | None = None


def activity(periods: Sequence[str], series: Sequence[Series], *, title: str) -> Markup:
    """Activity over time: one line per series; fading lines dashed, rising thick, marked in the legend."""
    width, plot_h, left, top = 720, 170, 34, 10
    legend_h = 18 * len(series) + 8
    height = top + plot_h + 26 + legend_h
    n = max(len(periods), 1)
    step = (width - left - 10) / max(n - 1, 1)
    peak = max((v for s in series for v in s.values), default=0.0) or 1.0
    body = [
        _el("line", x1=left, y1=top + plot_h, x2=width - 10, y2=top + plot_h, stroke="#9aa5b1"),
        _el("text", f"{peak:g}", x=left - 4, y=top + 8, text_anchor="end", fill=MUTED),
        _el("text", "0", x=left - 4, y=top + plot_h, text_anchor="end", fill=MUTED),
    ]
    every = max(1, -(-n // 8))
    shown = list(range(0, n, every))
    if shown[-1] != n - 1:
        if n - 1 - shown[-1] < every * 0.7 and len(shown) > 1:
            shown.pop()
        shown.append(n - 1)
    labels = []
    for i in shown:
        end = {"text_anchor": "end"} if i == n - 1 and n > 1 else {}
        labels.append(_el("text", periods[i], x=round(left + i * step), y=top + plot_h + 16, **end))
    body.append(f'<g text-anchor="middle" fill="{MUTED}">' + "".join(labels) + "</g>")
    for k, s in enumerate(series):
        pts = " ".join(
            f"{left + i * step:.0f},{top + plot_h - (v / peak) * (plot_h - 6):.0f}"
            for i, v in enumerate(s.values)
        )
        extra: dict[str, object] = {"stroke_dasharray": "5 4"} if s.trend == "fading" else {}
        width_px = 3 if s.trend == "rising" else 1.8
        body.append(
            f'<polyline class="series" data-series="{escape(s.name)}" data-trend="{escape(s.trend or "")}" '
            f'points="{pts}" fill="none" stroke="{color(k)}" stroke-width="{width_px}"{_attrs(extra)}>'
            + _el("title", f"{s.name} ({s.trend or 'no trend'})")
            + "</polyline>"
        )
        y = top + plot_h + 34 + 18 * k
        body.append(_el("rect", x=left, y=y - 9, width=14, height=4, fill=color(k)))
        mark = TREND_MARK.get(s.trend or "", "")
        label = f"{mark} {s.name} \u2013 {s.trend}" if s.trend else s.name
        body.append(_el("text", label, x=left + 20, y=y - 3, fill=INK, class_="legend"))
    return _svg("activity", title, width, height, body)


@dataclass
class Span:
    """One row of a timeline: a name, first/last seen as fractions of the axis, a trend, a count."""

    name: str
    start: float
    end: float
    trend: str | None
    n_events: int


def timeline(spans: Sequence[Span], *, start_label: str, end_label: str, title: str) -> Markup:
    """First-to-last-seen bars per domain with rising/fading marks (used when no logs are given)."""
    width, left, row = 720, 200, 24
    plot_w = width - left - 60
    body = [
        _el("text", start_label, x=left, y=12, fill=MUTED),
        _el("text", end_label, x=left + plot_w, y=12, text_anchor="end", fill=MUTED),
    ]
    for k, s in enumerate(spans):
        y = 20 + k * row
        mark = TREND_MARK.get(s.trend or "", "")
        name = s.name if len(s.name) <= 28 else s.name[:27] + "\u2026"
        body.append(_el("text", f"{mark} {name}", x=left - 8, y=y + 14, text_anchor="end", fill=INK))
        x0 = left + s.start * plot_w
        w = max(3.0, (s.end - s.start) * plot_w)
        body.append(
            f'<rect class="span" data-series="{escape(s.name)}" data-trend="{escape(s.trend or "")}" '
            f'x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="14" rx="3" fill="{color(k)}">'
            + _el("title", f"{s.name}: {s.n_events} events, {s.trend or 'no trend'}")
            + "</rect>"
        )
        body.append(_el("text", str(s.n_events), x=x0 + w + 6, y=y + 15, fill=MUTED))
    return _svg("timeline", title, width, 28 + row * len(spans), body)


def bars(rows: Sequence[tuple[str, float]], *, title: str, kind: str = "bars") -> Markup:
    """Horizontal bars with labels and values (e.g. how many users have each domain)."""
    width, left, row = 720, 240, 22
    plot_w = width - left - 60
    peak = max((v for _, v in rows), default=0.0) or 1.0
    body: list[str] = []
    for k, (label, v) in enumerate(rows):
        y = 4 + k * row
        name = label if len(label) <= 34 else label[:33] + "\u2026"
        body.append(_el("text", name, x=left - 8, y=y + 13, text_anchor="end", fill=INK))
        w = max(1.0, v / peak * plot_w)
        body.append(
            f'<rect class="bar" data-label="{escape(label)}" data-value="{v:g}" x="{left}" y="{y + 2}" '
            f'width="{w:.1f}" height="14" rx="2" fill="{color(0)}">'
            + _el("title", f"{label}: {v:g}")
            + "</rect>"
        )
        body.append(_el("text", f"{v:g}", x=left + w + 6, y=y + 13, fill=MUTED))
    return _svg(kind, title, width, 8 + row * max(len(rows), 1), body)


def versions(rows: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, title: str) -> Markup:
    """One stacked bar per profile version (oldest first): its domains' weights, a colour per domain name."""
    width, left, row = 720, 150, 24
    plot_w = width - left - 20
    names = list(dict.fromkeys(n for _, parts in rows for n, _ in parts))
    body: list[str] = []
    for k, (label, parts) in enumerate(rows):
        y = 4 + k * row
        body.append(_el("text", label, x=left - 8, y=y + 14, text_anchor="end", fill=INK))
        x = float(left)
        for name, weight in parts:
            w = max(0.0, weight) * plot_w
            body.append(
                f'<rect class="version" data-domain="{escape(name)}" data-weight="{weight:.4f}" x="{x:.1f}" '
                f'y="{y + 2}" width="{w:.1f}" height="16" fill="{color(names.index(name))}">'
                + _el("title", f"{label}: {name} {weight:.0%}")
                + "</rect>"
            )
            x += w
    y = 8 + row * len(rows)
    x = float(left)
    for k, name in enumerate(names):  # the legend: one swatch per domain name
        body.append(_el("rect", x=x, y=y, width=10, height=10, fill=color(k)))
        label = name if len(name) <= 22 else name[:21] + "\u2026"
        body.append(_el("text", label, x=x + 14, y=y + 9, fill=MUTED))
        x += 24 + 7 * len(label)
        if x > width - 120:
            x, y = float(left), y + 16
    return _svg("versions", title, width, y + 18, body)


def meter(value: float | None, *, title: str) -> Markup:
    """A small diverging bar for a sentiment in -1..1 (grey and empty when unknown)."""
    h, mid = 10, 42  # 84 wide: the style sheet sizes it
    body = []
    if value is not None:
        x = mid if value >= 0 else mid + value * mid
        fill = "#1a7f37" if value >= 0.2 else "#b42318" if value <= -0.2 else "#8c6d1f"
        body.append(f'<rect x="{x:.1f}" width="{abs(value) * mid:.1f}" height="{h}" fill="{fill}"/>')
    return _svg("meter", title, 0, h, body, text=False)  # size, background and mid line: the style sheet


def weight_bar(weight: float, *, title: str, fill: str = "#0072B2") -> Markup:
    """A small bar showing a weight in 0..1."""
    w, h = 84, 8
    part = f"{max(0.0, min(1.0, weight)) * w:.1f}"
    body = [f'<rect width="{part}" height="{h}" rx="2" fill="{escape(fill)}"/>']
    return _svg("weight", title, 0, h, body, text=False)


SPARKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
SHADES = " \u2591\u2592\u2593\u2588"


def sparkline(values: Sequence[float]) -> str:
    """Unicode block sparkline of ``values`` (for Markdown and terminals)."""
    peak = max(values, default=0.0)
    if peak <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / peak * (len(SPARKS) - 1) + 0.5))] for v in values)


def shade_rows(matrix: Sequence[Sequence[float]]) -> list[str]:
    """The heat map as text: one line per weekday, one shade character per hour."""
    peak = max((v for row in matrix for v in row), default=0.0) or 1.0
    lines = []
    for d, row in enumerate(matrix):
        cells = "".join(
            SHADES[0] if v <= 0 else SHADES[min(len(SHADES) - 1, 1 + int(v / peak * (len(SHADES) - 2) + 0.5))]
            for v in row
        )
        lines.append(f"{WEEKDAYS[d]} |{cells}|")
    return lines


__all__ = [
    "PALETTE",
    "WEEKDAYS",
    "Series",
    "Span",
    "activity",
    "bars",
    "color",
    "heatmap",
    "meter",
    "shade_rows",
    "sparkline",
    "timeline",
    "weight_bar",
]
