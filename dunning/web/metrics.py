"""``GET /metrics``: the Prometheus gauges and counters of the web process.

They tell revenue per currency and how the pipeline fares, so the public port serves them only
behind the ops login. A scraper that should not hold that login scrapes the internal metrics
port instead (``DUNNING_OPS__METRICS_PORT`` on ``DUNNING_OPS__METRICS_HOST``, an address the
public does not reach), which serves ``/metrics`` and nothing else, without credentials. The
query-backed gauges are read at most every ``gauges.READ_MIN_INTERVAL_S`` whatever the scrape
rate (:mod:`dunning.ops.gauges`).
"""

from __future__ import annotations

import logging
import threading

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.bootstrap import Container
from dunning.web.ops import refresh_gauges
from dunning.web.ops_auth import authorized, challenge

log = logging.getLogger(__name__)


async def _render(c: Container) -> Response:
    await run_in_threadpool(refresh_gauges, c)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def routes(c: Container) -> list[Route]:
    """``/metrics`` on the public port: behind the ops login."""

    async def metrics(request: Request) -> Response:
        if not authorized(c, request.headers.get("authorization")):
            return challenge()
        return await _render(c)

    return [Route("/metrics", metrics, methods=["GET"])]


def internal_app(c: Container) -> Starlette:
    """The app of the internal metrics port: ``/metrics`` without credentials, nothing else."""

    async def metrics(request: Request) -> Response:
        return await _render(c)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])


def serve_internal(c: Container) -> threading.Thread | None:
    """Listen on the internal metrics port, if one is set, in a thread of this process.

    The port is bound here, before the public one: a port that is taken stops start-up.
    """
    ops = c.settings.ops
    if not ops.metrics_port:
        return None
    config = uvicorn.Config(
        internal_app(c),
        host=ops.metrics_host,
        port=ops.metrics_port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    sockets = [config.bind_socket()]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": sockets}, name="metrics", daemon=True
    )
    thread.start()
    log.info("metrics on http://%s:%d/metrics", ops.metrics_host, ops.metrics_port)
    return thread
