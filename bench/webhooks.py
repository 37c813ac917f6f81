"""Webhook delivery throughput: the worker draining the outbox to a local receiver.

    python bench/webhooks.py --db sqlite --messages 3000    # or --db postgres

Fills the outbox with check-in messages of a town with one subscribed endpoint, then runs
the delivery worker (in this process, as `torreya worker` does) until every message is
delivered, signed, to a bare Starlette receiver (bench/bare.py /receive) on this machine.
In the same run wrk drives the receiver directly, to show the receiver is not the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import wrk  # noqa: E402
from bench.checkin import SECRET, free_port, fresh_database, server_env, start  # noqa: E402


async def fill_and_drain(db_url: str, receiver: str, messages: int) -> tuple[float, int]:
    from tortoise.transactions import in_transaction

    from torreya.db import migrate, now, orm
    from torreya.models import Town, Webhook, WebhookDelivery
    from torreya.outbox import signing, worker
    from torreya.outbox.service import Message, emit
    from torreya.settings import Settings

    settings = Settings(DATABASE_URL=db_url, SECRET_KEY=SECRET, WEBHOOK_ALLOW_PRIVATE=True,
                        WORKER_POLL_SECONDS=0.05)
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
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(worker.run(settings, stop=stop))
        # Polling the database: the condition lives there, not in an in-process event.
        while await WebhookDelivery.filter(status="succeeded").count() < messages:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - began
        stop.set()
        await task
        failed = await WebhookDelivery.exclude(status="succeeded").count()
    return elapsed, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    workdir, db_url = fresh_database(args.db, args.pg_url, "torreya_bench_hooks")
    port = free_port()
    env = server_env(db_url)
    receiver_url = f"http://127.0.0.1:{port}/receive"
    server = start("bench.bare:app", port, env)
    try:
        body = workdir / "receive.txt"
        wrk.write_requests(body, [wrk.Request("POST", "/receive", "", {"type": "x"})])
        direct = wrk.run("receiver alone (wrk)", f"http://127.0.0.1:{port}",
                         seconds=args.seconds, requests_file=body)
        elapsed, failed = asyncio.run(fill_and_drain(db_url, receiver_url, args.messages))
    finally:
        server.terminate()
        server.wait()
    print(f"database: {args.db}; {os.cpu_count()} cores; {args.messages} messages, one "
          "endpoint, signed, worker batches of 20 at a time")
    print(direct.line())
    print(f"  delivery worker            {args.messages / elapsed:9.0f} deliveries/s   "
          f"({elapsed:.1f} s for all; not delivered: {failed})")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
