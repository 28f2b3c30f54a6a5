"""The ASGI app of ``dunning web``: webhooks, the card-update page, health, metrics and /ops."""

from __future__ import annotations

from starlette.applications import Starlette

from dunning.bootstrap import Container
from dunning.web import health, update_page, webhooks
from dunning.web.headers import SecurityHeaders
from dunning.web.ops import ops_routes
from dunning.web.ops_api import api_routes
from dunning.web.ops_invoice import invoice_routes
from dunning.web.ops_throttle import LoginThrottle
from dunning.web.ratelimit import AttemptLimits, counters_for


def create_app(container: Container, *, limits: AttemptLimits | None = None) -> Starlette:
    """Build the app around ``container``; nothing connects until a request needs it.

    ``limits`` replaces the verification-attempt limits the settings make (``DUNNING_WEB__*``:
    5 per customer and 20 per client address in 10 minutes, counted in Redis when there is one).
    Failed /ops logins are counted in the same place.
    """
    app = Starlette(
        routes=[
            *webhooks.routes(container),
            *update_page.routes(
                container, limits or AttemptLimits.from_settings(container.settings)
            ),
            *health.routes(container),
            *ops_routes(container),
            *api_routes(container),
            *invoice_routes(container),
        ]
    )
    ops = container.settings.ops
    app.add_middleware(
        LoginThrottle,
        limit=ops.login_failures,
        window_s=ops.login_window_s,
        clock=container.clock.now,
        counters=counters_for(container.settings),
        proxies=container.settings.web.proxy_networks(),
    )
    app.add_middleware(SecurityHeaders, https=_https(container))
    app.state.container = container
    return app


def _https(c: Container) -> bool:
    return c.settings.public_base_url.lower().startswith("https://")
