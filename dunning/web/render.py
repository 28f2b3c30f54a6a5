"""HTML pages: jinja2 with autoescape and StrictUndefined, and the headers every page carries."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).with_name("templates")
STRIPE_JS = "https://js.stripe.com"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _policy(nonce: str, stripe: bool) -> str:
    none = "'none'"
    scripts = f"'nonce-{nonce}' {STRIPE_JS}" if stripe else none
    frames = STRIPE_JS if stripe else none
    connect = "https://api.stripe.com" if stripe else none
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

    The link token is in the URL: ``no-referrer`` keeps it out of other sites' logs.
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
            "Content-Security-Policy": _policy(nonce, stripe),
        },
    )
