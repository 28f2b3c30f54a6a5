"""The policy file: defaults, plan and interval overrides, and bad files named by key."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from config.settings import DEFAULT_POLICY_FILE
from dunning.errors import ConfigError
from dunning.policy.types import PlanPolicy
from dunning.policy_file import load_policy_book


def book(overrides: dict[str, Any] | None = None) -> Any:
    return load_policy_book(DEFAULT_POLICY_FILE, overrides)


def test_the_default_file_holds_the_documented_defaults() -> None:
    b = book()
    assert b.for_plan("pro-monthly", "month") == PlanPolicy()
    assert b.warnings == []


def test_every_key_of_the_default_file_is_explained() -> None:
    lines = DEFAULT_POLICY_FILE.read_text().splitlines()
    for i, line in enumerate(lines):
        is_key = line and not line.startswith(("#", "[", '"')) and "=" in line
        if is_key and not lines[i - 1].startswith("#") and "=" not in lines[i - 1]:
            pytest.fail(f"policy.toml line {i + 1} has no comment above it: {line}")


def test_annual_plans_get_a_28_day_window_inside_visas_30_days() -> None:
    p = book().for_plan("pro-annual", "year")
    assert p.suspend_day == 28
    assert p.suspend_day < p.visa_transaction_window_days
    assert p.retry_days == (1, 3, 5, 7, 14, 21)
    assert p.final_notice_day < p.suspend_day
    assert p.reminder_days == (4, 15)


def test_unknown_plans_and_intervals_get_the_defaults() -> None:
    assert book().for_plan("nobody", "fortnight") == PlanPolicy()


def test_a_plan_override_wins_over_its_interval() -> None:
    b = book({"plans": {"gold.yearly": {"window": {"suspend_day": 25}}}})
    assert b.for_plan("gold.yearly", "year").suspend_day == 25
    assert b.for_plan("gold.yearly", "year").retry_days == (1, 3, 5, 7, 14, 21)
    assert b.for_plan("gold.yearly", "month").retry_days == (1, 3, 5, 7)
    assert b.for_plan("silver", "year").suspend_day == 28


@pytest.mark.parametrize(
    "overrides",
    [{"retry": {"days": [2, 4]}}, {"retry.days": [2, 4]}],
)
def test_overrides_use_the_file_keys_nested_or_dotted(overrides: dict[str, Any]) -> None:
    p = book(overrides).for_plan("x", "month")
    assert p.retry_days == (2, 4)
    assert p.retry_local_time == "09:00"  # the rest of the section stays


def test_the_policy_file_can_live_anywhere(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_FILE.read_text().replace("suspend_day = 14", "suspend_day = 12")
    (tmp_path / "p.toml").write_text(text)
    assert load_policy_book(tmp_path / "p.toml").for_plan("x", "month").suspend_day == 12


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retry.days": [1, 3, 0]}, "retry.days[2]: must be a positive integer"),
        ({"retry.days": [1, 3, "5"]}, "retry.days[2]: must be a positive integer"),
        ({"retry.days": [1, True]}, "retry.days[1]: must be a positive integer"),
        ({"retry.days": "1,3"}, "retry.days: must be a list"),
        ({"retry.days": [1, 3, 3]}, "retry.days[2]: must be greater than the day before it (3)"),
        ({"retry.days": [1, 14]}, "retry.days[1]: must be before window.suspend_day (14)"),
        ({"retry.dayz": [1]}, "retry.dayz: unknown key"),
        ({"retry.local_time": "9am"}, 'retry.local_time: must be a local time "HH:MM"'),
        ({"retry.weak_soft_max": -1}, "retry.weak_soft_max: must be an integer, 0 or more"),
        ({"retry.switch_to_backup_card": "yes"}, "retry.switch_to_backup_card: must be true"),
        ({"emails.final_notice_day": 14}, "emails.final_notice_day: must be before window."),
        ({"emails.reminder_days": [12]}, "emails.reminder_days[0]: must be before emails.final"),
        ({"emails.first_failure_delay_hours": -2}, "emails.first_failure_delay_hours: must be"),
        ({"window.end_action": "cancel"}, "window.end_action: must be one of"),
        ({"quiet_hours.end": "24:00"}, "quiet_hours.end: must be a local time"),
        ({"expiry.reminder_days": [7, 7]}, "expiry.reminder_days[1]: must not repeat a day"),
        ({"retention.token_days": 0}, "retention.token_days: must be a positive integer"),
        ({"limits.visa.max_reattempts_30d": 0}, "limits.visa.max_reattempts_30d: must be a pos"),
        (
            {"limits.mastercard.mac_delay_hours": {"2": 72}},
            'limits.mastercard.mac_delay_hours."2": must be a two-digit',
        ),
        ({"declines.min_delay_hours.x": "soon"}, "declines.min_delay_hours.x: must be a number"),
        ({"surprise": 1}, "surprise: unknown key"),
        ({"plans": {"pro-x": {"retry": {"days": [0]}}}}, 'plans."pro-x".retry.days[0]: must be'),
        ({"plans": {"pro-x": 3}}, 'plans."pro-x": must be a table'),
        ({"plans": {"p": {"window.suspend_day": 5}}}, 'plans."p".retry.days[2]: must be before'),
        ({"intervals": {"fortnight": {}}}, "intervals.fortnight: unknown interval"),
        ({"intervals.year.window.suspend_day": 7}, "intervals.year.retry.days[3]: must be before"),
    ],
)
def test_a_bad_value_is_refused_with_its_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        book(overrides)
    assert message in str(info.value)


def test_a_bad_default_is_reported_once_not_per_override_layer() -> None:
    with pytest.raises(ConfigError) as info:
        book({"window.end_action": "cancel"})
    assert str(info.value).count("end_action") == 1


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_FILE.read_text().replace("token_days = 730\n", "")
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"^retention.token_days: is required$"):
        load_policy_book(tmp_path / "p.toml")


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("[retry\ndays = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy_book(tmp_path / "p.toml")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        load_policy_book(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"window.suspend_day": 45}, "window.suspend_day: a 45-day window"),
        ({"plans": {"slow": {"window.suspend_day": 40}}}, 'plans."slow".window.suspend_day'),
        ({"intervals.year.window.suspend_day": 31}, "intervals.year.window.suspend_day"),
    ],
)
def test_a_window_longer_than_visas_30_days_warns(
    overrides: dict[str, Any], key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dunning.policy.config"):
        b = book(overrides)
    assert len(b.warnings) == 1
    assert b.warnings[0].startswith(key)
    assert "need a new card or a new transaction" in b.warnings[0]
    assert key in caplog.text


def test_a_30_day_window_does_not_warn() -> None:
    assert book({"window.suspend_day": 30}).warnings == []


def test_as_dict_is_the_effective_policy_in_file_shape() -> None:
    b = book({"plans": {"gold": {"retry.days": [2]}}})
    assert b.as_dict()["retry"]["days"] == [1, 3, 5, 7]
    assert b.as_dict("gold")["retry"]["days"] == [2]
    assert b.as_dict(None, "year")["window"]["suspend_day"] == 28
    assert b.as_dict("gold", "year")["retry"]["days"] == [2]
    assert b.as_dict()["limits"]["mastercard"]["mac_delay_hours"]["02"] == 72
