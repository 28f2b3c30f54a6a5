"""Simulations in worker processes, one per core, with their progress shared.

Each job is a whole simulation in a process of its own (``spawn``: nothing inherited but the
job itself); a job reports the simulated hours it has done in a shared slot, which the parent
sums for one progress bar. With one core or one job, everything runs in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

R = TypeVar("R")
# (hours simulated, hours to simulate), summed over every job
Progress = Callable[[int, int], None]
Report = Callable[[int, int], None]
_slots: Any = None  # a worker process's view of the shared progress slots


class Job(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def days(self) -> int: ...


@contextmanager
def quiet_pipeline() -> Iterator[None]:
    """Only the pipeline's errors while a job runs: a replay's warnings (lost gateway answers,
    on purpose in the demo) would break up the progress bar. The level is put back after."""
    logger = logging.getLogger("dunning")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def cores() -> int:
    return os.cpu_count() or 1


def _init(slots: Any) -> None:
    global _slots
    _slots = slots


def _call(fn: Callable[[Any, Report], R], job: Job) -> R:
    def report(done: int, _total: int) -> None:
        if _slots is not None:
            _slots[job.index] = done

    return fn(job, report)


def run_jobs(
    jobs: Sequence[Job],
    fn: Callable[[Any, Report], R],
    *,
    workers: int,
    progress: Progress | None = None,
) -> list[R]:
    """``fn(job, report)`` for every job, results in job order. ``fn`` must be a module-level
    function (it is sent to the worker processes by name)."""
    total = sum(job.days * 24 for job in jobs)
    if workers <= 1 or len(jobs) <= 1:
        results: list[R] = []
        before = 0
        for job in jobs:

            def report(done: int, _n: int, b: int = before) -> None:
                if progress:
                    progress(b + done, total)

            results.append(fn(job, report))
            before += job.days * 24
        return results
    ctx = multiprocessing.get_context("spawn")
    slots = ctx.Array("l", len(jobs), lock=False)
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(slots,)) as pool:
        futures: list[Future[R]] = [pool.submit(_call, fn, job) for job in jobs]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            if progress:
                progress(sum(slots), total)
        return [f.result() for f in futures]
