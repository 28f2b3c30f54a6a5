"""What ``DUNNING_ENV=production`` refuses: a deployment that would look safe and is not.

The sandbox gateway "charges" any Luhn-valid number and marks invoices paid with no money
moved, so it and its fault knobs are refused; customers type card numbers on the page under
the public URL, so it must be https; the secrets we choose (the link HMAC key, the ops
password) must be long enough that guessing is hopeless. Each problem names its variable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

MIN_SECRET_CHARS = 32
DEFAULT_SECRET = "dev-insecure-secret-change-me"


def production_problems(s: Settings) -> list[str]:
    """One line per unsafe setting, each naming its variable; empty when all is well."""
    problems = []
    for name, secret in (
        ("DUNNING_LINK_SECRET", s.link_secret.get_secret_value()),
        ("DUNNING_OPS__PASSWORD", s.ops.password.get_secret_value()),
    ):
        if secret in ("", DEFAULT_SECRET):
            problems.append(f"{name}: production needs a real secret, not the default or empty")
        elif len(secret) < MIN_SECRET_CHARS:
            problems.append(
                f"{name}: production needs at least {MIN_SECRET_CHARS} characters "
                "(openssl rand -hex 32)"
            )
    if s.gateway == "sandbox":
        problems.append(
            "DUNNING_GATEWAY: the sandbox moves no money; production needs a real gateway (stripe)"
        )
    elif s.stripe.api_key is None or not s.stripe.api_key.get_secret_value():
        problems.append("DUNNING_STRIPE__API_KEY: the stripe gateway needs its API key")
    if s.sandbox_failure_rate:
        problems.append("DUNNING_SANDBOX_FAILURE_RATE: a fault drill knob; must be 0 in production")
    if s.sandbox_delay_ms:
        problems.append("DUNNING_SANDBOX_DELAY_MS: a fault drill knob; must be 0 in production")
    if not s.public_base_url.lower().startswith("https://"):
        problems.append(
            "DUNNING_PUBLIC_BASE_URL: customers type card numbers under it; production needs "
            "https:// (TLS in front of the web service: docs/operations.md)"
        )
    return problems
