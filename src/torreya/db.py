"""Database plumbing: migrations, dialect-neutral raw SQL, the clock."""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as migrate_api
from tortoise.models import Model

from torreya.settings import ConfigurationError, Settings
from torreya.trust import sealing

M = TypeVar("M", bound=Model)
T = TypeVar("T")
log = logging.getLogger("torreya")


class DatabaseUnavailableError(Exception):
    """Marker for `is_unavailable`: raised where we give up waiting on the database."""


# SQLite errors that say the database could not do the work now, not that the work is wrong.
_SQLITE_UNAVAILABLE = ("database is locked", "disk i/o error", "database or disk is full",
                       "unable to open database file", "attempt to write a readonly database",
                       "database table is locked")


_OS_UNAVAILABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ENOSPC,
                   errno.EIO, errno.EROFS}


def _asyncpg_unavailable() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:  # SQLite-only installation
        return ()
    errors = asyncpg.exceptions
    return (
        errors.PostgresConnectionError,          # 08xxx: connection failures
        errors.OperatorInterventionError,        # 57xxx: statement timeout, terminated, shutdown
        errors.InsufficientResourcesError,       # 53xxx: too many connections, disk full
        errors.TransactionRollbackError,         # 40xxx: deadlock, serialization failure
        errors.LockNotAvailableError,            # 55P03: lock_timeout
        errors.ObjectNotInPrerequisiteStateError,  # 55000: database not accepting connections
        errors.ConnectionDoesNotExistError,      # the server closed our connection
        errors.InvalidCatalogNameError,          # the database is gone
        # Failover (issue 31): none of the URL's hosts accepts writes yet (the primary is
        # down, the standby not promoted), or a connection reached a node that is now a
        # standby (25006). Nothing was written; a retry after the promotion succeeds.
        errors.TargetServerAttributeNotMatched,
        errors.ReadOnlySQLTransactionError,
        # Client-side: a pooled connection whose backend was terminated mid-protocol is left
        # unusable ("cannot switch to state …; another operation is in progress", "connection
        # is closed"). Its transaction never committed; the pool replaces the connection.
        errors.InterfaceError,
        errors.InternalClientError,
    )


def is_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) means the database could not be reached or gave
    up on a statement. The transaction was rolled back, so nothing was changed: the client
    may retry (503 `unavailable`)."""
    network = (ConnectionError, TimeoutError, DatabaseUnavailableError, DBConnectionError,
               *_asyncpg_unavailable())
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, network):
            return True
        if isinstance(current, socket.gaierror) or (
                isinstance(current, OSError) and current.errno in _OS_UNAVAILABLE):
            return True
        message = str(current).lower()
        if type(current).__name__ == "OperationalError" and any(
                text in message for text in _SQLITE_UNAVAILABLE):
            return True
        current = current.__cause__ or current.__context__
    return False


# Reads that may lag a second (a board's top, a big screen) go to the replica when one is
# configured (TORREYA_REPLICA_URL); a replica out of reach is skipped for this long, and
# the primary answers meanwhile.
REPLICA_PAUSE = 30.0
_replica_down_until = [0.0]
_REPLICA: dict[str, Any] = {}  # "config": the connection to make; "client": made


def configure_replica(settings: Settings) -> None:
    """The app's replica, made on first use (create_app; `close_replica` at shutdown)."""
    _REPLICA.clear()
    config = settings.replica_config()
    if config is not None:
        _REPLICA["config"] = config


async def _replica() -> BaseDBAsyncClient | None:
    if "config" not in _REPLICA or time.monotonic() < _replica_down_until[0]:
        return None
    if "client" not in _REPLICA:
        config = _REPLICA["config"]
        module = importlib.import_module(config["engine"])
        client = module.client_class(connection_name="replica", **config["credentials"])
        await client.create_connection(with_db=True)
        _REPLICA["client"] = client
    return _REPLICA["client"]


async def close_replica() -> None:
    client = _REPLICA.pop("client", None)
    if client is not None:
        await client.close()


async def reading(run: Callable[[BaseDBAsyncClient], Awaitable[T]]) -> T:
    """`run(connection)` on the replica, or on the primary when there is none or it does
    not answer (never an error for the reader: the primary is always right)."""
    try:
        replica = await _replica()
    except Exception as error:
        if not is_unavailable(error):
            raise
        replica = None
        _replica_down_until[0] = time.monotonic() + REPLICA_PAUSE
        log.warning("the replica is out of reach (%s); reading the primary for %g s",
                    type(error).__name__, REPLICA_PAUSE)
    if replica is not None:
        try:
            return await run(replica)
        except Exception as error:
            if not is_unavailable(error):
                raise
            _replica_down_until[0] = time.monotonic() + REPLICA_PAUSE
            log.warning("the replica is out of reach (%s); reading the primary for %g s",
                        type(error).__name__, REPLICA_PAUSE)
    return await run(connections.get("default"))


async def after_failover(error: BaseException) -> None:
    """A pooled connection wrote to a node that is a standby now (the old primary, back
    after a failover): every pooled connection is closed, and new ones go by the URL's
    `target_session_attrs=read-write` to the promoted primary."""
    current: BaseException | None = error
    for _depth in range(10):  # a cause chain is short; never loop on a cycle
        if current is None:
            return
        if type(current).__name__ == "ReadOnlySQLTransactionError":
            pool = getattr(connections.get("default"), "_pool", None)
            if pool is not None:
                await pool.expire_connections()
            return
        current = current.__cause__ or current.__context__


