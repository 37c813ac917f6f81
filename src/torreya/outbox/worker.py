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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.request import getproxies, proxy_bypass

import httpx
from tortoise.transactions import in_transaction

from torreya.db import conn, fetch, insert_rows, is_postgres, now, placeholders
from torreya.integrity import detect as integrity
from torreya.models.webhooks import DeliveryStatus, Webhook
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


# A round of sending: up to DELIVERY_BATCH due deliveries leased at once, read with their
# messages and endpoints in two statements, sent concurrently (PER_ENDPOINT lanes to one
# endpoint, each over its own kept-alive connection), and their attempts recorded in one
# transaction. One by one, a delivery cost a lease, three reads and a transaction of
# its own: 238-340 deliveries/s against check-ins at 2,000-3,000/s (docs/benchmarks.md).
DELIVERY_BATCH = 200
PER_ENDPOINT = 16


@dataclass(frozen=True, slots=True)
class Tried:
    """One attempt's outcome, to be recorded."""

    delivery_id: int
    attempts: int  # counting this one
    status_code: int | None
    error: str
    snippet: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def _due_with_messages(ids: list[int]) -> list[dict]:
    """The leased deliveries with their messages (None where the message was purged), in
    the order the messages were written."""
    connection = conn()
    return await fetch(connection, (
        "SELECT d.id, d.webhook_id, d.message_id, d.attempts, o.event_type, o.town_id,"
        " o.payload, o.created_at FROM webhook_deliveries d"
        " LEFT JOIN outbox o ON o.id = d.message_id"
        f" WHERE d.id IN ({', '.join('?' * len(ids))}) ORDER BY d.message_id, d.id"), ids)


