"""After a failed charge: when is the next merchant retry, on which card, or why stop.

Scheduled tries are used up only by merchant attempts after attempt 1 that reached the
gateway; customer attempts leave them alone but count for the network limits. A retry runs at
its schedule day's local morning, later when a decline's delay or a network limit says so
(then at the next local morning), and never at or after the end of the window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dunning.policy.days import retry_slots, window_end
from dunning.policy.declines import classify
from dunning.policy.limits import check_limits
from dunning.policy.timing import local_date, next_local, parse_clock, require_aware, zone
from dunning.policy.types import (
    AttemptRecord,
    Classification,
    Decline,
    LimitCheck,
    PlanPolicy,
    RetryDecision,
    RetryState,
    Verdict,
)

_STOPPING = (Verdict.never, Verdict.needs_new_card)


@dataclass(frozen=True, slots=True)
class _Ctx:
    state: RetryState
    now: datetime
    policy: PlanPolicy
    tz: ZoneInfo
    clock: time
    end: datetime


def _stop(reason: str, message: str, cls: Classification | None = None) -> RetryDecision:
    return RetryDecision("stop", reason, message, decline_class=cls.decline_class if cls else None)


def _classify(a: AttemptRecord, policy: PlanPolicy) -> Classification:
    decline = Decline(a.decline_code, a.network_code, a.advice_code, a.network_advice_code)
    return classify(decline, a.network, policy=policy)


def _last_decline(state: RetryState, card: str) -> AttemptRecord | None:
    found = [a for a in state.invoice_attempts if a.payment_method_id == card]
    declined = [a for a in found if a.status == "declined"]
    return declined[-1] if declined else None


def _dead_cards(state: RetryState, policy: PlanPolicy) -> set[str]:
    """Cards with a never-retry decline that no later approval has lifted."""
    seen = set(state.invoice_attempts) | set(state.card_attempts) | set(state.other_card_attempts)
    dead: dict[str, datetime] = {}
    approved: dict[str, datetime] = {}
    for a in seen:
        pm = a.payment_method_id
        if a.status == "succeeded":
            approved[pm] = max(a.at, approved.get(pm, a.at))
        elif a.status == "declined" and _classify(a, policy).verdict is Verdict.never:
            dead[pm] = max(a.at, dead.get(pm, a.at))
    # Only an approval strictly after the decline lifts it: a tie keeps the card dead.
    return {pm for pm, at in dead.items() if pm not in approved or approved[pm] <= at}


def _history(state: RetryState, card: str) -> list[AttemptRecord]:
    """Every known attempt on ``card``, for its network limits."""
    own = Counter(a for a in state.invoice_attempts if a.payment_method_id == card)
    if card == state.payment_method_id:
        known = Counter(state.card_attempts)  # all of them are on this card, by contract
    else:
        known = Counter(a for a in state.other_card_attempts if a.payment_method_id == card)
    # The lists overlap; a multiset union keeps two equal-looking attempts as two.
    return sorted((own | known).elements(), key=lambda a: a.at)


def _network(state: RetryState, card: str) -> str:
    if card == state.payment_method_id:
        return state.network
    found = dict(state.backup_cards).get(card)
    if found is not None:
        return found
    return next((a.network for a in state.invoice_attempts if a.payment_method_id == card), "")


def _used_tries(state: RetryState) -> int:
    later = state.invoice_attempts[1:]
    return sum(1 for a in later if a.initiator == "merchant" and a.status != "not_charged")


def _slot_time(ctx: _Ctx, slot: datetime) -> datetime:
    """The slot, or now if it passed earlier today; once the slot's day is over (a case taken
    over late, an import), the next local morning."""
    if local_date(slot, ctx.tz) < local_date(ctx.now, ctx.tz):
        return next_local(ctx.now, ctx.clock, ctx.tz)
    return max(slot, ctx.now)


def _plan(ctx: _Ctx, card: str, cls: Classification | None, reason: str) -> RetryDecision:
    state, policy = ctx.state, ctx.policy
    used = _used_tries(state)
    reached = [a.at for a in state.invoice_attempts if a.status != "not_charged"]
    after = max(reached, default=state.first_failed_at)
    slots = retry_slots(state.first_failed_at, state.customer_timezone, policy)[used:]
    slot = next((s for s in slots if s > after), None)
    if slot is None:
        return _stop("schedule_exhausted", f"All {len(policy.retry_days)} retries are used.", cls)
    at, why = _slot_time(ctx, slot), reason
    last = _last_decline(state, card)
    if cls is not None and cls.min_delay_s and last is not None:
        wait_until = last.at + timedelta(seconds=cls.min_delay_s)
        if wait_until > at:
            at = next_local(wait_until, ctx.clock, ctx.tz)
            why = "mac_delay" if cls.decline_class.startswith("mac_") else "decline_delay"
    history = _history(state, card)
    first_decline = min(
        (
            a.at
            for a in state.invoice_attempts
            if a.payment_method_id == card and a.status == "declined"
        ),
        default=None,
    )
    label = cls.decline_class if cls else None
    for _ in range(4):
        if at >= ctx.end:
            if why == reason:
                return _stop("window_over", "The next retry would fall after the window.", cls)
            return _stop(why, f"Pushed past the end of the window ({why}).", cls)
        check = check_limits(
            history,
            network=_network(state, card),
            amount=state.amount,
            now=at,
            policy=policy,
            first_decline_at=first_decline,
        )
        if check.allowed:
            note = cls.message if cls else "Retry on this card."
            return RetryDecision(
                "retry", why, note, at=at, payment_method_id=card, decline_class=label
            )
        if check.earliest is None:
            return _stop("network_limit", check.message, cls)
        at = next_local(check.earliest, ctx.clock, ctx.tz)
        why = "mac_delay" if check.reason == "mac_delay" else "network_limit"
    return _stop("network_limit", "No time satisfies every network limit.", cls)


def _switch_or_stop(
    ctx: _Ctx, card: str, dead: set[str], reason: str, cls: Classification | None
) -> RetryDecision:
    message = cls.message if cls else "This card cannot be retried."
    state = ctx.state
    if not ctx.policy.switch_to_backup_card:
        return _stop(reason, message, cls)
    for other, _network_name in ((state.payment_method_id, state.network), *state.backup_cards):
        if other == card or other in dead:
            continue
        last = _last_decline(state, other)
        other_cls = _classify(last, ctx.policy) if last is not None else None
        if other_cls is not None and other_cls.verdict is not Verdict.retry:
            continue
        decision = _plan(ctx, other, other_cls, "backup_card")
        if decision.action == "retry":
            note = f"{message} The retries move to the customer's other card {other}."
            return replace(decision, message=note)
    return _stop(reason, message, cls)


def _current_card(state: RetryState, latest: AttemptRecord | None) -> str:
    """The card the retries go on: the latest attempt's, when it is still one of the customer's."""
    cards = {state.payment_method_id, *(pm for pm, _ in state.backup_cards)}
    if latest is not None and latest.payment_method_id in cards:
        return latest.payment_method_id
    return state.payment_method_id


def postponed(
    check: LimitCheck, *, first_failed_at: datetime | None, timezone: str, policy: PlanPolicy
) -> LimitCheck:
    """A network limit's earliest time as the retries run: at the customer's retry morning, and
    never at or after the end of the window (then no time: the retries stop instead)."""
    if check.earliest is None or first_failed_at is None:
        return check
    at = next_local(check.earliest, parse_clock(policy.retry_local_time), zone(timezone))
    if at >= window_end(first_failed_at, timezone, policy):
        return replace(check, message=f"{check.message} That is after the window.", earliest=None)
    return replace(check, earliest=at)


def next_retry(state: RetryState, now: datetime, policy: PlanPolicy) -> RetryDecision:
    """The next merchant retry of an open invoice after its latest attempt, or why to stop."""
    require_aware(now, "now")
    require_aware(state.first_failed_at, "first_failed_at")
    latest = state.invoice_attempts[-1] if state.invoice_attempts else None
    if latest is not None and latest.status == "succeeded":
        return _stop("paid", "The invoice is paid.")
    if latest is not None and latest.status in ("unknown", "pending"):
        return _stop("outcome_unknown", "Look the last charge up before retrying.")
    tz = zone(state.customer_timezone)
    end = window_end(state.first_failed_at, state.customer_timezone, policy)
    if now >= end:
        return _stop("window_over", "The dunning window is over.")
    ctx = _Ctx(state, now, policy, tz, parse_clock(policy.retry_local_time), end)
    card = _current_card(state, latest)
    last = _last_decline(state, card)
    cls = _classify(last, policy) if last is not None else None
    if cls is not None and cls.verdict is Verdict.duplicate:
        return _stop("duplicate_transaction", cls.message, cls)
    if cls is not None and cls.verdict is Verdict.unknown:
        return _stop("outcome_unknown", cls.message, cls)
    dead = _dead_cards(state, policy)
    if card in dead or (cls is not None and cls.verdict in _STOPPING):
        new_card = cls is not None and cls.verdict is Verdict.needs_new_card and card not in dead
        return _switch_or_stop(
            ctx, card, dead, "needs_new_card" if new_card else "hard_decline", cls
        )
    if cls is not None and cls.weak and _used_tries(state) >= policy.weak_soft_max_retries:
        return _stop(
            "weak_soft_limit",
            f"A weak soft decline gets {policy.weak_soft_max_retries} retries; they are used.",
            cls,
        )
    return _plan(ctx, card, cls, "soft_decline")
