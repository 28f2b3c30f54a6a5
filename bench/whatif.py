"""``dunning whatif`` on a book of 100,000 failed invoices, two policies compared.

A book from :mod:`bench.make_book` in which every customer has an invoice in dunning is given
to the real CLI with the default policy and the Stripe-like example; the figure is the
command's wall time, start-up included, as a merchant would wait for it. The book is replayed
as the command's default stratified sample (each replayed invoice standing for its stratum),
so the time grows with the sample, not with the book; reading and sampling the book is the
part that grows with it.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from bench.harness import REPO, Figure, Run, die_with_parent, dunning_env, python
from bench.make_book import write_book

TARGET_S = 60.0


def run(r: Run) -> list[Figure]:
    invoices = r.size(100_000, 40)
    book = write_book(r.workdir / "whatif-book.jsonl", invoices, seed=11, in_dunning=1.0)
    argv = [
        python(), "-m", "dunning.cli.main", "whatif", "--book", str(book),
        "--policy", "default", "--policy", str(REPO / "config/examples/stripe-like.toml"),
        "--json",
    ]  # fmt: skip
    began = time.monotonic()
    proc = subprocess.run(
        argv,
        env=dunning_env(r, "sqlite:///" + str(r.workdir / "unused.sqlite3")),
        cwd=r.workdir,
        capture_output=True,
        text=True,
        timeout=1800,
        preexec_fn=die_with_parent,
    )
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"dunning whatif exited {proc.returncode}: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    if out["invoices"] != invoices:
        raise RuntimeError(f"dunning whatif read {out['invoices']} of {invoices} invoices")
    return [
        Figure(
            name="whatif",
            title="`dunning whatif`: 100,000 failed invoices, two policies compared",
            value=round(elapsed, 1),
            unit="s",
            target=f"< {TARGET_S:.0f} s",
            met=elapsed < TARGET_S,
            details={
                "invoices": out["invoices"],
                "replayed": out["replayed"],
                "sampled": out["sampled"],
                "seed": out["seed"],
                "command_seconds": out["seconds"],
                "policies": [p["name"] for p in out["policies"]],
            },
        )
    ]
