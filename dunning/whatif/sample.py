"""Which invoices a what-if replays: all of them, or a stratified random sample.

Replaying an invoice through the real pipeline costs tens of milliseconds of CPU, so a large
book is replayed as a sample: the invoices are grouped by currency and decline class (the
strata), each stratum is sampled in proportion to its size (at least a few invoices from
every stratum), and each replayed invoice then stands for ``weight`` invoices of its stratum.
The sample is drawn from the seed, so the same seed replays the same invoices; every policy
replays the same sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from dunning.whatif.book import Case

MIN_PER_STRATUM = 5


@dataclass(frozen=True)
class Sample:
    cases: list[Case]
    weights: dict[str, float]  # invoice id -> how many book invoices it stands for
    strata: dict[tuple[str, str], tuple[int, int]]  # stratum -> (in the book, replayed)
    total: int  # invoices in the book

    @property
    def complete(self) -> bool:
        return len(self.cases) == self.total


def _allocate(sizes: dict[tuple[str, str], int], n: int) -> dict[tuple[str, str], int]:
    """Replayed invoices per stratum: proportional, at least MIN_PER_STRATUM (or the whole
    stratum), adding up to about ``n``."""
    total = sum(sizes.values())
    out = {}
    for key, size in sizes.items():
        share = max(MIN_PER_STRATUM, math.floor(n * size / total + 0.5))
        out[key] = min(size, share)
    return out


def draw_sample(cases: Sequence[Case], size: int | None, *, seed: int) -> Sample:
    """Every case when ``size`` is ``None`` or the book is no larger; else a stratified sample
    of about ``size`` cases, in the book's order."""
    strata: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        strata.setdefault(case.stratum, []).append(case)
    sizes = {key: len(group) for key, group in strata.items()}
    if size is None or size >= len(cases):
        chosen = list(cases)
        return Sample(chosen, dict.fromkeys((c.invoice_id for c in chosen), 1.0),
                      {k: (v, v) for k, v in sizes.items()}, len(cases))  # fmt: skip
    rng = random.Random(seed)
    counts = _allocate(sizes, size)
    picked: set[str] = set()
    weights: dict[str, float] = {}
    for key in sorted(strata):
        group = strata[key]
        for case in rng.sample(group, counts[key]):
            picked.add(case.invoice_id)
            weights[case.invoice_id] = sizes[key] / counts[key]
    chosen = [case for case in cases if case.invoice_id in picked]
    return Sample(chosen, weights, {k: (sizes[k], counts[k]) for k in sizes}, len(cases))
