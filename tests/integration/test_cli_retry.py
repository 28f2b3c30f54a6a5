"""``dunning invoice retry`` on a real deployment (PostgreSQL, Redis broker): the charge goes to
the workers' queue at once, and the command says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from dunning.cli.main import main
from tests.integration.conftest import REDIS_HOST, REDIS_PORT
from tests.unit.ops.conftest import make_book

pytestmark = pytest.mark.integration


def test_retry_from_the_cli_is_sent_to_the_workers(
    module_pg_url: str,
    pg_engine: Engine,
    rdb: redis.Redis,
    redis_db: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given an open invoice in PostgreSQL and a Redis broker
    for book in make_book(module_pg_url, tmp_path):
        book.add_customer("a")
        invoice = book.fail("a")
    monkeypatch.setenv("DUNNING_DATABASE_URL", module_pg_url)
    monkeypatch.setenv("DUNNING_BROKER_URL", f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}")
    monkeypatch.setenv("DUNNING_QUEUE_PREFIX", "clitest")
    # when an operator retries it
    assert main(["invoice", "retry", invoice, "--reason", "funds are back", "--by", "ana"]) == 0
    # then the command says a worker charges it, and its message waits in the charges queue
    out = " ".join(capsys.readouterr().out.split())
    assert "retry queued, not made yet: a worker charges it in a moment" in out
    bodies = [
        body
        for key in rdb.scan_iter(match="dramatiq:clitest:charges*.msgs")
        for body in rdb.hvals(key)
    ]
    assert len(bodies) == 1, bodies
    assert invoice.encode() in bodies[0], bodies
