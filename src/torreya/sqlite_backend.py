"""Tortoise's SQLite backend, with transactions that take the write lock when they begin.

Tortoise begins SQLite transactions with a plain BEGIN (deferred): the lock is taken at the
first write. In WAL mode a transaction that has read and then writes fails at once ("database
is locked", no waiting) if another process committed after its first read, since what it read
may be stale. Two processes write one file whenever `torreya serve --workers N` or a separate
`torreya worker` runs on SQLite. `BEGIN IMMEDIATE` waits for the lock up to the busy timeout
instead, then reads what is current. In one process nothing changes: Tortoise already runs
one transaction at a time on its one connection.

Used by `Settings.tortoise_config` as the SQLite engine.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import NestedTransactionContext, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # locked past the busy timeout: 503
            raise TransactionManagementError(error) from error

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(ImmediateTransactionWrapper(self))


class ImmediateTransactionContext(SqliteTransactionContext):
    """Tortoise's, except that a BEGIN that fails (the lock not had within the busy
    timeout: now possible, as it was not with a deferred BEGIN) leaves nothing behind: the
    connection lock released and the transaction no longer the current connection."""

    async def __aenter__(self) -> ImmediateTransactionWrapper:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        return self.connection


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient


def get_client_class(db_info: dict) -> type[SqliteClient]:
    return ImmediateSqliteClient
