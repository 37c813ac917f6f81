"""What a worker keeps of the boards it worked out lately: a board is read far more often
than it changes much (a meeting-room screen, every resident who has just checked in).

`Kept` holds values for `keep` seconds (BOARD_CACHE_SECONDS). A value is read once for all
the requests waiting on it, and one past REFRESH_AHEAD of `keep` (at a random moment
between that and 0.92 of it) is worked out again in the background while it is still
answered, so that under steady reading no request
waits for a board's query (a miss had put 300 ms on the 99th percentile of board requests,
docs/benchmarks.md). After a quiet spell the first request reads it itself.

`Made` keeps what is made of a kept value (its rows in a language, an API answer), by the
value's identity: a new value makes them again.

`forget_all()` empties every store of both kinds (a new database: tests, a new app).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger("torreya.boards")

REFRESH_AHEAD = 0.6
SIZE = 1024  # values kept per store; all are forgotten when it is full
_STORES: weakref.WeakSet[Kept | Made] = weakref.WeakSet()


def forget_all() -> None:
    """Empty every store (a new database: nothing kept is valid)."""
    for store in list(_STORES):
        store.clear()


class Kept:
    def __init__(self) -> None:
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._pending: dict[Hashable, asyncio.Task] = {}
        _STORES.add(self)

    def fresh(self, key: Hashable, keep: float) -> bool:
        made = self._values.get(key)
        return keep > 0 and made is not None and time.monotonic() - made[0] < keep

    async def get(self, key: Hashable, keep: float, work: Callable[[], Awaitable[Any]]) -> Any:
        """The value for `key`, kept or worked out by `work()` (every time when `keep` is 0)."""
        if keep <= 0:
            return await work()
        made = self._values.get(key)
        age = time.monotonic() - made[0] if made is not None else None
        if age is not None and age < keep:
            # each reading ahead at its own moment: boards first read together (a town's
            # 300 villages after a restart) are not all read again in one burst, which had
            # held every request up behind 300 readings (p99 235 ms)
            if age >= keep * (REFRESH_AHEAD + random.random() * (1 - REFRESH_AHEAD) * 0.8) \
                    and key not in self._pending:
                self._start(key, work, ahead=True)
            return made[1]
        if key not in self._pending:
            self._start(key, work, ahead=False)
        return await asyncio.shield(self._pending[key])

    def _start(self, key: Hashable, work: Callable[[], Awaitable[Any]], *, ahead: bool
               ) -> None:
        async def run() -> Any:
            value = await work()
            if len(self._values) >= SIZE:
                self._values.clear()
            self._values[key] = (time.monotonic(), value)
            return value

        task = asyncio.create_task(run())
        self._pending[key] = task

        def settled(done: asyncio.Task) -> None:
            if self._pending.get(key) is done:
                del self._pending[key]
            if ahead and not done.cancelled() and done.exception() is not None:
                # A reading ahead failed (the database away): the kept value is answered
                # until it runs out, then the next request reads it itself and answers the
                # error. A reading requests wait on gives them its error, and their answer
                # says it: not logged twice here.
                log.warning("board %s: reading it ahead failed, the kept one is answered "
                            "until it runs out: %r", key, done.exception())

        task.add_done_callback(settled)

    def clear(self) -> None:
        self._values.clear()
        self._pending.clear()


class Made:
    def __init__(self) -> None:
        self._made: dict[Hashable, tuple[Any, Any]] = {}
        _STORES.add(self)

    def of(self, key: Hashable, value: Any, make: Callable[[Any], Any]) -> Any:
        """`make(value)`, kept under `key` while `value` (the same object) is current."""
        made = self._made.get(key)
        if made is not None and made[0] is value:
            return made[1]
        result = make(value)
        if len(self._made) >= SIZE:
            self._made.clear()
        self._made[key] = (value, result)
        return result

    def clear(self) -> None:
        self._made.clear()
