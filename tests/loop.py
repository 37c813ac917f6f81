"""Whether the event loop was held up while something was awaited (what every other request
of the worker waited meanwhile), read by the product's own stall watch (ops/stalls.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from torreya.ops import stalls

T = TypeVar("T")


async def stalls_during(awaited: Awaitable[T], threshold: float,
                        caplog: pytest.LogCaptureFixture) -> tuple[T, list[str]]:
    """(what `awaited` gave, the stalls over `threshold` seconds logged meanwhile, each with
    the stack the loop was seen at)."""
    caplog.set_level(logging.WARNING, logger=stalls.log.name)
    before = len(caplog.records)
    watch = stalls.watch(max(1, int(threshold * 1000)))
    try:
        result = await awaited
    finally:
        watch.stop()
    return result, [r.getMessage() for r in caplog.records[before:]
                    if r.name == stalls.log.name]
