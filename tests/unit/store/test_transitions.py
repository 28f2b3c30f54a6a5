"""State transitions are guarded in one place: an invalid one raises."""

from __future__ import annotations

import pytest

from dunning.errors import InvalidTransition
from dunning.model import (
    AttemptStatus,
    InvoiceStatus,
    SubscriptionStatus,
    allowed_sources,
    check_transition,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (SubscriptionStatus.active, SubscriptionStatus.past_due),
        (SubscriptionStatus.past_due, SubscriptionStatus.suspended),
        (SubscriptionStatus.suspended, SubscriptionStatus.active),
        (InvoiceStatus.open, InvoiceStatus.paid),
        (InvoiceStatus.uncollectible, InvoiceStatus.paid),
        (AttemptStatus.pending, AttemptStatus.unknown),
        (AttemptStatus.unknown, AttemptStatus.succeeded),
    ],
)
def test_allowed_transitions(current: object, target: object) -> None:
    check_transition(current, target)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (SubscriptionStatus.cancelled, SubscriptionStatus.active),
        (InvoiceStatus.paid, InvoiceStatus.open),
        (InvoiceStatus.void, InvoiceStatus.paid),
        (AttemptStatus.succeeded, AttemptStatus.declined),
        (AttemptStatus.declined, AttemptStatus.succeeded),
    ],
)
def test_invalid_transitions_raise(current: object, target: object) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)  # type: ignore[arg-type]


def test_allowed_sources_feed_guarded_updates() -> None:
    assert allowed_sources(InvoiceStatus.paid) == {"open", "uncollectible"}
    assert "cancelled" not in allowed_sources(SubscriptionStatus.active)
