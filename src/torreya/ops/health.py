"""`/healthz` (the process answers; no database) and `/readyz` (the database answers within
2 s and holds the schema this code knows), for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from torreya.db import conn, fetch, is_unavailable
from torreya.errors import UnavailableError
from torreya.ops import metrics, schema

READY_WITHIN = 2.0  # seconds


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check() -> str | None:
    """Why the app is not ready, or None."""
    await fetch(conn(), "SELECT 1 AS one", [])
    state = await schema.state(conn())
    return None if state.current else state.explain()


def _check_sqlite(path: str) -> str | None:
    """SQLite, on a connection of its own (the app's one connection is never held up or
    left mid-transaction by a check cut short): the schema, and the write lock within the
    time allowed, since a file another process holds cannot take a check-in."""
    with contextlib.closing(sqlite3.connect(path, timeout=READY_WITHIN,
                                            isolation_level=None)) as db:
        names = [row[0] for row in db.execute(schema.QUERY, [schema.APP])]
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    state = schema.state_of(names)
    return None if state.current else state.explain()


async def readyz(request: Request) -> JSONResponse:
    path = request.app.state.settings.sqlite_path
    try:
        check = asyncio.to_thread(_check_sqlite, path) if path else _check()
        reason = await asyncio.wait_for(check, READY_WITHIN + 0.5)
    except TimeoutError:
        reason = f"the database did not answer within {READY_WITHIN:g} s"
    except sqlite3.OperationalError as error:  # locked, or not a database
        reason = f"the database did not answer within {READY_WITHIN:g} s ({error})"
    except Exception as error:
        if not is_unavailable(error):
            raise
        reason = f"the database is out of reach ({type(error).__name__})"
    if reason is None:
        return JSONResponse({"status": "ready"})
    metrics.DB_UNAVAILABLE.inc()
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503,
                        headers={"Retry-After": str(UnavailableError.retry_after)})


routes = [
    Route("/healthz", healthz, name="healthz"),
    Route("/readyz", readyz, name="readyz"),
    Route("/metrics", metrics.metrics, name="metrics"),
]
