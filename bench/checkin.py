"""Check-in throughput through the whole HTTP stack, next to a bare one-INSERT endpoint and a
bare JSON endpoint, all driven by wrk in the same run.

    python bench/checkin.py --db sqlite            # or --db postgres
    python bench/checkin.py --db postgres --workers 2 --rounds 5 --seconds 5

Two uvicorn servers (the same worker count) on the same database: Torreya, and a bare
Starlette app (bench/bare.py) doing one INSERT through the same driver and pool. wrk (one
thread, 64 connections) posts a different resident x event pair with every request
(bench/wrk/rotate.lua), so every check-in is a first one: token check, event, rule, claim,
balance, period totals, ledger entry, outbox messages. The bare JSON endpoint shows what the
generator itself can do on this machine; it must be far above both.

The three are measured in rounds, the order of the bare INSERT and the check-in swapped
each round; the ratio of each round is printed, then their median. On a small shared
machine one measurement moves by 15 % from the next, so one round alone says little.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
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
sys.path.insert(0, str(ROOT))
from bench import wrk  # noqa: E402

SECRET = "benchmark-secret-key-0123456789-abcdefghijkl"
# A migrated database that every new one of a run copies instead of migrating from empty
# (PostgreSQL: its name on the same server; SQLite: its file). The test suite's smoke runs
# set it: a migration from empty costs 6 s of CPU, more than a smoke run's measurements.
TEMPLATE = "TORREYA_BENCH_TEMPLATE"


async def prepare(db_url: str, residents: int, events: int = 1) -> tuple[list[str], list[str]]:
    """A town with `residents` residents and `events` open events; returns the events'
    poster tokens and the residents' bearer tokens. (`prepare_offline` adds a staff member
    and an event for the offline sync.)"""
    from torreya.checkins.codes import poster_token
    from torreya.db import migrate, now, orm
    from torreya.ledger.rules import ensure_default_rules
    from torreya.models import Event, Role, Town, User, UserSession, Village
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
        tokens = []
        for n in range(events):
            event = await Event.create(village=village, town=town, title=f"基准活动{n}",
                                       kind="campaign", points=10, starts_at=start,
                                       ends_at=start + timedelta(hours=6), qr_mode="static")
            tokens.append(poster_token(settings, event_id=event.id, ends_at=event.ends_at))
        # Tokens as POST /auth/token makes them: each a login of its own (a session row
        # whose id the token carries), so the check of ended logins is measured too.
        moment = now()
        logins = [UserSession(id=secrets.token_urlsafe(16), user_id=user_id, kind="api",
                              created_at=moment, last_seen_at=moment,
                              expires_at=moment + timedelta(hours=12)) for user_id in ids]
        await UserSession.bulk_create(logins, batch_size=1000)
        bearers = [issue_access_token(settings, login.user_id, 0, login.id)
                   for login in logins]
    return tokens, bearers


async def prepare_offline(db_url: str, scans: int) -> tuple[str, int, list[str]] | None:
    """A staff member's bearer token, an open event and `scans` residents' signed member
    cards, for the offline sync; None for none asked, or a checkout without it (a
    before/after run)."""
    if scans <= 0:
        return None
    try:
        from torreya.checkins.signed import card_code
    except ImportError:
        return None
    from torreya.db import now, orm
    from torreya.models import Event, Role, Town, User, UserSession, Village
    from torreya.security import issue_access_token
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")
    async with orm(settings):
        village = await Village.filter(code="bench").order_by("-id").first()
        town = await Town.get(id=village.town_id)
        staff = await User.create(username=f"bench_staff{town.id}", display_name="网格员",
                                  role=Role.STAFF, town=town, village=village)
        moment = now()
        login = await UserSession.create(id=secrets.token_urlsafe(16), user_id=staff.id,
                                         kind="api", created_at=moment, last_seen_at=moment,
                                         expires_at=moment + timedelta(hours=12))
        start = moment - timedelta(hours=1)
        event = await Event.create(village=village, town=town, title="离线扫码基准",
                                   kind="campaign", points=10, starts_at=start,
                                   ends_at=start + timedelta(hours=6), qr_mode="static")
        people = await User.filter(village=village, role=Role.RESIDENT).order_by("id").limit(
            scans)
        cards = [await card_code(settings, person) for person in people]
    return issue_access_token(settings, staff.id, 0, login.id), event.id, cards


def offline_sync(url: str, bearer: str, event_id: int, cards: list[str], batch: int
                 ) -> tuple[float, int]:
    """Sync the cards as queued scans, `batch` per request, one request at a time: (seconds,
    scans credited)."""
    from datetime import UTC, datetime

    made = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    credited, began = 0, time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {bearer}"}, timeout=120) as client:
        for i in range(0, len(cards), batch):
            scans = [{"nonce": secrets.token_hex(12), "code": code, "scanned_at": made}
                     for code in cards[i:i + batch]]
            answer = client.post(f"{url}/api/v1/events/{event_id}/offline-scans",
                                 json={"scans": scans})
            answer.raise_for_status()
            credited += sum(r["outcome"] == "credited" for r in answer.json()["results"])
    return time.perf_counter() - began, credited


async def chain_coverage(db_url: str) -> tuple[int, int] | None:
    """(entries linked into the hash chain, entries) once the load is over, or None for a
    checkout without the chain (a before/after comparison)."""
    from torreya.db import fetch, orm
    from torreya.settings import Settings

    async with orm(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")):
        from tortoise import connections

        db = connections.get("default")
        try:
            [row] = await fetch(db, "SELECT (SELECT COUNT(*) FROM ledger_chain) AS links,"
                                " (SELECT COUNT(*) FROM ledger_entries) AS entries", [])
        except Exception:  # noqa: BLE001 (no such table: an older checkout)
            return None
    return int(row["links"]), int(row["entries"])


async def drain_outbox(db_url: str, limit: float = 300) -> tuple[int, float]:
    """Wait for the server's worker to dispatch the outbox messages the load left waiting:
    (how many were waiting, seconds it took). The check-in rate leaves that part of its
    work to after the load; a sync measured before it is done would be charged for it."""
    from torreya.db import fetch, orm
    from torreya.settings import Settings

    began = time.perf_counter()
    async with orm(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")):
        from tortoise import connections

        db = connections.get("default")
        sql = "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at IS NULL"
        waiting = first = int((await fetch(db, sql, []))[0]["n"])
        while waiting and time.perf_counter() - began < limit:
            await asyncio.sleep(0.5)
            waiting = int((await fetch(db, sql, []))[0]["n"])
    return first, time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {
    # uvicorn as Torreya's checkout installs it: uvloop and httptools where their wheels
    # are installed (uvicorn[standard]), else asyncio and h11
    "uvicorn": ["--loop", "auto", "--http", "auto"],
    "h11": ["--loop", "asyncio", "--http", "h11"],  # pure Python, the fallback
    "fast": ["--loop", "uvloop", "--http", "httptools"],
}


def command(server: str, module: str, port: int, workers: int) -> list[str]:
    """The command serving `module` on `port`: uvicorn in one of SERVERS' settings, or
    Granian (a server written in Rust) when it is installed."""
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
                "--no-ws", "--log-level", "warning", module]
    return [sys.executable, "-m", "uvicorn", module, "--port", str(port), "--log-level",
            "warning", "--no-access-log", "--workers", str(workers), *SERVERS[server]]


def start(module: str, port: int, env: dict, workers: int = 1,
          server: str = "uvicorn") -> subprocess.Popen:
    process = subprocess.Popen(command(server, module, port, workers), cwd=ROOT, env=env)
    for _ in range(150):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{module} did not start")


def fresh_database(db: str, pg_url: str, name: str) -> tuple[Path, str]:
    """A work folder and a new database for one run: PostgreSQL's `name`, dropped and made
    again, or an SQLite file in the folder. Empty, or a copy of TEMPLATE's database when
    that is set, which the run's migration then finds up to date."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    if db == "postgres":
        return workdir, recreate_pg(pg_url, name)
    path = workdir / f"{name}.sqlite3"
    if os.environ.get(TEMPLATE):
        shutil.copy(os.environ[TEMPLATE], path)
    return workdir, f"sqlite://{path}"


