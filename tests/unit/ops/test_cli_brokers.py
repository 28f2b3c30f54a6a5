"""``dunning queues`` and ``dlq`` on brokers they cannot read: they say so, and fail when the
broker is down (the commands on a real Redis and RabbitMQ: tests/integration/test_ops_*.py)."""

from __future__ import annotations

import json
import os

import pytest

from dunning.cli.main import main
from tests.services import free_port


def test_the_stub_broker_has_nothing_to_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queues", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["broker"] == "stub"
    assert main(["dlq", "list"]) == 0
    assert "stub broker" in capsys.readouterr().out


def test_unreachable_rabbitmq_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert main(["queues", "--json"]) == 1
    assert "cannot read RabbitMQ" in capsys.readouterr().err
    assert main(["dlq", "list"]) == 1
    assert "cannot read RabbitMQ" in capsys.readouterr().err


def test_unreachable_redis_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["queues"]) == 1
    assert "cannot read the broker's Redis" in capsys.readouterr().err
    assert main(["dlq", "requeue"]) == 1


def test_an_unknown_queue_is_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["dlq", "list", "--queue", "nope"]) == 2
    assert "unknown queue 'nope'" in capsys.readouterr().err


def test_dunning_worker_consumes_the_deployments_queues(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", sqlite_url)  # workers start on a current schema
    monkeypatch.setenv("DUNNING_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    monkeypatch.setenv("DUNNING_QUEUE_PREFIX", "eu1")
    started: list[list[str]] = []

    def execvpe(_file: str, args: list[str], _env: dict[str, str]) -> None:
        started.append(args)  # instead of becoming the dramatiq process

    monkeypatch.setattr(os, "execvpe", execvpe)
    assert main(["worker", "--queues", "charges emails"]) == 0
    (args,) = started
    assert args[args.index("--queues") + 1 :] == ["eu1.charges", "eu1.emails"]
    assert main(["worker", "--queues", "charges nope"]) == 2
    assert "unknown queue(s) nope" in capsys.readouterr().err
