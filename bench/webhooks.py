"""Webhook delivery throughput: delivery workers draining the outbox to a local receiver,
next to the check-in rate of the same machine (issue 36: deliveries keep up with check-ins).

    python bench/webhooks.py --db postgres --messages 20000 --workers 2
    python bench/webhooks.py --db sqlite --messages 3000 --checkin-seconds 0

Fills the outbox with check-in messages of a town with one subscribed endpoint, then starts
`--workers` processes of `torreya worker` (as a deployment runs them) until every message is
delivered, signed, to a bare receiver (bench/bare.py /receive, on uvicorn with uvloop and
httptools) on this machine. The rate is the messages over the time from the first attempt
to the last (the attempts' own timestamps), so the workers' start-up is not in it. In the
same run wrk drives the receiver directly, to show the receiver is not the cap, and
bench/checkin.py measures the check-in rate (one worker, 64 connections), for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import wrk  # noqa: E402
from bench.checkin import SECRET, free_port, fresh_database, server_env, start  # noqa: E402


async def fill(db_url: str, receiver: str, messages: int) -> None:
    from tortoise.transactions import in_transaction

    from torreya.db import migrate, now, orm
    from torreya.models import Town, Webhook
    from torreya.outbox import signing
    from torreya.outbox.service import Message, emit
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET)
    await migrate(settings)
    async with orm(settings):
        town = await Town.create(name="基准镇", code=f"hooks{int(time.time())}",
                                 currency_name="香榧币")
        await Webhook.create(town=town, url=receiver, events=["checkin.created"],
                             secret=signing.new_secret())
        for start_at in range(0, messages, 500):
            async with in_transaction() as connection:
                await emit(connection, *[Message(event_type="checkin.created", town_id=town.id,
                                                 data={"id": n, "event_id": 1, "village_id": 1,
                                                       "user_id": n, "points": 5,
                                                       "method": "static", "staff_id": None,
                                                       "created_at": now()})
                                         for n in range(start_at, min(messages,
                                                                      start_at + 500))])


async def delivered(db_url: str) -> tuple[int, int, float]:
    """(deliveries succeeded, deliveries not, seconds from the first attempt to the last)."""
    from torreya.db import fetch, orm
    from torreya.settings import Settings

    async with orm(Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET)):
        from tortoise import connections

        db = connections.get("default")
        [counts] = await fetch(db, "SELECT COUNT(*) FILTER (WHERE status = 'succeeded') AS ok,"
                               " COUNT(*) FILTER (WHERE status <> 'succeeded') AS other"
                               " FROM webhook_deliveries", [])
        [span] = await fetch(db, "SELECT MIN(created_at) AS first, MAX(created_at) AS last"
                             " FROM webhook_attempts", [])
    seconds = 0.0
    if span["first"] is not None:
        first, last = (value if not isinstance(value, str) else _parse(value)
                       for value in (span["first"], span["last"]))
        seconds = (last - first).total_seconds()
    return int(counts["ok"]), int(counts["other"]), seconds


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def drain(db_url: str, messages: int, workers: int, limit: float = 600) -> None:
    """Run `workers` processes of `torreya worker` until every message is delivered."""
    env = {**server_env(db_url), "TORREYA_WEBHOOK_ALLOW_PRIVATE": "1",
           "TORREYA_WORKER_POLL_SECONDS": "0.05"}
    processes = [subprocess.Popen([sys.executable, "-m", "torreya.cli", "worker"], env=env,
                                  cwd=ROOT, stdout=subprocess.DEVNULL)
                 for _ in range(workers)]
    began = time.perf_counter()
    try:
        while asyncio.run(delivered(db_url))[0] < messages:
            if time.perf_counter() - began > limit:
                raise RuntimeError("the workers did not deliver everything in time")
            time.sleep(0.5)
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def checkin_rate(db: str, pg_url: str, seconds: float) -> float | None:
    """The check-in rate of this machine, from bench/checkin.py (one round, one worker)."""
    if seconds <= 0:
        return None
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "checkin.py"), "--db", db,
                           "--pg-url", pg_url,
                           "--rounds", "1", "--seconds", str(seconds), "--offline-scans", "0",
                           "--residents", "2000"],
                          capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"check-in rate, median: (\d+) req/s", done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"bench/checkin.py failed:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes of `torreya worker` delivering at once")
    parser.add_argument("--seconds", type=float, default=5, help="of the receiver's wrk run")
    parser.add_argument("--checkin-seconds", type=float, default=5,
                        help="of the check-in measurement beside it (0: none)")
    args = parser.parse_args(argv)
    from torreya.outbox import worker

    workdir, db_url = fresh_database(args.db, args.pg_url, "torreya_bench_hooks")
    port = free_port()
    env = server_env(db_url)
    receiver_url = f"http://127.0.0.1:{port}/receive"
    server = start("bench.bare:app", port, env, server="fast")
    try:
        body = workdir / "receive.txt"
        wrk.write_requests(body, [wrk.Request("POST", "/receive", "", {"type": "x"})])
        direct = wrk.run("receiver alone (wrk)", f"http://127.0.0.1:{port}",
                         seconds=args.seconds, requests_file=body)
        asyncio.run(fill(db_url, receiver_url, args.messages))
        drain(db_url, args.messages, args.workers)
        succeeded, other, seconds = asyncio.run(delivered(db_url))
    finally:
        server.terminate()
        server.wait()
    rate = checkin_rate(args.db, args.pg_url, args.checkin_seconds)
    print(f"database: {args.db}; {os.cpu_count()} cores; {args.messages} messages, one "
          f"endpoint, signed; {args.workers} worker process(es), rounds of "
          f"{worker.DELIVERY_BATCH}, {worker.PER_ENDPOINT} lanes per endpoint")
    print(direct.line())
    per_second = succeeded / seconds if seconds else 0.0
    print(f"  delivery workers           {per_second:9.0f} deliveries/s   ({seconds:.1f} s "
          f"from the first attempt to the last; not delivered: {other})")
    if rate is not None:
        print(f"  check-ins (bench/checkin.py) {rate:7.0f} req/s")
        print(f"  ratio deliveries / check-ins: {per_second / rate:.2f}   (issue 36: >= 1.0)")
    return 0 if other == 0 and succeeded == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
