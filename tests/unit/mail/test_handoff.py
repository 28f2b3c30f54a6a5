"""A worker thread hands work to an event loop and gets its value or error back; work the
thread gave up on is cancelled; a refusal answers at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from dunning.mail.handoff import NoReply, abandon, submit


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_the_value_and_the_error_come_back(loop: asyncio.AbstractEventLoop) -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    async def error() -> int:
        raise ValueError("bad address")

    assert submit(loop, value, lambda: None).wait(5) == 7
    with pytest.raises(ValueError, match="bad address"):
        submit(loop, error, lambda: None).wait(5)


def test_work_the_thread_gave_up_on_is_cancelled(loop: asyncio.AbstractEventLoop) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    reply = submit(loop, forever, lambda: None)
    assert started.wait(5)
    with pytest.raises(NoReply):
        reply.wait(0.05)
    abandon(loop, reply)
    assert cancelled.wait(5)


def test_a_refusal_answers_at_once_without_running_the_work(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[int] = []

    async def work() -> int:
        ran.append(1)
        return 1

    with pytest.raises(RuntimeError, match="closed"):
        submit(loop, work, lambda: RuntimeError("the transport is closed")).wait(5)
    assert ran == []
