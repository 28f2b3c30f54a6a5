"""The demo's HTML report: one self-contained page (inline CSS and SVG, no script, no external
asset) with the summary tables, recovery over time and the dunning funnel.

The page is well-formed XML as well as HTML, so a plain XML parser can read it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from rich.table import Table

from dunning.simulate.figures import Figures
from dunning.simulate.html import (
    BLUE,
    GREEN,
    GREY,
    HEIGHT,
    PAD_B,
    PAD_L,
    PAD_R,
    PAD_T,
    RED,
    WIDTH,
    axes,
    lines_chart,
    page,
    rich_table,
    round_top,
)


def _money(amount: float, currency: str) -> str:
    return f"{currency} {amount / 100:,.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def recovery_chart(cumulative: Sequence[float]) -> str:
    """Cumulative recovered amount (EUR) by day, as an SVG area chart."""
    days = max(len(cumulative) - 1, 1)
    top = round_top(max(max(cumulative, default=0.0), 1.0))
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def xy(day: int, value: float) -> str:
        x = PAD_L + plot_w * day / days
        y = PAD_T + plot_h * (1 - value / top)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg id="recovery-chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="Cumulative recovered revenue by day">'
    ]
    parts += axes(top, days, y_label="EUR recovered", x_label="day of the simulation")
    points = " ".join(xy(d, v) for d, v in enumerate(cumulative))
    area = f"{xy(0, 0)} {points} {xy(len(cumulative) - 1, 0)}"
    parts.append(f'<polygon points="{area}" fill="{GREEN}" fill-opacity="0.15"/>')
    parts.append(f'<polyline points="{points}" fill="none" stroke="{GREEN}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def funnel_chart(stages: Sequence[tuple[str, int]]) -> str:
    """Failed -> retried -> each way a failed invoice ended, as horizontal SVG bars."""
    whole = max((n for _, n in stages), default=0) or 1
    label_w, bar_h, gap = 200, 24, 8
    height = len(stages) * (bar_h + gap) + gap
    parts = [
        f'<svg id="funnel-chart" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="The dunning funnel">'
    ]
    for i, (stage, n) in enumerate(stages):
        y = gap + i * (bar_h + gap)
        width = (WIDTH - label_w - 90) * n / whole
        colour = GREEN if "recovered" in stage or "paid" in stage else BLUE
        colour = RED if "suspended" in stage else (GREY if i > 4 else colour)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(stage)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h}" fill="{colour}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 16}">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _kpis(f: Figures) -> str:
    recovered_eur = f.recovered_by_day[-1] if f.recovered_by_day else 0.0
    cards = [
        ("recovered", f"EUR {recovered_eur:,.2f}"),
        ("recovery rate", _pct(f.recovered, f.failed)),
        ("median days to recovery", _days(f.median_days)),
        ("p90 days to recovery", _days(f.percentile_days(0.9))),
        ("subscriptions suspended", str(f.suspended)),
    ]
    return (
        '<div class="kpi">'
        + "".join(f"<div>{escape(label)}<b>{escape(value)}</b></div>" for label, value in cards)
        + "</div>"
    )


def render(
    f: Figures,
    stages: Sequence[tuple[str, int]],
    *,
    seed: int,
    tables: Sequence[Table] = (),
    compared: Sequence[tuple[str, Figures]] = (),
) -> str:
    """The whole page: the default policy's run, then ``tables`` as the command prints them;
    with ``compared`` runs, their recovery over time side by side."""
    days = (f.end - f.start).days
    body = [
        f'<p class="note">From {f.start:%Y-%m-%d} to {f.end:%Y-%m-%d}, seed {seed}: a '
        "generated book run through the real pipeline on the embedded default (SQLite, "
        "in-process broker, sandbox gateway), retries answered by the outcome model "
        "(docs/whatif.md). Amounts in EUR use fixed demo rates.</p>",
        _kpis(f),
        "<h2>Recovery over time</h2>",
        recovery_chart(f.recovered_by_day),
    ]
    if compared:
        series = [(name, other.recovered_by_day) for name, other in compared]
        body += [
            "<h2>Recovery over time, by policy</h2>",
            lines_chart("policies-chart", series, y_label="EUR recovered",
                        x_label="day of the simulation"),
        ]  # fmt: skip
    body += ["<h2>Dunning funnel</h2>", funnel_chart(stages)]
    body += [rich_table(t) for t in tables]
    return page(f"Dunning demo: {f.customers} customers, {days} days", body)
