"""The delivery worker: drains the outbox into webhook deliveries and sends them.

Runs inside `torreya serve` (one per process) and as `torreya worker`. Safe with several
workers and hosts: on PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED; everywhere a
delivery is leased by a conditional UPDATE … RETURNING before it is sent, and a message
fans out at most once per endpoint (a unique key). Nothing is sent inside a transaction.

What was committed before a crash is delivered after it. A crash after a receiver answered
but before the answer was recorded sends it again with the same `webhook-id`: delivery is
at least once, and receivers drop repeats by that id (Standard Webhooks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
from tortoise.transactions import in_transaction

from torreya.db import conn, fetch, is_postgres, now, placeholders
from torreya.integrity import detect as integrity
from torreya.models.webhooks import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from torreya.notifications.sender import send_due_sms
from torreya.notifications.service import notices_from_outbox, notify
from torreya.outbox import signing
from torreya.outbox.addresses import check_public
from torreya.outbox.leases import lease
from torreya.outbox.webhooks import secrets_in_force
from torreya.settings import Settings
from torreya.signin.gateway import gateway_for
from torreya.trust.chain import chain_pending

log = logging.getLogger("torreya.worker")

# Seconds before each retry: the first within 10 s, then backing off to hours; with the
# first attempt that is 9 tries over about 33 hours (SPEC §5.1: at least 24 h).
RETRY_DELAYS = (5, 60, 300, 1800, 7200, 14400, 36000, 57600)
JITTER = 0.2


def retry_delay(attempts: int, rng: random.Random | None = None) -> float | None:
    """Seconds until the next try after `attempts` failed ones; None when out of tries."""
    if attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[attempts - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


def _moment(value: datetime | str) -> datetime:
    """A timestamp from raw SQL: asyncpg gives datetimes, SQLite the stored text."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def dispatch(batch: int = 200) -> int:
    """Fan new outbox messages out to the active endpoints subscribed to them, once each.
    Returns how many messages were dispatched."""
    moment = now()
    async with in_transaction() as connection:
        lock = " FOR UPDATE SKIP LOCKED" if is_postgres(connection) else ""
        messages = await fetch(connection, "SELECT id, town_id, event_type, payload,"
                               " created_at FROM outbox WHERE dispatched_at IS NULL"
                               f" ORDER BY id LIMIT ?{lock}",
                               [batch])
        if not messages:
            return 0
        towns = {m["town_id"] for m in messages if m["town_id"] is not None}
        hooks = await Webhook.filter(town_id__in=towns, is_active=True).using_db(connection)
        rows: list[object] = []
        for message in messages:
            made = _moment(message["created_at"])
            for hook in hooks:
                # An endpoint receives what happened after it was subscribed, not history.
                if (hook.town_id == message["town_id"] and message["event_type"] in hook.events
                        and made >= hook.created_at):
                    rows += [hook.id, message["id"], message["event_type"], "pending", 0,
                             moment, moment]
        if rows:
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * (len(rows) // 7))
            await connection.execute_query(placeholders(connection, (
                "INSERT INTO webhook_deliveries (webhook_id, message_id, event_type, status,"
                f" attempts, next_attempt_at, created_at) VALUES {values}"
                " ON CONFLICT (webhook_id, message_id) DO NOTHING")), rows)
        # Residents are told in the same transaction: a message is dispatched to its
        # endpoints and its notifications together, once.
        await notify(connection, await notices_from_outbox(connection, messages))
        ids = [m["id"] for m in messages]
        await connection.execute_query(placeholders(connection, (
            f"UPDATE outbox SET dispatched_at = ? WHERE id IN ({', '.join('?' * len(ids))})")),
            [moment, *ids])
    # Integrity signals read the same messages, once each, after they are dispatched: a
    # detector's failure is logged there and holds nothing up.
    await integrity.from_messages(messages)
    return len(messages)


# Dispatched messages are kept this long (redelivery reads them), then purged, unless a
# delivery of theirs is still waiting.
KEEP_MESSAGES = timedelta(days=30)


async def purge_delivered(*, limit: int = 5000) -> int:
    """Forget old dispatched messages no delivery waits for; safe from every worker."""
    connection = conn()
    rows = await fetch(connection, (
        "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
        " WHERE o.dispatched_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
        " WHERE d.message_id = o.id AND d.status = ?) ORDER BY o.id LIMIT ?) RETURNING id"),
        [now() - KEEP_MESSAGES, "pending", limit])
    return len(rows)


def envelope(message: dict) -> bytes:
    """The body every endpoint receives (SPEC §5.1): the type, the town, when it happened
    (RFC 3339 on both databases: SQLite hands back its stored text) and the data."""
    payload = message["payload"]
    data = payload if isinstance(payload, dict) else json.loads(payload)
    return json.dumps({"type": message["event_type"], "town_id": message["town_id"],
                       "timestamp": _moment(message["created_at"]).isoformat(), "data": data},
                      ensure_ascii=False, separators=(",", ":")).encode()


async def _send(client: httpx.AsyncClient, settings: Settings, delivery_id: int) -> None:
    delivery = await WebhookDelivery.get(id=delivery_id)
    webhook = await Webhook.get(id=delivery.webhook_id)
    rows = await fetch(conn(), "SELECT event_type, town_id, payload, created_at FROM outbox"
                       " WHERE id = ?", [delivery.message_id])
    body = envelope(rows[0]) if rows else b""
    started = time.monotonic()
    status_code, error, snippet = None, "", ""
    try:
        if not rows:
            raise _Skip("message no longer kept")
        if not webhook.is_active:
            raise _Skip("endpoint disabled")
        await check_public(webhook.url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
        headers = signing.headers(secrets_in_force(webhook), f"msg_{delivery.message_id}",
                                  int(time.time()), body)
        response = await client.post(webhook.url, content=body, headers=headers)
        status_code, snippet = response.status_code, response.text[:500]
    except _Skip as skip:
        error = str(skip)
    except httpx.TimeoutException:
        error = "timeout"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    except Exception as exc:  # a refused address, a bad URL: recorded, retried like others
        error = f"{type(exc).__name__}: {getattr(exc, 'code', exc)}"[:200]
    ok = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    delay = None if ok else retry_delay(attempts)
    status = (DeliveryStatus.SUCCEEDED if ok else
              DeliveryStatus.FAILED if delay is None else DeliveryStatus.PENDING)
    async with in_transaction() as connection:
        await WebhookAttempt.create(delivery_id=delivery.id, status_code=status_code,
                                    error=error, response=snippet,
                                    duration_ms=int((time.monotonic() - started) * 1000),
                                    using_db=connection)
        await WebhookDelivery.filter(id=delivery.id).using_db(connection).update(
            status=status, attempts=attempts, last_status_code=status_code,
            next_attempt_at=now() + timedelta(seconds=delay) if delay is not None else None)


class _Skip(Exception):
    pass


async def deliver_due(client: httpx.AsyncClient, settings: Settings, batch: int = 20) -> int:
    """Send the deliveries that are due, a few at a time. Returns how many were tried."""
    claimed = await lease("webhook_deliveries", "next_attempt_at", batch)
    await asyncio.gather(*[_send(client, settings, d) for d in claimed])
    return len(claimed)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """Connect and read timeouts; redirects are not followed (a 3xx is a failed try)."""
    seconds = settings.WEBHOOK_TIMEOUT_SECONDS
    return httpx.AsyncClient(timeout=httpx.Timeout(seconds, connect=min(5.0, seconds)),
                             follow_redirects=False)


CHAIN_EVERY = 1.0  # seconds between chaining runs (trust/chain.py)
SWEEP_SECONDS = 300.0  # and between its sweeps for entries that committed late


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Drain the outbox until `stop` is set (or forever), resting when there is nothing."""

    stop = stop or asyncio.Event()
    gateway = gateway_for(settings)
    chained = swept = 0.0
    async with http_client(settings) as client:
        while not stop.is_set():
            busy = 0
            try:
                busy = (await dispatch() + await deliver_due(client, settings)
                        + await send_due_sms(gateway))
                if time.monotonic() - chained >= CHAIN_EVERY:  # the ledger's hash chain
                    chained = time.monotonic()
                    sweep = chained - swept >= SWEEP_SECONDS
                    swept = chained if sweep else swept
                    await chain_pending(sweep=sweep)
            except Exception:  # the database away, a bug: logged, and the loop goes on
                log.exception("delivery worker: round failed")
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), settings.WORKER_POLL_SECONDS)
                except TimeoutError:
                    pass
