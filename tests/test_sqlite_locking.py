"""Two processes writing one SQLite file (`torreya serve --workers 2`, or `torreya worker`
beside the server): a transaction that reads, then writes, must wait its turn rather than
fail because the other process committed in between (torreya/sqlite_backend.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from tortoise.transactions import in_transaction

from tests.conftest import BACKEND
from tests.factories import make_user, make_village
from torreya.models import User

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's locking between processes")


async def test_a_read_then_write_transaction_waits_for_the_other_process(app, settings):
    village = await make_village()
    resident = await make_user(village=village)
    started, committed = threading.Event(), threading.Event()

    def other_process() -> None:  # another worker raising the same resident's balance
        db = sqlite3.connect(settings.sqlite_path, isolation_level=None, timeout=5)
        started.set()
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE users SET balance = balance + 5 WHERE id = ?", [resident.id])
        db.execute("COMMIT")
        committed.set()
        db.close()

    other = threading.Thread(target=other_process)
    async with in_transaction() as connection:
        before = (await User.get(id=resident.id).using_db(connection)).balance
        other.start()
        assert started.wait(5)
        # Given the chance, the other process commits now, and this transaction's write
        # then fails ("database is locked"); holding the write lock from BEGIN, this
        # transaction keeps the other waiting instead.
        await asyncio.to_thread(committed.wait, 0.5)
        await User.filter(id=resident.id).using_db(connection).update(balance=before + 10)
    await asyncio.to_thread(other.join, 5)
    assert committed.is_set()
    assert (await User.get(id=resident.id)).balance == before + 15
