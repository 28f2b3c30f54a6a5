"""A fault run: seed the book, start the daemons, wait for the run to be under way, let the
test inject its fault, wait for the run to drain, stop the daemons, check every invariant and
write the figures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.integration.conftest import Pipeline, wait_until
from tests.reliability.book import Cases, seed_cases
from tests.reliability.invariants import check, dead_letters, progress, settled
from tests.reliability.results import write_results

# One to two thousand cases in flight; 1,000 keeps each run near a minute on two busy cores.
CASES = 1000


@dataclass
class Run:
    p: Pipeline
    cases: Cases
    started: float
    seed_s: float
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Remember when something happened (a fault injected, a server back)."""
        self.marks[name] = time.monotonic()

    def since(self, name: str) -> float:
        return round(time.monotonic() - self.marks[name], 1)


def start(
    p: Pipeline,
    *,
    prefix: str,
    n: int = CASES,
    worker_env: dict[str, str] | None = None,
    scheduler: bool = True,
    names: dict[int, str] | None = None,
    before_worker: Callable[[], None] | None = None,
) -> Run:
    """Seed ``n`` cases, then start a scheduler (unless told not to), call ``before_worker``
    and start a worker."""
    started = time.monotonic()
    cases = seed_cases(p, n, prefix=prefix, names=names)
    seed_s = round(time.monotonic() - started, 1)
    if scheduler:
        p.start_scheduler()
    if before_worker is not None:
        before_worker()
    p.start_worker("worker-1", **(worker_env or {}))
    return Run(p, cases, started, seed_s)


def under_way(run: Run, *, paid: int | None = None, timeout_s: float = 120) -> dict[str, int]:
    """Wait until a share of the cases is paid (a quarter unless told); return the progress."""
    p, want = run.p, len(run.cases) // 4 if paid is None else paid
    wait_until(
        lambda: progress(p)["paid"] >= want,
        timeout_s=timeout_s,
        what=f"{want} invoices paid",
        interval_s=0.2,
        alive=p.daemons.check_alive,
    )
    return progress(p)


def drain(run: Run, *, timeout_s: float = 180) -> float:
    """Wait until the run has settled; return the seconds since the test's last mark."""
    p = run.p
    try:
        wait_until(
            lambda: settled(p, run.cases),
            timeout_s=timeout_s,
            what="the run to settle",
            interval_s=0.5,
            alive=p.daemons.check_alive,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; progress: {progress(p)}") from None
    last = max(run.marks.values(), default=run.started)
    return round(time.monotonic() - last, 1)


def finish(
    run: Run,
    name: str,
    *,
    faults: dict[str, Any],
    allow_duplicates: bool,
    stopped_may_pay: bool = False,
    timeout_s: float = 180,
    **extra: Any,
) -> dict[str, Any]:
    """Drain, stop the daemons, check the invariants, write and return the figures."""
    drain_s = drain(run, timeout_s=timeout_s)
    run.p.daemons.stop_all()
    figures = check(
        run.p, run.cases, allow_duplicates=allow_duplicates, stopped_may_pay=stopped_may_pay
    )
    figures |= {
        "faults": faults,
        "dead_letters": dead_letters(run.p),
        "seed_s": run.seed_s,
        "drain_after_fault_s": drain_s,
        "total_s": round(time.monotonic() - run.started, 1),
        **extra,
    }
    write_results(name, figures)
    return figures
