"""Dependency checks shared by ``dunning check`` and ``GET /healthz``; ``dunning check`` alone
also asks Stripe (:func:`check_stripe`) whether its own retries and emails are off."""

from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass, replace

from sqlalchemy import text

from dunning.bootstrap import Container
from dunning.errors import ConfigError, GatewayUnavailable, PermanentError
from dunning.gateways.stripe import StripeGateway
from dunning.gateways.stripe.account import EMAILS_OFF, RETRIES_OFF
from dunning.store.migrate import current_revision, head_revision
from dunning.store.readiness import sqlite_file
from dunning.urls import masked, scrubbed


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_database(c: Container) -> list[CheckResult]:
    try:
        path = sqlite_file(c.engine.url)
        if path is not None and not path.is_file():
            # Connecting would create an empty file; only `dunning db upgrade` may.
            raise FileNotFoundError(f"{path} does not exist: run `dunning db upgrade`")
        with c.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return [
            CheckResult("database", False, _short(exc)),
            CheckResult("migrations", False, "database unreachable"),
        ]
    current, head = current_revision(c.engine), head_revision()
    return [
        CheckResult("database", True, masked(c.engine.url.render_as_string(hide_password=False))),
        CheckResult(
            "migrations",
            current == head,
            f"at {current}"
            if current == head
            else f"at {current}, newest is {head}: run 'dunning db upgrade'",
        ),
    ]


def check_broker(c: Container) -> CheckResult:
    url = c.settings.broker_url
    if url.startswith("stub://"):
        return CheckResult("broker", True, "stub broker (in process)")
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            client.close()
            return CheckResult("broker", True, _redact(url))
        except Exception as exc:
            return CheckResult("broker", False, f"{_redact(url)}: {_short(exc)}")
    if url.startswith(("amqp://", "amqps://")):
        return _amqp_check(url)
    return _tcp_check("broker", url)


def _amqp_check(url: str) -> CheckResult:
    """Open an AMQP connection with the URL's credentials and virtual host: a wrong password
    or a missing virtual host fails here, not only a closed port."""
    import pika
    import pika.exceptions

    from dunning.ops.rabbitmq import connection_parameters

    try:
        pika.BlockingConnection(connection_parameters(url, timeout_s=2)).close()
        return CheckResult("broker", True, _redact(url))
    except (pika.exceptions.AMQPError, OSError, ValueError) as exc:  # ValueError: a bad URL
        return CheckResult("broker", False, f"{_redact(url)}: {_amqp_reason(exc)}")


def _amqp_reason(exc: BaseException) -> str:
    """pika's errors often carry the reason one level down (``ProbableAccessDeniedError``)."""
    parts = [str(a) or repr(a) for a in exc.args if a is not None]
    text = " ".join(p for p in parts if p) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def check_smtp(c: Container) -> CheckResult:
    smtp = c.settings.smtp
    if not smtp.host:
        return CheckResult("smtp", True, f"file outbox at {c.settings.outbox_dir}")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=min(smtp.timeout_s, 5.0)) as client:
            code, _ = client.noop()
        return CheckResult("smtp", code == 250, f"{smtp.host}:{smtp.port} answered {code}")
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult("smtp", False, f"{smtp.host}:{smtp.port}: {_short(exc)}")


def check_policy(c: Container) -> CheckResult:
    """The policy file can be read and is valid (its warnings do not fail the check)."""
    try:
        book = c.policy
    except ConfigError as exc:
        return CheckResult("policy", False, _short(exc))
    warned = f" ({len(book.warnings)} warning(s): dunning policy check)" if book.warnings else ""
    return CheckResult("policy", True, f"{book.source}{warned}")


def check_stripe(c: Container) -> list[CheckResult]:
    """Nothing unless the gateway is Stripe; else the API, Stripe's retries and its emails."""
    if c.settings.gateway != "stripe":
        return []
    gateway = c.gateway
    if not isinstance(gateway, StripeGateway):
        return [CheckResult("stripe", False, "the gateway in use is not Stripe's API client")]
    try:
        retries = gateway.stripe_retries()
    except (GatewayUnavailable, PermanentError) as exc:
        return [CheckResult("stripe", False, str(exc)[:200])]
    api = CheckResult("stripe", True, f"API version {c.settings.stripe.api_version}")
    if retries.on:
        invoice, at = retries.retried[0]
        detail = (
            f"on: Stripe will retry {len(retries.retried)} of {retries.open_read} open invoices "
            f"itself (first {invoice} at {at:%Y-%m-%d %H:%M} UTC); turn off in {RETRIES_OFF}"
        )
    elif retries.open_read:
        detail = f"off: none of {retries.open_read} open invoices has a Stripe retry scheduled"
    else:
        detail = f"no open invoice to read, so not known; make sure of it in {RETRIES_OFF}"
    emails = "not readable through Stripe's API; turn off in " + EMAILS_OFF
    return [
        api,
        CheckResult("stripe retries", not retries.on, detail),
        CheckResult("stripe emails", True, emails),
    ]


def run_checks(c: Container) -> list[CheckResult]:
    """Every check; passwords of the database and broker URLs are masked in every detail,
    in the URLs' user part and query (``?password=…``) and wherever an error quotes them."""
    results = [*check_database(c), check_broker(c), check_smtp(c), check_policy(c)]
    urls = (c.settings.database_url, c.settings.broker_url)
    return [replace(r, detail=scrubbed(r.detail, *urls)) for r in results]


def _tcp_check(name: str, url: str) -> CheckResult:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            return CheckResult(name, True, _redact(url))
    except OSError as exc:
        return CheckResult(name, False, f"{_redact(url)}: {_short(exc)}")


def _redact(url: str) -> str:
    return masked(url)


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
