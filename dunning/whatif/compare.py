"""Replay a book under several policies, in worker processes, and put the figures side by side.

Each policy's replay is split into shards of whole customers when that keeps every core busy
(three policies on two cores: six half-size replays). Every replay is a separate process with
its own copy of the book in memory; they share nothing but the seed, so their results are the
same in whatever order they finish.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dunning.whatif.book import Book, Case, by_customer, span
from dunning.whatif.figures import Difference, PolicyFigures, compute, difference
from dunning.whatif.params import ModelParams
from dunning.whatif.pool import Progress, run_jobs
from dunning.whatif.pool import cores as pool_cores
from dunning.whatif.replay import InvoiceOutcome, PolicySpec, Task, run_task
from dunning.whatif.sample import Sample, draw_sample


@dataclass
class Comparison:
    book: str
    seed: int
    model: str
    sample: Sample
    start: datetime
    days: int
    policies: list[PolicySpec]
    figures: list[PolicyFigures]
    differences: list[Difference]  # each policy after the first, against the first
    seconds: float


def _shards(cases: Sequence[Case], n: int) -> list[list[Case]]:
    """``cases`` in ``n`` shards of whole customers, about even in invoices."""
    shards: list[list[Case]] = [[] for _ in range(n)]
    for group in sorted(by_customer(cases).values(), key=len, reverse=True):
        min(shards, key=len).extend(group)
    order = {case.invoice_id: i for i, case in enumerate(cases)}
    return [sorted(s, key=lambda c: order[c.invoice_id]) for s in shards if s]


def _sub_book(book: Book, cases: Sequence[Case]) -> Book:
    return Book(book.source, {cid: book.customers[cid] for cid in by_customer(cases)}, [])


def plan_tasks(
    book: Book, sample: Sample, policies: Sequence[PolicySpec], *, params: ModelParams,
    seed: int, days_after: int, cores: int,
) -> list[Task]:  # fmt: skip
    """The replays: one per policy, or per policy and shard when the cores would idle."""
    start, days = span(sample.cases, days_after)
    per_policy = 1 if len(policies) % cores == 0 or len(sample.cases) < 50 else cores
    shards = _shards(sample.cases, per_policy)
    tasks: list[Task] = []
    for slot, policy in enumerate(policies):
        for shard in shards:
            sub = _sub_book(book, shard)
            tasks.append(Task(len(tasks), policy, sub, shard, start, days, params, seed, slot))
    return tasks


def compare(
    book: Book,
    policies: Sequence[PolicySpec],
    *,
    params: ModelParams,
    seed: int,
    days_after: int = 30,
    sample_size: int | None = None,
    cores: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Replay ``book`` (or a sample of it) under each policy; the figures side by side."""
    began = time.monotonic()
    sample = draw_sample(book.cases, sample_size, seed=seed)
    cores = cores or pool_cores()
    tasks = plan_tasks(book, sample, policies, params=params, seed=seed,
                       days_after=days_after, cores=cores)  # fmt: skip
    results = run_jobs(tasks, run_task, workers=cores, progress=progress)
    outcomes: list[dict[str, InvoiceOutcome]] = [{} for _ in policies]
    peaks: list[dict[str, tuple[int, int]]] = [{} for _ in policies]
    for task, result in zip(tasks, results, strict=True):
        slot = task.slot
        outcomes[slot].update((o.invoice_id, o) for o in result.outcomes)
        for network, (month, day) in result.peaks.items():
            old = peaks[slot].get(network, (0, 0))
            peaks[slot][network] = (max(old[0], month), max(old[1], day))
    figures = [
        compute(p.name, sample.cases, outcomes[i], sample, peaks[i]) for i, p in enumerate(policies)
    ]
    diffs = [difference(sample.cases, sample, outcomes[0], o) for o in outcomes[1:]]
    start, days = span(sample.cases, days_after)
    return Comparison(book.source, seed, params.source, sample, start, days, list(policies),
                      figures, diffs, time.monotonic() - began)  # fmt: skip


def estimate_seconds(invoices: int, policies: int, cores: int) -> float:
    """A rough run time, from the replay cost measured on a 2-core machine (BENCHMARKS.md)."""
    per_invoice_s = 0.04
    return 10 + per_invoice_s * invoices * policies / max(1, min(cores, policies * 2)) * 1.1
