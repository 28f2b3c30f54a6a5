"""``GET /healthz`` (readiness), ``GET /healthz/live`` (liveness) and ``GET /metrics``.

The public answer of ``/healthz`` says only whether each dependency is ok: its details name
hosts, users, database names and paths, so they are shown with the ops login only.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.health import run_checks
from dunning.web import metrics
from dunning.web.ops_auth import authorized, challenge


def routes(c: Container) -> list[Route]:
    """The health and metrics routes; the checks and gauges run in the threadpool."""

    async def ready(request: Request) -> Response:
        header = request.headers.get("authorization")
        detailed = authorized(c, header)
        if header and not detailed:
            return challenge()  # a failed login (counted by the login throttle)
        checks = await run_in_threadpool(run_checks, c)
        ok = all(check.ok for check in checks)
        shown: dict[str, Any] = {
            check.name: {"ok": check.ok, "detail": check.detail} if detailed else {"ok": check.ok}
            for check in checks
        }
        return JSONResponse(
            {"status": "ok" if ok else "failing", "checks": shown},
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    return [
        Route("/healthz", ready, methods=["GET"]),
        Route("/healthz/live", live, methods=["GET"]),
        *metrics.routes(c),
    ]
