"""Value types the pure policy takes and returns. No IO, no clock: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dunning.policy.paydays import DEFAULT_PAYDAYS

# Mastercard MAC -> minimum hours before the next attempt (docs/declines-and-network-rules.md §3);
# the policy file repeats them under limits.mastercard.mac_delay_hours.
DEFAULT_MAC_DELAY_HOURS: Mapping[str, float] = {
    "02": 72.0,
    "24": 1.0,
    "25": 24.0,
    "26": 48.0,
    "27": 96.0,
    "28": 144.0,
    "29": 192.0,
    "30": 240.0,
}
# Gateway decline code -> minimum hours before the next attempt
# (docs/declines-and-network-rules.md §4).
DEFAULT_DECLINE_MIN_DELAY_HOURS: Mapping[str, float] = {"withdrawal_count_limit_exceeded": 24.0}


@dataclass(frozen=True, slots=True)
class Decline:
    """What a gateway said when it refused: the inputs of the decline classification."""

    decline_code: str | None = None
    network_code: str | None = None
    advice_code: str | None = None
    network_advice_code: str | None = None


class Verdict(StrEnum):
    """The three outcomes of a decline, plus an unknown outcome.

    See docs/declines-and-network-rules.md §1.
    """

    retry = "retry"  # soft: retry later, within limits
    needs_new_card = "needs_new_card"  # stop until the card changes (new card/data/auth)
    never = "never"  # hard: never retry this credential
    unknown = "unknown"  # timeout/5xx: not a decline, look the charge up first
    duplicate = "duplicate"  # do not charge again; look the charge up and reconcile


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    decline_class: str  # e.g. soft, soft_weak, needs_new_card, hard, visa_cat1, mac_03, ...
    reason: str  # machine-readable, e.g. soft_decline, hard_decline, needs_new_card, mac_delay
    message: str  # a sentence for humans
    min_delay_s: float | None = None  # earliest next attempt after this decline (MAC 02, 24-30)
    weak: bool = False  # soft but weak: few retries (generic_decline, do_not_honor, ...)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One charge attempt as the policy sees it (from the ``payment_attempts`` table)."""

    at: datetime
    invoice_id: str
    payment_method_id: str
    network: str
    amount: int
    initiator: str  # merchant | customer
    status: str  # succeeded | declined | unknown | not_charged | pending
    decline_code: str | None = None
    network_code: str | None = None
    advice_code: str | None = None
    network_advice_code: str | None = None


@dataclass(frozen=True, slots=True)
class RetryState:
    """Everything the retry decision needs about one open invoice."""

    invoice_id: str
    first_failed_at: datetime
    plan: str
    interval: str  # month | year
    customer_timezone: str  # IANA name; "" or unknown means UTC
    payment_method_id: str
    network: str
    amount: int
    # Attempts on this invoice, oldest first (attempt 1 is the original failed charge).
    invoice_attempts: tuple[AttemptRecord, ...]
    # Every attempt on this card (all invoices, all initiators) in the last 30+ days.
    card_attempts: tuple[AttemptRecord, ...]
    # Other active cards of the customer that may take the retries: (id, network).
    backup_cards: tuple[tuple[str, str], ...] = ()
    # Attempts on the backup cards (all invoices, all initiators), for their network limits.
    other_card_attempts: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class RetryDecision:
    action: str  # "retry" | "stop"
    reason: str  # soft_decline, hard_decline, needs_new_card, network_limit, window_over, ...
    message: str
    at: datetime | None = None  # when to retry (UTC), for action == "retry"
    payment_method_id: str | None = None  # the card to charge (a backup card when switched)
    decline_class: str | None = None


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """Whether one more attempt on a card is allowed at ``now`` by every network limit."""

    allowed: bool
    reason: str  # ok | network_limit | mac_never | visa_category_1 | mac_delay ...
    message: str
    earliest: datetime | None = None  # the first time it would be allowed, if any


@dataclass(frozen=True, slots=True)
class Step:
    """A dunning lifecycle step of an open invoice: reminder, final notice or suspension."""

    at: datetime
    kind: str  # payment_retry_failed | final_notice | suspend
    index: int  # position in the invoice's step list (stored as invoices.steps_done)


@dataclass(frozen=True, slots=True)
class ExpiryReminder:
    at: datetime
    offset_label: str  # "30d", "7d": part of the dedup key


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """The effective dunning numbers for one plan (defaults merged with the plan's overrides)."""

    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    retry_local_time: str = "09:00"
    weak_soft_max_retries: int = 2
    reminder_days: tuple[int, ...] = (4,)
    final_notice_day: int = 11
    suspend_day: int = 14
    end_action: str = "leave_open"  # leave_open | uncollectible
    switch_to_backup_card: bool = True
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    expiry_reminder_days: tuple[int, ...] = (30, 7)
    token_retention_days: int = 730
    visa_max_reattempts_30d: int = 20
    visa_transaction_window_days: int = 30
    mc_max_attempts_24h: int = 10
    mc_max_attempts_30d: int = 35
    extra: dict[str, object] = field(default_factory=dict)
    first_failure_email_delay_s: float = 0.0
    visa_reattempt_window_days: int = 30
    mc_short_window_hours: int = 24
    mc_long_window_days: int = 30
    mac_delay_hours: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_MAC_DELAY_HOURS)
    )
    decline_min_delay_hours: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DECLINE_MIN_DELAY_HOURS)
    )
    # Move a retry forward by up to this many days onto a pay day (0: never); pay-day rules by
    # country (dunning.policy.paydays).
    payday_shift_days: int = 0
    paydays: Mapping[str, tuple[int | str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PAYDAYS)
    )
