"""The demo's simulations: the same generated book under the default policy and two others, each
in a worker process, with the what-if outcome model answering the retries.

The default policy's run keeps its database and its outbox (``var/demo/`` unless told
otherwise) for people to explore; the others run in memory and keep only their output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import DEFAULT_POLICY_FILE
from dunning.simulate.runner import Wiring, advance, output, simulation
from dunning.simulate.scenario import Scenario
from dunning.whatif.oracle import for_scenario
from dunning.whatif.params import ModelParams
from dunning.whatif.pool import Progress, Report, quiet_pipeline, run_jobs
from dunning.whatif.replay import BATCH, NullTransport, PolicySpec

EXAMPLES = DEFAULT_POLICY_FILE.parent / "examples"
DATABASE = "dunning.sqlite3"
OUTBOX = "outbox"


def demo_policies(base: Path = DEFAULT_POLICY_FILE) -> list[PolicySpec]:
    """The default policy, Stripe-like 8 tries in 2 weeks, and a pay-day-aware schedule."""
    import tomllib

    specs = [PolicySpec("default", base)]
    for name in ("stripe-like", "payday-aware"):
        overrides = tomllib.loads((EXAMPLES / f"{name}.toml").read_text(encoding="utf-8"))
        specs.append(PolicySpec(name, base, overrides))
    return specs


@dataclass(frozen=True)
class DemoJob:
    index: int
    scenario: Scenario
    policy: PolicySpec
    params: ModelParams
    seed: int
    keep: Path | None  # where to keep the database and the outbox, or None: in memory

    @property
    def days(self) -> int:
        return self.scenario.days


def clear(workdir: Path) -> None:
    """Remove what an earlier demo left in ``workdir`` (its database and outbox only)."""
    for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"):
        (workdir / name).unlink(missing_ok=True)
    shutil.rmtree(workdir / OUTBOX, ignore_errors=True)


def run_job(job: DemoJob, report: Report) -> list[dict[str, Any]]:
    """One policy's simulation of the book; its output lines."""
    keep = job.keep
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    wiring = Wiring(
        workdir=keep,
        database_url=f"sqlite:///{keep / DATABASE}" if keep else "sqlite://",
        policy=job.policy.book(),
        oracle=for_scenario(job.scenario, job.params, seed=job.seed),
        transport=None if keep else NullTransport(),  # kept: the .eml outbox in ``keep``
        batch=BATCH,
    )
    with quiet_pipeline(), simulation(job.scenario, wiring) as sim:
        advance(sim, job.scenario, progress=report)
        return output(sim, job.scenario)


def run_policies(
    scenario: Scenario,
    policies: list[PolicySpec],
    *,
    params: ModelParams,
    seed: int,
    keep: Path,
    workers: int,
    progress: Progress | None = None,
) -> list[list[dict[str, Any]]]:
    """Each policy's output lines, in order; the first policy's run kept in ``keep``."""
    clear(keep)
    jobs = [
        DemoJob(i, scenario, policy, params, seed, keep if i == 0 else None)
        for i, policy in enumerate(policies)
    ]
    return run_jobs(jobs, run_job, workers=workers, progress=progress)
