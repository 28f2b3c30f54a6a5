"""``dunning queues`` and ``dlq`` on brokers they cannot read: they say so instead of failing."""

from __future__ import annotations

import json

import pytest

from dunning.cli.main import main
from tests.services import free_port


def test_the_stub_broker_has_nothing_to_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queues", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["broker"] == "stub"
    assert main(["dlq", "list"]) == 0
    assert "stub broker" in capsys.readouterr().out


def test_rabbitmq_points_to_its_own_console(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    assert main(["queues"]) == 0
    assert "management UI" in capsys.readouterr().out


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
