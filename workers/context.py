"""The container the actors of this process use, set once at worker start-up."""

from __future__ import annotations

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
