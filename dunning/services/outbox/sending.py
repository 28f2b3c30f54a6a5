"""The batch: lease the due rows of a message, send each, record each right after its send."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import RowMapping

from dunning.errors import MailUnavailable
from dunning.ports import Pipeline
from dunning.services.outbox import delivery, leases
from dunning.store.uow import statements

log = logging.getLogger(__name__)


def send_notifications(c: Pipeline, ids: Sequence[int], now: datetime) -> dict[int, str]:
    """Send each due row of ``ids`` once; returns what happened to each id claimed.

    The due rows are leased in one statement and the lease is renewed while the batch runs
    (:mod:`.leases`). Each email is marked sent right after the server took it, in one
    statement on PostgreSQL (the mark and its audit row), so the window in which a crash
    resends a message stays one message wide.
    """
    results: dict[int, str] = {}
    with statements(c.engine) as conn:  # one round trip per write on PostgreSQL
        lease, rows = leases.claim(conn, c, ids, now)
        pending = deque(rows)
        margin = leases.renew_margin(c)
        with leases.kept(c, lease):
            while pending:
                at = max(now, c.clock.now())
                if lease.until - at < margin:  # the keeper fell behind: renew before sending
                    leases.renew(conn, c, lease, at)
                row = pending.popleft()
                if row["id"] in lease.lost:
                    continue  # its lease ran out and another sender has it
                try:
                    results[row["id"]], mark = delivery.send_one(c, row, at)
                    with conn.begin():
                        mark(conn)
                    lease.done(row["id"])
                except MailUnavailable as exc:
                    # No server takes mail now: the rest of the batch would fail the same way.
                    rest = [row, *pending]
                    leases.put_off(conn, c, rest, at, lease, exc)
                    results.update((r["id"], "deferred") for r in rest)
                    break
                except BaseException:
                    # This row keeps its lease (it may have gone out: when the lease ends it is
                    # sent again with the same Message-ID); the rows after it are given back.
                    lease.let_go([row["id"]])
                    leases.release(conn, [r["id"] for r in pending], lease)
                    raise
    _log_sent(rows, results)
    return results


def _log_sent(rows: Sequence[RowMapping], results: dict[int, str]) -> None:
    """One line per batch naming every email sent (deferrals and failures have their own)."""
    keys = [str(r["dedup_key"]) for r in rows if results.get(r["id"]) == "sent"]
    if keys:
        log.info("sent %d emails: %s", len(keys), ", ".join(keys))
