"""Database plumbing: migrations, dialect-neutral raw SQL, the clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as migrate_api
from tortoise.models import Model

from torreya.settings import Settings

M = TypeVar("M", bound=Model)


def now() -> datetime:
    return datetime.now(UTC)


def ensure_sqlite_dir(settings: Settings) -> None:
    """SQLite creates the file but not its folder (./data/ on a fresh machine)."""
    if settings.is_sqlite:
        path = settings.DATABASE_URL.split("://", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def migrate(
    settings: Settings, *, progress: Callable[[str, str, str], object] | None = None
) -> None:
    """Bring the schema up to date (versioned files in torreya/migrations)."""
    ensure_sqlite_dir(settings)
    async with TortoiseContext():
        await migrate_api(config=settings.tortoise_config(), progress=progress)


@contextlib.asynccontextmanager
async def orm(settings: Settings) -> AsyncIterator[None]:
    """Tortoise for a CLI command (the web app uses RegisterTortoise in its lifespan)."""
    ensure_sqlite_dir(settings)
    async with TortoiseContext() as ctx:
        await ctx.init(config=settings.tortoise_config())
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
