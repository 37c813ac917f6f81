"""What a worker keeps of its boards (boards/kept.py): read once for every request waiting,
worked out again ahead of running out, and never answered stale past `keep`."""

from __future__ import annotations

import asyncio

import pytest

from torreya.api.households import _BOARD_ANSWERS
from torreya.boards.kept import Kept, Made, forget_all
from torreya.households.service import _BOARDS


class Reads:
    """A board's reading: counts how often it ran, answers the next value, can fail."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.count, self.seconds, self.fail = 0, seconds, False

    async def __call__(self) -> list[int]:
        self.count += 1
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise ConnectionError("database away")
        return [self.count]


async def test_waiting_requests_share_one_reading():
    kept, reads = Kept(), Reads(seconds=0.05)
    answers = await asyncio.gather(*[kept.get("board", 5, reads) for _ in range(50)])
    assert reads.count == 1 and all(a == [1] for a in answers)
    assert await kept.get("board", 5, reads) == [1] and reads.count == 1


async def test_a_board_near_its_end_is_read_again_while_it_is_answered():
    kept, reads, keep = Kept(), Reads(seconds=0.05), 0.5
    assert await kept.get("board", keep, reads) == [1]
    await asyncio.sleep(keep * 0.93)  # past the reading ahead's latest moment
    started = asyncio.get_running_loop().time()
    assert await kept.get("board", keep, reads) == [1]  # answered at once, not waited for
    assert asyncio.get_running_loop().time() - started < 0.04
    await asyncio.sleep(0.1)  # the reading ahead is done
    assert reads.count == 2 and await kept.get("board", keep, reads) == [2]


async def test_a_failed_reading_ahead_keeps_the_board_until_it_runs_out_then_says_why(caplog):
    kept, reads, keep = Kept(), Reads(), 0.3
    await kept.get("board", keep, reads)
    reads.fail = True
    await asyncio.sleep(keep * 0.93)
    assert await kept.get("board", keep, reads) == [1]
    await asyncio.sleep(0.02)
    assert "reading it ahead failed" in caplog.text
    await asyncio.sleep(keep)
    caplog.clear()
    with pytest.raises(ConnectionError):
        await kept.get("board", keep, reads)  # past `keep`: never the old board
    await asyncio.sleep(0.02)
    # the request that waited got the error (its answer says it); not logged again here
    assert "reading it" not in caplog.text


async def test_forget_all_empties_every_store_the_households_boards_too():
    kept, made, reads = Kept(), Made(), Reads()
    for store in (kept, _BOARDS):
        await store.get("board", 5, reads)
    for store in (made, _BOARD_ANSWERS):
        store.of("board", [1], lambda value: b"[1]")
    forget_all()
    assert not kept.fresh("board", 5) and not _BOARDS.fresh("board", 5)
    assert made.of("board", [1], lambda value: b"new") == b"new"
    assert _BOARD_ANSWERS.of("board", [1], lambda value: b"new") == b"new"


async def test_nothing_is_kept_when_keep_is_zero():
    kept, reads = Kept(), Reads()
    assert [await kept.get("board", 0, reads) for _ in range(3)] == [[1], [2], [3]]
    assert not kept.fresh("board", 0)


def test_what_is_made_of_a_value_is_made_again_for_a_new_one():
    made, calls = Made(), []

    def render(value):
        calls.append(value)
        return str(value).encode()

    first, second = [1], [1]  # equal, but a new reading
    assert made.of("k", first, render) == b"[1]" and made.of("k", first, render) == b"[1]"
    assert made.of("k", second, render) == b"[1]"
    assert len(calls) == 2
