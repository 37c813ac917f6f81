"""Check-in throughput through the whole HTTP stack, next to a bare one-INSERT endpoint.

    python bench/checkin.py --db sqlite            # or --db postgres
    python bench/checkin.py --db postgres --requests 3000 --concurrency 32

Both servers run under uvicorn (one worker each) on the same database, driven by the same
load generator in the same run: many distinct residents check in to one event through
POST /api/v1/checkins (token check, event, rule, claim row, balance update, period totals,
ledger entry). Prints requests/s, p50/p99 latency and the ratio torreya/bare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789-abcdefghijkl"


async def prepare(db_url: str, residents: int) -> tuple[str, list[str]]:
    from torreya.checkins.codes import poster_token
    from torreya.db import migrate, now, orm
    from torreya.ledger.rules import ensure_default_rules
    from torreya.models import Event, Role, Town, User, Village
    from torreya.security import issue_access_token
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")
    await migrate(settings)
    async with orm(settings):
        from tortoise import connections

        await connections.get("default").execute_script(
            "CREATE TABLE IF NOT EXISTS bench_inserts (id INTEGER PRIMARY KEY "
            + ("AUTOINCREMENT" if settings.is_sqlite else "GENERATED ALWAYS AS IDENTITY")
            + ", token VARCHAR(200) NOT NULL)")
        town = await Town.create(name="基准镇", code=f"bench{int(time.time())}",
                                 currency_name="香榧币")
        await ensure_default_rules(town)
        village = await Village.create(town=town, name="基准村", code="bench")
        await User.bulk_create([User(username=f"bench{town.id}_{n}", display_name=f"居民{n}",
                                     role=Role.RESIDENT, town=town, village=village)
                                for n in range(residents)], batch_size=1000)
        ids = await User.filter(village=village).values_list("id", flat=True)
        start = now() - timedelta(hours=1)
        event = await Event.create(village=village, town=town, title="基准活动",
                                   kind="campaign", points=10, starts_at=start,
                                   ends_at=start + timedelta(hours=6), qr_mode="static")
        token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
        bearers = [issue_access_token(settings, user_id) for user_id in ids]
    return token, bearers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(module: str, port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", module, "--port", str(port), "--log-level", "warning",
         "--no-access-log"], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{module} did not start")


async def load(url: str, bodies: list[tuple[dict, dict]], concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker():
            while queue:
                headers, body = queue.pop()
                began = time.perf_counter()
                response = await client.post(url, headers=headers, json=body)
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": len(latencies) / elapsed,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="torreya-bench-"))
    if args.db == "postgres":
        import asyncpg

        async def recreate():
            conn = await asyncpg.connect(f"{args.pg_url}/postgres")
            await conn.execute("DROP DATABASE IF EXISTS torreya_bench WITH (FORCE)")
            await conn.execute("CREATE DATABASE torreya_bench")
            await conn.close()

        asyncio.run(recreate())
        db_url = f"{args.pg_url}/torreya_bench"
    else:
        db_url = f"sqlite://{workdir}/bench.sqlite3"

    token, bearers = asyncio.run(prepare(db_url, args.requests))
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": "http://bench", "PYTHONPATH": str(ROOT)}
    servers = []
    try:
        ours_port, bare_port = free_port(), free_port()
        servers.append(start("torreya.asgi:app", ours_port, env))
        servers.append(start("bench.bare:app", bare_port, env))
        bodies = [({"Authorization": f"Bearer {b}"}, {"token": token}) for b in bearers]
        warm = bodies[: args.concurrency]
        asyncio.run(load(f"http://127.0.0.1:{bare_port}/insert", warm, args.concurrency))
        base = asyncio.run(load(f"http://127.0.0.1:{bare_port}/insert", bodies, args.concurrency))
        ours = asyncio.run(load(f"http://127.0.0.1:{ours_port}/api/v1/checkins", bodies,
                                args.concurrency))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    print(f"database: {args.db}; {args.requests} requests, concurrency {args.concurrency}")
    for name, r in (("bare INSERT", base), ("torreya check-in", ours)):
        print(f"  {name:<18} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   "
              f"p99 {r['p99']:6.1f} ms   statuses {r['statuses']}")
    print(f"  ratio (torreya / bare throughput): {ours['rps'] / base['rps']:.2f}")
    return 0 if set(ours["statuses"]) == {201} else 1


if __name__ == "__main__":
    sys.exit(main())
