"""Merchant webhook endpoints may not point inside: internal addresses and credentials are
refused when an endpoint is added, and again at every delivery on the address its name
resolves to then; the delivery connects to the address it checked."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from sqlalchemy import insert

from config.settings import load_settings
from dunning.ops.endpoints import add_endpoint
from dunning.services import outbound, outbound_delivery
from dunning.store.tables import outbound_events, webhook_endpoints
from dunning.store.uow import transaction
from dunning.webhooks import destinations
from dunning.webhooks.destinations import RefusedDestination, Rules, check_endpoint, endpoint_rules
from tests.unit.ops.conftest import Book, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NONE_ALLOWED = Rules()
PUBLIC_IP = "93.184.215.14"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://127.8.9.10:8080/hooks",
        "http://localhost/hooks",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hooks",
        "http://172.16.3.4/hooks",
        "http://192.168.1.1/hooks",
        "http://100.64.0.1/hooks",
        "http://0.0.0.0/hooks",
        "http://[fd00::1]/hooks",
        "http://[fe80::1]/hooks",
        "http://224.0.0.1/hooks",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://printer.local/hooks",
        "http://intranet/hooks",
        "https://user:pass@merchant.example/hooks",
        "https://token@merchant.example/hooks",
        "ftp://merchant.example/hooks",
        "https:///hooks",
        "https://merchant.example:99999/hooks",
    ],
)
def test_internal_and_credential_bearing_urls_are_refused(url: str) -> None:
    with pytest.raises(RefusedDestination):
        check_endpoint(url, NONE_ALLOWED)


def test_public_urls_pass_and_an_allowed_network_lets_an_internal_one_through() -> None:
    assert check_endpoint(f"https://{PUBLIC_IP}/hooks", NONE_ALLOWED)
    assert check_endpoint("https://merchant.example/hooks", NONE_ALLOWED)  # does not resolve yet
    allowed = Rules(allow=(ipaddress.ip_network("10.20.0.0/16"),))
    assert check_endpoint("http://10.20.3.4:8080/hooks", allowed)
    with pytest.raises(RefusedDestination, match="DUNNING_ENDPOINTS__ALLOW_NETWORKS"):
        check_endpoint("http://10.21.0.1/hooks", allowed)


def test_production_takes_https_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_ENDPOINTS__ALLOW_NETWORKS", '["10.0.0.0/8"]')
    assert check_endpoint("http://10.1.2.3/hooks", endpoint_rules(load_settings()))
    monkeypatch.setenv("DUNNING_ENV", "production")
    monkeypatch.setenv("DUNNING_LINK_SECRET", "l" * 32)
    monkeypatch.setenv("DUNNING_OPS__PASSWORD", "o" * 32)
    monkeypatch.setenv("DUNNING_PUBLIC_BASE_URL", "https://pay.example.com")
    monkeypatch.setenv("DUNNING_GATEWAY", "stripe")
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "sk_live_x")
    production = endpoint_rules(load_settings())
    with pytest.raises(RefusedDestination, match="https"):
        check_endpoint("http://10.1.2.3/hooks", production)
    with pytest.raises(RefusedDestination, match="https"):
        check_endpoint(f"http://{PUBLIC_IP}/hooks", production)
    assert check_endpoint(f"https://{PUBLIC_IP}/hooks", production)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(destinations.socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_inside_is_refused_when_added(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"rebind.example": "127.0.0.1", "shop.example": PUBLIC_IP})
    with pytest.raises(RefusedDestination, match=r"rebind\.example \(127\.0\.0\.1\)"):
        check_endpoint("https://rebind.example/hooks", NONE_ALLOWED)
    assert check_endpoint("https://shop.example/hooks", NONE_ALLOWED)


@pytest.fixture
def book_without_allowances(book: Book, monkeypatch: pytest.MonkeyPatch) -> Book:
    """The book with no network allowed (its sender is built on first use, from these)."""
    monkeypatch.setattr(book.c.settings.endpoints, "allow_networks", [])
    return book


def _stored_endpoint(book: Book, url: str) -> int:
    """An endpoint row as an earlier check (or an earlier version) left it."""
    with transaction(book.c.engine) as conn:
        return int(
            conn.execute(
                insert(webhook_endpoints)
                .values(
                    url=url,
                    secret=SECRET,
                    event_types=[],
                    status="active",
                    created_at=book.now,
                    updated_at=book.now,
                )
                .returning(webhook_endpoints.c.id)
            ).scalar_one()
        )


def test_a_delivery_rechecks_the_address_the_name_resolves_to_now(
    book_without_allowances: Book, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = book_without_allowances
    port = receiver.url.split(":")[2].split("/")[0]
    fake_dns(monkeypatch, {"merchant.example": PUBLIC_IP})
    with transaction(book.c.engine) as conn:
        add_endpoint(
            conn,
            f"http://merchant.example:{port}/hooks",
            book.now,
            rules=endpoint_rules(book.c.settings),
            secret=SECRET,
        )
    _stored_endpoint(book, receiver.url)  # registered before the check existed
    # the merchant's DNS now answers with this machine's loopback address
    fake_dns(monkeypatch, {"merchant.example": "127.0.0.1"})
    with transaction(book.c.engine) as conn:
        ids = outbound.emit(conn, "card.updated", {"customer_id": "c1"}, book.now)
    assert [outbound_delivery.deliver_one(book.c, i, book.now) for i in ids] == ["retrying"] * 2
    errors = [book.row(outbound_events, i)["last_error"] for i in ids]
    assert all("not sent" in e and "internal address" in e for e in errors), errors
    assert receiver.received == []


def test_a_delivery_connects_to_the_address_it_checked(
    book: Book, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    fake_dns(monkeypatch, {"merchant.example": "127.0.0.1"})  # allowed in this book
    with transaction(book.c.engine) as conn:
        add_endpoint(
            conn,
            f"http://merchant.example:{port}/hooks",
            book.now,
            rules=endpoint_rules(book.c.settings),
            secret=SECRET,
        )
        (event_id,) = outbound.emit(conn, "card.updated", {"customer_id": "c1"}, book.now)
    assert outbound_delivery.deliver_one(book.c, event_id, book.now) == "delivered"
    (received,) = receiver.received
    assert received.headers["host"] == f"merchant.example:{port}"
    assert received.path == "/hooks"
