"""The container the actors of this process use, set once at worker start-up, and closed
when the worker shuts down (the SMTP connection says QUIT, the database pool is emptied)."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from dunning.bootstrap import Container

_container: Container | None = None


def set_container(container: Container) -> None:
    global _container
    _container = container


def get() -> Container:
    if _container is None:
        raise RuntimeError(
            "no container: start workers through 'dunning worker' or workers.broker.setup()"
        )
    return _container


class CloseOnShutdown(Middleware):
    """Closes the process's container after its worker has stopped."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if _container is not None:
            _container.close()
