"""Stalls of the event loop, logged with where they were (TORREYA_STALL_MS).

One process answers every request on one thread: code that computes for 100 ms without
waiting holds up every request in flight for as long, and no request's own timing says
which code it was. A thread beside the loop posts a callback to it every 10 ms; when one
waits longer than the threshold, the thread samples the loop thread's stack every 5 ms
until the loop runs it, then logs the stall and the stack seen most (how three such
stalls were found at county scale: docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import Counter

log = logging.getLogger("torreya.stalls")

TICK = 0.010  # between the callbacks posted to the loop
SAMPLE = 0.005  # between looks at a stalled loop's stack


class StallWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        self.loop = loop
        self.threshold = threshold
        self.loop_thread = threading.get_ident()  # made on the loop's own thread
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="torreya-stall-watch",
                                       daemon=True)

    def start(self) -> StallWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=1)

    def _watch(self) -> None:
        while not self.stopped.wait(TICK):
            ran = threading.Event()
            posted = time.monotonic()
            try:
                self.loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # the loop is closed
                return
            stacks: Counter[str] = Counter()
            while not ran.wait(SAMPLE):
                if self.stopped.is_set():
                    return
                if time.monotonic() - posted > self.threshold:
                    frame = sys._current_frames().get(self.loop_thread)
                    if frame is not None:
                        stacks["".join(traceback.format_stack(frame, limit=12))] += 1
            waited = time.monotonic() - posted
            if waited > self.threshold:
                where, seen = stacks.most_common(1)[0] if stacks else ("(not seen)", 0)
                log.warning("the event loop was held up %.0f ms; in %d of %d looks it was "
                            "at:\n%s", waited * 1000, seen, sum(stacks.values()),
                            where.rstrip())


def watch(threshold_ms: int) -> StallWatch | None:
    """A watch on the running loop, started; None when `threshold_ms` is 0 (off)."""
    if threshold_ms <= 0:
        return None
    return StallWatch(asyncio.get_running_loop(), threshold_ms / 1000).start()
