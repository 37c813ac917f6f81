"""Tortoise's asyncpg backend, given a libpq connection URL as it is: several hosts and
`target_session_attrs` included (`postgres://u@db1:5432,db2:5432/torreya?
target_session_attrs=read-write`). Tortoise reads one host and one port from the URL; asyncpg
itself takes the whole URL, tries the hosts in turn and keeps the one that accepts writes,
so after a failover new connections find the promoted primary without a restart.

Used by `Settings.tortoise_config` for PostgreSQL URLs with several hosts (issue 31).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient


class UrlClient(AsyncpgDBClient):
    """Connects by the URL in `dsn` (the host, port, user and database are in it)."""

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        dsn = kwargs.pop("dsn")
        for key in ("host", "port", "user", "database", "password"):
            kwargs.pop(key, None)
        return await asyncpg.create_pool(dsn, **kwargs)


client_class = UrlClient
