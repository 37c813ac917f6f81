"""Leaderboards at town scale: 300,000 residents and 10,000,000 ledger entries (PostgreSQL).

    python bench/boards.py                         # full scale (several minutes to build)
    python bench/boards.py --residents 30000 --entries 1000000   # a quicker look

Builds a town with the data in SQL (generate_series; consistent balances, balance_after
chains and period totals), then, side by side in one run:
1. board requests/s through the whole HTTP stack (town and village boards, month) next to a
   bare Starlette JSON endpoint — target ratio >= 0.3;
2. check-in p99 while a board is fetched every second, against check-in p99 idle —
   target <= 1.2x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.checkin import SECRET, free_port, load, start  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PER_VILLAGE = 1000


async def build(pg_url: str, residents: int, entries: int) -> dict:
    import asyncpg

    from torreya.db import migrate
    from torreya.settings import Settings

    admin = await asyncpg.connect(f"{pg_url}/postgres")
    await admin.execute("DROP DATABASE IF EXISTS torreya_bench_boards WITH (FORCE)")
    await admin.execute("CREATE DATABASE torreya_bench_boards")
    await admin.close()
    db_url = f"{pg_url}/torreya_bench_boards"
    await migrate(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET))
    conn = await asyncpg.connect(db_url)
    villages = max(1, residents // PER_VILLAGE)
    per_user = max(1, entries // residents)
    began = time.perf_counter()
    town_id = await conn.fetchval("INSERT INTO towns (name, code, currency_name, voucher_days,"
                                  " created_at) VALUES ('基准镇', 'bench', '香榧币', 30, now())"
                                  " RETURNING id")
    await conn.execute("""INSERT INTO villages (town_id, name, code, created_at)
        SELECT $1, '村' || g, 'v' || g, now() FROM generate_series(1, $2) g""", town_id, villages)
    first_village = await conn.fetchval("SELECT min(id) FROM villages WHERE town_id = $1",
                                        town_id)
    print(f"  {villages} villages; inserting {residents} residents …", flush=True)
    await conn.execute("""INSERT INTO users (username, display_name, role, town_id, village_id,
            balance, lifetime_points, card_serial, is_active, hide_from_boards, created_at)
        SELECT 'r' || g, '居民' || g, 'resident', $1, $2 + (g % $3), $4 * 10, $4 * 10, 1, true,
            false, now() FROM generate_series(1, $5) g""",
                       town_id, first_village, villages, per_user, residents)
    first_user = await conn.fetchval("SELECT min(id) FROM users WHERE town_id = $1", town_id)
    print(f"  inserting {per_user * residents} ledger entries …", flush=True)
    await conn.execute("SET session_replication_role = replica")  # skip the append-only trigger
    await conn.execute("""INSERT INTO ledger_entries (user_id, town_id, delta, balance_after,
            kind, memo, idem_key, proxy, counts_as_earned, created_at)
        SELECT $1 + (g % $2), $3, 10, 10 * (g / $2 + 1), 'checkin', '基准活动',
            'bench:' || g, false, true,
            now() - interval '400 days' + (g::float / $4) * interval '400 days'
        FROM generate_series(0, $4 - 1) g""",
                       first_user, residents, town_id, per_user * residents)
    print("  computing period totals …", flush=True)
    for period, expr in [
        ("week", "'w' || to_char(local, 'IYYY-IW')"), ("month", "'m' || to_char(local, 'YYYY-MM')"),
        ("quarter", "'q' || to_char(local, 'YYYY') || '-' || to_char(local, 'Q')"),
        ("year", "'y' || to_char(local, 'YYYY')"), ("all", "'all'"),
    ]:
        await conn.execute(f"""INSERT INTO earning_totals (user_id, town_id, village_id, kind,
                period, total)
            SELECT e.user_id, $1, u.village_id, '*', {expr}, sum(e.delta)
            FROM (SELECT user_id, delta, created_at AT TIME ZONE 'Asia/Shanghai' AS local
                  FROM ledger_entries WHERE town_id = $1) e
            JOIN users u ON u.id = e.user_id
            GROUP BY e.user_id, u.village_id{'' if period == 'all' else ', ' + expr}""",
                           town_id)
        print(f"    {period} done", flush=True)
    await conn.execute("SET session_replication_role = DEFAULT")
    await conn.execute("ANALYZE")
    event_start = await conn.fetchval("SELECT now() - interval '1 hour'")
    event_id = await conn.fetchval("""INSERT INTO events (village_id, town_id, title, kind,
            points, place, starts_at, ends_at, qr_mode, created_at)
        VALUES ($1, $2, '基准活动', 'campaign', 10, '', $3::timestamptz,
            $3::timestamptz + interval '6 hours', 'static', now()) RETURNING id""",
                                   first_village, town_id, event_start)
    ends_at = await conn.fetchval("SELECT ends_at FROM events WHERE id = $1", event_id)
    counts = await conn.fetchrow("SELECT (SELECT count(*) FROM users) AS users,"
                                 " (SELECT count(*) FROM ledger_entries) AS entries,"
                                 " (SELECT count(*) FROM earning_totals) AS totals")
    await conn.close()
    print(f"  built in {time.perf_counter() - began:.0f} s: {counts['users']} users, "
          f"{counts['entries']} entries, {counts['totals']} period totals", flush=True)
    return {"db_url": db_url, "town_id": town_id, "first_village": first_village,
            "villages": villages, "first_user": first_user, "event_id": event_id,
            "ends_at": ends_at, "residents": residents}


async def reuse(pg_url: str) -> dict:
    """The database of an earlier run, brought up to date (e.g. a new index)."""
    import asyncpg

    from torreya.db import migrate
    from torreya.settings import Settings

    db_url = f"{pg_url}/torreya_bench_boards"
    began = time.perf_counter()
    await migrate(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET))
    conn = await asyncpg.connect(db_url)
    await conn.execute("ANALYZE earning_totals")
    row = await conn.fetchrow("""SELECT t.id AS town_id, min(v.id) AS first_village,
            count(v.id) AS villages FROM towns t JOIN villages v ON v.town_id = t.id
        WHERE t.code = 'bench' GROUP BY t.id""")
    info = dict(row)
    info["first_user"] = await conn.fetchval("SELECT min(id) FROM users WHERE town_id = $1",
                                             info["town_id"])
    info["residents"] = await conn.fetchval("SELECT count(*) FROM users WHERE town_id = $1",
                                            info["town_id"])
    await conn.execute("DELETE FROM checkins")
    await conn.execute("SET session_replication_role = replica")
    await conn.execute("DELETE FROM ledger_entries WHERE kind = 'checkin' AND source_type"
                       " = 'event'")
    await conn.execute("SET session_replication_role = DEFAULT")
    event = await conn.fetchrow("""UPDATE events SET starts_at = now() - interval '1 hour',
            ends_at = now() + interval '5 hours' WHERE town_id = $1 RETURNING id, ends_at""",
                                info["town_id"])
    info.update(db_url=db_url, event_id=event["id"], ends_at=event["ends_at"])
    await conn.close()
    print(f"  reused in {time.perf_counter() - began:.0f} s", flush=True)
    return info


async def get_load(url_of, count: int, concurrency: int) -> dict:
    bodies = [({}, None)] * count
    latencies, statuses = [], {}
    queue = list(range(count))
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
            max_connections=concurrency)) as client:
        async def worker():
            while queue:
                n = queue.pop()
                t = time.perf_counter()
                r = await client.get(url_of(n))
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0
    latencies.sort()
    del bodies
    return {"rps": count / elapsed, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000, "statuses": statuses}


async def checkins_with_board(url: str, bodies, concurrency: int, board_url: str | None):
    stop = asyncio.Event()

    async def refresher():
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                await client.get(board_url)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass

    task = asyncio.create_task(refresher()) if board_url else None
    result = await load(url, bodies, concurrency)
    stop.set()
    if task:
        await task
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database an earlier run built (skips the build)")
    args = parser.parse_args()
    if args.reuse:
        info = asyncio.run(reuse(args.pg_url))
    else:
        print(f"building: {args.residents} residents, {args.entries} entries")
        info = asyncio.run(build(args.pg_url, args.residents, args.entries))

    from torreya.checkins.codes import poster_token
    from torreya.security import issue_access_token
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=info["db_url"], SECRET_KEY=SECRET, BASE_URL="http://bench")
    token = poster_token(settings, event_id=info["event_id"], ends_at=info["ends_at"])
    env = {**os.environ, "TORREYA_DATABASE_URL": info["db_url"], "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": "http://bench", "PYTHONPATH": str(ROOT)}
    servers = []
    try:
        ours, bare = free_port(), free_port()
        servers.append(start("torreya.asgi:app", ours, env))
        servers.append(start("bench.bare:app", bare, env))
        rng = random.Random(1)
        village_ids = [info["first_village"] + rng.randrange(info["villages"])
                       for _ in range(args.requests)]

        def board_url(n: int) -> str:
            if n % 2:
                return f"http://127.0.0.1:{ours}/api/v1/towns/{info['town_id']}/leaderboard"
            return f"http://127.0.0.1:{ours}/api/v1/villages/{village_ids[n]}/leaderboard"

        asyncio.run(get_load(board_url, 100, args.concurrency))
        base = asyncio.run(get_load(lambda n: f"http://127.0.0.1:{bare}/json", args.requests,
                                    args.concurrency))
        boards = asyncio.run(get_load(board_url, args.requests, args.concurrency))
        # Any resident of the town may check in to the event; 2,000 distinct ones.
        in_village = [info["first_user"] + k for k in range(2000)]
        bearers = [({"Authorization": f"Bearer {issue_access_token(settings, u)}"},
                    {"token": token}) for u in in_village]
        checkin_url = f"http://127.0.0.1:{ours}/api/v1/checkins"
        idle = asyncio.run(checkins_with_board(checkin_url, bearers[:1000], 8, None))
        busy = asyncio.run(checkins_with_board(
            checkin_url, bearers[1000:], 8,
            f"http://127.0.0.1:{ours}/api/v1/towns/{info['town_id']}/leaderboard"))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    print(f"\nboards at {args.residents} residents / {args.entries} entries "
          f"({args.requests} requests, concurrency {args.concurrency}):")
    for name, r in (("bare JSON", base), ("leaderboard", boards)):
        print(f"  {name:<14} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   "
              f"p99 {r['p99']:6.1f} ms   statuses {r['statuses']}")
    print(f"  ratio (leaderboard / bare JSON): {boards['rps'] / base['rps']:.2f}   (target >= 0.3)")
    print("check-ins (1000 each, concurrency 8):")
    for name, r in (("idle", idle), ("board every 1 s", busy)):
        print(f"  {name:<16} p50 {r['p50']:6.1f} ms   p99 {r['p99']:6.1f} ms   "
              f"statuses {r['statuses']}")
    print(f"  p99 ratio (busy / idle): {busy['p99'] / idle['p99']:.2f}   (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
