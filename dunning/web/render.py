"""HTML pages: jinja2 with autoescape and StrictUndefined, and the headers every page carries."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).with_name("templates")
STRIPE_API = "https://api.stripe.com"
# Where Stripe.js shows a bank's 3-D Secure challenge.
STRIPE_HOOKS = "https://hooks.stripe.com"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _policy(nonce: str, stripe_js: str | None) -> str:
    """The page's CSP; ``stripe_js``: the origin Stripe.js comes from, on pages that load it."""
    none = "'none'"
    scripts = f"'nonce-{nonce}' {stripe_js}" if stripe_js else none
    frames = f"{stripe_js} {STRIPE_HOOKS}" if stripe_js else none
    connect = f"{STRIPE_API} {stripe_js}" if stripe_js else none
    return (
        "default-src 'none'; "
        "style-src 'unsafe-inline'; "
        f"script-src {scripts}; "
        f"frame-src {frames}; "
        f"connect-src {connect}; "
        "img-src 'self' data:; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def page(template: str, status: int = 200, *, stripe: bool = False, **context: Any) -> HTMLResponse:
    """Render ``template`` into a response that is never cached, framed or referred from.

    The link token is in the URL: ``no-referrer`` keeps it out of other sites' logs. A
    ``stripe`` page loads Stripe.js from ``js_url`` (in ``context``), which the CSP allows.
    """
    nonce = secrets.token_urlsafe(12)
    html = environment().get_template(template).render(nonce=nonce, stripe=stripe, **context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": _policy(
                nonce, origin(context["js_url"]) if stripe else None
            ),
        },
    )
