"""The outcome model answering the sandbox gateway's charges during a what-if or the demo.

The replayed invoices' cards are registered here with the customer's zone and the decline that
opened each invoice. A charge on such a card for such an invoice is answered by the model at
the simulation's clock: it gets through when the invoice's draw for that attempt number falls
under the retry's chance; otherwise the card declines again as it did. Anything else (a new
card the customer typed in, a charge for another invoice) is left to the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dunning.gateways.base import ChargeRequest, Decline
from dunning.gateways.sandbox import Outcome
from dunning.policy.paydays import country_of
from dunning.policy.timing import zone
from dunning.simulate.book import sandbox_token
from dunning.simulate.scenario import Scenario
from dunning.whatif.model import RetryContext, draw, model_class, passes
from dunning.whatif.params import ModelParams

# What a customer's other card answers when the model says no: a decline that leaves it
# retryable, the commonest there is.
OTHER_CARD_DECLINE = Decline("do_not_honor", "05")


@dataclass(frozen=True, slots=True)
class _Card:
    timezone: str
    country: str


@dataclass(frozen=True, slots=True)
class _Failure:
    token: str
    decline: Decline
    decline_class: str
    failed_at: datetime


def attempt_number(idempotency_key: str) -> int | None:
    """``inv_<invoice>_att_<n>`` -> ``n``; ``None`` for any other key."""
    _, sep, tail = idempotency_key.rpartition("_att_")
    return int(tail) if sep and tail.isdigit() else None


class ModelOracle:
    """Answers the charges of registered cards and invoices from the outcome model."""

    def __init__(self, params: ModelParams, *, seed: int) -> None:
        self.params = params
        self.seed = seed
        self._cards: dict[str, _Card] = {}
        self._failures: dict[str, _Failure] = {}

    def add_card(self, token: str, *, timezone: str) -> None:
        """A card of a replayed customer, whose charges the model answers."""
        self._cards[token] = _Card(timezone, country_of(timezone))

    def add_failure(
        self, invoice_id: str, *, token: str, decline: Decline, network: str, failed_at: datetime
    ) -> None:
        """The failed charge on ``token`` that opened ``invoice_id``."""
        cls = model_class(decline, network)
        self._failures[invoice_id] = _Failure(token, decline, cls, failed_at)

    def __call__(self, request: ChargeRequest, now: datetime) -> Outcome | None:
        failure = self._failures.get(request.metadata.get("invoice", ""))
        card = self._cards.get(request.token)
        attempt = attempt_number(request.idempotency_key)
        if failure is None or card is None or attempt is None:
            return None
        same_card = request.token == failure.token
        ctx = RetryContext(
            decline_class=failure.decline_class if same_card else "other_card",
            hours_since_failure=(now - failure.failed_at).total_seconds() / 3600.0,
            retries_before=max(attempt - 2, 0),
            local=now.astimezone(zone(card.timezone)).replace(tzinfo=None),
            country=card.country,
        )
        invoice_id = request.metadata["invoice"]
        if passes(ctx, self.params, draw(self.seed, invoice_id, attempt)):
            return Outcome("succeeded")
        return Outcome("declined", failure.decline if same_card else OTHER_CARD_DECLINE)


def for_scenario(scenario: Scenario, params: ModelParams, *, seed: int) -> ModelOracle:
    """An oracle for every card of a scenario's customers and every failure its events report
    (the failed card is the subscription's, else the customer's default)."""
    oracle = ModelOracle(params, seed=seed)
    cards: dict[str, tuple[str, str]] = {}  # subscription -> (card id, network)
    for cust in scenario.customers:
        default = next((pm for pm in cust.payment_methods if pm.default), None)
        default = default or (cust.payment_methods[0] if cust.payment_methods else None)
        networks = {pm.id: pm.network for pm in cust.payment_methods}
        for pm in cust.payment_methods:
            oracle.add_card(sandbox_token(pm.id), timezone=cust.timezone)
        for sub in cust.subscriptions:
            card_id = sub.payment_method or (default.id if default else None)
            if card_id is not None:
                cards[sub.id] = (card_id, networks.get(card_id, "unknown"))
    for event in scenario.events:
        if event.type != "payment_failed" or event.subscription not in cards:
            continue
        card_id, network = cards[event.subscription]
        d = event.decline
        decline = (
            Decline(d.decline_code, d.network_code, d.advice_code, d.network_advice_code)
            if d
            else Decline("generic_decline")
        )
        oracle.add_failure(event.invoice, token=sandbox_token(card_id), decline=decline,
                           network=network, failed_at=event.at)  # fmt: skip
    return oracle
