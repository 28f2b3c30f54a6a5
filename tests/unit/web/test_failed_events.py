"""Stored gateway events that fail: each on its own, ``failed`` with its error when trying
again cannot help, shown by ``dunning dlq list`` and ``dunning status``, offered again by
``dunning dlq requeue`` (the same on PostgreSQL with real workers:
tests/integration/test_poison_events.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from dunning.cli.main import main
from dunning.errors import TransientError
from dunning.ops.gauges import refresh_funnel
from dunning.services import events as event_service
from dunning.store.tables import invoices, webhook_events
from tests.unit.web.builders import stripe_invoice_event
from tests.unit.web.conftest import Web
from workers.actors import process_events


def store_three(web: Web) -> dict[str, int]:
    """Three failed-payment events of three customers, stored and not yet processed."""
    for n in ("1", "2", "3"):
        web.add_customer(f"cus_{n}")
        event = stripe_invoice_event(
            event_id=f"evt_{n}", invoice=f"in_{n}", subscription=f"sub_cus_{n}",
            customer=f"cus_{n}", created=web.now,
        )  # fmt: skip
        assert web.post_stripe(event).json() == {"status": "accepted"}
    return {r["event_id"]: r["id"] for r in web.rows(webhook_events)}


def failing_on(monkeypatch: pytest.MonkeyPatch, event_id: str, error: Exception) -> None:
    real = event_service.apply

    def apply(c: Any, event: Any, now: Any) -> str:
        if event.event_id == event_id:
            raise error
        return real(c, event, now)

    monkeypatch.setattr(event_service, "apply", apply)


def statuses(web: Web) -> dict[str, tuple[str, str | None]]:
    return {r["event_id"]: (r["status"], r["error"]) for r in web.rows(webhook_events)}


def test_a_transient_error_leaves_its_event_for_later_and_the_others_go_on(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = store_three(web)
    failing_on(monkeypatch, "evt_1", TransientError("the gateway timed out"))

    with pytest.raises(TransientError):  # the batch is retried ...
        process_events(list(ids.values()))

    assert statuses(web) == {  # ... and finds the others done
        "evt_1": ("received", None),
        "evt_2": ("processed", None),
        "evt_3": ("processed", None),
    }


def test_the_database_down_stops_the_batch_at_once(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every other event would wait for the database and fail the same way."""
    ids = store_three(web)
    down = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    failing_on(monkeypatch, "evt_1", down)

    with pytest.raises(OperationalError):
        process_events(list(ids.values()))

    assert {status for status, _ in statuses(web).values()} == {"received"}


def test_an_error_that_trying_again_cannot_fix_marks_the_event_failed(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = store_three(web)
    failing_on(monkeypatch, "evt_2", KeyError("plan"))

    tally = process_events(list(ids.values()))

    assert tally == {"processed": 2, "failed": 1}
    assert statuses(web) == {
        "evt_1": ("processed", None),
        "evt_2": ("failed", "KeyError: 'plan'"),
        "evt_3": ("processed", None),
    }
    assert {r["id"] for r in web.rows(invoices)} == {"in_1", "in_3"}


def test_failed_events_show_in_dlq_and_status_and_requeue_offers_them_again(
    web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = store_three(web)
    failing_on(monkeypatch, "evt_2", ValueError("no plan called 'gold'"))
    process_events(list(ids.values()))
    monkeypatch.setenv("DUNNING_DATABASE_URL", str(web.c.settings.database_url))
    capsys.readouterr()

    assert main(["dlq", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)["failed_events"]
    assert (listed["id"], listed["provider"], listed["event_id"]) == (
        ids["evt_2"],
        "stripe",
        "evt_2",
    )
    assert listed["error"] == "ValueError: no plan called 'gold'"
    assert main(["dlq", "list"]) == 0
    text = capsys.readouterr().out
    assert "gateway events failed for good" in text
    assert "evt_2" in text
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events_failed"] == 1
    assert main(["status"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "gateway events" in line]
    assert row.split("│")[2].strip() == "1"
    assert refresh_funnel(web.c, web.now, force=True)
    assert REGISTRY.get_sample_value("dunning_events_failed") == 1

    monkeypatch.undo()  # the cause is fixed
    monkeypatch.setenv("DUNNING_DATABASE_URL", str(web.c.settings.database_url))
    assert main(["dlq", "requeue", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requeued_events"] == 1
    assert statuses(web)["evt_2"] == ("received", None)
    process_events([ids["evt_2"]])
    assert statuses(web)["evt_2"] == ("processed", None)
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events_failed"] == 0