def server_env(db_url: str) -> dict[str, str]:
    """The environment of the servers a benchmark starts: its database and secret, and this
    checkout's code, also when another checkout's package is installed (a before/after
    comparison from a git worktree)."""
    return {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
            "TORREYA_BASE_URL": "http://bench",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def recreate_pg(pg_url: str, name: str) -> str:
    """PostgreSQL's database `name`, dropped and made again: empty, or a copy of TEMPLATE's."""
    import asyncpg

    template = os.environ.get(TEMPLATE)

    async def run():
        conn = await asyncpg.connect(f"{pg_url}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"'
                           + (f' TEMPLATE "{template}"' if template else ""))
        await conn.close()

    asyncio.run(run())
    return f"{pg_url}/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--seconds", type=float, default=8, help="of each measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (bare JSON, bare INSERT, check-in), alternating")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=[*SERVERS, "granian"], default="uvicorn",
                        help="what serves Torreya and the bare INSERT (the bare JSON "
                             "endpoint always runs on uvicorn with uvloop and httptools)")
    parser.add_argument("--worker", choices=["apart", "inside"], default="inside",
                        help="the delivery worker (outbox, hash chain, chores) as a process "
                             "of its own beside the web process, as deploy/ runs it, or "
                             "inside the web process (TORREYA_WORKER=1, the default of a "
                             "bare `torreya serve`)")
    parser.add_argument("--residents", type=int, default=6000)
    # Above what the bar asks of the fastest machine seen (0.3 x 29,000 req/s of bare JSON
    # on an AMD EPYC, 2026-12-07): a round that runs out of pairs answers 409s and fails.
    parser.add_argument("--rate-cap", type=int, default=10000,
                        help="check-ins/s a round may reach before its pairs run out")
    parser.add_argument("--offline-scans", type=int, default=2000,
                        help="residents' cards synced as offline scans after the load "
                             "(0: none)")
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args(argv)

    workdir, db_url = fresh_database(args.db, args.pg_url, "torreya_bench")
    # Every request of every round is a distinct resident x event pair: each check-in is a
    # first one that moves points. Enough pairs for each round at the rate cap.
    per_round = int(args.rate_cap * max(args.seconds, 1))
    events = -(-(per_round * args.rounds + args.residents) // args.residents)
    tokens, bearers = asyncio.run(prepare(db_url, args.residents, events))
    offline = asyncio.run(prepare_offline(db_url, min(args.offline_scans, args.residents)))
    # Event by event, resident by resident: consecutive requests are different people. The
    # bare INSERT gets the same requests at its own path.
    pairs = [(bearer, {"token": token}) for token in tokens for bearer in bearers]
    warm, pairs = pairs[:args.residents], pairs[args.residents:]
    slices = [pairs[n * per_round:(n + 1) * per_round] for n in range(args.rounds)]

    def requests_file(name: str, path: str, chosen: list) -> Path:
        return wrk.write_requests(workdir / f"{name}.txt", [
            wrk.Request("POST", path, bearer, body) for bearer, body in chosen])

    env = server_env(db_url)
    servers = []
    rounds: list[tuple[wrk.Figures, wrk.Figures, wrk.Figures]] = []
    spent: list[float] = []  # CPU seconds of Torreya's server and the database, per round
    parts: list[tuple[float, float]] = []  # the same, the server's and the database's apart
    try:
        ours_port, bare_port, json_port = free_port(), free_port(), free_port()
        if args.worker == "apart":  # as deploy/ runs it: the web process serves requests only
            servers.append(start("torreya.asgi:app", ours_port, {**env, "TORREYA_WORKER": "0"},
                                 args.workers, args.server))
            servers.append(subprocess.Popen([sys.executable, "-m", "torreya.cli", "worker"],
                                            cwd=ROOT, env=env))
        else:  # the outbox, the hash chain and the chores inside the web process
            servers.append(start("torreya.asgi:app", ours_port, env, args.workers, args.server))
        torreya_pids = {server.pid for server in servers}
        servers.append(start("bench.bare:app", bare_port, env, args.workers, args.server))
        # The stack's own limit: the fastest Python server at hand parsing the same bodies.
        servers.append(start("bench.bare:app", json_port, env, args.workers, "fast"))
        ours_url = f"http://127.0.0.1:{ours_port}/api/v1/checkins"
        bare_url = f"http://127.0.0.1:{bare_port}/insert"
        json_url = f"http://127.0.0.1:{json_port}/parse"
        short = min(2.0, args.seconds)
        wrk.run("warm-up", bare_url, seconds=short,
                requests_file=requests_file("warm-bare", "/insert", warm))
        warmed = wrk.run("warm-up", ours_url, seconds=short,
                         requests_file=requests_file("warm-ours", "/api/v1/checkins", warm))
        c, seconds = args.connections, args.seconds
        for n, chosen in enumerate(slices):
            def bare_insert(n=n, chosen=chosen) -> wrk.Figures:
                return wrk.run("bare one-INSERT", bare_url, seconds=seconds, connections=c,
                               requests_file=requests_file(f"bare{n}", "/insert", chosen))

            def check_in(n=n, chosen=chosen) -> wrk.Figures:
                before = cpu_parts(torreya_pids)
                figures = wrk.run("Torreya check-in", ours_url, seconds=seconds,
                                  connections=c, requests_file=requests_file(
                                      f"ours{n}", "/api/v1/checkins", chosen))
                after = cpu_parts(torreya_pids)
                spent.append(sum(after) - sum(before))
                parts.append((after[0] - before[0], after[1] - before[1]))
                return figures

            generator = wrk.run("bare JSON (uvloop, httptools)", json_url, seconds=seconds,
                                connections=c, requests_file=requests_file(
                                    f"json{n}", "/parse", chosen))
            # Which goes first alternates, so a drift of the machine favours neither.
            if n % 2 == 0:
                bare = bare_insert()
                ours = check_in()
            else:
                ours = check_in()
                bare = bare_insert()
            rounds.append((generator, bare, ours))
        if offline is not None:
            before = cpu_seconds(torreya_pids)
            drained = asyncio.run(drain_outbox(db_url))
            middle = cpu_seconds(torreya_pids)
            synced = offline_sync(f"http://127.0.0.1:{ours_port}", *offline, args.batch)
            sync_cpu, drain_cpu = cpu_seconds(torreya_pids) - middle, middle - before
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    print(f"database: {args.db}; {os.cpu_count()} cores ({cpu_model()}); server "
          f"{args.server} ({stack(args.server)}), workers "
          f"{args.workers}, delivery worker {args.worker}; wrk -t1 -c{args.connections}, "
          f"{args.rounds} rounds of "
          f"{args.seconds:g} s each, distinct resident x event pairs")
    ratios, limits = [], []
    for n, (generator, bare, ours) in enumerate(rounds, start=1):
        print(f" round {n}")
        for f in (generator, bare, ours):
            print(f.line())
        ratios.append(ours.rps / bare.rps)
        limits.append(ours.rps / generator.rps)
        print(f"  ratio check-in / bare INSERT: {ratios[-1]:.2f}; check-in / bare JSON: "
              f"{limits[-1]:.2f}")
    print(f"ratio check-in / bare INSERT, median of {len(ratios)} rounds: "
          f"{statistics.median(ratios):.2f} (rounds: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; issue 13: >= 0.6)")
    print(f"ratio check-in / bare JSON, median of {len(limits)} rounds: "
          f"{statistics.median(limits):.2f} (rounds: "
          f"{', '.join(f'{r:.2f}' for r in limits)}; issue 36: >= 0.3)")
    print(f"check-in rate, median: {statistics.median(o.rps for _, _, o in rounds):.0f} req/s")
    # What bounds it on a small machine: the CPU a check-in costs Torreya's server and the
    # database together, from /proc; the cores can give no more than cores / that.
    per_checkin = statistics.median(cpu / o.requests for cpu, (_, _, o) in zip(
        spent, rounds, strict=True))
    print(f"CPU per check-in (Torreya's processes and PostgreSQL, or SQLite's thread), median: "
          f"{per_checkin * 1000:.2f} ms; {os.cpu_count()} cores / that = "
          f"{(os.cpu_count() or 1) / per_checkin:.0f} check-ins/s at most, before wrk's share")
    for name, part in (("Torreya's processes", 0), ("PostgreSQL", 1)):
        if args.db == "postgres" or part == 0:
            share = statistics.median(p[part] / o.requests for p, (_, _, o) in zip(
                parts, rounds, strict=True))
            print(f"  of it {name}: {share * 1000:.2f} ms")
    coverage = asyncio.run(chain_coverage(db_url))
    if coverage is not None:  # linked by the worker while the load ran (about once a second)
        print(f"  hash chain: {coverage[0]} of {coverage[1]} entries linked when the load "
              "stopped")
    rate = statistics.median(ours.rps for _, _, ours in rounds)
    if offline is not None:
        seconds, credited = synced
        per_scan, per_checkin = seconds / max(credited, 1), 1 / rate
        print(f"  outbox: {drained[0]} messages the load left waiting, dispatched in "
              f"{drained[1]:.1f} s before the sync")
        print(f"  offline sync: {credited} of {len(offline[2])} scans credited, {args.batch} "
              f"per request, one request at a time: {per_scan * 1000:.2f} ms per scan; "
              f"a check-in under load costs {per_checkin * 1000:.2f} ms of the server "
              f"(1 / its median rate): ratio {per_scan / per_checkin:.2f}")
        # The same in CPU time, which one request at a time cannot turn into throughput
        # the way 64 connections do: the server's and the database's processes, from /proc.
        # A check-in's share of the outbox dispatch left to after the load is added to it.
        checkins = warmed.requests + sum(ours.requests for _, _, ours in rounds)
        dispatch = drain_cpu / checkins
        checkin_cpu = statistics.median(
            cpu / ours.requests for cpu, (_, _, ours) in zip(spent, rounds, strict=True)
        ) + dispatch
        scan_cpu = sync_cpu / max(credited, 1)
        print(f"  CPU (Torreya's server and the database): {scan_cpu * 1000:.2f} ms per "
              f"synced scan; {checkin_cpu * 1000:.2f} ms per check-in (median of the rounds, "
              f"{dispatch * 1000:.2f} ms of it the dispatch after the load): ratio "
              f"{scan_cpu / checkin_cpu:.2f}")
    if any(ours.requests > per_round for _, _, ours in rounds):
        print("  note: a round ran out of pairs (raise --rate-cap); repeats answered 409")
    clean = all(f.non2xx == 0 and f.socket_errors == 0 for r in rounds for f in r[1:]) and (
        offline is None or synced[1] == len(offline[2]))
    return 0 if clean else 1


def cpu_seconds(ours: set[int]) -> float:
    """CPU seconds (user and system) used so far by Torreya's processes `ours` (the server
    and the delivery worker beside it), their children (the workers of `--workers N`) and
    every PostgreSQL process on the machine."""
    return sum(cpu_parts(ours))


def cpu_parts(ours: set[int]) -> tuple[float, float]:
    """CPU seconds used so far by Torreya's processes `ours` with their children, and by
    every PostgreSQL process on the machine (SQLite works inside Torreya's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[
                stat.rindex(")") + 2:].split()
            processes[int(entry.name)] = (name, int(fields[1]),
                                          (int(fields[11]) + int(fields[12])) / ticks)
    return (sum(cpu for pid, (name, parent, cpu) in processes.items()
                if (pid in ours or parent in ours) and name != "postgres"),
            sum(cpu for name, _, cpu in processes.values() if name == "postgres"))


def stack(server: str) -> str:
    """What `server` ran on, as installed here."""
    if server == "granian":
        return "Granian"
    if server == "uvicorn":
        try:
            import httptools  # noqa: F401
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio, h11"
        return "uvloop, httptools"
    return {"h11": "asyncio, h11", "fast": "uvloop, httptools"}[server]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
