"""The daemons: ``run`` (everything in one process), ``worker``, ``scheduler``, ``web``.

``worker``, ``scheduler`` and ``web`` start only on a database with the newest schema (exit code
2 and one line saying ``run `dunning db upgrade``` otherwise); ``run`` migrates the embedded
database itself.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import typer

from dunning.broker_names import QUEUES, BrokerNames
from dunning.cli.common import EXIT_USAGE, container, err_console, is_default_database, ready
from dunning.logs import configure_logging
from dunning.store.readiness import create_sqlite_folder, require_reachable


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _refuse(message: str) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_cmd)
    app.command("scheduler")(scheduler_cmd)
    app.command("web")(web_cmd)
    app.command("run")(run_cmd)


def worker_cmd(
    processes: int = typer.Option(2, "--processes", "-p", min=1),
    threads: int = typer.Option(8, "--threads", "-t", min=1),
    queues: str = typer.Option(" ".join(QUEUES), "--queues", "-Q", help="Space-separated queues."),
    shutdown_timeout_s: int = typer.Option(30, "--shutdown-timeout-s", min=1),
) -> None:
    """Run dramatiq worker processes for the pipeline's actors (needs a Redis/AMQP broker)."""
    c = container()
    if c.settings.broker_url.startswith("stub://"):
        raise _refuse(
            "dunning worker needs DUNNING_BROKER_URL=redis://… or amqp://…; "
            "use 'dunning run' for the embedded default"
        )
    unknown = sorted(set(queues.split()) - set(QUEUES))
    if unknown:
        raise _refuse(f"unknown queue(s) {', '.join(unknown)}; queues: {' '.join(QUEUES)}")
    ready(c).close()
    names = BrokerNames.for_settings(c.settings)
    prom_dir = Path(tempfile.gettempdir()) / f"dunning-prometheus-{os.getpid()}"
    prom_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "dramatiq_prom_db": str(prom_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
            "dramatiq_prom_port": str(c.settings.metrics_port),
        }
    )
    args = [sys.executable, "-m", "dramatiq", "workers.main"]
    args += ["--processes", str(processes), "--threads", str(threads)]
    args += ["--worker-shutdown-timeout", str(shutdown_timeout_s * 1000), "--skip-logging"]
    args += ["--queues", *(names.queue(q) for q in queues.split())]
    os.execvpe(sys.executable, args, env)


def scheduler_cmd() -> None:
    """Run the producers on their schedules; one instance is active, others stand by."""
    from schedules.daemon import serve
    from schedules.leader import leadership_for
    from workers.broker import setup

    c = ready(container())
    configure_logging(c.settings)
    setup(c)
    leader = leadership_for(c.settings.database_url, c.engine, ttl_s=c.settings.timing.leader_ttl_s)
    serve(c, leader, _stop_on_signals())


def web_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
) -> None:
    """Serve the webhooks, the card-update page, health, metrics and /ops."""
    import uvicorn

    from dunning.web.app import create_app
    from dunning.web.metrics import serve_internal
    from workers.broker import setup

    c = ready(container())
    configure_logging(c.settings)
    serve_internal(c)  # /metrics on DUNNING_OPS__METRICS_PORT, if set
    setup(c)
    # proxy_headers off: the app reads X-Forwarded-For itself, from the trusted proxies only.
    uvicorn.run(create_app(c), host=host, port=port, log_config=None, proxy_headers=False)


def run_cmd(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    threads: int = typer.Option(4, "--threads", min=1),
) -> None:
    """Scheduler, workers and web in one process on the embedded default (migrates it)."""
    from dunning.embedded import run_embedded

    c = container()
    configure_logging(c.settings)
    if is_default_database(c):
        create_sqlite_folder(c.engine.url)
    require_reachable(c.engine)
    run_embedded(c, host=host, port=port, threads=threads)
