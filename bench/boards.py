"""Leaderboards at town scale: 300,000 residents and 10,000,000 ledger entries (PostgreSQL).

    python bench/boards.py                         # full scale (several minutes to build)
    python bench/boards.py --residents 30000 --entries 1000000   # a quicker look

Builds a town with the data in SQL (generate_series; consistent balances, balance_after
chains and period totals), then, side by side in one run, all driven by wrk:
1. board requests/s through the whole HTTP stack (town and village boards, month) next to a
   bare Starlette JSON endpoint — target ratio >= 0.3; the bare endpoint also shows the
   generator is not the cap; then the village boards of residents and of households
   (issue 33: households of three, a third as many as residents) alone, each against the
   same bare run;
2. check-in p99 while a board is fetched every second, against check-in p99 idle —
   target <= 1.2x — in rounds of (idle, busy), compared by their medians (at 10 M
   entries one run of a few seconds had a p99 three times the next, idle or busy), each
   run started once the outbox the run before left is dispatched (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import wrk  # noqa: E402
from bench.checkin import (  # noqa: E402
    SECRET,
    drain_outbox,
    free_port,
    recreate_pg,
    server_env,
    start,
)

PER_VILLAGE = 1000


async def build(pg_url: str, residents: int, entries: int, name: str) -> dict:
    import asyncpg

    from torreya.db import migrate
    from torreya.settings import Settings

    db_url = await asyncio.to_thread(recreate_pg, pg_url, name)
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
    await households(conn, town_id)
    # Bulk loading as PostgreSQL's manual advises: the secondary indexes of the two big
    # tables are dropped, the rows written by INSERT … SELECT inside the server (what COPY
    # would send from a client, made where it lands), and the indexes built once at the end
    # (in parallel), instead of each of 40 million rows updating five indexes as it goes.
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    await conn.execute("SET synchronous_commit = off")
    dropped = await conn.fetch("""SELECT indexname, indexdef FROM pg_indexes
        WHERE tablename IN ('ledger_entries', 'earning_totals')
        AND indexname NOT IN (SELECT conname FROM pg_constraint)""")
    for index in dropped:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    step = time.perf_counter()
    print(f"  inserting {per_user * residents} ledger entries …", flush=True)
    await conn.execute("SET session_replication_role = replica")  # skip the append-only trigger
    await conn.execute("""INSERT INTO ledger_entries (user_id, town_id, delta, balance_after,
            kind, memo, idem_key, proxy, counts_as_earned, created_at)
        SELECT $1 + (g % $2), $3, 10, 10 * (g / $2 + 1), 'checkin', '基准活动',
            'bench:' || g, false, true,
            now() - interval '400 days' + (g::float / $4) * interval '400 days'
        FROM generate_series(0, $4 - 1) g""",
                       first_user, residents, town_id, per_user * residents)
    print(f"  computing period totals … ({time.perf_counter() - step:.0f} s)", flush=True)
    # What the product writes (ledger/periods.py total_keys): the entry's own kind per day,
    # month and year (the caps read them), all kinds per board period. A town missing the
    # first would fail `torreya audit` (issue 37), and caps would read nothing.
    for kind, period, expr in [
        ("checkin", "day", "'d' || to_char(local, 'YYYY-MM-DD')"),
        ("checkin", "month", "'m' || to_char(local, 'YYYY-MM')"),
        ("checkin", "year", "'y' || to_char(local, 'YYYY')"),
        ("*", "week", "'w' || to_char(local, 'IYYY-IW')"),
        ("*", "month", "'m' || to_char(local, 'YYYY-MM')"),
        ("*", "quarter", "'q' || to_char(local, 'YYYY') || '-' || to_char(local, 'Q')"),
        ("*", "year", "'y' || to_char(local, 'YYYY')"), ("*", "all", "'all'"),
    ]:
        await conn.execute(f"""INSERT INTO earning_totals (user_id, town_id, village_id, kind,
                period, total)
            SELECT e.user_id, $1, u.village_id, '{kind}', {expr}, sum(e.delta)
            FROM (SELECT user_id, delta, created_at AT TIME ZONE 'Asia/Shanghai' AS local
                  FROM ledger_entries WHERE town_id = $1) e
            JOIN users u ON u.id = e.user_id
            GROUP BY e.user_id, u.village_id{'' if period == 'all' else ', ' + expr}""",
                           town_id)
        print(f"    {kind}/{period} done ({time.perf_counter() - step:.0f} s)", flush=True)
    await conn.execute("SET session_replication_role = DEFAULT")
    print(f"  building {len(dropped)} indexes …", flush=True)
    for index in dropped:
        await conn.execute(index["indexdef"])
    print(f"    done ({time.perf_counter() - step:.0f} s)", flush=True)
    # Entries written here, in SQL, carry no seal: they count as the history from before
    # sealing, which the chainer links once, as `torreya migrate` does (else the worker
    # would spend the benchmark warning about each one).
    await conn.execute("""INSERT INTO chain_heads (town_id, seq, hash, entry_id, total,
            legacy_through) VALUES ($1, 0, $2, 0, 0,
            (SELECT max(id) FROM ledger_entries))""", town_id, "0" * 64)
    # as autovacuum leaves a settled table: statistics, and the visibility map that lets
    # the boards read their index alone
    await conn.execute("VACUUM (ANALYZE)")
    event_start = await conn.fetchval("SELECT now() - interval '1 hour'")
    event_id = await conn.fetchval("""INSERT INTO events (village_id, town_id, title, kind,
            points, place, starts_at, ends_at, qr_mode, created_at)
        VALUES ($1, $2, '基准活动', 'campaign', 10, '', $3::timestamptz,
            $3::timestamptz + interval '6 hours', 'static', now()) RETURNING id""",
                                   first_village, town_id, event_start)
    ends_at = await conn.fetchval("SELECT ends_at FROM events WHERE id = $1", event_id)
    await conn.close()
    print(f"  linking them into the town's hash chain … ({time.perf_counter() - began:.0f} s)",
          flush=True)
    await link(db_url)
    conn = await asyncpg.connect(db_url)
    counts = await conn.fetchrow("SELECT (SELECT count(*) FROM users) AS users,"
                                 " (SELECT count(*) FROM ledger_entries) AS entries,"
                                 " (SELECT count(*) FROM earning_totals) AS totals")
    await conn.close()
    print(f"  built in {time.perf_counter() - began:.0f} s: {counts['users']} users, "
          f"{counts['entries']} entries, {counts['totals']} period totals", flush=True)
    return {"db_url": db_url, "town_id": town_id, "first_village": first_village,
            "villages": villages, "first_user": first_user, "event_id": event_id,
            "ends_at": ends_at, "residents": residents}


async def households(conn, town_id: int) -> None:
    """Households of three neighbours in each village, members since before any entry."""
    print("  grouping residents into households of three …", flush=True)
    await conn.execute("""CREATE TEMP TABLE ranked AS SELECT id, village_id,
            row_number() OVER (PARTITION BY village_id ORDER BY id) - 1 AS n
        FROM users WHERE town_id = $1""", town_id)
    await conn.execute("""INSERT INTO households (town_id, village_id, name, head_id, created_at)
        SELECT $1, village_id, '户' || id, id, now() FROM ranked WHERE n % 3 = 0""", town_id)
    await conn.execute("""INSERT INTO household_members (household_id, user_id, joined_at)
        SELECT h.id, r.id, now() - interval '500 days' FROM ranked r
        JOIN ranked head ON head.village_id = r.village_id AND head.n = r.n - r.n % 3
        JOIN households h ON h.head_id = head.id""")
    await conn.execute("DROP TABLE ranked")


async def link(db_url: str) -> None:
    from torreya.db import orm
    from torreya.settings import Settings
    from torreya.trust.chain import chain_pending

    # as `torreya migrate` links the history from before sealing: offline work, without
    # the request timeouts (a first batch over ten million unlinked entries outlasts 5 s)
    async with orm(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET), timeouts=False):
        await chain_pending()


async def reuse(pg_url: str, name: str) -> dict:
    """The database of an earlier run, brought up to date (e.g. a new index)."""
    import asyncpg

    from torreya.db import migrate
    from torreya.settings import Settings

    db_url = f"{pg_url}/{name}"
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
    if not await conn.fetchval("SELECT count(*) FROM households"):
        await households(conn, info["town_id"])
    info.update(db_url=db_url, event_id=event["id"], ends_at=event["ends_at"])
    await conn.close()
    print(f"  reused in {time.perf_counter() - began:.0f} s", flush=True)
    return info


def refresh_every_second(url: str, stop: threading.Event) -> None:
    """The meeting-room display: the board fetched once a second while check-ins run."""
    with httpx.Client(timeout=30) as client:
        while not stop.wait(1.0):
            client.get(url)


def audited(db_url: str) -> bool:
    """`torreya audit` on the built town, as an operator runs it: a benchmark measures a
    valid town or nothing (issue 37). Prints its time and peak memory."""
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": "http://bench"}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "torreya.cli", "audit"], env=env,
                          capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  torreya audit: {time.perf_counter() - began:.1f} s, peak {peak:.0f} MB: "
          + (done.stdout.strip().splitlines() or ["(no output)"])[-1], flush=True)
    if done.returncode != 0:
        print("the benchmark town fails the audit; not measuring it:\n" + done.stdout[-2000:]
              + done.stderr[-2000:])
    return done.returncode == 0


def exported(db_url: str) -> bool:
    """`torreya export-chain` and `torreya verify-export` on the built town, as an operator
    and an outside auditor run them (issue 36's cost table). Prints time and peak memory."""
    import asyncpg

    async def public_keys() -> list[str]:
        conn = await asyncpg.connect(db_url)
        try:
            return [r["public_key"] for r in await conn.fetch("SELECT public_key FROM town_keys")]
        finally:
            await conn.close()

    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": "http://bench"}
    with tempfile.TemporaryDirectory(prefix="torreya-export-") as folder:
        target = Path(folder) / "chain.jsonl"
        for name, command in [
            ("export-chain", ["export-chain", "--town", "bench", str(target)]),
            ("verify-export", ["verify-export", str(target)]),
        ]:
            if name == "verify-export":
                for key in asyncio.run(public_keys()):
                    command += ["--public-key", key]
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "torreya.cli", *command], env=env,
                                  capture_output=True, text=True)
            size = target.stat().st_size / 1e6 if target.exists() else 0
            print(f"  torreya {name}: {time.perf_counter() - began:.1f} s ({size:.0f} MB of "
                  "JSON Lines)", flush=True)
            if done.returncode != 0:
                print(done.stdout[-2000:] + done.stderr[-2000:])
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--checkins", type=int, default=20000,
                        help="distinct residents checking in, for each run of check-ins")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (check-ins idle, check-ins with the board refreshing)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database an earlier run built (skips the build)")
    parser.add_argument("--name", default="torreya_bench_boards",
                        help="the database to build or reuse (e.g. keep a 10 M town apart)")
    parser.add_argument("--audit-only", action="store_true",
                        help="build (or reuse) the town and audit it; no load")
    parser.add_argument("--no-audit", action="store_true",
                        help="with --reuse: measure without auditing again (audited when built)")
    parser.add_argument("--export", action="store_true",
                        help="also time export-chain and verify-export on the town")
    args = parser.parse_args(argv)
    if args.reuse:
        info = asyncio.run(reuse(args.pg_url, args.name))
    else:
        print(f"building: {args.residents} residents, {args.entries} entries")
        info = asyncio.run(build(args.pg_url, args.residents, args.entries, args.name))
    if not (args.reuse and args.no_audit) and not audited(info["db_url"]):
        return 1
    if args.export and not exported(info["db_url"]):
        return 1
    if args.audit_only:
        return 0

    from torreya.checkins.codes import poster_token
    from torreya.security import issue_access_token
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=info["db_url"], SECRET_KEY=SECRET, BASE_URL="http://bench")
    token = poster_token(settings, event_id=info["event_id"], ends_at=info["ends_at"])
    env = server_env(info["db_url"])  # this checkout's code, also from a git worktree
    workdir = Path(tempfile.mkdtemp(prefix="torreya-bench-boards-"))
    rng = random.Random(1)
    boards = [wrk.Request("GET", f"/api/v1/towns/{info['town_id']}/leaderboard") if n % 2 else
              wrk.Request("GET", f"/api/v1/villages/"
                                 f"{info['first_village'] + rng.randrange(info['villages'])}"
                                 "/leaderboard")
              for n in range(2000)]
    boards_file = wrk.write_requests(workdir / "boards.txt", boards)
    villages = [info["first_village"] + rng.randrange(info["villages"]) for _ in range(2000)]
    residents_file = wrk.write_requests(workdir / "village-boards.txt", [
        wrk.Request("GET", f"/api/v1/villages/{v}/leaderboard") for v in villages])
    households_file = wrk.write_requests(workdir / "household-boards.txt", [
        wrk.Request("GET", f"/api/v1/villages/{v}/household-leaderboard") for v in villages])
    # Distinct residents of the town check in to the event: a first check-in every time,
    # each run of check-ins (idle or busy, in each round) with residents of its own.
    runs = 2 * args.rounds
    args.checkins = min(args.checkins, info["residents"] // runs)
    checkin_files = [wrk.write_requests(workdir / f"checkins-{n}.txt", [
        wrk.Request("POST", "/api/v1/checkins",
                    issue_access_token(settings, info["first_user"] + n * args.checkins + k),
                    {"token": token}) for k in range(args.checkins)]) for n in range(runs)]
    servers = []
    try:
        ours, bare = free_port(), free_port()
        servers.append(start("torreya.asgi:app", ours, env))
        servers.append(start("bench.bare:app", bare, env, server="fast"))
        here = f"http://127.0.0.1:{ours}"
        base = wrk.run("bare JSON (uvloop, httptools)", f"http://127.0.0.1:{bare}/json",
                       seconds=args.seconds)

        def steady(name: str, requests: Path) -> wrk.Figures:
            # Boards read steadily, as a town's are: each run right after 2 s of the same
            # requests. A worker's first reading of a board (or after 5 s unread) waits for
            # its query; under steady reading none does (boards/kept.py). Cold, the first
            # second of 300 villages' boards is 300 queries at once.
            wrk.run("warm-up", here, seconds=2, requests_file=requests)
            return wrk.run(name, here, seconds=args.seconds, requests_file=requests)

        board = steady("leaderboards", boards_file)
        village_board = steady("village boards, residents", residents_file)
        household_board = steady("village boards, households", households_file)
        idles, busies, backlog = [], [], []

        def settled() -> None:
            # Each run of check-ins starts with the worker inside the server idle: the
            # outbox the last run left is dispatched first (else a run is charged for the
            # run before it, and the second of each round always came out slower).
            backlog.append(asyncio.run(drain_outbox(info["db_url"]))[0])
            time.sleep(1)

        for n in range(args.rounds):
            settled()
            idles.append(wrk.run(f"check-ins, idle ({n + 1})", here,
                                 seconds=args.seconds / 2, connections=8,
                                 requests_file=checkin_files[2 * n]))
            settled()
            stop = threading.Event()
            display = threading.Thread(target=refresh_every_second, args=(
                f"{here}/api/v1/towns/{info['town_id']}/leaderboard", stop))
            display.start()
            busies.append(wrk.run(f"check-ins, board every 1 s ({n + 1})", here,
                                  seconds=args.seconds / 2, connections=8,
                                  requests_file=checkin_files[2 * n + 1]))
            stop.set()
            display.join()
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    print(f"\nboards at {info['residents']} residents ({os.cpu_count()} cores; wrk -t1, "
          f"64 connections for boards, 8 for check-ins):")
    for f in (base, board, village_board, household_board, *idles, *busies):
        print(f.line())
    print(f"  ratio leaderboard / bare JSON: {board.rps / base.rps:.2f}, p99 "
          f"{board.p99_ms:.0f} ms   (issue 36: >= 0.5, p99 < 100 ms)")
    print(f"  ratio village board / bare JSON: residents {village_board.rps / base.rps:.2f},"
          f" households {household_board.rps / base.rps:.2f}   (issue 33: the same)")
    idle_p99 = statistics.median(f.p99_ms for f in idles)
    busy_p99 = statistics.median(f.p99_ms for f in busies)
    print(f"  check-in p99, median of {args.rounds} rounds: idle {idle_p99:.1f} ms, board "
          f"every 1 s {busy_p99:.1f} ms (rounds: idle "
          f"{', '.join(f'{f.p99_ms:.1f}' for f in idles)}; busy "
          f"{', '.join(f'{f.p99_ms:.1f}' for f in busies)})")
    print(f"  check-in p99 busy / idle: {busy_p99 / idle_p99:.2f}   (target <= 1.2); outbox"
          f" messages left by the run before, dispatched before each: "
          f"{', '.join(map(str, backlog))}")
    if max(f.requests for f in (*idles, *busies)) > args.checkins:
        print("  note: the check-ins ran out of residents (raise --checkins, or --residents); "
              "repeats answered 409")
    clean = all(f.non2xx == 0 and f.socket_errors == 0
                for f in (base, board, village_board, household_board, *idles, *busies))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
