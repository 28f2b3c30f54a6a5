"""Headers every answer of the web service carries.

When the public URL is https (TLS ends at the proxy in front of this process), every answer
says ``Strict-Transport-Security``: a browser that has seen it once never again sends a card
number, or follows a card-update link, over plain HTTP to this host.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """ASGI middleware adding HSTS to every HTTP answer when ``https`` is true."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.https:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HSTS[0]]
                message = {**message, "headers": [*headers, HSTS]}
            await send(message)

        await self.app(scope, receive, with_headers)
