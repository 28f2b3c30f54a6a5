"""The webhook figure's baseline: an ASGI endpoint doing one INSERT per request.

Served like ``dunning web`` (uvicorn, one process, the database work in Starlette's thread
pool) on the same database server::

    python -m bench.baseline_web --port 8001
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dunning.store.engine import make_engine

TABLE = """
CREATE TABLE IF NOT EXISTS bench_events (
    id bigserial PRIMARY KEY,
    body json NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""


def make_app(engine: Engine) -> Starlette:
    """``POST /ingest`` stores the body; ``GET /live`` says the server is up."""

    def insert(body: bytes) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_events (body) VALUES (:b)"), {"b": body.decode()})

    async def ingest(request: Request) -> JSONResponse:
        await run_in_threadpool(insert, await request.body())
        return JSONResponse({"result": "accepted"})

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/ingest", ingest, methods=["POST"]),
                             Route("/live", live, methods=["GET"])])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Serve the baseline on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    engine = make_engine(os.environ["DUNNING_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text(TABLE))
    uvicorn.run(make_app(engine), host="127.0.0.1", port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
