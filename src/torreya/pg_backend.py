"""Tortoise's asyncpg backend for every PostgreSQL URL, with two things Tortoise does not do:

- **The URL as libpq reads it.** Several hosts and `target_session_attrs`
  (`postgres://u@db1:5432,db2:5432/torreya?target_session_attrs=read-write`): Tortoise reads
  one host and one port; asyncpg takes the whole URL, tries the hosts in turn and keeps the
  one that accepts writes, so after a failover new connections find the promoted primary
  without a restart (issue 31).
- **PgBouncer noticed, not configured.** In transaction pooling a server connection serves
  another client after each transaction: named prepared statements (asyncpg's statement
  cache) are lost between them, and the session settings Torreya sends at connect
  (statement and lock timeouts) are refused ("unsupported startup parameter") or ignored.
  Before the pool is made, one connection is tried with a setting of Torreya's own beside
  the timeouts: when they are refused or do not hold, the pool is made without them and
  without the statement cache, and the log says to put the timeouts on the role. The
  offline commands, which send no timeouts, are asked the same way.
  TORREYA_DB_POOLER=pgbouncer says so up front.

Used by `Settings.tortoise_config` as the PostgreSQL engine.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient

log = logging.getLogger("torreya")


def _target(kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(the URL, what else create_pool takes): by URL when one was given."""
    dsn = kwargs.pop("dsn", None)
    if dsn is not None:
        for key in ("host", "port", "user", "database", "password"):
            kwargs.pop(key, None)
    return dsn, kwargs


# A setting of our own, sent at connect: PostgreSQL keeps any dotted name it is given;
# PgBouncer refuses a startup parameter it does not know, or drops it when told to ignore it.
PROBE = "torreya.direct"


async def _behind_a_pooler(dsn: str | None, kwargs: dict[str, Any]) -> bool:
    """Whether the session settings do not reach a server session of their own. Asked on
    every pool, whatever else is sent: the offline commands (audit, migrate) send no
    timeouts, and still must not use named prepared statements through a pooler."""
    wanted = {**(kwargs.get("server_settings") or {}), PROBE: "1"}
    connect = {k: v for k, v in kwargs.items() if k in (
        "host", "port", "user", "password", "database", "timeout", "ssl")}
    try:
        connection = await asyncpg.connect(dsn, server_settings=wanted, **connect)
    except asyncpg.exceptions.ProtocolViolationError as error:
        if "startup parameter" not in str(error):
            raise
        return True
    try:
        if await connection.fetchval("SELECT current_setting($1, true)", PROBE) != "1":
            return True
        if "statement_timeout" in wanted:
            held = await connection.fetchval("SELECT current_setting('statement_timeout')")
            return _ms(held) != int(wanted["statement_timeout"])
        return False
    finally:
        await connection.close()


def _ms(setting: str) -> int:
    """PostgreSQL's display of a duration ("5s", "3000ms", "1min") in milliseconds."""
    number = int("".join(ch for ch in setting if ch.isdigit()) or 0)
    unit = setting.lstrip("0123456789").strip()
    return number * {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}.get(unit, 1)


class PostgresClient(AsyncpgDBClient):
    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        dsn, kwargs = _target(kwargs)
        pooled = kwargs.pop("pooler", False)
        if not pooled:
            pooled = await _behind_a_pooler(dsn, {**kwargs, "password": self.password})
            if pooled:
                log.warning("A connection pooler (PgBouncer?) is between Torreya and "
                            "PostgreSQL: connecting without session settings or named "
                            "prepared statements. Set the timeouts on the role (README, "
                            "TORREYA_DB_POOLER).")
        if pooled:
            kwargs["server_settings"] = {}
            kwargs["statement_cache_size"] = 0
        return await asyncpg.create_pool(dsn, **kwargs)


client_class = PostgresClient
