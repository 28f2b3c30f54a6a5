"""The gateway port: charge, verify, look up by idempotency key, delete a token.

A gateway that does not answer raises :class:`~dunning.errors.GatewayUnavailable`: the outcome
of that charge is unknown until :meth:`Gateway.lookup` settles it. A decline is an answer, not
an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from dunning.model import Initiator
from dunning.policy.types import Decline

__all__ = [
    "CardToken",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "Decline",
    "Gateway",
    "VerifyResult",
]

ChargeStatus = Literal["succeeded", "declined"]


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One charge. ``customer_id`` is the customer as the gateway knows it; ``invoice_ref`` the
    gateway's own invoice when the debt is one (Stripe Billing): then that invoice is paid."""

    customer_id: str
    token: str
    amount: int
    currency: str
    idempotency_key: str
    initiator: Initiator = Initiator.merchant
    metadata: dict[str, str] = field(default_factory=dict)
    invoice_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    charge_id: str | None = None
    decline: Decline | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer to a $0 verification of a card."""

    ok: bool
    decline: Decline | None = None
    requires_action: bool = False  # 3-D Secure / SCA: the customer must authenticate
    # What the customer's browser confirms when they must: the gateway's intent and its secret.
    action_ref: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class CardToken:
    """A tokenized card: what may be stored. Never a card number or CVC."""

    token: str
    network: str
    last4: str
    exp_month: int
    exp_year: int


class Gateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; the same key again returns the first result."""
        ...

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        """A $0 authorization (a $1 one voided at once where $0 is refused)."""
        ...

    def lookup(
        self, idempotency_key: str, *, customer_id: str, invoice_ref: str | None = None
    ) -> ChargeResult | None:
        """The charge made under this key, or ``None`` when it took no money (``invoice_ref``:
        the gateway's invoice the charge paid, as in :class:`ChargeRequest`)."""
        ...

    def delete_token(self, token: str) -> None:
        """Remove the stored credential at the gateway; deleting twice is not an error."""
        ...
