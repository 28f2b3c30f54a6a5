"""Pay days: the calendar days on which customers in a country usually get their pay.

A pay-day rule is a day of the month (``1`` to ``31``; a day past the end of a month means its
last day) or ``"last"`` (the last day of the month). A pay day that falls on a Saturday or a
Sunday moves to the Friday before, as salaries do. Rules are kept per country (ISO 3166 code,
``"default"`` for every other country); a customer's country comes from their time zone.

Pay days are a heuristic, not a published fact (docs/whatif.md): the policy may move retries
onto them, and the what-if outcome model may make retries near them more likely to pass.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cache, lru_cache

PayDayRule = int | str
PayDays = Mapping[str, Sequence[PayDayRule]]
DEFAULT_KEY = "default"
LAST = "last"
# The defaults of config/policy.toml's [paydays]: the last day of the month where nothing
# better is known, the 15th and the last day where semi-monthly pay is common, and the days
# some countries are known to pay on. Heuristics (docs/whatif.md).
DEFAULT_PAYDAYS: Mapping[str, tuple[PayDayRule, ...]] = {
    "default": (LAST,),
    "US": (15, LAST),
    "CA": (15, LAST),
    "AU": (15, LAST),
    "SE": (25,),
    "NO": (20,),
    "NL": (25,),
}


def valid_rule(rule: object) -> bool:
    """Whether ``rule`` is a pay-day rule: a day of the month 1-31 or ``"last"``."""
    if isinstance(rule, bool):
        return False
    return rule == LAST or (isinstance(rule, int) and 1 <= rule <= 31)


@cache
def _zone_territories() -> Mapping[str, str]:
    from babel.core import get_global

    territories: Mapping[str, str] = get_global("zone_territories")
    return territories


@lru_cache(maxsize=1024)
def country_of(timezone: str) -> str:
    """The ISO 3166 country of an IANA time zone (``Europe/Copenhagen`` -> ``DK``); ``""``
    when the zone names no country (``UTC``, ``Etc/GMT+2``) or is unknown."""
    found = str(_zone_territories().get(timezone, ""))
    return "" if found == "ZZ" else found  # "ZZ": Unicode's unknown region


def rules_for(paydays: PayDays, country: str) -> Sequence[PayDayRule]:
    """The pay-day rules of ``country``, or the default ones."""
    found = paydays.get(country)
    if found is None:
        found = paydays.get(DEFAULT_KEY, ())
    return found


def _on_weekday(day: date) -> date:
    """A pay day on a weekend moves to the Friday before."""
    weekday = day.weekday()
    return day - timedelta(days=weekday - 4) if weekday >= 5 else day


@lru_cache(maxsize=4096)
def _month_pay_dates(year: int, month: int, rules: tuple[PayDayRule, ...]) -> tuple[date, ...]:
    last = monthrange(year, month)[1]
    days = {
        _on_weekday(date(year, month, last if rule == LAST else min(int(rule), last)))
        for rule in rules
    }
    return tuple(sorted(days))


def pay_dates(year: int, month: int, rules: Sequence[PayDayRule]) -> tuple[date, ...]:
    """The pay days of one month, in order."""
    return _month_pay_dates(year, month, tuple(rules))


def _months_around(day: date) -> list[tuple[int, int]]:
    before = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    after = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return [before, (day.year, day.month), after]


def days_since_payday(day: date, rules: Sequence[PayDayRule]) -> int | None:
    """Days from the latest pay day on or before ``day`` to ``day`` (0 on a pay day); ``None``
    when there are no rules. Looks back at most a month."""
    latest = None
    # Next month's first pay day may have moved back to this month's last Friday.
    for year, month in _months_around(day):
        for paid in pay_dates(year, month, rules):
            if paid <= day:
                latest = paid
    return None if latest is None else (day - latest).days


def next_payday(day: date, rules: Sequence[PayDayRule]) -> date | None:
    """The first pay day on or after ``day``; ``None`` when there are no rules."""
    for year, month in _months_around(day)[1:]:
        for paid in pay_dates(year, month, rules):
            if paid >= day:
                return paid
    return None
