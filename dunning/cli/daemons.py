"""The daemons: ``run`` (everything in one process), ``worker``, ``scheduler``, ``web``."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import typer

from dunning.broker_names import QUEUES, BrokerNames
from dunning.cli.common import console, container
from dunning.logs import configure_logging


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_cmd(
        processes: int = typer.Option(2, "--processes", "-p", min=1),
        threads: int = typer.Option(8, "--threads", "-t", min=1),
        queues: str = typer.Option(
            " ".join(QUEUES), "--queues", "-Q", help="Space-separated queues."
        ),
        shutdown_timeout_s: int = typer.Option(30, "--shutdown-timeout-s", min=1),
    ) -> None:
        """Run dramatiq worker processes for the pipeline's actors (needs a Redis/AMQP broker)."""
        c = container()
        if c.settings.broker_url.startswith("stub://"):
            console.print(
                "[red]dunning worker needs DUNNING_BROKER_URL=redis://… or amqp://…; "
                "use 'dunning run' for the embedded default[/]"
            )
            raise typer.Exit(2)
        unknown = sorted(set(queues.split()) - set(QUEUES))
        if unknown:
            console.print(
                f"[red]unknown queue(s) {', '.join(unknown)}; queues: {' '.join(QUEUES)}[/]"
            )
            raise typer.Exit(2)
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
        args = [
            sys.executable,
            "-m",
            "dramatiq",
            "workers.main",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--worker-shutdown-timeout",
            str(shutdown_timeout_s * 1000),
            "--skip-logging",
            "--queues",
            *(names.queue(q) for q in queues.split()),
        ]
        os.execvpe(sys.executable, args, env)

    @app.command("scheduler")
    def scheduler_cmd() -> None:
        """Run the producers on their schedules; one instance is active, others stand by."""
        from schedules.daemon import serve
        from schedules.leader import leadership_for
        from workers.broker import setup

        c = container()
        configure_logging(c.settings)
        setup(c)
        leader = leadership_for(
            c.settings.database_url, c.engine, ttl_s=c.settings.timing.leader_ttl_s
        )
        serve(c, leader, _stop_on_signals())

    @app.command("web")
    def web_cmd(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8000, "--port", min=1, max=65535),
    ) -> None:
        """Serve the webhooks, the card-update page, health, metrics and /ops."""
        import uvicorn

        from dunning.web.app import create_app
        from workers.broker import setup

        c = container()
        configure_logging(c.settings)
        setup(c)
        uvicorn.run(create_app(c), host=host, port=port, log_config=None)

    @app.command("run")
    def run_cmd(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8000, "--port", min=1, max=65535),
        threads: int = typer.Option(4, "--threads", min=1),
    ) -> None:
        """Scheduler, workers and web in one process on the embedded default."""
        from dunning.embedded import run_embedded

        c = container()
        configure_logging(c.settings)
        run_embedded(c, host=host, port=port, threads=threads)
