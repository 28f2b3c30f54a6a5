"""Readiness, liveness and metrics."""

from __future__ import annotations

from pathlib import Path

from dunning.bootstrap import bootstrap
from dunning.web.app import create_app
from tests.unit.web.builders import stripe_other_event
from tests.unit.web.conftest import TestClient, Web, web_settings


def test_ready_reports_each_dependency(web: Web) -> None:
    response = web.client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "broker", "smtp", "policy"}
    assert all(check["ok"] for check in body["checks"].values())


def test_not_ready_when_the_database_is_down(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    c = bootstrap(settings)
    with TestClient(create_app(c)) as client:
        ready = client.get("/healthz")
        live = client.get("/healthz/live")
    c.close()

    assert ready.status_code == 503
    assert ready.json()["status"] == "failing"
    assert ready.json()["checks"]["database"]["ok"] is False
    assert (live.status_code, live.json()) == (200, {"status": "ok"})


def test_metrics_count_webhook_events(web: Web) -> None:
    web.post_stripe(stripe_other_event("customer.created", event_id="evt_m1", created=web.now))

    response = web.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'dunning_webhook_events_total{provider="stripe",result="ignored",type="customer.created"}'
        in response.text
    )
