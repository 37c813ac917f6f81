"""How long the event loop went without running while something was awaited: what every
other request of the worker waited meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def longest_wait(awaited: Awaitable[T]) -> tuple[T, float]:
    """(what `awaited` gave, the longest the loop went without running, in seconds)."""
    gaps = [0.0]
    done = asyncio.Event()

    async def ticks() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            moment = time.perf_counter()
            gaps.append(moment - last)
            last = moment

    ticking = asyncio.create_task(ticks())
    await asyncio.sleep(0.01)
    try:
        result = await awaited
    finally:
        done.set()
        await ticking
    return result, max(gaps)
