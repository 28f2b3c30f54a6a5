"""``dunning run``: scheduler, workers and web in one process (SQLite, stub broker, .eml files)."""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq
import uvicorn

from dunning.bootstrap import Container
from dunning.store.migrate import upgrade
from dunning.urls import masked

log = logging.getLogger(__name__)


def run_embedded(c: Container, *, host: str, port: int, threads: int) -> None:
    """Run until SIGINT or SIGTERM; then stop the web server, the scheduler and the workers."""
    from dunning.web.app import create_app
    from dunning.web.metrics import serve_internal
    from schedules.daemon import serve
    from schedules.leader import LocalLeadership
    from workers.broker import make_broker, setup

    upgrade(c.engine)
    broker = setup(c, make_broker("stub://"))
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.start()
    serve_internal(c)  # /metrics on DUNNING_OPS__METRICS_PORT, if set
    stop = threading.Event()
    scheduler = threading.Thread(
        target=serve, args=(c, LocalLeadership(), stop), name="scheduler", daemon=True
    )
    scheduler.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(c), host=host, port=port, log_config=None, proxy_headers=False)
    )

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()
        server.should_exit = True

    # uvicorn re-raises the signal it caught once it has shut down; with these handlers in
    # place that re-raise stops the rest too instead of killing the process mid-cleanup.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    log.info(
        "dunning is running on http://%s:%d (database %s, outbox %s)",
        host,
        port,
        masked(c.settings.database_url),
        c.settings.outbox_dir,
    )
    try:
        server.run()  # returns on SIGINT/SIGTERM (uvicorn installs the handlers)
    finally:
        stop.set()
        scheduler.join(timeout=30)
        worker.stop()
        broker.close()
        c.close()
        log.info("dunning stopped")
