"""What the commands say when they are used wrongly: usage is not configuration, every
refusal exits 2 and names the fix, and output is what was asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import DEFAULT_POLICY_FILE
from dunning.cli.main import main


def test_a_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option" in err
    assert "configuration error" not in err


def test_a_bad_scenario_is_a_usage_error_not_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.json").write_text('{"start": "2026-01-01T00:00:00Z", "days": 0}')
    assert main(["simulate", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad scenario")
    assert "configuration error" not in err
    assert main(["simulate", str(tmp_path / "absent.json")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read scenario")


def test_a_bad_endpoint_url_is_a_usage_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", sqlite_url)
    assert main(["endpoints", "add", "ftp://example.com/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: endpoint URL must be http(s)")
    assert "configuration" not in err
    assert main(["endpoints", "add", "https://example.com/x", "--secret", "whsec_!!"]) == 2
    assert "base64" in capsys.readouterr().err


def test_a_bad_setting_is_still_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_SMTP__PORT", "not-a-port")
    assert main(["status"]) == 2
    assert "configuration error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--plan", "no-such-plan"], "unknown plan 'no-such-plan'"),
        (["--interval", "fortnight"], "unknown interval 'fortnight'; intervals: day, week"),
    ],
)
def test_policy_show_refuses_an_unknown_plan_or_interval(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "show", *args]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert captured.out == ""


def test_policy_show_accepts_a_known_interval_without_a_section(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["policy", "show", "--interval", "month", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interval"] == "month"


def _dunning(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    return subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_policy_check_and_show_warn_once(tmp_path: Path) -> None:
    # given a valid policy file whose window is longer than Visa's 30 days
    text = DEFAULT_POLICY_FILE.read_text().replace("suspend_day = 14", "suspend_day = 40")
    (tmp_path / "long.toml").write_text(text)
    # when it is checked and shown by the console script, then each warns exactly once
    checked = _dunning("policy", "check", "long.toml", cwd=tmp_path)
    assert checked.returncode == 0
    assert checked.stderr.count("40-day window is longer") == 1, checked.stderr
    shown = _dunning("policy", "show", cwd=tmp_path, DUNNING_POLICY_FILE="long.toml")
    assert shown.returncode == 0
    assert shown.stderr.count("40-day window is longer") == 1, shown.stderr


def test_dlq_purge_asks_for_yes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "purge"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["dlq", "purge", "--yes"]) == 0  # the stub broker has none to purge
    assert "stub broker" in capsys.readouterr().out


def test_preview_email_refuses_an_unknown_locale(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-email", "payment_failed", "--locale", "xx"]) == 2
    captured = capsys.readouterr()
    assert "unknown locale 'xx'" in captured.err
    assert captured.out == ""


def test_preview_email_warns_when_a_locale_has_no_templates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["preview-email", "payment_failed", "--locale", "ja", "--format", "text"]) == 0
    captured = capsys.readouterr()
    assert "no ja templates" in captured.err
    assert captured.out.startswith("Subject: Your payment")


def test_preview_email_html_prints_only_html(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview-email", "payment_failed", "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>")
    assert out.rstrip().endswith("</html>")
    assert "Subject:" not in out


def test_check_fails_on_a_missing_policy_file(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DUNNING_POLICY_FILE", str(tmp_path / "absent.toml"))
    assert main(["check", "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)
    assert checks["database"]["ok"]
    assert checks["migrations"]["ok"]
    assert not checks["policy"]["ok"]
    assert "cannot read the policy file" in checks["policy"]["detail"]


def test_check_passes_with_the_default_policy(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", sqlite_url)
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["ok"]
