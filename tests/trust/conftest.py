"""Tampering behind the app's back, as the database's owner would: the guards switched off,
then raw SQL. Restored after each test (PostgreSQL keeps the schema between tests)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKEND
from torreya.db import conn

GUARDED = ("ledger_entries", "ledger_chain", "signed_heads")


class Tamperer:
    def __init__(self) -> None:
        self.off = False

    async def __call__(self, *statements: str) -> None:
        db = conn()
        if not self.off:
            for table in GUARDED:
                if BACKEND == "postgres":
                    await db.execute_script(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                else:
                    for action in ("update", "delete"):
                        await db.execute_script(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
            if BACKEND != "postgres":
                await db.execute_script("DROP TRIGGER IF EXISTS ledger_no_update")
                await db.execute_script("DROP TRIGGER IF EXISTS ledger_no_delete")
            self.off = True
        for sql in statements:
            await db.execute_script(sql)

    async def restore(self) -> None:
        if self.off and BACKEND == "postgres":
            for table in GUARDED:
                await conn().execute_script(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
async def tamper(app):
    tamperer = Tamperer()
    yield tamperer
    await tamperer.restore()
