"""``dunning whatif --report``: the comparison as one self-contained HTML page, with the share
of invoices recovered by day since the failure (one line per policy) and the recovery rate by
decline class (one bar per policy)."""

from __future__ import annotations

from html import escape

from dunning.simulate.html import SERIES, WIDTH, legend, lines_chart, page, rich_table
from dunning.simulate.words import DECLINE_CLASSES, words
from dunning.whatif.compare import Comparison
from dunning.whatif.present import headline, tables

CURVE_DAYS = 30


def recovery_curves(c: Comparison, days: int = CURVE_DAYS) -> str:
    """Share of invoices recovered within each day of their failure, one line per policy."""
    series = [
        (p.name, f.recovered_by_day(days)) for p, f in zip(c.policies, c.figures, strict=True)
    ]
    return lines_chart(
        "recovery-curves",
        series,
        y_label="share recovered",
        x_label="days since the failure",
        fmt="{:.0%}",
    )


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
        parts.append(
            f'<text x="{label_w - 8}" y="{y0 + bar_h}" text-anchor="end">'
            f"{escape(words(DECLINE_CLASSES, cls))}</text>"
        )
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
    parts.append(legend([p.name for p in c.policies], height - 18))
    parts.append("</svg>")
    return "".join(parts)


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
            *(rich_table(t) for t in tables(c)),
        ],
    )
