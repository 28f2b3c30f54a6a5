"""Figures of a reliability run, written where RELIABILITY.md quotes them from.

Each test writes ``reliability-results/<name>.json`` at the repository root (or under
``DUNNING_TEST_RELIABILITY_RESULTS``): the cases, the faults injected, the duplicates seen and
the time it took to drain.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def results_dir() -> Path:
    return Path(os.environ.get("DUNNING_TEST_RELIABILITY_RESULTS", ROOT / "reliability-results"))


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` as ``<name>.json``, stamped with the time and the machine's load."""
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    record = {
        "test": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
        **figures,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
    return path


def _faults(record: dict[str, Any]) -> str:
    faults = record.get("faults", {})
    keep = {k: v for k, v in faults.items() if not isinstance(v, dict)}
    return ", ".join(f"{k}={v}" for k, v in keep.items())


def summary() -> str:
    """The figures of the last run of each test as a Markdown table (for RELIABILITY.md)."""
    rows = [
        "| test | cases | faults | duplicates (same Message-ID) | drain after fault (s) |"
        " total (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for path in sorted(results_dir().glob("*.json")):
        r = json.loads(path.read_text())
        rows.append(
            f"| {r['test']} | {r.get('cases', '')} | {_faults(r)} | {r.get('smtp_duplicates', '')}"
            f" | {r.get('drain_after_fault_s', '')} | {r.get('total_s', '')} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(summary())
