"""Two deployments on one broker (one Redis database, one RabbitMQ virtual host), each with
its own database and no queue prefix configured: each works only its own messages.

Deployment A has a scheduler and, at first, no worker; B has both. A's enqueued retries must
wait in A's queue while B's worker keeps working B's, then A's own worker pays them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from dunning.bootstrap import bootstrap
from dunning.broker_names import BrokerNames, prefix_from_database
from dunning.ops.brokers import reading
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import sandbox_ledger
from tests.integration.conftest import (
    FAST_TIMING,
    MAIL_FROM,
    REDIS_HOST,
    REDIS_PORT,
    Daemons,
    MailSink,
    Pipeline,
    settings_from_env,
)
from tests.integration.rabbit import RABBIT_URL, delete_queues, need_rabbitmq
from tests.services import free_port, scratch_pg_database

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"]),
]


def deployment_env(
    database_url: str, broker_url: str, smtp_port: int, home: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    return (
        env
        | FAST_TIMING
        | {
            "DUNNING_DATABASE_URL": database_url,
            "DUNNING_BROKER_URL": broker_url,
            "DUNNING_SMTP__HOST": "127.0.0.1",
            "DUNNING_SMTP__PORT": str(smtp_port),
            "DUNNING_MAIL_FROM": MAIL_FROM,
            "DUNNING_OUTBOX_DIR": str(home / "outbox"),
            "DUNNING_METRICS_PORT": str(free_port()),
            "DUNNING_LOG_FORMAT": "json",
        }
    )


@pytest.fixture
def shared_broker_url(broker_name: str, request: pytest.FixtureRequest) -> str:
    if broker_name == "rabbitmq":
        need_rabbitmq()
        return RABBIT_URL
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{request.getfixturevalue('redis_db')}"


@pytest.fixture
def two(
    shared_broker_url: str,
    smtp: tuple[int, MailSink],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Pipeline, Pipeline]]:
    """Deployments A and B: a database each, the same broker, the queue prefix left unset."""
    inspect = None
    if shared_broker_url.startswith("redis"):
        inspect = redis.Redis.from_url(shared_broker_url)
        inspect.flushdb()
    made: list[Pipeline] = []
    with scratch_pg_database() as url_a, scratch_pg_database() as url_b:
        try:
            for name, url in (("a", url_a), ("b", url_b)):
                engine = make_engine(url)
                upgrade(engine)
                home = tmp_path / name
                (home / "daemons").mkdir(parents=True)
                env = deployment_env(url, shared_broker_url, smtp[0], home)
                c = bootstrap(settings_from_env(env), engine=engine)
                made.append(Pipeline(env, c, Daemons(home / "daemons"), smtp[1], inspect))
            yield made[0], made[1]
        finally:
            for p in made:
                p.daemons.stop_all()
                if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
                    p.daemons.dump_logs()
                p.container.close()
                p.engine.dispose()
            if inspect is not None:
                inspect.flushdb()
                inspect.close()
            else:
                for url in (url_a, url_b):
                    delete_queues(shared_broker_url, prefix_from_database(url))


def ready_charges(p: Pipeline) -> int:
    with reading(p.container.settings) as view:
        assert view is not None
        (stats,) = view.queues(["charges"], now_ms=0)
    return stats.ready


def ledger_keys(p: Pipeline) -> list[Any]:
    with p.engine.connect() as conn:
        return sorted(conn.execute(select(sandbox_ledger.c.idempotency_key)).scalars())


@pytest.mark.timeout(180)
def test_two_deployments_on_one_broker_work_only_their_own_messages(
    two: tuple[Pipeline, Pipeline],
) -> None:
    a, b = two
    assert a.names.prefix != b.names.prefix, "the databases' names give each its own prefix"
    assert a.names == BrokerNames.for_settings(a.container.settings)

    b.start_worker("worker-b")
    b.start_scheduler("scheduler-b")
    a.start_scheduler("scheduler-a")
    a_ids = a.seed_due_retries(5, prefix="a")
    b_first = b.seed_due_retries(5, prefix="b")
    b.wait(lambda: b.all_paid(b_first), timeout_s=60, what="B's first retries paid")
    a.wait(lambda: ready_charges(a) >= 1, timeout_s=30, what="A's retries in A's queue")

    # B's worker goes on taking B's messages; A's stay where they are, unpaid.
    b_later = b.seed_due_retries(5, prefix="c")
    b.wait(lambda: b.all_paid(b_later), timeout_s=60, what="B's later retries paid")
    assert ready_charges(a) >= 1, "B's worker took A's messages"
    assert a.count_paid(a_ids) == 0, "B's worker took A's messages"
    assert ledger_keys(a) == []

    a.start_worker("worker-a")
    a.wait(lambda: a.all_paid(a_ids), timeout_s=60, what="A's retries paid by A's worker")
    assert [k.split("_att_")[0] for k in ledger_keys(a)] == [f"inv_{i}" for i in sorted(a_ids)]
    assert len(ledger_keys(b)) == len(b_first + b_later)
