"""Hostile payloads: whatever JSON arrives, the parsers answer with events or MalformedEvent."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.webhooks.events import MalformedEvent
from dunning.webhooks.quickpay import parse_quickpay, quickpay_envelope
from dunning.webhooks.stripe import parse_stripe
from tests.unit.webhooks.conftest import PAYLOADS, payload

RECEIVED = datetime(2025, 7, 8, tzinfo=UTC)
offsets = st.builds(
    timezone, st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23))
)
# Times are where parsers overflow (year 1 with an offset): give them their own strategy.
iso_times = st.datetimes(timezones=st.none() | offsets).map(lambda d: d.isoformat())
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | iso_times
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
STRIPE_TYPES = [
    "invoice.payment_failed",
    "invoice.paid",
    "invoice.payment_action_required",
    "charge.failed",
    "payment_intent.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "payment_method.automatically_updated",
    "payment_method.attached",
    "payment_method.detached",
]
STRIPE_SAMPLES = sorted(p.name for p in PAYLOADS.glob("stripe_*.json"))
QP_SAMPLES = sorted(p.name for p in PAYLOADS.glob("qp_*.json"))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value``."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, samples: list[str]) -> Any:
    """A real sample with one to three values anywhere inside replaced by random JSON."""
    raw = copy.deepcopy(payload(draw(st.sampled_from(samples))))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(raw)))
        target = raw
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = draw(json_values)
    return raw


def answers(parse: Any, raw: Any) -> None:
    try:
        events = parse(raw)
    except MalformedEvent:
        return
    assert isinstance(events, list)
    assert events
    for event in events:
        assert event.occurred_at.tzinfo is not None
        assert len(event.event_id) <= 128


FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=json_values)
def test_any_json_value(raw: Any) -> None:
    answers(parse_stripe, raw)
    answers(lambda r: parse_quickpay(r, received_at=RECEIVED), raw)


@FUZZ
@given(raw=mutated(STRIPE_SAMPLES))
def test_stripe_samples_with_random_values_inside(raw: Any) -> None:
    answers(parse_stripe, raw)


@FUZZ
@given(
    kind=st.sampled_from(STRIPE_TYPES),
    obj=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "customer",
                "amount",
                "amount_due",
                "amount_paid",
                "currency",
                "card",
                "items",
                "status",
                "parent",
                "payment_intent",
                "charge",
                "metadata",
                "outcome",
                "last_payment_error",
            ]
        ),
        json_values,
        max_size=8,
    ),
)
def test_stripe_known_types_with_random_objects(kind: str, obj: dict[str, Any]) -> None:
    answers(
        parse_stripe,
        {"id": "evt_fuzz", "type": kind, "created": 1751968800, "data": {"object": obj}},
    )


@FUZZ
@given(raw=mutated(QP_SAMPLES))
def test_quickpay_samples_with_random_values_inside(raw: Any) -> None:
    answers(lambda r: parse_quickpay(r, received_at=RECEIVED), raw)
    try:
        quickpay_envelope(raw)
    except MalformedEvent:
        pass