async def _refusals(settings: Settings, hooks: dict[int, Webhook]) -> dict[int, str]:
    """Why an endpoint is not sent to in this round (disabled, a private address), by id;
    each endpoint's address is looked up once a round, not once a delivery."""
    refused = {}
    for hook in hooks.values():
        if not hook.is_active:
            refused[hook.id] = "endpoint disabled"
            continue
        try:
            await check_public(hook.url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
        except Exception as exc:  # a refused address, a bad URL: recorded, retried like others
            refused[hook.id] = f"{type(exc).__name__}: {getattr(exc, 'code', exc)}"[:200]
    return refused


async def _try(lane: Lane, row: dict, hook: Webhook) -> Tried:
    """Send one delivery and say what happened."""
    attempts = int(row["attempts"]) + 1
    body = envelope(row)
    started = time.monotonic()
    status_code, error, snippet = None, "", ""
    try:
        headers = signing.headers(secrets_in_force(hook), f"msg_{row['message_id']}",
                                  int(time.time()), body)
        status_code, snippet = await lane.post(hook.url, body, headers)
    except httpx.TimeoutException:
        error = "timeout"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    except Exception as exc:  # a bad URL, an encoding: recorded, retried like others
        error = f"{type(exc).__name__}: {getattr(exc, 'code', exc)}"[:200]
    return Tried(row["id"], attempts, status_code, error, snippet,
                 int((time.monotonic() - started) * 1000))


async def _lane(lane: Lane, rows: list[dict], hook: Webhook) -> list[Tried]:
    """One lane's share of an endpoint's deliveries, sent one after another."""
    return [await _try(lane, row, hook) for row in rows]


async def _record(tried: list[Tried]) -> None:
    """Every attempt of a round and its delivery's new state, in one transaction: the
    attempts in one INSERT, the successes in one UPDATE per (status code, attempts), each
    retry (its own jittered time) or final failure in one of its own."""
    moment = now()
    succeeded: dict[tuple[int, int], list[int]] = {}
    async with in_transaction() as connection:
        await insert_rows(connection, "webhook_attempts", [
            {"delivery_id": t.delivery_id, "status_code": t.status_code, "error": t.error,
             "response": t.snippet, "duration_ms": t.duration_ms, "created_at": moment}
            for t in tried])
        for t in tried:
            if t.ok:
                succeeded.setdefault((t.status_code, t.attempts), []).append(t.delivery_id)
                continue
            delay = retry_delay(t.attempts)
            await connection.execute_query(placeholders(connection, (
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status_code = ?,"
                " next_attempt_at = ? WHERE id = ?")), [
                DeliveryStatus.FAILED.value if delay is None else DeliveryStatus.PENDING.value,
                t.attempts, t.status_code,
                None if delay is None else moment + timedelta(seconds=delay), t.delivery_id])
        for (status_code, attempts), ids in succeeded.items():
            await connection.execute_query(placeholders(connection, (
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status_code = ?,"
                f" next_attempt_at = NULL WHERE id IN ({', '.join('?' * len(ids))})")),
                [DeliveryStatus.SUCCEEDED.value, attempts, status_code, *ids])


async def deliver_due(senders: Senders, settings: Settings,
                      batch: int = DELIVERY_BATCH) -> int:
    """Send the deliveries that are due, a round at a time. Returns how many were tried.

    An endpoint's deliveries of a round are dealt, in the order their messages were
    written, to up to PER_ENDPOINT lanes that send at once, so they may arrive out of that
    order (docs/events.md)."""
    claimed = await lease("webhook_deliveries", "next_attempt_at", batch)
    if not claimed:
        return 0
    rows = await _due_with_messages(claimed)
    hooks = {h.id: h for h in await Webhook.filter(id__in={r["webhook_id"] for r in rows})}
    refused = await _refusals(settings, hooks)
    tried: list[Tried] = []
    waiting: dict[int, list[dict]] = {}
    for row in rows:
        why = ("message no longer kept" if row["event_type"] is None else
               "endpoint removed" if row["webhook_id"] not in hooks else
               refused.get(row["webhook_id"]))
        if why:
            tried.append(Tried(row["id"], int(row["attempts"]) + 1, None, why, "", 0))
        else:
            waiting.setdefault(row["webhook_id"], []).append(row)
    lanes = []
    for hook_id, due in waiting.items():
        hook = hooks[hook_id]
        chosen = senders.lanes(hook.url)[:len(due)]
        lanes += [_lane(lane, due[n::len(chosen)], hook) for n, lane in enumerate(chosen)]
    for sent in await asyncio.gather(*lanes):
        tried += sent
    await _record(tried)
    return len(claimed)


class Lane:
    """One kept-alive connection to an endpoint's origin, used by one sender at a time: an
    httpx transport of one connection, without the client around it (its request building,
    cookies, redirects and hooks were 40 % of the worker's time per delivery; the transport
    still maps errors to httpx's and applies the timeouts). Honours the standard proxy
    variables (HTTPS_PROXY, NO_PROXY), as the client did."""

    def __init__(self, transport: httpx.AsyncHTTPTransport, timeout: httpx.Timeout,
                 urls: dict[str, httpx.URL]) -> None:
        self._transport = transport
        self._timeout = timeout.as_dict()
        self._urls = urls  # each endpoint's address parsed once, not once a delivery

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """(status code, the start of the answer). Redirects are not followed: a 3xx is a
        failed try."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request("POST", parsed, headers=headers, content=body,
                                extensions={"timeout": self._timeout})
        response = await self._transport.handle_async_request(request)
        try:
            answer = await response.aread()
        finally:
            await response.aclose()
        try:  # the answer's own charset (a receiver may answer in GBK), else UTF-8
            text = answer[:2000].decode(response.encoding or "utf-8", "replace")
        except LookupError:
            text = answer[:2000].decode("utf-8", "replace")
        return response.status_code, text[:500]

    async def aclose(self) -> None:
        await self._transport.aclose()


class Senders:
    """The worker's kept-alive connections: PER_ENDPOINT lanes to each endpoint's origin,
    each one connection. (One pool of many connections checks every connection it holds,
    with system calls, each time it places a request: with 16 connections to one endpoint
    in one httpx client that was most of the worker's time, 440-700 deliveries/s.)"""

    def __init__(self, settings: Settings) -> None:
        seconds = settings.WEBHOOK_TIMEOUT_SECONDS
        self._timeout = httpx.Timeout(seconds, connect=min(5.0, seconds))
        self._lanes: dict[tuple[str, str, int | None], list[Lane]] = {}
        self._tls = httpx.create_ssl_context()  # one for all lanes: each costs milliseconds
        self._urls: dict[str, httpx.URL] = {}

    def lanes(self, url: str) -> list[Lane]:
        parts = httpx.URL(url)
        origin = (parts.scheme, parts.host, parts.port)
        if origin not in self._lanes:
            proxy = None if proxy_bypass(parts.host) else getproxies().get(parts.scheme)
            self._lanes[origin] = [
                Lane(httpx.AsyncHTTPTransport(verify=self._tls, proxy=proxy,
                                              limits=httpx.Limits(max_connections=1,
                                                                  keepalive_expiry=30)),
                     self._timeout, self._urls)
                for _ in range(PER_ENDPOINT)]
        return self._lanes[origin]

    async def __aenter__(self) -> Senders:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for lanes in self._lanes.values():
            for lane in lanes:
                await lane.aclose()
        self._lanes.clear()


def http_client(settings: Settings) -> Senders:
    return Senders(settings)


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

