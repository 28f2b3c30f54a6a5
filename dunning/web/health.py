"""``GET /healthz`` (readiness), ``GET /healthz/live`` (liveness) and ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.health import run_checks
from dunning.web.ops import refresh_gauges


def routes(c: Container) -> list[Route]:
    """The health and metrics routes; the checks and gauges run in the threadpool."""

    async def ready(request: Request) -> Response:
        checks = await run_in_threadpool(run_checks, c)
        ok = all(check.ok for check in checks)
        return JSONResponse(
            {
                "status": "ok" if ok else "failing",
                "checks": {
                    check.name: {"ok": check.ok, "detail": check.detail} for check in checks
                },
            },
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def metrics(request: Request) -> Response:
        await run_in_threadpool(refresh_gauges, c)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", ready, methods=["GET"]),
        Route("/healthz/live", live, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
