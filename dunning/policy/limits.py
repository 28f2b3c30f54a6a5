"""Card-network limits on attempts, across every invoice on one card.

The limits and their sources: docs/declines-and-network-rules.md §2-3.

Every attempt that may have reached the network counts, whoever started it (the stricter
reading). Windows are rolling, and an attempt is counted in every window that reaches past it,
including attempts recorded after ``now``, so no window ever holds more than the limit. A card
of another network gets both networks' count limits: the stricter reading again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dunning.policy import codes
from dunning.policy.timing import require_aware
from dunning.policy.types import AttemptRecord, LimitCheck, PlanPolicy

# How far back the limits look: the longest window (30 days) and a day to spare. A caller
# passes every attempt on the card since ``now - HISTORY_SPAN``.
HISTORY_SPAN = timedelta(days=31)
# A charge left "unknown" or "pending" may have reached the issuer; only "not_charged" did not.
COUNTED_STATUSES = frozenset({"declined", "succeeded", "unknown", "pending"})


@dataclass(frozen=True, slots=True)
class _Wait:
    until: datetime
    reason: str
    message: str


def window_earliest(
    times: Sequence[datetime], now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """When one more attempt fits under ``limit`` per ``window``; ``None`` if it fits at ``now``."""
    if limit < 1:
        raise ValueError("a network limit must allow at least one attempt")
    inside = sorted(t for t in times if t > now - window)
    if len(inside) < limit:
        return None
    # The window must lose its oldest attempts until only limit - 1 remain.
    return inside[len(inside) - limit] + window


def _blocked(reason: str, message: str) -> LimitCheck:
    return LimitCheck(False, reason, message, None)


def _hard_block(attempts: Sequence[AttemptRecord], network: str) -> LimitCheck | None:
    for a in attempts:
        if a.status != "declined":
            continue
        mac = codes.mac_code(a.network_advice_code)
        if mac in codes.MAC_NEVER_FEE:
            return _blocked("mac_never", f"Mastercard advice {mac}: no retry on this card.")
        if network == "visa" and codes.network_code(a.network_code) in codes.VISA_CAT1:
            return _blocked(
                "visa_category_1", f"Visa category 1 code {a.network_code}: no reattempt."
            )
    return None


def _since_approval(attempts: Sequence[AttemptRecord], amount: int | None) -> list[AttemptRecord]:
    """Attempts after the card's last approval (of ``amount`` when given): approval resets."""
    approvals = [
        a.at for a in attempts if a.status == "succeeded" and (amount is None or a.amount == amount)
    ]
    last = max(approvals, default=None)
    # A decline at the same instant as the approval may have come after it: keep it.
    return [
        a
        for a in attempts
        if last is None or a.at > last or (a.at == last and a.status != "succeeded")
    ]


def _waits(
    attempts: Sequence[AttemptRecord], network: str, amount: int, now: datetime, p: PlanPolicy
) -> list[_Wait]:
    waits: list[_Wait] = []
    for a in _since_approval(attempts, None):
        hours = p.mac_delay_hours.get(codes.mac_code(a.network_advice_code))
        if a.status == "declined" and hours is not None and a.at + timedelta(hours=hours) > now:
            until = a.at + timedelta(hours=hours)
            waits.append(_Wait(until, "mac_delay", f"Mastercard advice asks to wait {hours} h."))
    if network != "mastercard":
        same = [a.at for a in _since_approval(attempts, amount) if a.amount == amount]
        days, limit = p.visa_reattempt_window_days, p.visa_max_reattempts_30d
        until_v = window_earliest(same, now, timedelta(days=days), limit)
        if until_v is not None:
            msg = f"Visa allows {limit} attempts of one amount on a card in {days} days."
            waits.append(_Wait(until_v, "network_limit", msg))
    if network != "visa":
        times = [a.at for a in attempts]
        for window, limit in (
            (timedelta(hours=p.mc_short_window_hours), p.mc_max_attempts_24h),
            (timedelta(days=p.mc_long_window_days), p.mc_max_attempts_30d),
        ):
            until_m = window_earliest(times, now, window, limit)
            if until_m is not None:
                msg = f"Mastercard allows {limit} attempts on a card in {window}."
                waits.append(_Wait(until_m, "network_limit", msg))
    return waits


def check_limits(
    card_attempts: Sequence[AttemptRecord],
    *,
    network: str,
    amount: int,
    now: datetime,
    policy: PlanPolicy,
    first_decline_at: datetime | None,
) -> LimitCheck:
    """May one more attempt be made on this card at ``now``? If not, from when (or never)."""
    require_aware(now, "now")
    net = network.strip().lower()
    attempts = sorted((a for a in card_attempts if a.status in COUNTED_STATUSES), key=_at)
    hard = _hard_block(_since_approval(attempts, None), net)
    if hard is not None:
        return hard
    cutoff = None
    if first_decline_at is not None and net != "mastercard":
        require_aware(first_decline_at, "first_decline_at")
        cutoff = first_decline_at + timedelta(days=policy.visa_transaction_window_days)
        if now >= cutoff:
            return _blocked(
                "network_limit",
                f"Visa: no reattempt {policy.visa_transaction_window_days} days after the "
                "first decline; it needs a new card or a new transaction.",
            )
    waits = _waits(attempts, net, amount, now, policy)
    if not waits:
        return LimitCheck(True, "ok", "Every network limit allows an attempt now.")
    # Waiting never adds attempts to a window, so the latest wait satisfies every limit.
    binding = max(waits, key=lambda w: w.until)
    if cutoff is not None and binding.until >= cutoff:
        return _blocked(binding.reason, binding.message + " No time is left before Visa's cutoff.")
    return LimitCheck(False, binding.reason, binding.message, binding.until)


def _at(a: AttemptRecord) -> datetime:
    return a.at
