"""Infrastructure settings, read from ``DUNNING_*`` environment variables and ``.env``.

Dunning numbers (retry schedule, quiet hours, retention) are not here: they live in the policy
file (``config/policy.toml``). Settings hold only infrastructure and secrets.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.brand_settings import BrandSettings
from config.errors import ConfigError
from config.ops_settings import EndpointSettings, OpsSettings
from config.production import DEFAULT_SECRET as DEFAULT_SECRET
from config.production import production_problems
from config.web_settings import WebSettings

ENV_PREFIX = "DUNNING_"
DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


class Env(StrEnum):
    development = "development"
    production = "production"


class SmtpTls(StrEnum):
    none = "none"
    starttls = "starttls"
    tls = "tls"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class SmtpSettings(BaseModel):
    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: SmtpTls = SmtpTls.none
    timeout_s: float = Field(default=30.0, gt=0)


class StripeSettings(BaseModel):
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    api_key: SecretStr | None = None
    publishable_key: str | None = None
    api_base: str = "https://api.stripe.com"
    # Pinned: every request names it in the Stripe-Version header, so an upgrade of the
    # account's default version changes nothing until this is changed too.
    api_version: str = "2025-02-24.acacia"
    # Where the card page loads Stripe.js from (tests point it at a local stand-in).
    js_url: str = "https://js.stripe.com/v3/"

    @field_validator("api_version")
    @classmethod
    def _a_dated_version(cls, value: str) -> str:
        if not re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9](\.[a-z]+)?", value):
            raise ValueError("must be a Stripe API version such as 2025-02-24.acacia")
        return value

    @field_validator("js_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s\"'<>]+/[^\s\"'<>]*", value):
            raise ValueError("must be an http(s) URL of Stripe.js")
        return value

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _accept_single_secret(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [text] if text else []
        return value


class QuickpaySettings(BaseModel):
    private_key: SecretStr | None = None
    api_key: SecretStr | None = None


# How long after its attempt is stamped a charge's gateway call may start (the charge path
# stamps again whenever a stamp is older than this).
CALL_START_MARGIN_S = 0.5


class TimingSettings(BaseModel):
    """Leases, intervals and TTLs of the daemons; short in tests, seconds to minutes in production.

    The defaults bound how long a crash holds work up: a worker killed mid-run has every case it
    held finished within about two minutes (its messages come back after
    ``broker_heartbeat_timeout_s``, its emails when their ``work_lease_s`` ends, its charges
    in flight are looked up ``unknown_after_s`` after they were sent). RELIABILITY.md gives the
    recovery time of each fault on these defaults.
    """

    # How long a producer's claim keeps an item from being enqueued again while its message
    # waits in the broker: long enough for a big backlog to drain.
    claim_lease_s: float = Field(default=600.0, gt=0)
    # How long a worker's hold on the rows it is working on lasts; renewed every third of it
    # while the work runs, so it ends soon after the worker dies.
    work_lease_s: float = Field(default=60.0, gt=0)
    retry_scan_interval_s: float = Field(default=15.0, gt=0)
    outbox_scan_interval_s: float = Field(default=15.0, gt=0)
    reconcile_scan_interval_s: float = Field(default=300.0, gt=0)
    expiry_scan_interval_s: float = Field(default=86400.0, gt=0)
    purge_scan_interval_s: float = Field(default=86400.0, gt=0)
    unknown_after_s: float = Field(default=60.0, gt=0)
    leader_ttl_s: float = Field(default=30.0, gt=0)
    leader_poll_s: float = Field(default=5.0, gt=0)
    gateway_timeout_s: float = Field(default=30.0, gt=0)
    scan_batch: int = Field(default=5000, ge=1)
    # A dead worker's unacknowledged messages return after its heartbeat is this old (every
    # worker process looks for such messages a few times per timeout).
    broker_heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    mail_retry_base_s: float = Field(default=60.0, gt=0)
    mail_retry_max_s: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _lookup_after_the_call_ended(self) -> TimingSettings:
        # A charge still in flight must never be looked up: the look-up would find nothing,
        # call it not charged, and the next attempt would charge a second time. A call starts
        # at most CALL_START_MARGIN_S after its attempt's stamp and lasts at most
        # gateway_timeout_s (the gateway bounds the whole call).
        if self.unknown_after_s <= self.gateway_timeout_s + CALL_START_MARGIN_S:
            raise ValueError(
                f"unknown_after_s must be longer than gateway_timeout_s + {CALL_START_MARGIN_S} s "
                "(set DUNNING_TIMING__UNKNOWN_AFTER_S above DUNNING_TIMING__GATEWAY_TIMEOUT_S)"
            )
        return self


class Settings(BaseSettings):
    """Every setting of the pipeline. Build it once with :func:`load_settings` and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    env: Env = Env.development
    database_url: str = "sqlite:///./var/dunning.sqlite3"
    broker_url: str = "stub://"
    # This deployment's queues on a shared broker (dunning/broker_names.py). Unset: derived from
    # the database name; empty: the unprefixed names of earlier versions.
    queue_prefix: str | None = None
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    mail_from: str = "billing@example.com"
    outbox_dir: Path = Path("./var/outbox")
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    link_ttl_s: int = Field(default=45 * 86400, gt=0)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    quickpay: QuickpaySettings = Field(default_factory=QuickpaySettings)
    webhook_tolerance_s: int = Field(default=300, gt=0)
    webhook_max_body_bytes: int = Field(default=256 * 1024, gt=0)
    policy_file: Path = DEFAULT_POLICY_FILE
    ops: OpsSettings = Field(default_factory=OpsSettings)
    endpoints: EndpointSettings = Field(default_factory=EndpointSettings)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.text
    brand: BrandSettings = Field(default_factory=BrandSettings)
    timing: TimingSettings = Field(default_factory=TimingSettings)
    gateway: str = "sandbox"
    # Fault injection for tests and drills: this share of sandbox charges times out.
    sandbox_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Fault injection: each sandbox charge takes this long, half before the ledger write and
    # half after, so a test can kill a worker mid-charge on either side of it.
    sandbox_delay_ms: int = Field(default=0, ge=0, le=60_000)
    metrics_port: int = Field(default=9191, ge=0, le=65535)
    web: WebSettings = Field(default_factory=WebSettings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("stub://", "redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError("must start with stub://, redis://, rediss:// or amqp://")
        return value

    @field_validator("queue_prefix")
    @classmethod
    def _queue_prefix_is_a_name(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", value):
            raise ValueError(
                "must be up to 63 letters, digits, '_' or '-', starting with a letter or '_'"
            )
        return value

    @field_validator("gateway")
    @classmethod
    def _known_gateway(cls, value: str) -> str:
        if value not in {"sandbox", "stripe"}:
            raise ValueError("must be sandbox or stripe")
        return value

    @model_validator(mode="after")
    def _sandbox_calls_end_in_time(self) -> Settings:
        # A sandbox charge that outlasts the gateway's bound would break the rule the look-up
        # of unknown outcomes relies on (a call ends within gateway_timeout_s).
        if self.sandbox_delay_ms / 1000 >= self.timing.gateway_timeout_s:
            raise ValueError(
                "DUNNING_SANDBOX_DELAY_MS must be shorter than DUNNING_TIMING__GATEWAY_TIMEOUT_S"
            )
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        problems = production_problems(self) if self.env is Env.production else []
        if problems:
            raise ValueError("production refuses unsafe settings:\n    " + "\n    ".join(problems))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _variable_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "__".join(p.upper() for p in parts) if parts else ENV_PREFIX + "*"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the settings; raise :class:`ConfigError` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _variable_name(tuple(err["loc"])) if err["loc"] else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("bad configuration:\n  " + "\n  ".join(lines)) from None
    except (ValueError, json.JSONDecodeError) as exc:
        # pydantic-settings raises SettingsError (a ValueError) for undecodable complex values
        raise ConfigError(f"bad configuration: {exc}") from None
