"""Settings of the operators' surfaces: the ``/ops`` login and the internal metrics port of
``dunning web``; which internal networks merchant webhook endpoints may point at."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from pydantic import BaseModel, Field, SecretStr

from config.production import DEFAULT_SECRET


class OpsSettings(BaseModel):
    username: str = "ops"
    password: SecretStr = SecretStr(DEFAULT_SECRET)
    # dunning web serves /metrics without credentials on this port only (bound to metrics_host,
    # an address the public does not reach). 0: no such port; /metrics then needs the login.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Failed ops logins allowed per client address within login_window_s; past them every
    # login from that address gets 429 until the oldest failure leaves the window.
    login_failures: int = Field(default=10, gt=0)
    login_window_s: int = Field(default=900, gt=0)


class EndpointSettings(BaseModel):
    # Networks merchant webhook endpoints may point at although they are internal (loopback,
    # private, link-local...), a JSON list of CIDRs: ["10.20.0.0/16"]. Empty: none.
    allow_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
