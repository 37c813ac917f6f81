"""Faults against a live `torreya serve` (the real CLI, uvicorn, the real database): a worker
killed with SIGKILL under a mixed load, the PostgreSQL database made unavailable, an
oversized streamed upload. What must hold: every 2xx is in the ledger with its audit record
and outbox messages, nothing that answered an error changed anything, `torreya audit` is
clean, and the server recovers by itself.

The shared PostgreSQL server is never restarted: a test blocks only its own database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.live import Live, login_token, pg_admin


@dataclass
class Sent:
    kind: str
    who: str  # the resident concerned (by username)
    path: str
    payload: dict
    key: str | None = None
    status: int | None = None  # None: no answer (the server died with it in flight)
    body: dict | None = None

    def headers(self, world: dict) -> dict[str, str]:
        caller = world["admin"] if self.kind == "adjust" else world["residents"][self.who]
        return {**caller, **({"Idempotency-Key": self.key} if self.key else {})}


async def _prepare(client: httpx.AsyncClient) -> dict:
    """Open events, items in stock, points on the residents; all through the API."""
    admin = await login_token(client, "gulaicun_admin")
    village_id = (await client.get("/api/v1/me", headers=admin)).json()["village_id"]
    start = datetime.now(UTC) - timedelta(minutes=5)
    tokens = []
    for n in range(3):
        event = (await client.post(f"/api/v1/villages/{village_id}/events", headers=admin, json={
            "title": f"故障演练{n}", "kind": "drill", "points": 2, "qr_mode": "static",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        })).json()
        tokens.append(event["checkin_url"].rsplit("/", 1)[1])
    rewards = []
    for name in ("毛巾", "肥皂"):
        reward = (await client.post(f"/api/v1/villages/{village_id}/rewards", headers=admin,
                                    json={"name": name, "cost": 3, "stock": 400})).json()
        rewards.append(reward["id"])
    residents, ids = {}, {}
    for n in range(1, 25):
        if n % 5 == 0:
            continue  # every fifth demo resident has no phone and no password
        username = f"gulaicun_r{n:03d}"
        residents[username] = await login_token(client, username)
        ids[username] = (await client.get("/api/v1/me", headers=residents[username])).json()["id"]
        answer = await client.post(f"/api/v1/users/{ids[username]}/adjustments", headers=admin,
                                   json={"delta": 100, "memo": "演练初始积分"})
        assert answer.status_code == 201, answer.text
    return {"admin": admin, "tokens": tokens, "rewards": rewards, "residents": residents,
            "ids": ids}


def _draw(world: dict, rng: random.Random) -> Sent:
    """A check-in, a redemption or an adjustment, in the mix a village day has."""
    who = rng.choice(list(world["residents"]))
    choice = rng.random()
    if choice < 0.4:
        return Sent("checkin", who, "/api/v1/checkins",
                    {"token": rng.choice(world["tokens"])})
    if choice < 0.7:
        return Sent("redeem", who, "/api/v1/redemptions",
                    {"reward_id": rng.choice(world["rewards"])}, key=uuid.uuid4().hex)
    key = uuid.uuid4().hex
    return Sent("adjust", who, f"/api/v1/users/{world['ids'][who]}/adjustments",
                {"delta": rng.choice([-2, 1, 3]), "memo": f"演练-{key[:12]}"}, key=key)


async def _send(client: httpx.AsyncClient, world: dict, sent: Sent) -> Sent:
    try:
        answer = await client.post(sent.path, json=sent.payload, headers=sent.headers(world))
    except httpx.TransportError:
        return sent
    sent.status = answer.status_code
    with contextlib.suppress(ValueError):
        sent.body = answer.json()
    return sent


async def _load(url: str, world: dict, seconds: float, workers: int = 12) -> list[Sent]:
    """Concurrent clients for `seconds`; a client stops at its first unanswered request."""
    sent: list[Sent] = []
    stop_at = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while time.monotonic() < stop_at:
                outcome = await _send(client, world, _draw(world, rng))
                sent.append(outcome)
                if outcome.status is None:
                    return

    await asyncio.gather(*[worker(n) for n in range(workers)])
    return sent


def _verify(live: Live, world: dict, sent: list[Sent]) -> None:
    """Every 2xx recorded in full; every error changed nothing; the audit is clean. The
    tables are read once each, as an auditor would (a query per request had cost 40 s)."""
    ok = [s for s in sent if s.status is not None and 200 <= s.status < 300]
    assert ok, "the load made no successful request"
    entries = live.rows("SELECT id, idem_key, memo FROM ledger_entries")
    keys = {key for _id, key, _memo in entries}
    memos = Counter(memo for _id, _key, memo in entries)
    entry_memos = {(entry_id, memo) for entry_id, _key, memo in entries}
    audited = live.rows("SELECT subject, entry_id FROM audit_events")
    subjects = {subject for subject, _entry in audited}
    audited_entries = {entry for _subject, entry in audited}
    messages = Counter()
    for event_type, payload in live.rows("SELECT event_type, payload FROM outbox"):
        messages[event_type, (payload if isinstance(payload, dict) else json.loads(payload))
                 .get("id")] += 1
    idempotent = {key for (key,) in live.rows("SELECT key FROM idempotency_keys")}
    for s in ok:
        if s.kind == "checkin":
            assert f"checkin:{s.body['event_id']}:{world['ids'][s.who]}" in keys, s
            assert messages["checkin.created", s.body["id"]] == 1, s
        elif s.kind == "redeem":
            rid = s.body["id"]
            assert f"redemption:{rid}" in keys, s
            assert f"redemption:{rid}" in subjects, s
            assert messages["redemption.created", rid] == 1, s
        else:
            eid = s.body["id"]
            assert (eid, s.payload["memo"]) in entry_memos, s
            assert eid in audited_entries, s
            assert messages["ledger.entry_created", eid] == 1, s
    for s in sent:
        if s.status is None or s.status < 400:
            continue
        if s.kind == "adjust":
            assert memos[s.payload["memo"]] == 0, s
        elif s.kind == "redeem":
            assert s.key not in idempotent, s
    # Exactly once, whatever the answers.
    assert not [memo for memo, n in memos.items() if memo and memo.startswith("演练-") and n > 1]
    audit = live.cli("audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr


async def test_kill_9_under_mixed_load_loses_nothing_and_half_writes_nothing(live):
    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        world = await _prepare(client)
    load = asyncio.create_task(_load(live.url, world, seconds=8))
    await asyncio.sleep(2.5)
    live.kill9()  # in the middle of the load, with requests in flight
    sent = await load
    assert any(s.status is None for s in sent), "the kill interrupted nothing"
    live.start()
    _verify(live, world, sent)
    # Clients retry what got no answer, with the same keys: each happens at most once.
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        for s in [s for s in sent if s.status is None and s.kind == "adjust"]:
            retried = await _send(client, world, Sent(**{**s.__dict__, "status": None}))
            assert retried.status in (201, 409), retried
            assert len(live.rows("SELECT id FROM ledger_entries WHERE memo = ?",
                                 s.payload["memo"])) == (1 if retried.status == 201 else 0)
    # The restarted server works on: more load, then the same checks over everything.
    sent += await _load(live.url, world, seconds=1.5)
    _verify(live, world, sent)


@pytest.mark.postgres_only
async def test_database_unavailable_answers_503_and_recovers_by_itself(live):
    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        admin = await login_token(client, "gulaicun_admin")
        resident = await login_token(client, "gulaicun_r001")
        me = (await client.get("/api/v1/me", headers=resident)).json()
        pg_admin(f"ALTER DATABASE {live.db_name} ALLOW_CONNECTIONS false")
        pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  f" WHERE datname = '{live.db_name}'")
        answers = []
        deadline = time.monotonic() + 4
        n = 0
        while time.monotonic() < deadline:
            n += 1
            # One keep-alive connection throughout: a reset would raise here.
            answers.append(await client.post(
                f"/api/v1/users/{me['id']}/adjustments",
                headers={**admin, "Idempotency-Key": f"outage-{n}"},
                json={"delta": 1, "memo": f"停库-{n}"}))
            answers.append(await client.get("/api/v1/me", headers=resident))
        assert {a.status_code for a in answers} == {503}
        for answer in answers:
            assert answer.json()["error"]["code"] == "unavailable"
            assert answer.headers["retry-after"].isdigit()
            assert answer.headers.get("connection", "") != "close"
        pg_admin(f"ALTER DATABASE {live.db_name} ALLOW_CONNECTIONS true")
        deadline = time.monotonic() + 20
        while (answer := await client.get("/api/v1/me", headers=resident)).status_code != 200:
            assert answer.status_code == 503
            assert time.monotonic() < deadline, "the server did not recover by itself"
            await asyncio.sleep(0.5)
        retried = await client.post(f"/api/v1/users/{me['id']}/adjustments",
                                    headers={**admin, "Idempotency-Key": "outage-1"},
                                    json={"delta": 1, "memo": "停库-1"})
        assert retried.status_code == 201
    assert not live.rows("SELECT id FROM ledger_entries WHERE memo LIKE '停库-%'"
                         " AND memo <> '停库-1'")
    assert len(live.rows("SELECT id FROM ledger_entries WHERE memo = '停库-1'")) == 1
    audit = live.cli("audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr


async def test_oversized_streamed_upload_is_answered_413(live):
    live.start()

    async def chunks():
        for _ in range(64):
            yield b" " * 65536  # 4 MiB in all, sent without a Content-Length

    async with httpx.AsyncClient(base_url=live.url, timeout=20) as client:
        resident = await login_token(client, "gulaicun_r001")
        answer = await client.post("/api/v1/checkins", content=chunks(), headers={
            **resident, "content-type": "application/json"})
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
