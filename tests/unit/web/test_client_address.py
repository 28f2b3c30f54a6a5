"""The client's address: X-Forwarded-For believed only from a configured proxy, read from its
right end; and the shared rate-limit counters' budgets."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from dunning.web.client_address import client_address
from dunning.web.ratelimit import Budget, MemoryCounters

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.7/32")]


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_forwarded_for_is_ignored_from_anyone_but_a_proxy() -> None:
    assert client_address(request("203.0.113.9", "198.51.100.1"), PROXIES) == "203.0.113.9"
    assert client_address(request("203.0.113.9", "198.51.100.1"), []) == "203.0.113.9"


def test_from_a_proxy_the_nearest_untrusted_hop_is_the_client() -> None:
    assert client_address(request("10.1.1.1", "198.51.100.1"), PROXIES) == "198.51.100.1"
    # what the client wrote before the hop the proxies added is not believed
    spoofed = request("10.1.1.1", "1.2.3.4, 198.51.100.1, 192.0.2.7")
    assert client_address(spoofed, PROXIES) == "198.51.100.1"
    assert client_address(request("10.1.1.1", "1.2.3.4", "198.51.100.1"), PROXIES) == (
        "198.51.100.1"
    )
    assert client_address(request("10.1.1.1", "garbage"), PROXIES) == "10.1.1.1"
    assert client_address(request("10.1.1.1"), PROXIES) == "10.1.1.1"


def test_a_budget_takes_all_or_nothing_and_slides() -> None:
    counters, now = MemoryCounters(), datetime(2026, 3, 2, tzinfo=UTC)
    small, large = Budget("small", 2, 60), Budget("large", 10, 60)
    wants = [(small, "k"), (large, "k")]
    assert [counters.take(wants, now) for _ in range(3)] == [True, True, False]
    assert counters.count(large, "k", now) == 2  # the refused take counted nothing
    assert counters.take(wants, now + timedelta(seconds=61))
