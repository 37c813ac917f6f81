"""Test harness: a real database per test (SQLite file or PostgreSQL), the real app with its
lifespan, httpx through ASGI.

TORREYA_TEST_DB=sqlite (default) or postgres; TORREYA_TEST_PG_URL points at the server
(default postgres://postgres@127.0.0.1:5432). Migrations run once per session into a
template; each test gets a copy (SQLite) or truncated tables (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from torreya.app import create_app
from torreya.settings import Settings

# The `live` fixture (a real `torreya serve`) for the tests that kill and restart it.
pytest_plugins = ["tests.live"]

BACKEND = os.environ.get("TORREYA_TEST_DB", "sqlite")
PG_URL = os.environ.get("TORREYA_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432")
PG_DB = f"torreya_test_{os.getpid()}"
PRISTINE = f"{PG_DB}_pristine"
SECRET = "test-secret-key-that-is-long-enough-0123456789"

TABLES = ["offline_scans", "device_sightings", "photo_prints", "ledger_chain", "chain_heads",
          "town_keys", "signed_heads", "family_helpers", "registrations", "user_identities",
          "sms_codes", "user_sessions", "sms_messages", "notifications", "webhook_attempts",
          "webhook_deliveries", "webhooks", "outbox", "idempotency_keys", "audit_events",
          "login_failures", "checkin_refusals", "checkins", "events", "earning_totals",
          "ledger_entries", "earning_rules", "users", "villages", "towns"]


# What no log line may hold, at any level (SPEC §4.11): a phone number, a token (a JWT or
# a bearer's), a test password, a webhook secret. Every record Torreya's loggers write
# during the run is formatted as production writes it and checked.
LEAKS = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"
                   r"|Bearer\s+[\w.~+/-]{16,}|correct-horse-9|torreya2026|whsec_")


class LeakWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from torreya.ops.logs import JsonFormatter

        text = JsonFormatter().format(record)
        if LEAKS.search(text):
            self.found.append(text[:400])


WATCH = LeakWatch()


def pytest_configure(config) -> None:
    logger = logging.getLogger("torreya")
    logger.addHandler(WATCH)
    logger.setLevel(logging.DEBUG)


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line():
    """Fails the test whose code logged a phone number, a token or a password."""
    start = len(WATCH.found)
    yield
    leaked = WATCH.found[start:]
    assert not leaked, leaked


def pytest_report_header(config) -> str:
    return f"torreya database backend: {BACKEND}"


def settings_for(url: str, **over) -> Settings:
    # The delivery worker runs only where a test starts it (tests/outbox/test_webhooks.py).
    # Boards read fresh totals on every request (tests/boards has the one kept for seconds).
    values = {"DATABASE_URL": url, "SECRET_KEY": SECRET, "BASE_URL": "http://testserver",
              "RUN_WORKER": False, "BOARD_CACHE_SECONDS": 0}
    values.update(over)
    return Settings(**values)


async def _pg_admin(sql: str, database: str = "postgres") -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_URL}/{database}")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_db(tmp_path_factory) -> AsyncIterator[str]:
    from torreya.db import migrate

    if BACKEND == "postgres":
        await _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
        await _pg_admin(f"CREATE DATABASE {PG_DB}")
        url = f"{PG_URL}/{PG_DB}"
        await migrate(settings_for(url))
        # Kept as migrated, for what needs a database of its own (see `pristine`).
        await _pg_admin(f"DROP DATABASE IF EXISTS {PRISTINE}")
        await _pg_admin(f"CREATE DATABASE {PRISTINE} TEMPLATE {PG_DB}")
        yield url
        await _pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        await _pg_admin(f"DROP DATABASE IF EXISTS {PRISTINE} WITH (FORCE)")
    else:
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        await migrate(settings_for(f"sqlite://{path}"))
        yield str(path)


@pytest.fixture(scope="session")
def pristine(template_db) -> str:
    """The migrated, empty database that nothing writes to, for a test that needs one of its
    own (a live server, a benchmark's smoke run) without migrating from empty, 6 s of CPU
    each: PostgreSQL's database name (to copy with `CREATE DATABASE … TEMPLATE`) or SQLite's
    file (to copy). The tests of migrating itself start from empty."""
    return PRISTINE if BACKEND == "postgres" else template_db


# What `TRUNCATE TABLES RESTART IDENTITY CASCADE` would empty (the tables, those that refer
# to them, their sequences), emptied instead by DELETE with the foreign keys' and the
# append-only triggers set aside for it: 4 ms a test against TRUNCATE's 400 ms (55 tables
# made anew each time), about 4 minutes of the PostgreSQL run.
_EMPTYING: list[str] = []

_CASCADE = """
WITH RECURSIVE closure(oid) AS (
    SELECT c.oid FROM pg_class c
    WHERE c.relname = ANY($1::text[]) AND c.relnamespace = 'public'::regnamespace
  UNION
    SELECT f.conrelid FROM pg_constraint f JOIN closure ON f.confrelid = closure.oid
    WHERE f.contype = 'f')
SELECT (SELECT array_agg(quote_ident(c.relname)) FROM pg_class c
        WHERE c.oid IN (SELECT oid FROM closure)) AS tables,
       (SELECT array_agg(quote_literal(quote_ident(s.relname))) FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          AND d.refobjid IN (SELECT oid FROM closure)) AS sequences
"""


async def _emptying() -> str:
    if not _EMPTYING:
        import asyncpg

        conn = await asyncpg.connect(f"{PG_URL}/{PG_DB}")
        try:
            found = await conn.fetchrow(_CASCADE, TABLES)
        finally:
            await conn.close()
        deletes = "".join(f"DELETE FROM {table}; " for table in found["tables"])
        sequences = ", ".join(found["sequences"])
        _EMPTYING.append(
            "BEGIN; SET LOCAL session_replication_role = replica; " + deletes
            + f"SELECT setval(s::regclass, 1, false) FROM unnest(ARRAY[{sequences}]) s; COMMIT;")
    return _EMPTYING[0]


@pytest.fixture
async def db_url(template_db, tmp_path) -> str:
    """A clean, migrated database for this test."""
    if BACKEND == "postgres":
        await _pg_admin(await _emptying(), PG_DB)
        return template_db
    path = tmp_path / "torreya.sqlite3"
    shutil.copy(template_db, path)
    return f"sqlite://{path}"


@pytest.fixture
def settings(db_url) -> Settings:
    return settings_for(db_url)


@pytest.fixture
async def app(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app
        await _envelopes_fit_the_document()


async def _envelopes_fit_the_document() -> None:
    """The webhook envelope of every message the test wrote fits the document (issue 29)."""
    from tortoise.exceptions import DBConnectionError, OperationalError

    from tests.envelopes import outbox_problems

    try:
        found = await outbox_problems()
    except (DBConnectionError, OperationalError, OSError):  # a fault test took it away
        return
    assert not found, found


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def clean_audit(app):
    """Fails the test if the ledger's invariants do not hold at its end."""
    yield
    from torreya.ledger.invariants import audit_ledger

    report = await audit_ledger()
    assert report.clean, report.problems


def pytest_collection_modifyitems(config, items) -> None:
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (TORREYA_TEST_DB=postgres)")
    for item in items:
        if "postgres_only" in item.keywords and BACKEND != "postgres":
            item.add_marker(skip_pg)
    # Browser tests last: Playwright's sync API holds an event loop while it runs.
    items.sort(key=lambda item: "/browser/" in item.nodeid.replace("\\", "/"))


__all__ = ["asyncio", "Path"]
