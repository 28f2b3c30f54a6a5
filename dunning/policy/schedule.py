"""The dunning calendar of one open invoice: retries, reminders, final notice, suspension."""

from __future__ import annotations

from datetime import datetime

from dunning.policy.days import dunning_day, retry_slots, window_end
from dunning.policy.retry import next_retry
from dunning.policy.timing import email_time
from dunning.policy.types import PlanPolicy, Step

__all__ = ["dunning_steps", "next_retry", "retry_slots", "window_end"]

STEP_REMINDER = "payment_retry_failed"
STEP_FINAL_NOTICE = "final_notice"
STEP_SUSPEND = "suspend"
_STEP_ORDER = {STEP_REMINDER: 0, STEP_FINAL_NOTICE: 1, STEP_SUSPEND: 2}


def dunning_steps(first_failed_at: datetime, timezone: str, policy: PlanPolicy) -> list[Step]:
    """Reminders, the final notice and the suspension of one invoice, in time order.

    Email steps are moved out of the customer's quiet hours; the suspension is not an email
    itself (its email goes out through :func:`email_time` when it is sent).
    """
    planned = [(d, STEP_REMINDER) for d in policy.reminder_days]
    planned += [(policy.final_notice_day, STEP_FINAL_NOTICE), (policy.suspend_day, STEP_SUSPEND)]
    timed = []
    for days, kind in planned:
        at = dunning_day(first_failed_at, timezone, policy, days)
        if kind != STEP_SUSPEND:
            at = email_time(at, timezone, policy)
        timed.append((at, _STEP_ORDER[kind], kind))
    timed.sort()
    return [Step(at=at, kind=kind, index=i) for i, (at, _, kind) in enumerate(timed)]
