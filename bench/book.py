"""Bulk-loaded books for the figures: ``INSERT … SELECT generate_series``, not the importer.

Subscription ``i`` belongs to customer ``cus_<i>`` and is paid by card ``pm_<i>``. Every
subscription has one paid invoice of history. ``due`` of them, spread evenly over the book, have
an open invoice whose first charge failed a day ago and whose retry is due now; ``later`` more
have an open invoice whose retry is two days away. The state is what ``record_failure`` leaves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

# Zones the harness picks the customers' zone from: one of them is always in daytime, so no
# email waits for the end of quiet hours during a run.
ZONES = ("UTC", "Europe/Copenhagen", "Europe/Moscow", "Asia/Dubai", "Asia/Kolkata",
         "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
         "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
         "America/Chicago", "America/New_York", "America/Sao_Paulo", "Atlantic/Azores")  # fmt: skip


def daytime_zone(now: datetime) -> str:
    """A zone whose local time is between 09:00 and 18:00 at ``now`` (hours before quiet)."""
    for name in ZONES:
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 18:
            return name
    raise RuntimeError("no daytime zone found")  # the list covers every hour of the day


_CUSTOMERS = """
INSERT INTO customers (id, email, name, locale, timezone, billing_emails, card_generation,
                       last_payment_at, created_at, updated_at)
SELECT 'cus_' || i, 'customer' || i || '@example.com', 'Customer ' || i,
       CASE WHEN i %% 5 = 0 THEN 'da' ELSE 'en' END, %(tz)s,
       CASE WHEN i %% 10 = 0 THEN '["billing' || i || '@example.org"]' ELSE '[]' END::json,
       0, %(paid)s, %(created)s, %(created)s
FROM generate_series(%(lo)s::int, %(hi)s::int) AS i
"""
_CARDS = """
INSERT INTO payment_methods (id, customer_id, gateway, token, network, last4, exp_month,
                             exp_year, is_default, status, created_at, updated_at)
SELECT 'pm_' || i, 'cus_' || i, 'sandbox', 'sbx_ok_' || i,
       CASE WHEN i %% 3 = 0 THEN 'mastercard' ELSE 'visa' END, lpad((i %% 10000)::text, 4, '0'),
       1 + i %% 12, 2030, true, 'active', %(created)s, %(created)s
FROM generate_series(%(lo)s::int, %(hi)s::int) AS i
"""
_SUBSCRIPTIONS = """
INSERT INTO subscriptions (id, customer_id, plan, amount, currency, interval, status,
                           payment_method_id, current_period_end, last_payment_at,
                           created_at, updated_at)
SELECT 'sub_' || i, 'cus_' || i, 'pro-monthly', 2900, 'EUR', 'month',
       CASE WHEN i %% %(step)s = 0 AND i / %(step)s <= %(open)s THEN 'past_due' ELSE 'active' END,
       'pm_' || i, %(period_end)s, %(paid)s, %(created)s, %(created)s
FROM generate_series(%(lo)s::int, %(hi)s::int) AS i
"""
_HISTORY = """
INSERT INTO invoices (id, subscription_id, customer_id, amount, currency, status, attempt_count,
                      paid_at, created_at, updated_at)
SELECT 'in_h_' || i, 'sub_' || i, 'cus_' || i, 2900, 'EUR', 'paid', 1, %(paid)s, %(paid)s,
       %(paid)s
FROM generate_series(%(lo)s::int, %(hi)s::int) AS i
"""
_OPEN = """
INSERT INTO invoices (id, subscription_id, customer_id, amount, currency, status, attempt_count,
                      first_failed_at, next_attempt_at, next_attempt_reason, next_step_at,
                      steps_done, last_decline_code, last_decline_class, created_at, updated_at)
SELECT 'in_' || i, 'sub_' || i, 'cus_' || i, 2900, 'EUR', 'open', 1, %(failed)s,
       CASE WHEN i / %(step)s <= %(due)s THEN %(due_at)s ELSE %(later_at)s END,
       'scheduled_retry', %(step_at)s, 0, 'insufficient_funds', 'retry', %(failed)s, %(failed)s
FROM generate_series(%(step)s::int, %(step)s::int * %(open)s::int, %(step)s::int) AS i
"""
_ATTEMPTS = """
INSERT INTO payment_attempts (idempotency_key, invoice_id, attempt_no, customer_id,
                              payment_method_id, network, amount, currency, initiator, status,
                              decline_code, network_code, decline_class, reason, created_at,
                              resolved_at)
