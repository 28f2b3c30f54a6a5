"""The Stripe gateway over real HTTP on 127.0.0.1: the double under uvicorn."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeRequest, ChargeResult, Decline
from dunning.gateways.stripe import DEFAULT_API_VERSION, StripeGateway
from tests.stripe_double import StripeDouble, serve

TIMEOUT_S = 0.5


@pytest.fixture
def live(double: StripeDouble) -> Iterator[StripeGateway]:
    with serve(double) as base_url:
        gw = StripeGateway(double.api_key, api_base=base_url, timeout_s=TIMEOUT_S)
        try:
            yield gw
        finally:
            gw.close()


def req(key: str, token: str = "pm_card_visa") -> ChargeRequest:
    return ChargeRequest(
        customer_id="cus_9", token=token, amount=990, currency="DKK", idempotency_key=key
    )


def test_charge_decline_and_replay_over_http(live: StripeGateway, double: StripeDouble) -> None:
    assert live.charge(req("a")) == ChargeResult("succeeded", charge_id="pi_double000001")
    assert live.charge(req("a")).charge_id == "pi_double000001"
    declined = live.charge(req("b", "pm_card_chargeDeclinedInsufficientFunds"))
    assert declined.decline == Decline("insufficient_funds", "51")
    posts = double.posts("/v1/payment_intents")
    assert [p.replayed for p in posts] == [False, True, False]
    assert all(p.headers["content-type"] == "application/x-www-form-urlencoded" for p in posts)
    assert posts[0].form["currency"] == "dkk"
    assert posts[0].form["metadata[idempotency_key]"] == "a"


def test_timeout_then_lookup_over_http(live: StripeGateway, double: StripeDouble) -> None:
    double.fail_next("timeout_after")
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable, match="timed out"):
        live.charge(req("lost"))
    assert (
        time.monotonic() - started < TIMEOUT_S * 4
    )  # the client gave up; it did not wait the double out
    double.release()
    assert live.lookup("lost", customer_id="cus_9") == ChargeResult("succeeded", "pi_double000001")
    assert len(double.intents) == 1


def test_server_error_over_http_is_unavailable(live: StripeGateway, double: StripeDouble) -> None:
    double.fail_next("500")
    with pytest.raises(GatewayUnavailable, match="500"):
        live.charge(req("c"))
    assert live.charge(
        req("c")
    ).succeeded  # the injected 500 came before any work: nothing is stored under the key


def test_a_slow_answer_is_cut_at_the_whole_call_bound(
    live: StripeGateway, double: StripeDouble
) -> None:
    # Each byte of the answer comes 50 ms after the last: every read is well inside a
    # per-phase timeout of 0.5 s, but the whole answer would take many seconds.
    double.drip_s = 0.05
    double.fail_next("drip")
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable, match="timed out"):
        live.charge(req("slow"))
    assert time.monotonic() - started < TIMEOUT_S + 0.3
    double.release()
    # The charge was made before the answer dripped: the look-up finds it.
    found = live.lookup("slow", customer_id="cus_9")
    assert found is not None
    assert found.succeeded


def test_every_request_names_the_pinned_api_version(
    live: StripeGateway, double: StripeDouble
) -> None:
    live.charge(req("v"))
    live.lookup("v", customer_id="cus_9")
    assert {s.headers.get("stripe-version") for s in double.seen} == {DEFAULT_API_VERSION}
