"""One chunk, one transaction: write its rows, then continue the dunning of the invoices it
inserted (:func:`dunning.services.imported.continue_imported`) before the commit.

If the database refuses a chunk, it is written again line by line to find the culprits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError

from dunning.gateways.cards import mask_pans
from dunning.imports.checks import ROOT, LineError
from dunning.imports.lines import CustomerLine
from dunning.imports.writer import ChunkResult, Prepared, StoredElsewhere, write_chunk
from dunning.ports import Pipeline
from dunning.services.imported import continue_imported
from dunning.store.uow import transaction

log = logging.getLogger(__name__)

Batch = list[tuple[int, CustomerLine]]


@dataclass(frozen=True)
class Target:
    """Where an import writes, when, and the pipeline that takes over its invoices in dunning
    (needed only when the file has some)."""

    engine: Engine
    now: datetime
    pipeline: Pipeline | None = None


def write(target: Target, batch: Batch, prepared: Prepared | None = None, *, full: bool = False
          ) -> ChunkResult:  # fmt: skip
    """Write a chunk; if the database refuses it, write line by line to find the culprits."""
    try:
        with transaction(target.engine) as conn:
            result = write_chunk(conn, batch, target.now, prepared, full=full)
            _take_over(conn, target, batch, result)
            return result
    except StoredElsewhere:
        return write(target, batch, full=True)
    except (IntegrityError, DataError) as exc:
        if len(batch) == 1:
            lineno = batch[0][0]
            log.warning("line %d refused by the database: %s", lineno, mask_pans(str(exc.orig)))
            error = LineError(lineno, ROOT, f"refused by the database: {_reason(exc)}")
            return ChunkResult(refused=[error])
    result = ChunkResult()
    for item in batch:
        result.merge(write(target, [item], full=full))
    return result


def _take_over(conn: Connection, target: Target, batch: Batch, result: ChunkResult) -> None:
    if not result.new_invoices:
        return
    if target.pipeline is None:
        raise ValueError("importing invoices in dunning needs the pipeline that takes them over")
    notified = {inv.id for _, c in batch for inv in c.invoices if inv.notified}
    continue_imported(conn, target.pipeline, result.new_invoices, target.now, notified=notified)


def _reason(exc: IntegrityError | DataError) -> str:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint:
        return f"constraint {constraint}"
    return mask_pans(str(exc.orig).splitlines()[0])
