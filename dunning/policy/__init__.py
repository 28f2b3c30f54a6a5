"""The pure dunning policy: decline classification, retry timing, network limits, reminders.

No IO and no clock reads: every function takes ``now`` (or the times it needs) and a
:class:`~dunning.policy.types.PlanPolicy` from a :class:`PolicyBook` (``dunning.policy_file``
reads the file).
"""

from __future__ import annotations

from dunning.policy.config import PolicyBook, build_book
from dunning.policy.declines import classify
from dunning.policy.expiry import expiry_reminders, token_purge_due
from dunning.policy.limits import check_limits
from dunning.policy.schedule import dunning_steps, next_retry, retry_slots, window_end
from dunning.policy.timing import email_time
from dunning.policy.types import (
    AttemptRecord,
    Classification,
    Decline,
    ExpiryReminder,
    LimitCheck,
    PlanPolicy,
    RetryDecision,
    RetryState,
    Step,
    Verdict,
)

__all__ = [
    "AttemptRecord",
    "Classification",
    "Decline",
    "ExpiryReminder",
    "LimitCheck",
    "PlanPolicy",
    "PolicyBook",
    "RetryDecision",
    "RetryState",
    "Step",
    "Verdict",
    "build_book",
    "check_limits",
    "classify",
    "dunning_steps",
    "email_time",
    "expiry_reminders",
    "next_retry",
    "retry_slots",
    "token_purge_due",
    "window_end",
]
