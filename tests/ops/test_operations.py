"""Operable in production (issue 30): health and readiness, metrics that count what
happened, request ids, JSON log lines, the schema's version. Both databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BACKEND
from tests.factories import api_token, make_event, make_user, make_village
from tests.live import pg_admin
from torreya.checkins.codes import poster_token
from torreya.ops.logs import JsonFormatter


def _loopback(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def _scrape(app) -> dict[tuple[str, tuple], float]:
    async with _loopback(app) as local:
        answer = await local.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return _samples(answer.text)


async def test_liveness_and_readiness_answer_outside_the_api(client):
    alive = await client.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_every_answer_carries_a_request_id_the_clients_when_well_formed(client):
    mine = await client.get("/api/v1/me", headers={"X-Request-ID": "town-lb.42_a"})
    assert mine.status_code == 401 and mine.headers["x-request-id"] == "town-lb.42_a"
    for bad in ("x" * 129, "has space", "a/b", ""):
        answer = await client.get("/healthz", headers={"X-Request-ID": bad})
        made = answer.headers["x-request-id"]
        assert made != bad and len(made) == 32 and made.isalnum()
    one, two = await client.get("/"), await client.get("/")
    assert one.headers["x-request-id"] != two.headers["x-request-id"]


async def test_metrics_count_exactly_the_check_ins_made_and_parse(app, client, settings):
    before = await _scrape(app)
    village = await make_village()
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    residents = [await make_user(village=village) for _ in range(3)]
    for resident in residents:
        answer = await client.post("/api/v1/checkins", json={"token": token},
                                   headers=await api_token(client, resident))
        assert answer.status_code == 201, answer.text
    again = await client.post("/api/v1/checkins", json={"token": token},
                              headers=await api_token(client, residents[0]))
    assert again.status_code == 409
    after = await _scrape(app)

    def delta(name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("torreya_checkins_total", result="created") == 3
    assert delta("torreya_checkins_total", result="already_checked_in") == 1
    assert delta("torreya_ledger_entries_total", kind="checkin") == 3
    assert delta("torreya_http_requests_total", method="POST", route="/api/v1/checkins",
                 status="201") == 3
    assert delta("torreya_http_requests_total", method="POST", route="/api/v1/checkins",
                 status="409") == 1
    assert delta("torreya_http_request_duration_seconds_count", method="POST",
                 route="/api/v1/checkins") == 4
    # routes are templates, never raw paths (a poster's token is in its path)
    await client.get(f"/c/{token}")
    paths = {dict(k[1]).get("route") for k in (await _scrape(app))}
    assert "/c/{token}" in paths and not any(token in str(p) for p in paths)
    # the outbox's backlog, read from the database when scraped
    assert after[("torreya_outbox_pending", ())] >= 6  # check-ins and entries
    assert after[("torreya_outbox_oldest_pending_seconds", ())] >= 0


async def test_metrics_are_for_this_machine_or_the_token_bearer(app, client, settings):
    refused = await client.get("/metrics")  # the test client is 203.0.113.7
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    settings_with_token = app.state.settings.__class__(
        **{**app.state.settings.__dict__, "METRICS_TOKEN": "s3cret-scrape"})
    app.state.settings = settings_with_token
    assert (await client.get("/metrics")).status_code == 401
    answer = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert answer.status_code == 200 and "torreya_http_requests_total" in answer.text
    async with _loopback(app) as local:  # with a token set, loopback needs it too
        assert (await local.get("/metrics")).status_code == 401


def _block(live) -> contextlib.AbstractContextManager:
    """The database out of reach without touching the shared server: PostgreSQL refuses
    new connections to our database and ends its sessions; SQLite's write lock is held by
    another process's connection."""
    @contextlib.contextmanager
    def blocked():
        if BACKEND == "postgres":
            pg_admin(f"ALTER DATABASE {live.db_name} ALLOW_CONNECTIONS false")
            pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     f" WHERE datname = '{live.db_name}'")
            try:
                yield
            finally:
                pg_admin(f"ALTER DATABASE {live.db_name} ALLOW_CONNECTIONS true")
        else:
            path = live.env["TORREYA_DATABASE_URL"].split("://", 1)[1]
            holder = sqlite3.connect(path, isolation_level=None, timeout=10)
            holder.execute("BEGIN IMMEDIATE")  # the write lock, held: no check-in can pass
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()
    return blocked()


