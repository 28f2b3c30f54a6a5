"""Handing work from worker threads to one consumer on the SMTP event loop, and the answer back.

``asyncio.run_coroutine_threadsafe`` answers through a ``concurrent.futures.Future``: a
condition variable, callbacks chained between two futures, and a lock notified per message.
A task per message, made by a callback the thread schedules, costs the loop about as much
again. A :class:`Lane` keeps one consumer task on the loop that takes the handed items in
order, one at a time; a thread wakes it only when it has run dry. A :class:`Reply` is a plain
lock the asking thread waits on and the consumer releases once the answer is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class NoReply(Exception):
    """No answer came within the wait."""


class Reply(Generic[R]):
    """One answer: a value or an error, set once by the loop, waited for by one thread."""

    __slots__ = ("_done", "_error", "_value", "abandoned")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._value: R | None = None
        self._error: BaseException | None = None
        self.abandoned = False

    def resolve(self, value: R) -> None:
        self._value = value
        self._done.release()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.release()

    def wait(self, timeout_s: float) -> R:
        """The value, or the error raised; :class:`NoReply` when none came in time."""
        if not self._done.acquire(timeout=timeout_s):
            raise NoReply
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class Lane(Generic[T, R]):
    """Items handed over by threads, handled by ``handle`` on ``loop`` one at a time in order.

    ``refuse`` is asked before each item starts: an error it returns (the transport closed
    meanwhile) answers that item at once. An item whose thread gave up (:meth:`abandon`) is
    skipped, or cancelled when under way; cancelling the consumer task (the transport
    closing) answers the item under way and every waiting one with ``refuse()``'s error or
    :class:`CancelledError`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[T], Coroutine[Any, Any, R]],
        refuse: Callable[[], BaseException | None],
    ) -> None:
        self._loop = loop
        self._handle = handle
        self._refuse = refuse
        self._lock = threading.Lock()
        self._items: deque[tuple[T, Reply[R]]] = deque()
        self._draining = False  # a consumer is scheduled or running (under _lock)
        self._current: Reply[R] | None = None  # the item under way (loop only)
        self._task: asyncio.Task[None] | None = None

    def submit(self, item: T) -> Reply[R]:
        """Queue ``item``; its answer comes to the returned reply."""
        reply: Reply[R] = Reply()
        with self._lock:
            self._items.append((item, reply))
            start, self._draining = not self._draining, True
        if start:
            self._loop.call_soon_threadsafe(self._start)
        return reply

    def abandon(self, reply: Reply[R]) -> None:
        """The asking thread gave up: skip its item, or cancel it if it is under way."""

        def cancel() -> None:
            reply.abandoned = True
            if self._current is reply and self._task is not None:
                self._task.cancel()

        try:
            self._loop.call_soon_threadsafe(cancel)
        except RuntimeError:  # the loop is closed: nothing runs on it any more
            pass

    def _start(self) -> None:
        self._task = self._loop.create_task(self._drain())

    def _next(self) -> tuple[T, Reply[R]] | None:
        with self._lock:
            if self._items:
                return self._items.popleft()
            self._draining = False
            return None

    async def _drain(self) -> None:
        closing = False
        try:
            while (taken := self._next()) is not None:
                closing = await self._one(*taken, closing=closing)
        except BaseException:
            # Cancelled before its first step, or stopped by an error no reply may keep:
            # whatever is still queued is answered, and the next item starts a new consumer.
            while (taken := self._next()) is not None:
                taken[1].fail(self._refuse() or asyncio.CancelledError())
            raise

    async def _one(self, item: T, reply: Reply[R], *, closing: bool) -> bool:
        """Handle one item; True once the consumer itself has been cancelled."""
        refused = self._refuse()
        if closing or refused is not None or reply.abandoned:
            reply.fail(refused or asyncio.CancelledError())
            return closing
        self._current = reply
        try:
            reply.resolve(await self._handle(item))
        except asyncio.CancelledError:
            reply.fail(self._refuse() or asyncio.CancelledError())
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # answered here; the items after it are still owed one
            return not reply.abandoned
        except Exception as exc:  # handed to the asking thread, which raises it
            reply.fail(exc)
        except BaseException as exc:
            reply.fail(exc)
            raise
        finally:
            self._current = None
        return False
