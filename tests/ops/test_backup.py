"""`torreya backup` while serve serves, `torreya restore` into an empty database only
(issue 30). Both databases; PostgreSQL restores into a database of the test's own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import BACKEND, PG_URL
from tests.live import CLI, Live, login_token, pg_admin

TABLES = {
    "balances": "SELECT id, balance, lifetime_points FROM users ORDER BY id",
    "entries": "SELECT id, user_id, delta, balance_after, kind, seal FROM ledger_entries"
               " ORDER BY id",
    "links": "SELECT seq, entry_id, hash FROM ledger_chain ORDER BY town_id, seq",
    "heads": "SELECT id, kind, period, seq, hash, signature FROM signed_heads ORDER BY id",
}


@pytest.fixture
def target(live, tmp_path):
    """An empty database to restore into, and the env that points at it."""
    if BACKEND == "postgres":
        name = f"torreya_restore_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        pg_admin(f"CREATE DATABASE {name}")
        url = f"{PG_URL}/{name}"
    else:
        name, url = None, f"sqlite://{tmp_path}/restored/torreya.sqlite3"
    yield {**live.env, "TORREYA_DATABASE_URL": url}
    if name:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _cli(live, env, *args):
    return subprocess.run([*CLI, *args], cwd=live.folder, env=env, capture_output=True,
                          text=True, timeout=300)


def _snapshot(live, env=None) -> dict:
    other = Live(live.folder, env or live.env, live.url, None)
    return {name: other.rows(sql) for name, sql in TABLES.items()}


async def test_a_backup_under_check_in_load_restores_whole(live, target, tmp_path):
    live.start()
    file = tmp_path / "torreya.backup"
    answered: list[int] = []
    async with httpx.AsyncClient(base_url=live.url, timeout=20) as client:
        admin = await login_token(client, "gulaicun_admin")
        residents = [await login_token(client, f"gulaicun_r{n:03d}") for n in range(1, 5)]
        village = (await client.get("/api/v1/me", headers=admin)).json()["village_id"]
        stop, enough = asyncio.Event(), asyncio.Event()

        async def load() -> None:  # events made and checked into while the backup runs
            n = 0
            while not stop.is_set():
                n += 1
                event = (await client.post(f"/api/v1/villages/{village}/events", headers=admin,
                                           json={"title": f"备份中的活动{n}", "kind": "campaign",
                                                 "points": 2, "qr_mode": "rotating",
                                                 "starts_at": "2026-01-01T00:00:00+08:00",
                                                 "ends_at": "2099-01-01T00:00:00+08:00"})).json()
                code = (await client.get(f"/api/v1/events/{event['id']}/checkin-code",
                                         headers=admin)).json()
                for resident in residents:
                    done = await client.post("/api/v1/checkins", headers=resident,
                                             json={"token": code["token"]})
                    if done.status_code == 201:
                        answered.append(done.json()["id"])
                if len(answered) >= 12:
                    enough.set()

        running = asyncio.create_task(load())
        await asyncio.wait_for(enough.wait(), 60)
        before = list(answered)  # every check-in answered before the backup began
        made = await asyncio.to_thread(_cli, live, live.env, "backup", str(file))
        assert made.returncode == 0, made.stdout + made.stderr
        stop.set()
        await running
    assert len(answered) > len(before)  # the load went on while the backup ran

    restored = _cli(live, target, "restore", str(file))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    audit = _cli(live, target, "audit")
    assert audit.returncode == 0 and "clean" in audit.stdout, audit.stdout + audit.stderr
    copy = Live(live.folder, target, live.url, None)
    present = {row[0] for row in copy.rows("SELECT id FROM checkins")}
    assert set(before) <= present


def test_a_quiet_backup_restores_every_balance_entry_link_and_head(live, target, tmp_path):
    file = tmp_path / "quiet.backup"
    assert _cli(live, live.env, "backup", str(file)).returncode == 0
    again = _cli(live, live.env, "backup", str(file))  # never overwrites
    assert again.returncode == 1 and "exists" in again.stdout
    restored = _cli(live, target, "restore", str(file))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    original, copy = _snapshot(live), _snapshot(live, target)
    assert original["entries"] and original["links"] and original["heads"]
    assert copy == original
    # into a database that is not empty: refused, naming why, nothing changed
    refused = _cli(live, target, "restore", str(file))
    assert refused.returncode == 1 and "not empty" in refused.stdout
    assert _snapshot(live, target) == original


def test_a_restore_under_another_secret_key_says_so(live, target, tmp_path):
    file = tmp_path / "keyed.backup"
    assert _cli(live, live.env, "backup", str(file)).returncode == 0
    wrong = {**target, "TORREYA_SECRET_KEY": "another-secret-key-that-is-long-enough-98765"}
    restored = _cli(live, wrong, "restore", str(file))
    assert restored.returncode == 1
    assert "TORREYA_SECRET_KEY" in restored.stdout and "not the key" in restored.stdout