async def test_readiness_is_503_while_the_database_is_blocked_and_back_after(live):
    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=15) as client:
        assert (await client.get("/readyz")).status_code == 200
        with _block(live):
            began = time.monotonic()
            answer = await client.get("/readyz")
            assert answer.status_code == 503, answer.text
            assert time.monotonic() - began < 3.5  # within its 2 s, not the database's
            assert answer.json()["status"] == "unavailable" and answer.json()["reason"]
            assert answer.headers["retry-after"].isdigit()
            assert (await client.get("/healthz")).status_code == 200  # alive all along
        deadline = time.monotonic() + 20
        while (answer := await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.5)


MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "torreya" / "migrations"


def test_migrate_check_and_a_database_newer_than_the_code(live):
    checked = live.cli("migrate", "--check")
    assert checked.returncode == 0 and "schema current" in checked.stdout, checked.stdout
    live.sql("INSERT INTO tortoise_migrations (app, name, applied_at) VALUES"
             " ('models', '9999_from_the_future', '2027-01-01 00:00:00+00:00')")
    checked = live.cli("migrate", "--check")
    assert checked.returncode == 1 and "9999_from_the_future" in checked.stdout
    served = live.cli("serve", "--port", "1")
    assert served.returncode == 1, served.stdout + served.stderr
    latest = max(path.stem for path in MIGRATIONS.glob("0*.py"))  # what this code knows
    assert "9999_from_the_future" in served.stdout and latest in served.stdout.replace("\n", "")
    live.sql("DELETE FROM tortoise_migrations WHERE name = '9999_from_the_future'")
    live.sql(f"DELETE FROM tortoise_migrations WHERE name = '{latest}'")
    pending = live.cli("migrate", "--check")
    assert pending.returncode == 1 and "torreya migrate" in pending.stdout.replace("\n", "")


async def test_json_log_lines_carry_the_request_and_nothing_secret(live):
    live.env["TORREYA_LOG_FORMAT"] = "json"
    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=15) as client:
        await client.post("/api/v1/auth/sms-code", json={"phone": "13800138001"})
        token = (await client.post("/api/v1/auth/token", json={
            "username": "gulaicun_r001", "password": "torreya2026"})).json()["access_token"]
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}",
                                                     "X-Request-ID": "trace-me-1"})
        assert me.status_code == 200
    live.stop()
    text = live.logs[-1].read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "trace-me-1"]
    assert mine and mine[0]["route"] == "/api/v1/me" and mine[0]["status"] == 200
    assert mine[0]["user_id"] == me.json()["id"] and mine[0]["duration_ms"] >= 0
    assert {"ts", "level", "msg"} <= set(mine[0])
    for secret in (token, "13800138001", "torreya2026"):
        assert secret not in text


def test_the_json_formatter_writes_one_object_per_line():
    record = logging.LogRecord("torreya", logging.WARNING, __file__, 1, "line %s\nbreak",
                               ("two",), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["msg"] == "line two\nbreak"



async def test_two_workers_answer_one_sum(live):
    """`serve --workers 2`: whichever worker answers the scrape, it counts both."""
    live.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    live.start("--workers", "2")

    async def count(client) -> float:
        text = (await client.get("/metrics")).text
        return sum(v for (name, labels), v in _samples(text).items()
                   if name == "torreya_http_requests_total" and dict(labels)["route"] == "/healthz")

    # a new connection each time: the kernel spreads them over both workers
    for _ in range(40):
        async with httpx.AsyncClient(base_url=live.url, timeout=15) as client:
            assert (await client.get("/healthz")).status_code == 200
    for _ in range(6):  # every scrape, from either worker, says 40
        async with httpx.AsyncClient(base_url=live.url, timeout=15) as client:
            assert await count(client) == 40
