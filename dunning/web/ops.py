"""The operators' routes: ``/ops`` (HTTP Basic) and the pipeline gauges behind ``/metrics``."""

from __future__ import annotations

from typing import Any

from dunning.bootstrap import Container


def ops_routes(container: Container) -> list[Any]:
    """Starlette routes for the ops view (filled in by the operations work)."""
    return []


def refresh_gauges(container: Container) -> None:
    """Update the queue-depth, funnel and lag gauges before ``/metrics`` is rendered."""
    return None
