"""Properties of the policy over random decline histories, clocks, zones and policies.

For every generated invoice the retries the policy asks for never follow a never-retry outcome
on their card, never fill a network window past its limit, never reach the end of the window,
come in time order, and are the same for the same inputs; emails never land in quiet hours.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import DEFAULT_POLICY_FILE
from dunning.policy.days import window_end
from dunning.policy.expiry import expiry_reminders
from dunning.policy.limits import COUNTED_STATUSES, check_limits
from dunning.policy.schedule import dunning_steps, next_retry
from dunning.policy.timing import email_time, parse_clock
from dunning.policy.types import AttemptRecord, PlanPolicy, RetryState
from dunning.policy_file import load_policy_book

BOOK = load_policy_book(DEFAULT_POLICY_FILE)
DEFAULT = BOOK.for_plan("any", "month")
POLICIES = [
    DEFAULT,
    BOOK.for_plan("any", "year"),
    replace(DEFAULT, visa_max_reattempts_30d=15),
    # Dense and tight: retries every day against small limits, so the limits bind often.
    replace(
        DEFAULT,
        retry_days=tuple(range(1, 13)),
        weak_soft_max_retries=6,
        visa_max_reattempts_30d=3,
        mc_max_attempts_24h=2,
        mc_max_attempts_30d=4,
        retry_local_time="23:30",
    ),
    # A short window: delays near its end push retries past it.
    replace(DEFAULT, retry_days=(2, 4, 6), reminder_days=(), final_notice_day=6, suspend_day=7),
    # A tight 24-hour limit that moves retries later inside the window.
    replace(
        DEFAULT,
        retry_days=(1, 2, 3, 4, 5, 6, 8, 10),
        weak_soft_max_retries=8,
        visa_max_reattempts_30d=12,
        mc_max_attempts_24h=1,
        mc_max_attempts_30d=30,
    ),
    # Longer than Visa's 30 days: the Visa cutoff must bind.
    replace(
        DEFAULT,
        retry_days=(1, 3, 5, 7, 14, 21, 28, 35, 42),
        reminder_days=(4, 20),
        final_notice_day=40,
        suspend_day=45,
    ),
]
ZONES = [
    "UTC",
    "Europe/Copenhagen",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
    "",
]
SOFT = [
    {"decline_code": "insufficient_funds", "network_code": "51"},
    {"decline_code": "do_not_honor", "network_code": "05"},
    {"decline_code": "generic_decline"},
    {"decline_code": "processing_error", "network_code": "96"},
    {"decline_code": "withdrawal_count_limit_exceeded", "network_code": "61"},
    {"network_advice_code": "02"},
    {"network_advice_code": "25"},
    {"decline_code": "card_velocity_exceeded", "advice_code": "try_again_later"},
]
NEEDS_NEW_CARD = [{"decline_code": "expired_card", "network_code": "54"}]
# Labelled by hand, independently of the classification tables.
NEVER = [
    {"decline_code": "lost_card", "network_code": "41"},
    {"decline_code": "stolen_card", "network_code": "43"},
    {"network_advice_code": "03"},
    {"network_advice_code": "21"},
    {"decline_code": "insufficient_funds", "advice_code": "do_not_try_again"},
]
MAC_DELAY_H = {"02": 72, "25": 24}
NOT_CHARGED: dict[str, str] = {}
DECLINES = SOFT + NEEDS_NEW_CARD + NEVER
OUTCOMES = [*DECLINES, NOT_CHARGED]
CARDS = [(), (("pm_2", "mastercard"),), (("pm_2", "visa"), ("pm_3", "amex"))]
STOP_REASONS = {
    "paid",
    "outcome_unknown",
    "window_over",
    "duplicate_transaction",
    "hard_decline",
    "needs_new_card",
    "weak_soft_limit",
    "schedule_exhausted",
    "network_limit",
    "mac_delay",
    "decline_delay",
}
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def record(
    at: datetime, card: str, network: str, outcome: dict[str, Any], **kw: Any
) -> AttemptRecord:
    status = "not_charged" if outcome is NOT_CHARGED else kw.pop("status", "declined")
    fields: dict[str, Any] = {"invoice_id": "in_1", "amount": 12500, "initiator": "merchant", **kw}
    return AttemptRecord(
        at, payment_method_id=card, network=network, status=status, **fields, **outcome
    )


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    first = draw(instants)
    network = draw(st.sampled_from(["visa", "mastercard", "amex"]))
    history = []
    for minutes, outcome, status, amount in draw(
        st.lists(
            st.tuples(
                st.integers(1, 40 * 24 * 60),
                st.sampled_from(DECLINES),
                st.sampled_from(["declined", "declined", "succeeded", "unknown", "not_charged"]),
                st.sampled_from([12500, 12500, 999]),
            ),
            max_size=30,
        )
    ):
        at = first - timedelta(minutes=minutes)
        codes = outcome if status == "declined" else {}
        history.append(
            record(at, "pm_1", network, codes, invoice_id="in_0", status=status, amount=amount)
        )
    return {
        "first": first,
        "zone": draw(st.sampled_from(ZONES)),
        "network": network,
        "policy": draw(st.sampled_from(POLICIES)),
        "first_outcome": draw(st.sampled_from(DECLINES)),
        "outcomes": draw(st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=14)),
        "history": sorted(history, key=lambda a: a.at),
        "backups": draw(st.sampled_from(CARDS)),
        "customer": draw(
            st.lists(st.tuples(st.floats(0.01, 0.99), st.sampled_from(DECLINES)), max_size=3)
        ),
        "delays": draw(st.lists(st.integers(1, 180), min_size=20, max_size=20)),
    }


def run(inv: dict[str, Any]) -> tuple[list[AttemptRecord], list[AttemptRecord], RetryState]:
    """Drive one invoice through the policy: retries at the times it asks for."""
    policy, first, network = inv["policy"], inv["first"], inv["network"]
    networks = {"pm_1": network, **dict(inv["backups"])}
    attempts = [record(first, "pm_1", network, inv["first_outcome"])]
    outcomes, customer, now = list(inv["outcomes"]), list(inv["customer"]), first
    s = None
    for step in range(30):
        s = RetryState(
            invoice_id="in_1",
            first_failed_at=first,
            plan="p",
            interval="month",
            customer_timezone=inv["zone"],
            payment_method_id="pm_1",
            network=network,
            amount=12500,
            invoice_attempts=tuple(attempts),
            card_attempts=(
                *inv["history"],
                *(a for a in attempts if a.payment_method_id == "pm_1"),
            ),
            backup_cards=inv["backups"],
            other_card_attempts=tuple(a for a in attempts if a.payment_method_id != "pm_1"),
        )
        d = next_retry(s, now, policy)
        assert next_retry(s, now, policy) == d, "the same inputs must give the same decision"
        if d.action == "stop":
            assert d.reason in STOP_REASONS
            assert d.message
            break
        assert d.action == "retry"
        assert d.at is not None
        assert d.payment_method_id in networks
        assert d.at >= now
        if customer and d.at > now:
            share, outcome = customer.pop(0)  # the customer tries their card before the retry
            now = now + (d.at - now) * share
            attempts.append(record(now, "pm_1", network, outcome, initiator="customer"))
            continue
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        card = d.payment_method_id
        assert card is not None
        attempts.append(record(d.at, card, networks[card], outcome))
        now = d.at + timedelta(minutes=inv["delays"][step % 20])
    assert s is not None
    return inv["history"], attempts, s


def signals(a: AttemptRecord) -> dict[str, str]:
    """The decline signals an attempt carries, in the shape of the outcome lists."""
    keys = ("decline_code", "network_code", "advice_code", "network_advice_code")
    return {k: getattr(a, k) for k in keys if getattr(a, k)}


def _counted(pool: list[AttemptRecord], card: str, before: datetime) -> list[AttemptRecord]:
    return [
        a
        for a in pool
        if a.payment_method_id == card and a.status in COUNTED_STATUSES and a.at < before
    ]


@FAST
@given(invoices())
def test_retries_respect_every_rule(inv: dict[str, Any]) -> None:
    history, attempts, _ = run(inv)
    policy: PlanPolicy = inv["policy"]
    end = window_end(inv["first"], inv["zone"], policy)
    retries = [a for a in attempts[1:] if a.initiator == "merchant"]
    pool = history + attempts
    assert [a.at for a in attempts] == sorted(a.at for a in attempts), "attempts in time order"
    assert sum(a.status != "not_charged" for a in retries) <= len(policy.retry_days)
    for r in retries:
        assert r.at < end, "no attempt at or after the end of the window"
        before = _counted(pool, r.payment_method_id, r.at)
        approvals = [a.at for a in before if a.status == "succeeded"]
        for a in before:
            lifted = any(t > a.at for t in approvals)
            if a.status == "declined" and signals(a) in NEVER:
                assert lifted, f"retry at {r.at} after a never-retry outcome at {a.at}"
            mac = a.network_advice_code
            if a.status == "declined" and mac in MAC_DELAY_H and not lifted:
                assert r.at >= a.at + timedelta(hours=MAC_DELAY_H[mac]), "MAC delay respected"
        own = [a for a in attempts if a.payment_method_id == r.payment_method_id and a.at < r.at]
        last = next((a for a in reversed(own) if a.status == "declined"), None)
        if last is not None:
            codes = {k: getattr(last, k) for k in ("decline_code", "network_code")}
            assert codes not in NEEDS_NEW_CARD, "no retry on a card that needs replacing"
        if r.network != "visa":
            for window, limit in (
                (timedelta(hours=24), policy.mc_max_attempts_24h),
                (timedelta(days=30), policy.mc_max_attempts_30d),
            ):
                inside = [a for a in before if a.at > r.at - window]
                assert len(inside) + 1 <= limit, f"{limit} per {window} exceeded at {r.at}"
        if r.network != "mastercard":
            same = [a for a in before if a.amount == r.amount]
            last_ok = max((a.at for a in same if a.status == "succeeded"), default=None)
            inside = [
                a
                for a in same
                if a.at > r.at - timedelta(days=30) and (last_ok is None or a.at > last_ok)
            ]
            assert len(inside) + 1 <= policy.visa_max_reattempts_30d, "Visa 30-day limit"
            declines = [a.at for a in own if a.status == "declined"]
            if declines:
                assert r.at < min(declines) + timedelta(days=30), "Visa: 30 days after decline"


def _quiet(at: datetime, zone_name: str, policy: PlanPolicy) -> bool:
    wall = at.astimezone(ZoneInfo(zone_name or "UTC")).time()
    start, end = parse_clock(policy.quiet_start), parse_clock(policy.quiet_end)
    if start == end:
        return False
    return start <= wall < end if start < end else (wall >= start or wall < end)


QUIETS = [
    ("21:00", "08:00"),
    ("22:30", "07:15"),
    ("01:00", "06:00"),
    ("00:00", "09:00"),
    ("12:00", "12:00"),
]


@FAST
@given(instants, st.sampled_from(ZONES), st.sampled_from(QUIETS))
def test_no_email_time_in_quiet_hours(at: datetime, zone_name: str, quiet: tuple[str, str]) -> None:
    policy = replace(DEFAULT, quiet_start=quiet[0], quiet_end=quiet[1])
    sent = email_time(at, zone_name, policy)
    assert sent.tzinfo is UTC
    assert sent >= at
    assert not _quiet(sent, zone_name, policy)
    assert sent - at <= timedelta(hours=25)
    if not _quiet(at, zone_name, policy):
        assert sent == at
    assert email_time(at, zone_name, policy) == sent


@FAST
@given(instants, st.sampled_from(ZONES), st.sampled_from(POLICIES), st.sampled_from(QUIETS))
def test_dunning_steps_are_ordered_and_emails_avoid_quiet_hours(
    first: datetime, zone_name: str, policy: PlanPolicy, quiet: tuple[str, str]
) -> None:
    policy = replace(policy, quiet_start=quiet[0], quiet_end=quiet[1])
    steps = dunning_steps(first, zone_name, policy)
    assert [s.index for s in steps] == list(range(len(policy.reminder_days) + 2))
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert steps[-1].kind == "suspend"
    assert steps[-1].at == window_end(first, zone_name, policy)
    assert all(s.at > first for s in steps)
    assert not any(_quiet(s.at, zone_name, policy) for s in steps if s.kind != "suspend")


@FAST
@given(st.integers(1, 12), st.integers(2025, 2035), st.sampled_from(ZONES))
def test_expiry_reminders_never_on_the_first_nor_in_quiet_hours(
    month: int, year: int, zone_name: str
) -> None:
    reminders = expiry_reminders(month, year, zone_name, DEFAULT)
    assert [r.offset_label for r in reminders] == ["30d", "7d"]
    for r in reminders:
        assert r.at.astimezone(ZoneInfo(zone_name or "UTC")).day != 1
        assert not _quiet(r.at, zone_name, DEFAULT)


@FAST
@given(
    st.sampled_from(["visa", "mastercard", "amex"]),
    st.sampled_from(POLICIES),
    st.lists(
        st.tuples(st.integers(0, 6 * 60), st.sampled_from(["merchant", "customer"])),
        min_size=1,
        max_size=60,
    ),
)
def test_attempts_made_when_allowed_never_exceed_a_window(
    network: str, policy: PlanPolicy, proposals: list[tuple[int, str]]
) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    made: list[AttemptRecord] = []
    now = t0
    for gap, initiator in proposals:
        now += timedelta(minutes=gap)
        check = check_limits(
            made, network=network, amount=100, now=now, policy=policy, first_decline_at=None
        )
        if not check.allowed:
            if check.earliest is None:
                continue
            assert check.earliest > now
            now = check.earliest
            again = check_limits(
                made, network=network, amount=100, now=now, policy=policy, first_decline_at=None
            )
            assert again.allowed, "the earliest time offered must be allowed"
        made.append(
            record(
                now,
                "pm_1",
                network,
                {"decline_code": "insufficient_funds"},
                initiator=initiator,
                amount=100,
            )
        )
    windows = []
    if network != "visa":
        windows += [
            (timedelta(hours=24), policy.mc_max_attempts_24h),
            (timedelta(days=30), policy.mc_max_attempts_30d),
        ]
    if network != "mastercard":
        windows.append((timedelta(days=30), policy.visa_max_reattempts_30d))
    for a in made:
        for window, limit in windows:
            assert sum(1 for b in made if a.at - window < b.at <= a.at) <= limit


@st.composite
def open_invoices(draw: st.DrawFn) -> tuple[RetryState, datetime, PlanPolicy]:
    """Any state an open invoice can be in: random attempts across its window, any clock."""
    policy = draw(st.sampled_from(POLICIES))
    first = draw(instants)
    network = draw(st.sampled_from(["visa", "mastercard", "amex"]))
    span = timedelta(days=policy.suspend_day + 2)
    offsets = sorted(draw(st.lists(st.floats(0.0, 1.0), max_size=6)))
    attempts = [record(first, "pm_1", network, draw(st.sampled_from(DECLINES)))]
    for share in offsets:
        initiator = draw(st.sampled_from(["merchant", "customer"]))
        attempts.append(
            record(
                first + span * share,
                "pm_1",
                network,
                draw(st.sampled_from(OUTCOMES)),
                initiator=initiator,
            )
        )
    now = attempts[-1].at + span * draw(st.floats(0.0, 0.5))
    s = RetryState(
        invoice_id="in_1",
        first_failed_at=first,
        plan="p",
        interval="month",
        customer_timezone=draw(st.sampled_from(ZONES)),
        payment_method_id="pm_1",
        network=network,
        amount=12500,
        invoice_attempts=tuple(attempts),
        card_attempts=tuple(attempts),
        backup_cards=draw(st.sampled_from(CARDS)),
    )
    return s, now, policy


@FAST
@given(open_invoices())
def test_any_decision_stays_inside_the_window_and_after_now(
    case: tuple[RetryState, datetime, PlanPolicy],
) -> None:
    s, now, policy = case
    d = next_retry(s, now, policy)
    assert d == next_retry(s, now, policy)
    if d.action == "stop":
        assert d.at is None
        assert d.reason in STOP_REASONS
        return
    assert d.at is not None
    assert now <= d.at < window_end(s.first_failed_at, s.customer_timezone, policy)
    latest = s.invoice_attempts[-1]
    if latest.status == "declined":
        assert d.at > latest.at
    on_card = [a for a in s.invoice_attempts if a.payment_method_id == d.payment_method_id]
    assert not any(a.status == "declined" and signals(a) in NEVER for a in on_card), (
        "no retry on a card after a never-retry outcome"
    )
