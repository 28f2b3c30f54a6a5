"""The sandbox gateway: deterministic, scriptable, with a ledger tests can read.

Tokens say how they behave (``docs/scenario-format.md`` §3): ``sbx_ok_<s>`` succeeds,
``sbx_<decline_code>_<s>`` declines with that code, ``sbx_timeout_<s>`` and
``sbx_unavailable_<s>`` never answer. Simulations script per-token outcomes instead, and an
``oracle`` (the what-if's outcome model) may answer for the tokens it knows once their script,
if any, is used up.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dunning.errors import GatewayUnavailable, PermanentError
from dunning.gateways.base import CardToken, ChargeRequest, ChargeResult, Decline, VerifyResult
from dunning.gateways.cards import luhn_ok, network_of
from dunning.gateways.ledger import Ledger, LedgerEntry, MemoryLedger

# The network response code each sandbox decline travels with (docs/scenario-format.md §3).
NETWORK_CODES: dict[str, str] = {
    "insufficient_funds": "51",
    "generic_decline": "05",
    "do_not_honor": "05",
    "lost_card": "41",
    "stolen_card": "43",
    "expired_card": "54",
    "incorrect_cvc": "N7",
    "processing_error": "96",
    "card_velocity_exceeded": "61",
    "restricted_card": "62",
    "transaction_not_allowed": "57",
}

# Stripe's public test cards (docs/scenario-format.md §3): number -> behaviour.
TEST_CARDS: dict[str, str] = {
    "4242424242424242": "ok",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "5555555555554444": "ok",
    "4000002500003155": "authentication_required",
    "4000000000003220": "authentication_required",
}

NO_ANSWER = frozenset({"timeout", "unavailable"})


class CardRefused(PermanentError):
    """The sandbox tokenizer refused a card number (not a valid number)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scripted answer: succeeded, a decline, or no answer (charged or not)."""

    kind: str  # succeeded | declined | timeout | unavailable
    decline: Decline | None = None
    charged: bool = False

    @classmethod
    def parse(cls, raw: Any) -> Outcome:
        if raw == "succeeded":
            return cls("succeeded")
        if isinstance(raw, dict) and "error" in raw:
            if raw["error"] not in NO_ANSWER:
                raise ValueError(f"error must be timeout or unavailable, not {raw['error']!r}")
            return cls(raw["error"], charged=bool(raw.get("charged", False)))
        if isinstance(raw, dict) and raw.get("decline_code"):
            return cls(
                "declined",
                Decline(
                    decline_code=raw["decline_code"],
                    network_code=raw.get("network_code"),
                    advice_code=raw.get("advice_code"),
                    network_advice_code=raw.get("network_advice_code"),
                ),
            )
        raise ValueError(f"not an outcome: {raw!r}")


# Answers a charge the sandbox would otherwise answer from the token, or None to leave it be.
# It is given the request and the gateway's clock.
Oracle = Callable[[ChargeRequest, datetime], Outcome | None]


def behaviour_of(token: str) -> str:
    """``sbx_insufficient_funds_7f3a`` -> ``insufficient_funds``; ``ok`` for success."""
    if not token.startswith("sbx_") or token.count("_") < 2:
        return "ok"
    return token[len("sbx_") : token.rindex("_")]


def _decline_for(code: str) -> Decline:
    return Decline(decline_code=code, network_code=NETWORK_CODES.get(code))


class SandboxGateway:
    """Deterministic gateway twin. Thread-safe; one ledger entry per idempotency key."""

    name = "sandbox"

    def __init__(
        self,
        ledger: Ledger | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        failure_rate: float = 0.0,
        delay_s: float = 0.0,
        oracle: Oracle | None = None,
    ) -> None:
        self.ledger: Ledger = ledger or MemoryLedger()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._scripts: dict[str, list[Outcome]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()
        self.failure_rate = failure_rate
        # Fault injection: a charge's request and its answer each take half of this.
        self.delay_s = delay_s
        self.deleted_tokens: set[str] = set()
        self.oracle = oracle

    # -- scripting (simulations and tests) -------------------------------------------------
    def script(self, token: str, outcomes: Sequence[Any]) -> None:
        """Answer the charges on ``token`` with ``outcomes`` in order; the last one repeats."""
        parsed = [Outcome.parse(o) for o in outcomes]
        with self._lock:
            self._scripts[token] = parsed
            self._used[token] = 0

    def _next_outcome(self, request: ChargeRequest) -> Outcome:
        with self._lock:
            script = self._scripts.get(request.token)
            if script:
                i = self._used[request.token]
                self._used[request.token] = i + 1
                if i < len(script) or self.oracle is None:
                    return script[min(i, len(script) - 1)]
        answer = self.oracle(request, self._clock()) if self.oracle is not None else None
        if answer is not None:
            return answer
        if script:
            return script[-1]
        if self._injected_failure(request.idempotency_key):
            # Half of the injected failures lose the answer of a charge that went through.
            charged = int(hashlib.sha256(request.idempotency_key.encode()).hexdigest()[8], 16) < 8
            return Outcome("timeout", charged=charged)
        behaviour = behaviour_of(request.token)
        if behaviour == "ok":
            return Outcome("succeeded")
        if behaviour in NO_ANSWER:
            return Outcome(behaviour)
        return Outcome("declined", _decline_for(behaviour))

    def _injected_failure(self, key: str) -> bool:
        if self.failure_rate <= 0:
            return False
        bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return bucket < self.failure_rate

    # -- the Gateway protocol -----------------------------------------------------------------
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key: a key charged before gets its first answer.

        A scripted token looks the key up first (a repeat must not use up a scripted step);
        otherwise the outcome is a pure function of the request, and the ledger's insert
        tells a repeat apart, so a charge costs one ledger write, as a gateway call costs one
        request.
        """
        if request.token in self.deleted_tokens:
            return ChargeResult("declined", decline=_decline_for("invalid_account"))
        with self._lock:
            scripted = request.token in self._scripts
        if scripted and (existing := self.ledger.get(request.idempotency_key)) is not None:
            return _result_of(existing)
        outcome = self._next_outcome(request)
        if outcome.kind in NO_ANSWER and not outcome.charged:
            if not scripted and (existing := self.ledger.get(request.idempotency_key)):
                return _result_of(existing)
            raise GatewayUnavailable(
                f"sandbox gateway {outcome.kind} for {request.idempotency_key}"
            )
        status = "declined" if outcome.kind == "declined" else "succeeded"
        if self.delay_s:
            time.sleep(self.delay_s / 2)  # the request on its way: nothing charged yet
        entry = self._entry(request, status, outcome.decline)
        stored = self.ledger.add(entry)
        if self.delay_s:
            time.sleep(self.delay_s / 2)  # the answer on its way back: charged, not yet known
        if stored is not entry:  # charged under this key before: that answer stands
            return _result_of(stored)
        if outcome.kind in NO_ANSWER:
            raise GatewayUnavailable(
                f"sandbox gateway {outcome.kind} after charging {request.idempotency_key}"
            )
        return _result_of(stored)

    def verify(self, token: str, *, customer_id: str, currency: str) -> VerifyResult:
        behaviour = behaviour_of(token)
        if behaviour in NO_ANSWER:
            raise GatewayUnavailable(f"sandbox gateway {behaviour} during verification")
        if behaviour == "ok":
            return VerifyResult(ok=True)
        if behaviour == "authentication_required":
            return VerifyResult(ok=False, requires_action=True, decline=_decline_for(behaviour))
        return VerifyResult(ok=False, decline=_decline_for(behaviour))

    def lookup(
        self, idempotency_key: str, *, customer_id: str, invoice_ref: str | None = None
    ) -> ChargeResult | None:
        entry = self.ledger.get(idempotency_key)
        return _result_of(entry) if entry else None

    def delete_token(self, token: str) -> None:
        self.deleted_tokens.add(token)

    # -- tokenizer ------------------------------------------------------------------------------
    def tokenize(self, number: str, exp_month: int, exp_year: int) -> CardToken:
        """Turn a test card number into a token; only brand, last4 and expiry are kept."""
        digits = "".join(c for c in number if c.isdigit())
        if not luhn_ok(digits):
            raise CardRefused("the card number is not valid")
        behaviour = TEST_CARDS.get(digits, "ok")
        suffix = secrets.token_hex(6)
        return CardToken(
            token=f"sbx_{behaviour}_{suffix}",
            network=network_of(digits),
            last4=digits[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
        )

    def complete_challenge(self, card: CardToken) -> CardToken:
        """The customer passed the 3-D Secure challenge: the same card, now verifiable.

        Only a card that asked for authentication has a challenge to complete.
        """
        if behaviour_of(card.token) != "authentication_required":
            raise CardRefused("this card has no authentication pending")
        return replace(card, token="sbx_ok_" + card.token.rsplit("_", 1)[1])

    def _entry(self, request: ChargeRequest, status: str, decline: Decline | None) -> LedgerEntry:
        d = decline or Decline()
        return LedgerEntry(
            idempotency_key=request.idempotency_key,
            customer_id=request.customer_id,
            token=request.token,
            amount=request.amount,
            currency=request.currency,
            initiator=str(request.initiator),
            status=status,
            charge_id="ch_sbx_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:16],
            decline_code=d.decline_code,
            network_code=d.network_code,
            advice_code=d.advice_code,
            network_advice_code=d.network_advice_code,
            at=self._clock(),
        )


def _result_of(entry: LedgerEntry) -> ChargeResult:
    if entry.status == "succeeded":
        return ChargeResult("succeeded", charge_id=entry.charge_id)
    return ChargeResult(
        "declined",
        charge_id=entry.charge_id,
        decline=Decline(
            entry.decline_code, entry.network_code, entry.advice_code, entry.network_advice_code
        ),
    )
