"""The end-to-end figure's baseline, as a ``dramatiq`` module: per case, one PostgreSQL
transaction (one UPDATE, one INSERT) and one pre-rendered email over the process's one reused
aiosmtplib connection.

It runs with the figure's broker, middleware, processes and threads (``dunning worker -p 2 -t
8``): the same work a case needs at the least, with nothing of the pipeline's own. As in the
pipeline, the SMTP client lives on one event loop per process, whose thread the actor threads
hand their message to::

    python -m dramatiq bench.baseline_e2e_worker --processes 2 --threads 8 --queues bench
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from email import policy

import aiosmtplib
import dramatiq
from sqlalchemy import text

from bench.baselines import ACTOR, QUEUE
from bench.smtp_blast import prerendered
from dunning.store.engine import make_engine
from workers.broker import make_broker

logging.basicConfig(level=logging.INFO)
broker = make_broker(os.environ["DUNNING_BROKER_URL"], prometheus=True)
dramatiq.set_broker(broker)
_engine = make_engine(os.environ["DUNNING_DATABASE_URL"])
_MESSAGE = prerendered()
_DATA = _MESSAGE.as_bytes(policy=policy.SMTP)
_SENDER, _RECIPIENT = "billing@example.com", "customer@example.com"
_loop = asyncio.new_event_loop()
_client: aiosmtplib.SMTP | None = None
_started = threading.Lock()


def _smtp_loop() -> asyncio.AbstractEventLoop:
    with _started:
        if not _loop.is_running():
            threading.Thread(target=_loop.run_forever, name="smtp", daemon=True).start()
    return _loop


async def _send() -> None:
    global _client
    if _client is None:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=int(os.environ["DUNNING_SMTP__PORT"]), start_tls=False
        )
        await client.connect()
        _client = client
    await _client.sendmail(_SENDER, [_RECIPIENT], _DATA)


@dramatiq.actor(
    actor_name=ACTOR, queue_name=QUEUE, max_retries=5, min_backoff=1_000, max_backoff=60_000
)
def case(row_id: int) -> None:
    """One transaction for the case's state, then its email."""
    with _engine.begin() as conn:
        conn.execute(text("UPDATE bench_rows SET n = n + 1 WHERE id = :id"), {"id": row_id})
        conn.execute(text("INSERT INTO bench_log (row_id) VALUES (:id)"), {"id": row_id})
    asyncio.run_coroutine_threadsafe(_send(), _smtp_loop()).result(timeout=60)
