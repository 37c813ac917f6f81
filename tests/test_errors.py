"""Honest errors: what a client is told when its input or the database fails, in-process.

The faults that need a live server (kill -9, the database going away) are in test_faults.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import BACKEND, PG_URL, SECRET, settings_for
from tests.factories import api_token, make_user, make_village, web_login
from torreya.app import create_app
from torreya.models import AuditEvent, Event, LedgerEntry, Role, User


async def test_pathological_json_is_422_not_500(client):
    resident = await make_user()
    headers = {**await api_token(client, resident), "content-type": "application/json"}
    bodies = {
        "deep": "[" * 1000 + "]" * 1000,
        "deep_object": '{"a":' * 100 + "1" + "}" * 100,
        "huge_number": '{"reward_id": ' + "9" * 5000 + "}",
        "nan": '{"reward_id": NaN}',
        "infinity": '{"reward_id": Infinity}',
        "not_utf8": b'{"reward_id": "\xff"}',
    }
    for name, body in bodies.items():
        response = await client.post("/api/v1/redemptions", headers=headers, content=body)
        assert response.status_code == 422, name
        assert response.json()["error"]["code"] == "invalid_request", name


async def test_integers_beyond_the_database_are_refused_by_name(client):
    resident = await make_user()
    headers = await api_token(client, resident)
    for value in (2**63, -(2**63) - 1, 10**30):
        response = await client.post("/api/v1/redemptions", headers=headers,
                                     json={"reward_id": value})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "reward_id"


async def test_ids_beyond_the_database_in_a_path_are_not_found(client):
    """A path id of any length is 404 like an unknown one (it was 500: an overflow
    converting it for SQLite), on the public leaderboard and on pages alike."""
    resident = await make_user()
    headers = await api_token(client, resident)
    # villages have 32-bit keys (PostgreSQL's INTEGER), redemptions 64-bit ones
    for value in (10**9 - 1, 2**31, 10**18 - 1, 2**63, 10**30):
        board = await client.get(f"/api/v1/villages/{value}/leaderboard")
        assert board.status_code == 404 and board.json()["error"]["code"] == "not_found"
        cancel = await client.post(f"/api/v1/redemptions/{value}/cancel", headers=headers)
        assert cancel.status_code == 404, cancel.text
    await web_login(client, resident)
    assert (await client.get(f"/vouchers/{10**30}")).status_code == 404
    assert (await client.get(f"/events/{2**31}")).status_code == 404
    document = (await client.get("/api/v1/openapi.json")).json()
    [param] = document["paths"]["/api/v1/villages/{id}/leaderboard"]["get"]["parameters"][:1]
    assert param["schema"] == {"type": "integer", "minimum": 0, "maximum": 10**9 - 1}
    [param] = document["paths"]["/api/v1/redemptions/{id}/cancel"]["post"]["parameters"][:1]
    assert param["schema"]["maximum"] == 10**18 - 1


async def test_a_forged_form_token_in_any_script_is_403(client):
    """compare_digest refuses non-ASCII text: a token of 汉字 was a 500."""
    page = await client.get("/login")
    assert page.status_code == 200
    answer = await client.post("/login", data={"username": "x", "password": "y",
                                               "csrf_token": "令牌"})
    assert answer.status_code == 403


async def test_dates_out_of_range_are_refused_by_name(client):
    """The year 1 or 9999 overflowed on the way to UTC: a 500."""
    admin = await make_user(Role.VILLAGE_ADMIN)
    headers = {**await api_token(client, admin), "Accept-Language": "zh-CN"}
    for start, end in [("0001-01-01T00:00:00+08:00", "2026-12-01T10:00:00+08:00"),
                       ("2026-12-01T09:00:00+08:00", "9999-12-31T23:59:59+08:00")]:
        answer = await client.post(f"/api/v1/villages/{admin.village_id}/events",
                                   headers=headers, json={
                                       "title": "反诈宣传", "kind": "campaign", "points": 5,
                                       "starts_at": start, "ends_at": end,
                                       "qr_mode": "static"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] in ("starts_at", "ends_at")
    assert not await Event.exists(village_id=admin.village_id)


async def test_json_numbers_and_booleans_are_not_read_from_text(client):
    """A JSON body is strict: "99999" is not the number 99999 (forms, all text, still are)."""
    resident = await make_user()
    headers = {**await api_token(client, resident), "Accept-Language": "zh-CN"}
    for value in ("99999", "", 1.5, True, [1]):
        answer = await client.post("/api/v1/redemptions", headers=headers,
                                   json={"reward_id": value})
        assert answer.status_code == 422, (value, answer.text)
        assert answer.json()["error"]["field"] == "reward_id"
        assert "整数" in answer.json()["error"]["message"]
    admin = await make_user(Role.VILLAGE_ADMIN)
    answer = await client.post(f"/api/v1/villages/{admin.village_id}/events",
                               headers=await api_token(client, admin), json={
                                   "title": "反诈宣传", "kind": "campaign", "points": 5,
                                   "starts_at": "2026-12-01T09:00:00+08:00",
                                   "ends_at": "2026-12-01T10:00:00+08:00",
                                   "qr_mode": "static", "remind_day_before": "yes"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "remind_day_before"


async def test_authentication_comes_before_the_body(client):
    response = await client.post("/api/v1/towns", json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_wrong_method_says_which_are_allowed(client):
    response = await client.delete("/api/v1/redemptions")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_rotating_code_is_good_for_two_whole_windows(client):
    from datetime import datetime

    from tests.factories import make_event
    from torreya.models.checkins import QrMode

    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    event = await make_event(village, qr_mode=QrMode.ROTATING)
    code = (await client.get(f"/api/v1/events/{event.id}/checkin-code",
                             headers=await api_token(client, staff))).json()
    expires = datetime.fromisoformat(code["expires_at"])
    # The end of the next 30 s window, to the second: not a second short of it.
    assert expires.timestamp() % 30 == 0
    assert 30 < expires.timestamp() - time.time() <= 60


async def test_login_burst_checks_at_most_the_limit(client, settings):
    village = await make_village()
    resident = await make_user(village=village)
    answers = await asyncio.gather(*[
        client.post("/api/v1/auth/token",
                    json={"username": resident.username, "password": f"wrong-{n}"})
        for n in range(20)])
    codes = sorted(a.status_code for a in answers)
    checked = await AuditEvent.filter(tag="accounts:login:fail").count()
    assert checked == settings.LOGIN_MAX_PER_ACCOUNT
    assert codes.count(401) == settings.LOGIN_MAX_PER_ACCOUNT
    assert codes.count(429) == 20 - settings.LOGIN_MAX_PER_ACCOUNT


@contextlib.asynccontextmanager
async def _holding_the_lock_on(db_url: str, user_id: int):
    """Another client of the database holds a write lock for as long as the block runs."""
    if BACKEND == "postgres":
        import asyncpg

        connection = await asyncpg.connect(db_url)
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SELECT id FROM users WHERE id = $1 FOR UPDATE", user_id)
        try:
            yield
        finally:
            await transaction.rollback()
            await connection.close()
    else:
        connection = sqlite3.connect(db_url.split("://", 1)[1], isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()


async def test_a_lock_held_too_long_is_503_with_retry_after_and_nothing_changed(db_url):
    app = create_app(settings_for(db_url, DB_LOCK_TIMEOUT=1.0, DB_STATEMENT_TIMEOUT=2.0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            village = await make_village()
            admin = await make_user(Role.VILLAGE_ADMIN, village)
            resident = await make_user(village=village)
            headers = await api_token(c, admin)
            async with _holding_the_lock_on(db_url, resident.id):
                started = time.monotonic()
                response = await c.post(f"/api/v1/users/{resident.id}/adjustments",
                                        headers=headers, json={"delta": 5, "memo": "表彰"})
                waited = time.monotonic() - started
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "unavailable"
            assert response.headers["retry-after"].isdigit()
            assert waited < 5
            assert await LedgerEntry.all().count() == 0
            assert (await User.get(id=resident.id)).balance == 0
            again = await c.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                                 json={"delta": 5, "memo": "表彰"})
            assert again.status_code == 201


def _cli(args, cwd, db_url, timeout=30):
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "torreya.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
def test_unusable_sqlite_folder_fails_fast_naming_the_path(tmp_path, command):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    target = blocker / "torreya.sqlite3"
    result, took = _cli(command, tmp_path, f"sqlite://{target}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert took < 15
    assert str(target) in result.stdout
    assert "TORREYA_DATABASE_URL" in result.stdout


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "0"]])
def test_sqlite_that_cannot_keep_its_journal_fails_fast(tmp_path, command):
    """The folder's state that made start-up hang: the WAL journal cannot be created."""
    target = tmp_path / "torreya.sqlite3"
    sqlite3.connect(target).close()
    (tmp_path / "torreya.sqlite3-wal").mkdir()  # even root cannot open a folder as a file
    result, took = _cli(command, tmp_path, f"sqlite://{target}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert took < 15
    assert "torreya.sqlite3" in result.stdout


@pytest.mark.skipif(BACKEND != "postgres", reason="a PostgreSQL server address")
def test_unreachable_postgres_fails_fast(tmp_path):
    host = PG_URL.split("@")[-1].split(":")[0]
    result, took = _cli(["migrate"], tmp_path, f"postgres://postgres@{host}:1/torreya")
    assert result.returncode != 0
    assert took < 20


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's own full-disk error")
async def test_a_full_disk_is_503_and_nothing_is_half_written(client):
    from tortoise import connections

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    db = connections.get("default")
    pages = (await db.execute_query_dict("PRAGMA page_count"))[0]["page_count"]
    # The database may not grow by a single page: SQLite answers SQLITE_FULL, "database or
    # disk is full", exactly as when the disk itself has no room left.
    await db.execute_query_dict(f"PRAGMA max_page_count = {pages}")
    try:
        bodies = [{"delta": 5, "memo": "表" * 190 + str(n)} for n in range(60)]
        answers = [await client.post(f"/api/v1/users/{resident.id}/adjustments",
                                     headers=headers, json=body) for body in bodies]
    finally:
        await db.execute_query_dict("PRAGMA max_page_count = 1073741823")
    full = [a for a in answers if a.status_code == 503]
    assert full, [a.status_code for a in answers]
    assert {a.json()["error"]["code"] for a in full} == {"unavailable"}
    done = [a for a in answers if a.status_code == 201]
    assert await LedgerEntry.filter(user_id=resident.id).count() == len(done)
    assert (await User.get(id=resident.id)).balance == 5 * len(done)
    assert await AuditEvent.filter(tag="ledger:adjustment:create").count() == len(done)
