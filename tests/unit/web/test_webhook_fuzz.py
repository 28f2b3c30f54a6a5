"""Hostile webhook requests: never a 5xx, and nothing changes unless an event was accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dunning.store.tables import metadata, webhook_events
from dunning.webhooks.signatures import sign_quickpay, stripe_signature
from tests.unit.web.builders import quickpay_recurring, stripe_invoice_event
from tests.unit.web.conftest import QP_KEY, START, STRIPE_SECRET, Web, make_web, web_settings

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ENDPOINTS = ("/webhooks/stripe", "/webhooks/quickpay")
T = int(START.timestamp())

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
stripe_headers = st.one_of(
    header_text,
    st.builds(lambda t, v: f"t={t},v1={v}", st.integers(-(10**13), 10**13), hex64),
    st.builds(lambda v: f"t={T},v1={v},v1={v}", hex64),
    st.builds(lambda t: f"t={t}", st.text("0123456789", max_size=14)),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Stripe-Signature": stripe_headers,
        "QuickPay-Checksum-Sha256": st.one_of(header_text, hex64),
        "Content-Type": header_text,
    },
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(json.dumps(quickpay_recurring()).encode()),
)


def row_counts(web: Web) -> dict[str, int]:
    with web.c.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
        }


@pytest.fixture
def fuzz_web(tmp_path: Path) -> Iterator[Web]:
    yield from make_web(web_settings(tmp_path))


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies, extra=headers)
def test_unsigned_requests_are_refused_and_change_nothing(
    fuzz_web: Web, endpoint: str, body: bytes, extra: dict[str, str]
) -> None:
    before = row_counts(fuzz_web)

    response = fuzz_web.client.post(endpoint, content=body, headers=extra)

    assert response.status_code == 400, response.text
    assert "error" in response.json()
    assert row_counts(fuzz_web) == before


def _signed(endpoint: str, body: bytes) -> dict[str, str]:
    if endpoint.endswith("stripe"):
        return {"Stripe-Signature": f"t={T},v1={stripe_signature(body, STRIPE_SECRET, T)}"}
    return {"QuickPay-Checksum-Sha256": sign_quickpay(body, QP_KEY)}


def _mutate(payload: Any, path: list[Any], value: Any) -> Any:
    """Replace the value at the path of indices drawn into the nested structure."""
    if not path or not isinstance(payload, dict | list) or not payload:
        return value
    keys = list(payload) if isinstance(payload, dict) else list(range(len(payload)))
    key = keys[path[0] % len(keys)]
    copy = dict(payload) if isinstance(payload, dict) else list(payload)
    copy[key] = _mutate(payload[key], path[1:], value)
    return copy


signed_bodies = st.one_of(
    bodies,
    st.builds(
        lambda base, path, value: json.dumps(_mutate(base, path, value)).encode(),
        st.sampled_from(
            [
                stripe_invoice_event(created=START),
                quickpay_recurring(),
                quickpay_recurring(code="20000"),
            ]
        ),
        st.lists(st.integers(0, 50), min_size=1, max_size=6),
        json_values | st.sampled_from(["", "\x00", "\ud800", 10**40, -1, "x" * 300]),
    ),
)


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=signed_bodies)
def test_signed_garbage_never_fails_the_server(fuzz_web: Web, endpoint: str, body: bytes) -> None:
    before = row_counts(fuzz_web)

    response = fuzz_web.client.post(endpoint, content=body, headers=_signed(endpoint, body))

    assert response.status_code in (200, 400), response.text
    after = row_counts(fuzz_web)
    if response.status_code == 400 or response.json()["status"] == "duplicate":
        assert after == before
    else:
        assert after == {**before, "webhook_events": before["webhook_events"] + 1}


HOSTILE = {
    "nul in the event id": {"id": "evt_\x00", "type": "customer.created"},
    "lone surrogate in the type": {"id": "evt_2", "type": "customer.\ud800"},
    "id over the column size": {"id": "evt_" + "x" * 200, "type": "customer.created"},
    "nul and surrogates inside the payload": {
        "id": "evt_3",
        "type": "customer.discount.created",  # a type the pipeline stores and does not act on
        "data": {"object": {"name": "a\x00b\ud800", "n": 10**40}},
    },
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_but_signed_values_are_400_or_stored_on_every_backend(
    db_url: str, tmp_path: Path, case: str
) -> None:
    payload = {"object": "event", "created": T, "data": {"object": {}}, **HOSTILE[case]}
    body = json.dumps(payload).encode()
    for web in make_web(web_settings(tmp_path, database_url=db_url)):
        response = web.client.post(
            "/webhooks/stripe", content=body, headers=_signed("stripe", body)
        )

        stored = web.rows(webhook_events)
        if case == "nul and surrogates inside the payload":
            assert response.json() == {"status": "ignored"}
            assert stored[0]["payload"]["data"]["object"]["name"] == "a\x00b\ud800"
        else:
            assert response.status_code == 400
            assert stored == []
