"""Leasing due rows to one sender at a time (webhook deliveries, text messages), so that
several workers, or a worker beside `torreya serve`, never send one twice."""

from __future__ import annotations

from datetime import timedelta

from tortoise.transactions import in_transaction

from torreya.db import fetch, is_postgres, now

LEASE = timedelta(seconds=60)  # a claimed row is not claimed again for this long


async def lease(table: str, due_column: str, batch: int) -> list[int]:
    """Lease due pending rows of `table` (webhook deliveries, text messages): only the rows
    this UPDATE changed are ours to send; a crashed sender's lease runs out after LEASE."""
    moment = now()
    async with in_transaction() as connection:
        lock = " FOR UPDATE SKIP LOCKED" if is_postgres(connection) else ""
        due = await fetch(connection, f"SELECT id FROM {table} WHERE status = ?"
                          f" AND {due_column} <= ? ORDER BY {due_column} LIMIT ?{lock}",
                          ["pending", moment, batch])
        if not due:
            return []
        ids = [d["id"] for d in due]
        claimed = await fetch(connection, (
            f"UPDATE {table} SET {due_column} = ?"
            f" WHERE id IN ({', '.join('?' * len(ids))}) AND status = ?"
            f" AND {due_column} <= ? RETURNING id"),
            [moment + LEASE, *ids, "pending", moment])
    return [c["id"] for c in claimed]