SELECT 'inv_in_' || i || '_att_1', 'in_' || i, 1, 'cus_' || i, 'pm_' || i,
       CASE WHEN i %% 3 = 0 THEN 'mastercard' ELSE 'visa' END, 2900, 'EUR', 'merchant',
       'declined', 'insufficient_funds', '51', 'retry', 'renewal', %(failed)s, %(failed)s
FROM generate_series(%(step)s::int, %(step)s::int * %(open)s::int, %(step)s::int) AS i
"""
CHUNK = 250_000


def load_book(
    url: str, *, subscriptions: int, due: int, now: datetime, later: int = 0, history: bool = True
) -> str:
    """Load the book into the (migrated, empty) database at ``url``; return the zone used."""
    if due + later > subscriptions:
        raise ValueError("more open invoices than subscriptions")
    tz = daytime_zone(now)
    open_ = due + later
    step = max(subscriptions // open_, 1) if open_ else 1
    params = {
        "tz": tz,
        "step": step,
        "open": open_,
        "due": due,
        "created": now - timedelta(days=400),
        "paid": now - timedelta(days=31),
        "period_end": now - timedelta(days=1),
        "failed": now - timedelta(days=1),
        "due_at": now - timedelta(minutes=1),
        "later_at": now + timedelta(days=2),
        "step_at": now + timedelta(days=3),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        # The rows are consistent by construction: skip the foreign-key triggers (superuser
        # only) and the wait for each commit's flush, which make up most of a load's time.
        conn.execute(b"SET session_replication_role = replica")
        conn.execute(b"SET synchronous_commit = off")
        # Each chunk commits on its own: one huge transaction only makes the load slower.
        for lo in range(1, subscriptions + 1, CHUNK):
            chunk = {**params, "lo": lo, "hi": min(lo + CHUNK - 1, subscriptions)}
            for sql in (_CUSTOMERS, _CARDS, _SUBSCRIPTIONS, *((_HISTORY,) if history else ())):
                conn.execute(sql.encode(), chunk)
        if open_:
            conn.execute(_OPEN.encode(), params)
            conn.execute(_ATTEMPTS.encode(), params)
        conn.execute(b"ANALYZE")
    return tz


_OUTBOX = """
INSERT INTO notifications (dedup_key, kind, customer_id, invoice_id, to_addr, cc, locale,
                           context, status, not_before, send_attempts, message_id, created_at)
SELECT %(kind)s || ':' || inv.id, %(kind)s, cu.id, inv.id, cu.email, cu.billing_emails,
       cu.locale,
       json_build_object(
           'customer_name', cu.name, 'timezone', cu.timezone, 'plan', 'Pro Monthly',
           'amount', inv.amount, 'currency', inv.currency,
           'card', json_build_object('network', pm.network, 'last4', pm.last4,
                                     'exp_month', pm.exp_month, 'exp_year', pm.exp_year),
           'new_card', NULL,
           -- what rebuilds the signed link at sending, as notify.link_for stores it
           'update_link', json_build_object('purpose', 'update_card',
                                            'generation', cu.card_generation,
                                            'expires_at', %(link_expires)s::bigint),
           'update_url', NULL,
           'next_attempt_at', to_char(inv.next_attempt_at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS+00:00'),
           'suspend_at', to_char(%(suspend_at)s::timestamptz AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS+00:00'),
           'paid_at', NULL, 'invoice_id', inv.id, 'expires_on', NULL),
       'pending', %(not_before)s, 0,
       '<' || md5(%(kind)s || ':' || inv.id) || '@example.com>', %(not_before)s
FROM invoices inv
JOIN customers cu ON cu.id = inv.customer_id
JOIN subscriptions s ON s.id = inv.subscription_id
JOIN payment_methods pm ON pm.id = s.payment_method_id
WHERE inv.status = 'open'
"""


def queue_outbox(url: str, *, now: datetime, kind: str = "payment_failed") -> int:
    """One pending ``kind`` email per open invoice, with the context ``queue_invoice_email``
    would store; returns how many rows were queued."""
    params = {
        "kind": kind,
        "link_expires": int((now + timedelta(days=14)).timestamp()),
        "suspend_at": now + timedelta(days=13),
        "not_before": now - timedelta(minutes=1),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        queued = conn.execute(_OUTBOX.encode(), params).rowcount
        conn.execute(b"ANALYZE notifications")
    return queued