# Set only while something is done at a moment other than now, through the real services:
# `torreya demo` replaying months of village life, an offline scan applied at the time it was
# made (checkins/offline.py).
_replayed: ContextVar[datetime | None] = ContextVar("torreya_replayed_moment", default=None)


def now() -> datetime:
    """The current time, aware, in UTC; inside `replaying(moment)`, that moment."""
    return _replayed.get() or datetime.now(UTC)


@contextlib.contextmanager
def replaying(moment: datetime) -> Iterator[None]:
    """Make `now()` answer `moment`: what the services write (entries, vouchers and their
    expiry, reports, audit records, notifications) is then dated as if done at that time."""
    token = _replayed.set(moment)
    try:
        yield
    finally:
        _replayed.reset(token)


def check_sqlite_path(settings: Settings) -> None:
    """Make the SQLite folder (./data/ on a fresh machine) and prove the database can be
    opened and written, within seconds.

    Raises ConfigurationError naming the path and what to do. (Without this check an
    unwritable folder made the first query wait forever: the WAL pragma fails inside
    Tortoise's connection wrapper, whose lock is then never released.)
    """
    path_text = settings.sqlite_path
    if path_text is None:
        return
    path = Path(path_text)
    advice = ("Make the folder and file writable by this user, or point TORREYA_DATABASE_URL "
              "at a writable place.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=settings.DB_LOCK_TIMEOUT)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE")  # takes the write lock: needs -wal, -shm
            connection.execute("ROLLBACK")
        finally:
            connection.close()
    except (OSError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or str(error)
        if getattr(error, "filename", None) and error.filename != str(path):
            reason += f" ({error.filename})"
        raise ConfigurationError(
            f"cannot open the database {path.resolve()} for writing: {reason}. {advice}"
        ) from None


async def migrate(
    settings: Settings, *, progress: Callable[[str, str, str], object] | None = None
) -> None:
    """Bring the schema up to date (versioned files in torreya/migrations)."""
    check_sqlite_path(settings)
    async with TortoiseContext():
        await migrate_api(config=settings.tortoise_config(timeouts=False), progress=progress)


@contextlib.asynccontextmanager
async def orm(settings: Settings, *, timeouts: bool = True) -> AsyncIterator[None]:
    """Tortoise for a CLI command or a tool (the web app uses RegisterTortoise in its
    lifespan), with the sealing keys set: whatever writes or checks entries seals.
    `timeouts=False` for long offline work (the audit of a county's ledger), whose
    statements may rightly outlast a request's few seconds."""
    check_sqlite_path(settings)
    sealing.configure(settings)
    async with TortoiseContext() as ctx:
        await ctx.init(config=settings.tortoise_config(timeouts=timeouts))
        try:
            yield
        finally:
            await Tortoise.close_connections()


def conn(connection: BaseDBAsyncClient | None = None) -> BaseDBAsyncClient:
    return connection or connections.get("default")


def is_postgres(connection: BaseDBAsyncClient) -> bool:
    return connection.capabilities.dialect == "postgres"


def placeholders(connection: BaseDBAsyncClient, sql: str) -> str:
    """Write raw SQL with `?` placeholders; asyncpg wants `$1, $2, …`."""
    if not is_postgres(connection):
        return sql
    parts = sql.split("?")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], start=1):
        out.append(f"${number}{part}")
    return "".join(out)


async def fetch(connection: BaseDBAsyncClient, sql: str, values: list[Any]) -> list[dict]:
    """Run raw SQL and return its rows (RETURNING included, on both backends).

    Tortoise's asyncpg execute_query() drops RETURNING rows; execute_query_dict keeps them.
    """
    return await connection.execute_query_dict(placeholders(connection, sql), values)


async def insert_rows(connection: BaseDBAsyncClient, table: str, rows: list[dict]) -> None:
    """Rows (dicts with the same columns, values as the columns take them: JSON as text) in
    one INSERT statement: a set written by one statement, not a statement and a model object
    per row as Tortoise's bulk_create does."""
    if rows:
        columns = list(rows[0])
        row = f"({', '.join('?' * len(columns))})"
        await connection.execute_query(placeholders(connection, (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * len(rows))}"
        )), [value for item in rows for value in item.values()])


async def in_sqlite_thread(client: BaseDBAsyncClient,
                           work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on Tortoise's SQLite connection in aiosqlite's own thread: a whole
    transaction in one hop instead of one per statement, holding the client's lock so that
    nothing else in the process uses the connection meanwhile (as a transaction does).
    `work` must end any transaction it begins. (aiosqlite's `_execute` is how its own
    methods reach that thread; tests of the express check-in fail if it changes.)"""
    async with client.acquire_connection() as connection:
        return await connection._execute(lambda: work(connection._conn))


async def get_one(model: type[M], **equals: Any) -> M | None:
    """One row by equality filters, without Tortoise's query builder.

    Only for the hottest paths (the user of every request, the event and rule of every
    check-in), where building the query cost more than running it. Same result as
    `model.get_or_none(**equals)`.
    """
    meta = model._meta
    columns = [meta.fields_db_projection.get(name, name) for name in equals]
    where = " AND ".join(f"{column} = ?" for column in columns)
    rows = await fetch(conn(), f"SELECT * FROM {meta.db_table} WHERE {where} LIMIT 1",
                       list(equals.values()))
    return model._init_from_db(**rows[0]) if rows else None
