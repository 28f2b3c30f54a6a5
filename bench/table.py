"""The results as a table: the same text goes to the terminal and into BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Sequence

from bench.harness import Figure

HEADER = ("figure", "value", "baseline", "ratio", "target", "met?")


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def row(f: Figure) -> tuple[str, ...]:
    """One figure as table cells."""
    if f.skipped:
        return (f.name, f.skipped, "", "", f.target, "–")
    met = "–" if f.met is None else ("yes" if f.met else "no")
    base = f"{_num(f.baseline)} {f.baseline_unit}".strip() if f.baseline is not None else "–"
    return (f.name, f"{_num(f.value)} {f.unit}", base, _num(f.ratio), f.target, met)


def render(figures: Sequence[Figure]) -> str:
    """A Markdown table of ``figures`` (readable as plain text too)."""
    rows = [HEADER, *(row(f) for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.table [FILE]``: the table of a results file (default: the latest)."""
    import json
    import sys
    from pathlib import Path

    from bench.harness import REPO

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else REPO / "bench" / "results" / "latest.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    print(render([Figure(**f) for f in report["figures"]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
