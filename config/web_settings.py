"""Settings of the public web process: which proxies may vouch for a client's address, where
rate-limit counts are shared, the card page's limits and how much of a form it reads."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, field_validator


class WebSettings(BaseModel):
    # Addresses or CIDRs of the reverse proxies / load balancers in front of ``dunning web``. Only
    # a request from one of them has its X-Forwarded-For believed; from anyone else the header
    # is ignored and the connection's address is the client's. Comma-separated.
    trusted_proxies: str = ""
    # Where the rate-limit counts live, shared by every web process. Unset: the broker when it
    # is Redis; with neither, each process counts in its own memory.
    limits_redis_url: str | None = None
    card_attempts_per_customer: int = Field(default=5, gt=0)
    card_attempts_per_address: int = Field(default=20, gt=0)
    card_attempts_window_s: int = Field(default=600, gt=0)
    # The card form is a few hundred bytes; anything larger is refused (413) unread.
    max_form_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # A form body not in within this many seconds is refused (408).
    form_read_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in _items(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("limits_redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value or None

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The trusted proxies as networks (a single address is a /32 or /128)."""
        return [ipaddress.ip_network(item, strict=False) for item in _items(self.trusted_proxies)]


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
