"""Readiness, liveness and metrics."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from dunning.bootstrap import bootstrap
from dunning.ops import gauges
from dunning.web.app import create_app
from dunning.web.metrics import internal_app
from tests.unit.web.builders import stripe_other_event
from tests.unit.web.conftest import TestClient, Web, web_settings

OPS_LOGIN = {
    "Authorization": "Basic " + base64.b64encode(b"ops:dev-insecure-secret-change-me").decode()
}


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
    web.post_stripe(
        stripe_other_event("customer.discount.created", event_id="evt_m1", created=web.now)
    )

    response = web.client.get("/metrics", headers=OPS_LOGIN)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'dunning_webhook_events_total{provider="stripe",result="ignored",type="customer.discount.created"}'
        in response.text
    )


def test_the_public_readiness_answer_names_no_host_user_database_or_path(web: Web) -> None:
    public = web.client.get("/healthz")
    assert public.status_code == 200
    assert public.json()["checks"]["database"] == {"ok": True}
    for secretish in ("sqlite", "web.sqlite3", "outbox", "policy.toml", str(Path.cwd())):
        assert secretish not in public.text
    detailed = web.client.get("/healthz", headers=OPS_LOGIN).json()
    assert "web.sqlite3" in detailed["checks"]["database"]["detail"]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
    assert web.client.get("/healthz", headers=wrong).status_code == 401


def test_metrics_need_the_ops_login_on_the_public_port(web: Web) -> None:
    refused = web.client.get("/metrics")
    assert refused.status_code == 401
    assert "dunning_" not in refused.text
    assert web.client.get("/metrics", headers=OPS_LOGIN).status_code == 200


def test_the_internal_metrics_app_serves_metrics_alone_without_a_login(web: Web) -> None:
    with TestClient(internal_app(web.c)) as internal:
        scraped = internal.get("/metrics")
        assert scraped.status_code == 200
        assert "dunning_funnel_invoices" in scraped.text
        for path in ("/ops", "/healthz", "/update/x", "/webhooks/stripe"):
            assert internal.get(path).status_code == 404, path


def test_scrapes_in_quick_succession_read_the_database_and_broker_once(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker_reads: list[int] = []

    class View:
        kind = "redis"

        def queues(self, queues: Sequence[str], *, now_ms: int) -> list[Any]:
            broker_reads.append(now_ms)
            return []

    @contextmanager
    def reading(settings: object) -> Iterator[View]:
        yield View()

    monkeypatch.setattr(gauges, "reading", reading)
    statements: list[str] = []
    event.listen(web.c.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    first = web.client.get("/metrics", headers=OPS_LOGIN)
    read = len(statements)
    for _ in range(5):
        assert web.client.get("/metrics", headers=OPS_LOGIN).status_code == 200
    assert read > 0
    assert len(statements) == read  # the next scrapes showed the values of the first read
    assert len(broker_reads) == 1
    assert "dunning_funnel_invoices" in first.text
    gauges.refresh(web.c, (), web.now, force=True)
    assert len(statements) > read
    assert len(broker_reads) == 2
