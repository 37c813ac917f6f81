"""What the check-ins' batch statement (`torreya_express_checkins`, ledger/batch.py) costs
PostgreSQL per check-in, and what a change to the schema would save: two databases made
alike, B changed by `--b-sql`, their batches written in turn on one connection each, the
CPU of each connection's backend read from /proc. B is made as a copy of A (CREATE DATABASE
… TEMPLATE), so both hold the same rows.

    python bench/statement.py                          # A and B alike: the instrument's noise
    python bench/statement.py --b-sql "ALTER TABLE …"  # what that change saves

Alternating batch by batch, the two sides share whatever the machine does meanwhile (on a
shared machine one run moves by a third from the next; the two sides of one run do not).
Only the statement is measured: no HTTP, no outbox dispatch, no hash chain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.checkin import SECRET, prepare, recreate_pg  # noqa: E402


class Client:
    """What ledger/batch.py's `_on_postgres` asks of a connection, on a bare asyncpg one."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def execute_query_dict(self, sql: str, values: list) -> list[dict]:
        return [dict(row) for row in await self.connection.fetch(sql, *values)]


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def town(url: str, residents: int, events: int):
    """The benchmark's town in the database at `url`: its residents' logins, its events and
    the settings that sealed them."""
    from torreya.checkins.codes import read_checkin_token
    from torreya.db import orm
    from torreya.models import Event
    from torreya.security import read_access_token
    from torreya.settings import Settings

    tokens, bearers = await prepare(url, residents, events)
    settings = Settings(DATABASE_URL=url, SECRET_KEY=SECRET, BASE_URL="http://bench")
    async with orm(settings):
        logins = [read_access_token(settings, bearer) for bearer in bearers]
        found = [await Event.get(id=read_checkin_token(settings, token).event_id)
                 for token in tokens]
    return logins, found, settings


async def side(url: str, sql: str) -> tuple[Client, int]:
    """A connection to one side, `sql` applied and the tables analysed, and its backend."""
    connection = await asyncpg.connect(url)
    if sql:
        await connection.execute(sql)
    await connection.execute("VACUUM ANALYZE")
    return Client(connection), await connection.fetchval("SELECT pg_backend_pid()")


async def run(args: argparse.Namespace, first_url: str) -> list[float]:
    from torreya.db import now, orm
    from torreya.ledger.batch import BatchCheckin, _on_postgres, entry_for

    events = -(-(args.batches + args.warm) * args.size // args.residents) + 1
    logins, found, settings = await town(first_url, args.residents, events)
    # B is A's copy, row for row (the same ids, logins and events), then changed
    admin = await asyncpg.connect(f"{args.pg_url}/postgres")
    await admin.execute("DROP DATABASE IF EXISTS torreya_bench_b WITH (FORCE)")
    await admin.execute("CREATE DATABASE torreya_bench_b TEMPLATE torreya_bench_a")
    await admin.close()
    sides = [await side(url, sql) for url, sql in (
        (first_url, ""), (f"{args.pg_url}/torreya_bench_b", args.b_sql))]
    spent = [0.0, 0.0]
    async with orm(settings):  # the sealing key the batches seal with
        for n in range(args.warm + args.batches):
            for k, (client, pid) in enumerate(sides):
                first = n * args.size
                event = found[first // args.residents]
                moment = now()
                scans = [BatchCheckin(event, "static", login.user_id, moment, entry_for(
                    event, login.user_id, login.user_id, moment, proxy=False), claims=login)
                    for login in logins[first % args.residents:][:args.size]]
                before = backend_cpu(pid)
                written = await _on_postgres(client, scans)
                if n >= args.warm:
                    spent[k] += backend_cpu(pid) - before
                if not all(written):
                    raise RuntimeError(f"side {'AB'[k]}: a scan was not written")
    for client, *_rest in sides:
        await client.connection.close()
    return [cpu / (args.batches * args.size) for cpu in spent]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--b-sql", default="", help="SQL applied to side B, A's copy")
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--size", type=int, default=20, help="scans per batch (a divisor "
                        "of --residents)")
    parser.add_argument("--batches", type=int, default=200, help="measured, per side")
    parser.add_argument("--warm", type=int, default=10)
    args = parser.parse_args(argv)
    if args.residents % args.size:
        parser.error("--size must divide --residents")
    per_checkin = asyncio.run(run(args, recreate_pg(args.pg_url, "torreya_bench_a")))
    print(f"batches of {args.size}, {args.batches} per side, alternated; the statement's "
          "backend CPU per check-in:")
    print(f"  A (as migrated): {per_checkin[0] * 1000:.3f} ms")
    print(f"  B ({args.b_sql or 'as migrated'}): {per_checkin[1] * 1000:.3f} ms")
    print(f"  B / A: {per_checkin[1] / per_checkin[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
