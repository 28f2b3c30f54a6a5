"""Worker threads hand items to one consumer on an event loop and get each value or error back,
in order; an item its thread gave up on is cancelled and the next ones still run; cancelling
the consumer answers every item; a refusal answers at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dunning.mail.handoff import Lane, NoReply


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


def lane(
    loop: asyncio.AbstractEventLoop,
    handle: Callable[[Any], Coroutine[Any, Any, Any]],
    refuse: Callable[[], BaseException | None] = lambda: None,
) -> Lane[Any, Any]:
    return Lane(loop, handle, refuse)


def test_the_value_and_the_error_come_back(loop: asyncio.AbstractEventLoop) -> None:
    async def handle(item: int) -> int:
        await asyncio.sleep(0)
        if item < 0:
            raise ValueError("bad address")
        return item * 2

    ahead = lane(loop, handle)
    assert ahead.submit(7).wait(5) == 14
    with pytest.raises(ValueError, match="bad address"):
        ahead.submit(-1).wait(5)
    assert ahead.submit(8).wait(5) == 16  # the consumer goes on after an error


def test_items_from_many_threads_run_one_at_a_time_in_the_order_handed_over(
    loop: asyncio.AbstractEventLoop,
) -> None:
    running, most, seen = 0, 0, []

    async def handle(item: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        seen.append(item)
        running -= 1
        return item

    ahead = lane(loop, handle)
    replies = [ahead.submit(n) for n in range(20)]
    assert [r.wait(5) for r in replies] == list(range(20))
    assert seen == list(range(20))
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda n: ahead.submit(n).wait(5), range(200)))
    assert got == list(range(200))
    assert most == 1


def test_an_item_the_thread_gave_up_on_is_cancelled_and_the_next_one_runs(
    loop: asyncio.AbstractEventLoop,
) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def handle(item: str) -> str:
        if item == "stuck":
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        if item == "times out":
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        await asyncio.sleep(0)
        return item

    ahead = lane(loop, handle)
    reply = ahead.submit("stuck")
    waiting = ahead.submit("next")
    assert started.wait(5)
    with pytest.raises(NoReply):
        reply.wait(0.05)
    ahead.abandon(reply)
    assert cancelled.wait(5)
    assert waiting.wait(5) == "next"
    # the cancellation was answered, not left on the consumer: a timeout still works after it
    with pytest.raises(TimeoutError):
        ahead.submit("times out").wait(5)


def test_a_waiting_item_the_thread_gave_up_on_never_runs(
    loop: asyncio.AbstractEventLoop,
) -> None:
    gate, ran = threading.Event(), []

    async def handle(item: str) -> str:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        ran.append(item)
        return item

    ahead = lane(loop, handle)
    first, second = ahead.submit("first"), ahead.submit("second")
    ahead.abandon(second)
    gate.set()
    assert first.wait(5) == "first"
    with pytest.raises(asyncio.CancelledError):
        second.wait(5)
    assert ran == ["first"]


def test_cancelling_the_consumer_answers_the_item_under_way_and_every_waiting_one(
    loop: asyncio.AbstractEventLoop,
) -> None:
    closed = threading.Event()
    started = threading.Event()

    async def handle(item: str) -> str:
        started.set()
        await asyncio.Event().wait()
        return item

    ahead = lane(loop, handle, lambda: RuntimeError("closed") if closed.is_set() else None)
    replies = [ahead.submit(f"m{n}") for n in range(3)]
    assert started.wait(5)
    closed.set()

    async def cancel_all() -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(5)
    for reply in replies:
        with pytest.raises(RuntimeError, match="closed"):
            reply.wait(5)


def test_a_refusal_answers_at_once_without_running_the_item(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[int] = []

    async def handle(item: int) -> int:
        ran.append(item)
        return item

    ahead = lane(loop, handle, lambda: RuntimeError("the transport is closed"))
    with pytest.raises(RuntimeError, match="closed"):
        ahead.submit(1).wait(5)
    assert ran == []
