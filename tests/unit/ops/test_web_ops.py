"""``/ops`` behind HTTP Basic with a CSRF-checked requeue button, and the gauges of ``/metrics``."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from dunning.store.tables import invoices
from dunning.web.app import create_app
from tests.unit.ops.conftest import OPS_PASSWORD, Book, TestClient


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic("ops", OPS_PASSWORD)


@pytest.fixture
def client(book: Book) -> Iterator[TestClient]:
    with TestClient(create_app(book.c), base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("ops", "wrong"),
        basic("someone", OPS_PASSWORD),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer " + OPS_PASSWORD},
    ],
)
def test_ops_asks_for_credentials(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/ops", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="dunning ops"')
    assert "funnel" not in response.text


def test_ops_page_shows_the_funnel_with_credentials(book: Book, client: TestClient) -> None:
    book.add_customer("a", amount=4200, currency="EUR")
    book.fail("a")
    response = client.get("/ops", headers=AUTH)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    assert "Dunning funnel" in text
    assert "past due" in text
    assert "€42.00" in text
    assert "no queue data here" in text  # the stub broker has no Redis to read
    assert client.cookies.get("dunning_ops_csrf")


def test_requeue_needs_a_matching_csrf_token(client: TestClient) -> None:
    page = client.get("/ops", headers=AUTH)
    token = client.cookies.get("dunning_ops_csrf")
    assert token
    assert f'value="{token}"' not in page.text
    form = {"queue": "charges", "id": "abc"}
    unauthenticated = client.post("/ops/dlq/requeue", data=form | {"csrf": token})
    assert unauthenticated.status_code == 401
    missing = client.post("/ops/dlq/requeue", headers=AUTH, data=form)
    assert missing.status_code == 403
    forged = client.post("/ops/dlq/requeue", headers=AUTH, data=form | {"csrf": "x.y"})
    assert forged.status_code == 403
    cross_site = client.post(
        "/ops/dlq/requeue",
        headers=AUTH | {"Origin": "https://evil.example"},
        data=form | {"csrf": token},
    )
    assert cross_site.status_code == 403
    # the token passes; the stub broker has no dead letters to move
    ok = client.post("/ops/dlq/requeue", headers=AUTH, data=form | {"csrf": token})
    assert ok.status_code == 400
    assert "CSRF" not in ok.text


def test_metrics_exports_the_funnel_and_backlog_gauges(book: Book, client: TestClient) -> None:
    book.add_customer("a")
    book.add_customer("b")
    book.fail("a")
    book.fail("b")
    book.set(invoices, "in_a", paused=True)
    text = client.get("/metrics", headers=AUTH).text
    assert 'dunning_funnel_invoices{stage="past_due"} 2.0' in text
    assert 'dunning_funnel_invoices{stage="paused"} 1.0' in text
    assert 'dunning_funnel_amount_minor{currency="EUR",stage="past_due"} 2000.0' in text
    assert 'dunning_producer_lag_seconds{work="retries"}' in text
    assert "dunning_outbox_pending" in text
