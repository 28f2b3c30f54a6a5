"""The retry figure's baseline, as a ``dramatiq`` module: one actor doing one PostgreSQL
transaction (one UPDATE, one INSERT) per message.

It runs on the same broker (``workers.broker.make_broker``, same middleware) with the same
``dramatiq`` flags as ``dunning worker``; only the work per message differs::

    python -m dramatiq bench.baseline_worker --processes 2 --threads 8 --queues bench
"""

from __future__ import annotations

import logging
import os

import dramatiq
from sqlalchemy import text

from bench.baselines import ACTOR, QUEUE
from dunning.store.engine import make_engine
from workers.broker import make_broker

logging.basicConfig(level=logging.INFO)
broker = make_broker(os.environ["DUNNING_BROKER_URL"], prometheus=True)
dramatiq.set_broker(broker)
_engine = make_engine(os.environ["DUNNING_DATABASE_URL"])


@dramatiq.actor(
    actor_name=ACTOR, queue_name=QUEUE, max_retries=5, min_backoff=1_000, max_backoff=60_000
)
def touch(row_id: int) -> None:
    """One transaction: bump the row's counter and log the visit."""
    with _engine.begin() as conn:
        conn.execute(text("UPDATE bench_rows SET n = n + 1 WHERE id = :id"), {"id": row_id})
        conn.execute(text("INSERT INTO bench_log (row_id) VALUES (:id)"), {"id": row_id})
