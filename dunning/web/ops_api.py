"""``/ops/api``: a customer's or an invoice's dunning state as JSON, read-only, behind the ops
credentials (HTTP Basic), for the merchant's application to show an in-app banner.

``GET /ops/api/customers/{id}`` and ``GET /ops/api/invoices/{id}``; an unknown id is a 404
whose body names it. The fields are described in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.errors import NotFound
from dunning.ops.state import customer_state, invoice_state
from dunning.web.ops_auth import authorized, challenge

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_MAX_ID = 200
Reader = Callable[[Any, Any, str, datetime], dict[str, Any]]


def _read(c: Container, reader: Reader, key: str) -> dict[str, Any]:
    with c.engine.connect() as conn:
        return reader(conn, c.policy, key, c.clock.now())


def api_routes(container: Container) -> list[Route]:
    """The two read-only routes."""
    c = container

    def endpoint(reader: Reader, param: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            if not authorized(c, request.headers.get("authorization")):
                return challenge()
            key = request.path_params[param]
            if len(key) > _MAX_ID:
                return JSONResponse({"error": f"{param} is too long"}, 400, headers=HEADERS)
            try:
                body = await run_in_threadpool(_read, c, reader, key)
            except NotFound as exc:
                return JSONResponse({"error": str(exc)}, 404, headers=HEADERS)
            return JSONResponse(body, headers=HEADERS)

        return handle

    return [
        Route("/ops/api/customers/{customer_id}", endpoint(customer_state, "customer_id")),
        Route("/ops/api/invoices/{invoice_id}", endpoint(invoice_state, "invoice_id")),
    ]
