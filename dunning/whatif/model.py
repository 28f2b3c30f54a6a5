"""The outcome model: the chance that a retry gets through, from what its timing changes.

Pure: no IO, no clock, no global random state. A retry's chance is

    chance(class) x recovery(hours since the failure) x fade(days since the failure)
      x repeat_factor ** (retries declined before) x pay-day boost x weekday x hour

capped at ``max_chance``. ``recovery`` rises from 0 to 1 as the cause of the decline passes
(funds arrive, an issuer's limit resets): ``1 - exp(-hours / recovery_hours)``. ``fade`` halves
every ``half_life_days`` (the card is abandoned, the customer moves on). The pay-day boost
applies within ``payday_window_days`` from a pay day of the customer's country, in their zone;
weekday and hour are the customer's local ones. docs/whatif.md says where each number comes
from, and which are heuristics.

Whether a retry passes is ``draw(seed, invoice, attempt) < chance``: the draw depends only on
the seed, the invoice and the attempt number, so two policies compared with the same seed
face the same luck (common random numbers), and a run is the same whatever the order or the
process it runs in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from dunning.gateways.base import Decline
from dunning.policy.declines import classify
from dunning.policy.paydays import days_since_payday, rules_for
from dunning.policy.types import Verdict
from dunning.whatif.params import ModelParams

_INSUFFICIENT = frozenset({"insufficient_funds"})
_INSUFFICIENT_NETWORK = frozenset({"51"})


def model_class(decline: Decline | None, network: str) -> str:
    """The model's class of a decline: ``insufficient_funds``, ``soft``, ``weak``, ``new_card``
    or ``hard`` (the pipeline's own classification, with insufficient funds apart)."""
    cls = classify(decline, network)
    if cls.verdict is Verdict.never:
        return "hard"
    if cls.verdict is Verdict.needs_new_card:
        return "new_card"
    if cls.weak:
        return "weak"
    code = ((decline.decline_code if decline else None) or "").lower()
    if code in _INSUFFICIENT or (decline and decline.network_code in _INSUFFICIENT_NETWORK):
        return "insufficient_funds"
    return "soft"


@dataclass(frozen=True, slots=True)
class RetryContext:
    """What the model knows about one retry."""

    decline_class: str
    hours_since_failure: float
    retries_before: int  # retries of this invoice that were declined before this one
    local: datetime  # the retry's wall-clock time in the customer's zone
    country: str  # ISO 3166, "" when unknown


def factors(ctx: RetryContext, params: ModelParams) -> dict[str, float]:
    """Each factor of the chance, by name (their product, capped, is :func:`chance`)."""
    c = params.classes[ctx.decline_class]
    hours = max(ctx.hours_since_failure, 0.0)
    recovery = 1.0 - math.exp(-hours / c.recovery_hours) if c.recovery_hours > 0 else 1.0
    fade = 0.5 ** (hours / 24.0 / params.half_life_days) if params.half_life_days > 0 else 1.0
    since = days_since_payday(ctx.local.date(), rules_for(params.paydays, ctx.country))
    near_payday = since is not None and since < params.payday_window_days
    return {
        "chance": c.chance,
        "recovery": recovery,
        "fade": fade,
        "repeat": params.repeat_factor ** max(ctx.retries_before, 0),
        "payday": c.payday_boost if near_payday else 1.0,
        "weekday": params.weekday[ctx.local.weekday()],
        "hour": params.hour[ctx.local.hour],
    }


def chance(ctx: RetryContext, params: ModelParams) -> float:
    """The chance, from 0 to ``max_chance``, that this retry gets through."""
    p = math.prod(factors(ctx, params).values())
    return min(max(p, 0.0), params.max_chance)


def draw(seed: int, invoice_id: str, attempt_no: int) -> float:
    """A uniform number in [0, 1) fixed by the seed, the invoice and the attempt number."""
    digest = hashlib.blake2b(f"{seed}:{invoice_id}:{attempt_no}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2.0**64


def passes(ctx: RetryContext, params: ModelParams, u: float) -> bool:
    """Whether a retry whose draw is ``u`` gets through."""
    return u < chance(ctx, params)
