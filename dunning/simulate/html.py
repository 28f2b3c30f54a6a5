"""What the HTML reports share (``demo --report``, ``whatif --report``): one self-contained
page, inline CSS and SVG, no script and no external asset, well-formed XML as well as HTML."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from rich.table import Table

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T, PAD_R = 680, 290, 78, 46, 16, 16
GREEN, RED, GREY, BLUE = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
SERIES = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828", "#00838f")
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;text-align:right;
border-bottom:1px solid #ddd}td:first-child,th:first-child{text-align:left}
.kpi{display:flex;gap:1.5em;flex-wrap:wrap}.kpi div{background:#f4f6f8;padding:.6em 1em;
border-radius:6px}.kpi b{display:block;font-size:1.5em}svg text{font-size:12px;fill:#444}
.note{color:#666;font-size:.9em}
"""


def page(title: str, body: Sequence[str]) -> str:
    """The whole document around ``body``."""
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            *body,
            "</body></html>\n",
        ]
    )


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def nice_step(top: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving four to eight ticks up to
    ``top``."""
    power = math.floor(math.log10(max(top, 1e-9)))
    for k in range(power + 1, power - 3, -1):
        for mantissa in (5.0, 2.5, 2.0, 1.0):
            step = mantissa * 10.0**k
            if 4 <= top / step <= 8:
                return step
    return 10.0**power


def axes(top: float, days: int, *, y_label: str, x_label: str, fmt: str = "{:,.0f}") -> list[str]:
    """Grid lines and ticks of a chart from 0 to ``top`` over ``days`` days."""
    step = nice_step(top)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    parts = []
    tick = 0.0
    while tick <= top + 1e-9:
        y = PAD_T + plot_h * (1 - tick / top)
        parts.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt.format(tick)}</text>'
        )
        tick += step
    for day in range(0, days + 1, 7 if days > 20 else 1):
        x = PAD_L + plot_w * day / max(days, 1)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - PAD_B + 18}" text-anchor="middle">{day}</text>'
        )
    parts.append(
        f'<text x="{PAD_L + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{PAD_T + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {PAD_T + plot_h / 2:.0f})">{escape(y_label)}</text>'
    )
    return parts


def round_top(top: float) -> float:
    """``top`` rounded up to a whole tick step."""
    top = max(top, 1e-9)
    step = nice_step(top)
    return step * -(-top // step)


def rich_table(t: Table) -> str:
    """A rich table (as the CLI prints it) as a heading, an HTML table and its caption."""
    head = [str(col.header) for col in t.columns]
    columns = [[str(cell) for cell in col.cells] for col in t.columns]
    parts = [f"<h2>{escape(str(t.title))}</h2>"] if t.title else []
    parts.append(table(head, list(zip(*columns, strict=True))))
    if t.caption:
        parts.append(f'<p class="note">{escape(str(t.caption))}</p>')
    return "".join(parts)


def lines_chart(
    chart_id: str,
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    y_label: str,
    x_label: str,
    fmt: str = "{:,.0f}",
) -> str:
    """One line per named series over days 0..n, with a legend."""
    days = max(max((len(v) for _, v in series), default=2) - 1, 1)
    top = round_top(max((max(v, default=0.0) for _, v in series), default=0.0) or 1.0)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    height = HEIGHT + 24
    parts = [
        f'<svg id="{chart_id}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(y_label)}">'
    ]
    parts += axes(top, days, y_label=y_label, x_label=x_label, fmt=fmt)
    for i, (_, values) in enumerate(series):
        points = " ".join(
            f"{PAD_L + plot_w * d / days:.1f},{PAD_T + plot_h * (1 - v / top):.1f}"
            for d, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" '
            f'stroke="{SERIES[i % len(SERIES)]}" stroke-width="2"/>'
        )
    parts.append(legend([name for name, _ in series], HEIGHT + 6))
    parts.append("</svg>")
    return "".join(parts)


def legend(names: Sequence[str], y: int) -> str:
    return "".join(
        f'<rect x="{PAD_L + 150 * i}" y="{y}" width="12" height="12" '
        f'fill="{SERIES[i % len(SERIES)]}"/>'
        f'<text x="{PAD_L + 150 * i + 18}" y="{y + 11}">{escape(name)}</text>'
        for i, name in enumerate(names)
    )
