"""A crowd at one event (issue 13): 1,000 residents scan one rotating code, on one worker.

    python bench/burst.py --db postgres        # or --db sqlite
    python bench/burst.py --db postgres --residents 1000 --spread 60

Two runs on one `uvicorn` worker, each resident scanning the code the screen shows at that
moment (30-second windows, as staff's display rotates them; bench/wrk/burst.lua):
1. all at once: every resident as fast as 100 connections allow, the worst a rush gets;
2. spread: the same residents at a second event, over `--spread` seconds, each of 50
   connections waiting a random 0–2× the mean before its next resident (the eager ones
   scan at once, the rest as they get their phones out).
Every scan opens a connection of its own, as 1,000 phones would (the TCP handshake is
part of each figure). The bar: no error, and 99 % of scans answered within 250 ms. wrk
also drives a bare JSON endpoint in the same run, to show it could send far more.
Afterwards every resident holds one check-in of each event and the points of both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import wrk  # noqa: E402
from bench.checkin import (  # noqa: E402
    SECRET,
    cpu_model,
    free_port,
    fresh_database,
    prepare,
    server_env,
    start,
)

P99_BAR_MS = 250


async def rotating_events(db_url: str, count: int, minutes: int) -> list[tuple[int, str]]:
    """`count` open events with rotating codes in the bench town; for each, its id and the
    codes of the windows from now to `minutes` on ("window<TAB>code" lines)."""
    from torreya.checkins.codes import rotating_token, rotating_window
    from torreya.db import now, orm
    from torreya.models import Event, Village
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")
    async with orm(settings):
        village = await Village.filter(code="bench").order_by("-id").first()
        start = now() - timedelta(minutes=5)
        first = rotating_window(settings)
        made = []
        for n in range(count):
            event = await Event.create(village=village, town_id=village.town_id,
                                       title=f"扫码高峰{n}", kind="campaign", points=10,
                                       starts_at=start, ends_at=start + timedelta(hours=2),
                                       qr_mode="rotating")
            windows = range(first - 1, first + minutes * 2 + 2)
            made.append((event.id, "".join(
                f"{w}\t{rotating_token(settings, event_id=event.id, window=w)[0]}\n"
                for w in windows)))
    return made


async def check(db_url: str, event_ids: list[int], residents: int) -> tuple[int, list[str]]:
    """(check-ins written, problems): each resident once per event, balances as the ledger
    says (`torreya audit`)."""
    from torreya.db import orm
    from torreya.ledger.invariants import audit_ledger
    from torreya.models import Checkin
    from torreya.settings import Settings

    async with orm(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, BASE_URL="http://bench")):
        written = await Checkin.filter(event_id__in=event_ids).count()
        report = await audit_ledger()
    problems = list(report.problems)
    if written != residents * len(event_ids):
        problems.append(f"{written} check-ins, not {residents * len(event_ids)}")
    return written, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60,
                        help="seconds the second run's scans are spread over")
    parser.add_argument("--rush-connections", type=int, default=100)
    parser.add_argument("--spread-connections", type=int, default=50)
    parser.add_argument("--rush-seconds", type=float, default=10,
                        help="how long wrk runs for the rush (it ends sooner)")
    args = parser.parse_args(argv)

    workdir, db_url = fresh_database(args.db, args.pg_url, "torreya_bench")
    _tokens, bearers = asyncio.run(prepare(db_url, args.residents, 0))
    minutes = int(args.spread // 60) + 3
    events = asyncio.run(rotating_events(db_url, 2, minutes))
    residents = workdir / "residents.txt"
    residents.write_text("".join(f"{b}\n" for b in bearers), encoding="utf-8")
    codes = []
    for n, (_event_id, lines) in enumerate(events):
        codes.append(workdir / f"codes{n}.txt")
        codes[-1].write_text(lines, encoding="utf-8")
    env = server_env(db_url)
    per_connection = args.spread * args.spread_connections / args.residents
    # wrk runs for as long as it is told; each run's last answer comes well before.
    runs = [("all at once", args.rush_connections, 0, args.rush_seconds),
            (f"spread over {args.spread:g} s", args.spread_connections,
             int(per_connection * 1000), args.spread + min(15.0, 3 + args.spread / 4))]
    servers, results = [], []
    try:
        ours_port, bare_port = free_port(), free_port()
        servers.append(start("torreya.asgi:app", ours_port, env))
        servers.append(start("bench.bare:app", bare_port, env))
        generator = wrk.run("bare JSON (generator cap)", f"http://127.0.0.1:{bare_port}/json",
                            seconds=min(5.0, args.rush_seconds),
                            connections=args.rush_connections)
        for (name, connections, pace, seconds), code_file in zip(runs, codes, strict=True):
            lines = wrk.invoke(f"http://127.0.0.1:{ours_port}/api/v1/checkins",
                               wrk.HERE / "burst.lua", seconds=seconds,
                               connections=connections, env={
                                   "TORREYA_BENCH_REQUESTS": str(residents),
                                   "TORREYA_BENCH_CODES": str(code_file),
                                   "TORREYA_BENCH_PACE": str(pace)})
            results.append((name, connections, lines["WRK_BURST"], wrk.figures(name, lines)))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    written, problems = asyncio.run(check(db_url, [e for e, _ in events], args.residents))
    print(f"database: {args.db}; {os.cpu_count()} cores ({cpu_model()}); one worker; "
          f"{args.residents} residents, one rotating code (30 s windows) per event")
    print(generator.line())
    clean = not problems
    for name, connections, counts, figures in results:
        passed = (counts["answered"] == counts["ok"] == args.residents
                  and figures.socket_errors == 0 and figures.p99_ms < P99_BAR_MS)
        clean = clean and passed
        print(f"  {name:<22} {connections:3} connections: {counts['ok']} of "
              f"{counts['residents']} scans answered 2xx, {counts['other']} other, socket "
              f"errors {figures.socket_errors}; p50 {figures.p50_ms:.1f} ms, p99 "
              f"{figures.p99_ms:.1f} ms (bar < {P99_BAR_MS} ms): "
              f"{'passed' if passed else 'FAILED'}")
    print(f"  written: {written} check-ins; ledger audit "
          f"{'clean' if not problems else 'NOT clean: ' + '; '.join(problems[:5])}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
