"""``python -m bench [--quick] [--only NAME ...] [--repeat N] [--out bench/results/latest.json]``.

Runs each figure against real PostgreSQL, Redis, smtp-sink and ``dramatiq`` worker processes,
prints the table and writes the results (each figure, its baseline, the ratio, the machine, the
date). ``--quick`` uses tiny sizes: it checks that the harness works, not the timings.
``--repeat N`` measures each figure N times in a row and keeps every run (``details.run``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    PG_ADMIN_URL,
    REDIS_URL,
    REPO,
    BenchError,
    Figure,
    Run,
    check_no_consumers,
    load_avg,
    machine,
)
from bench.table import render

# figure name -> module measuring it (a module may measure several figures)
FIGURES: dict[str, str] = {
    "retry_charges": "bench.retry_charges",
    "e2e_cases": "bench.e2e",
    "producer": "bench.producer",
    "producer_scaling": "bench.producer",
    "enqueue_rate": "bench.enqueue",
    "emails": "bench.emails",
    "webhooks": "bench.webhooks",
    "worker_memory": "bench.memory",
    "import": "bench.importer",
    "whatif": "bench.whatif",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), metavar="NAME",
                        help="measure only these figures: " + ", ".join(FIGURES))  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="measure each figure N times; every run is kept")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis URL with a DB number "
                        "that only the harness uses (it is flushed)")  # fmt: skip
    return parser.parse_args(argv)


def modules(names: list[str]) -> list[str]:
    """The modules measuring ``names``, in table order, each once."""
    out: list[str] = []
    for name, module in FIGURES.items():
        if name in names and module not in out:
            out.append(module)
    return out


def _turns(names: list[str], repeat: int) -> list[tuple[str, int]]:
    """Each module ``repeat`` times in a row, with the run's number."""
    return [(name, turn) for name in names for turn in range(1, max(repeat, 1) + 1)]


def _stop(signum: int, _frame: object) -> None:
    # Unwinds through the figures' context managers: workers stopped, scratch databases
    # dropped, the Redis database flushed, smtp-sink ended.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the figures; write the JSON; exit 0 when each ran (met or not), 1 when one failed."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _stop)
    wanted = args.only or list(FIGURES)
    started = time.monotonic()
    try:
        check_no_consumers(args.redis_url)
    except BenchError as exc:
        _log(f"error: {exc}")
        return 2
    results: list[Figure] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dunning-bench-") as tmp:
        for module_name, turn in _turns(modules(wanted), args.repeat):
            run = Run(quick=args.quick, pg_admin_url=args.pg_url, redis_url=args.redis_url,
                      workdir=Path(tmp), log=_log)  # fmt: skip
            _log(f"== {module_name} (load {load_avg()})")
            t0 = time.monotonic()
            try:
                figures = importlib.import_module(module_name).run(run)
            except Exception as exc:  # one broken figure must not hide the others
                failures += 1
                _log(f"   failed: {type(exc).__name__}: {exc}")
                figures = [
                    Figure(
                        name=n, title=n, value=None, unit="", target="", skipped=f"failed: {exc}"
                    )
                    for n in wanted
                    if FIGURES[n] == module_name
                ]
            for f in figures:
                if args.repeat > 1:
                    f.details["run"] = turn
                f.details.setdefault("load_avg_after", load_avg())
                f.details.setdefault("seconds", round(time.monotonic() - t0, 1))
            results += [f for f in figures if f.name in wanted]
    results.sort(key=lambda f: list(FIGURES).index(f.name))
    report = {
        "machine": machine(),
        "quick": args.quick,
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "seconds": round(time.monotonic() - started, 1),
        "figures": [f.as_dict() for f in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp_out.replace(args.out)
    print(render(results))
    print(f"\nwrote {args.out}")
    return 1 if failures else 0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
