"""Settings: typed, validated once, bad values named."""

from __future__ import annotations

import pytest

from config.settings import Env, SmtpTls, load_settings
from dunning.cli.main import main
from dunning.errors import ConfigError


def test_defaults_are_the_embedded_pipeline() -> None:
    s = load_settings()
    assert s.env is Env.development
    assert s.database_url.startswith("sqlite:///")
    assert s.broker_url == "stub://"
    assert s.smtp.host is None
    assert s.public_base_url == "http://127.0.0.1:8000"


def test_nested_variables_use_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_SMTP__HOST", "mail.internal")
    monkeypatch.setenv("DUNNING_SMTP__PORT", "587")
    monkeypatch.setenv("DUNNING_SMTP__TLS", "starttls")
    monkeypatch.setenv("DUNNING_STRIPE__WEBHOOK_SECRETS", '["whsec_a", "whsec_b"]')
    s = load_settings()
    assert (s.smtp.host, s.smtp.port, s.smtp.tls) == ("mail.internal", 587, SmtpTls.starttls)
    assert [x.get_secret_value() for x in s.stripe.webhook_secrets] == ["whsec_a", "whsec_b"]


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_SMTP__PORT", "abc")
    with pytest.raises(ConfigError, match="DUNNING_SMTP__PORT"):
        load_settings()


def test_bad_value_stops_check_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_SMTP__PORT", "abc")
    assert main(["check"]) == 2
    assert "DUNNING_SMTP__PORT" in capsys.readouterr().err


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_ENV", "production")
    with pytest.raises(ConfigError, match="DUNNING_LINK_SECRET"):
        load_settings()
    monkeypatch.setenv("DUNNING_LINK_SECRET", "a-real-secret-value-of-32-chars!")
    monkeypatch.setenv("DUNNING_OPS__PASSWORD", "another-real-secret-of-32-chars!")
    monkeypatch.setenv("DUNNING_PUBLIC_BASE_URL", "https://pay.example.com")
    with pytest.raises(ConfigError, match="DUNNING_GATEWAY"):
        load_settings()
    monkeypatch.setenv("DUNNING_GATEWAY", "stripe")
    with pytest.raises(ConfigError, match="DUNNING_STRIPE__API_KEY"):
        load_settings()
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "sk_live_x")
    assert load_settings().env is Env.production


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DUNNING_LINK_SECRET", "s" * 31),
        ("DUNNING_OPS__PASSWORD", "p" * 31),
        ("DUNNING_PUBLIC_BASE_URL", "http://pay.example.com"),
        ("DUNNING_GATEWAY", "sandbox"),
        ("DUNNING_SANDBOX_FAILURE_RATE", "0.1"),
        ("DUNNING_SANDBOX_DELAY_MS", "10"),
    ],
)
def test_production_refuses_each_unsafe_setting_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    safe = {
        "DUNNING_ENV": "production",
        "DUNNING_LINK_SECRET": "l" * 32,
        "DUNNING_OPS__PASSWORD": "o" * 32,
        "DUNNING_PUBLIC_BASE_URL": "https://pay.example.com",
        "DUNNING_GATEWAY": "stripe",
        "DUNNING_STRIPE__API_KEY": "sk_live_x",
    }
    for key, setting in safe.items():
        monkeypatch.setenv(key, setting)
    assert load_settings().env is Env.production
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable) as refused:
        load_settings()
    assert str(refused.value).count("DUNNING_") == 1  # only the unsafe one is named


def test_unrelated_dotenv_keys_are_ignored(tmp_path: object) -> None:
    from pathlib import Path

    Path(".env").write_text("SOMETHING_ELSE=1\nDUNNING_MAIL_FROM=billing@shop.test\n")
    assert load_settings().mail_from == "billing@shop.test"


def test_secrets_do_not_print() -> None:
    s = load_settings(link_secret="super-secret-value")
    assert "super-secret-value" not in repr(s)
    assert "super-secret-value" not in s.model_dump_json()


def test_a_sandbox_charge_may_not_outlast_the_gateways_bound() -> None:
    with pytest.raises(ConfigError, match="DUNNING_SANDBOX_DELAY_MS"):
        load_settings(sandbox_delay_ms=2000, timing={"gateway_timeout_s": 2})
    assert load_settings(sandbox_delay_ms=1999, timing={"gateway_timeout_s": 2})


def test_unknown_outcomes_are_looked_up_only_after_a_call_could_have_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUNNING_TIMING__GATEWAY_TIMEOUT_S", "30")
    monkeypatch.setenv("DUNNING_TIMING__UNKNOWN_AFTER_S", "10")
    with pytest.raises(ConfigError, match="unknown_after_s"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DUNNING_BRAND__ACCENT_COLOR", "blue"),
        ("DUNNING_BRAND__LOGO_URL", "http://cdn.example.com/logo.png"),
        ("DUNNING_BRAND__REPLY_TO", "not an address"),
        ("DUNNING_BRAND__EMAIL_TEMPLATES", "/nonexistent/templates"),
        ("DUNNING_BRAND__PLAN_NAMES", '["not", "an", "object"]'),
    ],
)
def test_bad_brand_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_brand_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_BRAND__PLAN_NAMES", '{"pro-monthly": "Pro"}')
    monkeypatch.setenv("DUNNING_BRAND__ACCENT_COLOR", "#C2410C")
    brand = load_settings().brand
    assert brand.plan_names == {"pro-monthly": "Pro"}
    assert brand.accent_color == "#c2410c"
    assert (brand.from_name, brand.reply_to) == (None, None)
