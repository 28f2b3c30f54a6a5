"""A Stripe gateway wired to the in-process double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dunning.gateways.stripe import StripeGateway
from tests.stripe_double import StripeDouble


@pytest.fixture
def double() -> StripeDouble:
    return StripeDouble()


@pytest.fixture
def gateway(double: StripeDouble) -> Iterator[StripeGateway]:
    gw = StripeGateway(
        double.api_key, api_base="https://stripe.test", timeout_s=2.0, transport=double.transport()
    )
    yield gw
    gw.close()
