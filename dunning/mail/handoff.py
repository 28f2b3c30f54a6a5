"""Handing work from a worker thread to the SMTP event loop and the answer back.

``asyncio.run_coroutine_threadsafe`` answers through a ``concurrent.futures.Future``: a
condition variable, callbacks chained between two futures, and a lock notified per message.
The outbox hands over thousands of messages a second, one at a time, and that machinery cost
the loop thread about a tenth of its time. A :class:`Reply` is a plain lock the asking thread
waits on and the loop releases once the answer is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class NoReply(Exception):
    """No answer came within the wait."""


class Reply(Generic[T]):
    """One answer: a value or an error, set once by the loop, waited for by one thread."""

    __slots__ = ("_done", "_error", "_value", "abandoned", "task")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._value: T | None = None
        self._error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.abandoned = False

    def resolve(self, value: T) -> None:
        self._value = value
        self._done.release()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.release()

    def wait(self, timeout_s: float) -> T:
        """The value, or the error raised; :class:`NoReply` when none came in time."""
        if not self._done.acquire(timeout=timeout_s):
            raise NoReply
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def submit(
    loop: asyncio.AbstractEventLoop,
    work: Callable[[], Coroutine[Any, Any, T]],
    refuse: Callable[[], BaseException | None],
) -> Reply[T]:
    """Run ``work()`` as a task on ``loop``; its result or error goes to the returned reply.

    ``refuse`` is asked on the loop before the task starts: an error it returns (the
    transport closed meanwhile) answers at once. A task cancelled (the transport closing, or
    the asking thread giving up) answers with ``refuse()``'s error or :class:`CancelledError`.
    """
    reply: Reply[T] = Reply()

    async def run() -> None:
        try:
            reply.resolve(await work())
        except asyncio.CancelledError:
            reply.fail(refuse() or asyncio.CancelledError())
        except Exception as exc:  # handed to the asking thread, which raises it
            reply.fail(exc)
        except BaseException as exc:
            reply.fail(exc)
            raise

    def begin() -> None:
        refused = refuse()
        if refused is not None or reply.abandoned:
            reply.fail(refused or asyncio.CancelledError())
            return
        reply.task = loop.create_task(run())

    loop.call_soon_threadsafe(begin)
    return reply


def abandon(loop: asyncio.AbstractEventLoop, reply: Reply[Any]) -> None:
    """The asking thread gave up: cancel the work (it may have begun) on the loop."""

    def cancel() -> None:
        reply.abandoned = True
        if reply.task is not None:
            reply.task.cancel()

    try:
        loop.call_soon_threadsafe(cancel)
    except RuntimeError:  # the loop is closed: nothing runs on it any more
        pass
