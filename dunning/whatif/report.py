"""``dunning whatif --report``: the comparison as one self-contained HTML page, with the share
of invoices recovered by day since the failure (one line per policy) and the recovery rate by
decline class (one bar per policy)."""

from __future__ import annotations

from html import escape

from dunning.simulate.html import HEIGHT, PAD_B, PAD_L, PAD_R, PAD_T, SERIES, WIDTH, axes, page
from dunning.simulate.html import table as html_table
from dunning.simulate.words import DECLINE_CLASSES, words
from dunning.whatif.compare import Comparison
from dunning.whatif.present import headline, tables

CURVE_DAYS = 30


def _legend(names: list[str], y: int) -> str:
    return "".join(
        f'<rect x="{PAD_L + 150 * i}" y="{y}" width="12" height="12" '
        f'fill="{SERIES[i % len(SERIES)]}"/>'
        f'<text x="{PAD_L + 150 * i + 18}" y="{y + 11}">{escape(name)}</text>'
        for i, name in enumerate(names)
    )


def recovery_curves(c: Comparison, days: int = CURVE_DAYS) -> str:
    """Share of invoices recovered within each day of their failure, one line per policy."""
    curves = [f.recovered_by_day(days) for f in c.figures]
    top = max(0.1, max((max(curve) for curve in curves), default=0.0))
    top = min(1.0, -(-top // 0.1) * 0.1)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    height = HEIGHT + 24
    parts = [
        f'<svg id="recovery-curves" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        'aria-label="Share of invoices recovered by days since the failure">'
    ]
    parts += axes(top, days, y_label="share recovered", x_label="days since the failure",
                  fmt="{:.0%}")  # fmt: skip
    for i, curve in enumerate(curves):
        points = " ".join(
            f"{PAD_L + plot_w * d / days:.1f},{PAD_T + plot_h * (1 - v / top):.1f}"
            for d, v in enumerate(curve)
        )
        colour = SERIES[i % len(SERIES)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')  # fmt: skip
    parts.append(_legend([p.name for p in c.policies], HEIGHT + 6))
    parts.append("</svg>")
    return "".join(parts)


def class_bars(c: Comparison) -> str:
    """Recovery rate by decline class: a group of bars per class, a bar per policy."""
    classes = list(c.figures[0].by_class)
    label_w, bar_h, gap = 260, 14, 10
    group_h = bar_h * len(c.figures) + gap
    height = len(classes) * group_h + gap + 24
    parts = [
        f'<svg id="class-bars" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Recovery rate by decline class">'
    ]
    for g, cls in enumerate(classes):
        y0 = gap + g * group_h
        parts.append(f'<text x="{label_w - 8}" y="{y0 + bar_h}" text-anchor="end">'
                     f"{escape(words(DECLINE_CLASSES, cls))}</text>")  # fmt: skip
        for i, f in enumerate(c.figures):
            n, recovered = f.by_class.get(cls, (0.0, 0.0))
            rate = recovered / n if n else 0.0
            y = y0 + i * bar_h
            width = (WIDTH - label_w - 70) * rate
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h - 2}" '
                f'fill="{SERIES[i % len(SERIES)]}"/>'
                f'<text x="{label_w + width + 6:.1f}" y="{y + bar_h - 3}">{rate:.0%}</text>'
            )
    parts.append(_legend([p.name for p in c.policies], height - 18))
    parts.append("</svg>")
    return "".join(parts)


def _html_tables(c: Comparison) -> list[str]:
    out = []
    for t in tables(c):
        head = [str(col.header) for col in t.columns]
        cells = [[str(x) for x in col.cells] for col in t.columns]
        rows = list(zip(*cells, strict=True))
        out += [f"<h2>{escape(str(t.title))}</h2>", html_table(head, rows)]
        if t.caption:
            out.append(f'<p class="note">{escape(str(t.caption))}</p>')
    return out


def render(c: Comparison) -> str:
    """The whole page."""
    names = ", ".join(p.name for p in c.policies)
    return page(
        f"What if: {names}",
        [
            f'<p class="note">{escape(headline(c))}. Each invoice is replayed through the real '
            "pipeline on a copy of the book; whether a retry passes comes from the outcome "
            "model (docs/whatif.md). Customers' own actions are not replayed: the figures are "
            "what the retries recover.</p>",
            "<h2>Recovered by day since the failure</h2>",
            recovery_curves(c),
            "<h2>Recovery rate by decline class</h2>",
            class_bars(c),
            *_html_tables(c),
        ],
    )
