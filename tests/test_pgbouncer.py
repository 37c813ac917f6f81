"""PgBouncer in transaction pooling between Torreya and PostgreSQL (issue 31): the main flows
work through it (asyncpg's prepared statements, the transaction-scoped advisory locks, the
batch's function call), and the audit is clean. Debian's pgbouncer, on a port of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.live import _free_port, login_token

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def bouncer(live):
    """A PgBouncer (transaction pooling) in front of the live server's database."""
    if shutil.which("pgbouncer") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is missing (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    # a folder the postgres user can read (pytest's own is root's alone)
    folder = Path(tempfile.mkdtemp(prefix="torreya-pgbouncer-"))
    folder.chmod(0o777)
    port = _free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
""")
    for item in folder.iterdir():
        item.chmod(0o666)
    process = subprocess.Popen(["runuser", "-u", "postgres", "--", "pgbouncer",
                                str(folder / "pgbouncer.ini")])
    deadline = time.monotonic() + 10
    while not (folder / "pgbouncer.pid").exists():
        assert time.monotonic() < deadline and process.poll() is None, \
            (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


async def test_the_main_flows_work_through_pgbouncer(live, bouncer):
    """With nothing said: Torreya notices the pooler (it refuses the session settings) and
    connects as it must (TORREYA_DB_POOLER=pgbouncer takes the same road without asking)."""
    live.env["TORREYA_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{bouncer}/{live.db_name}"
    live.env["TORREYA_WORKER"] = "1"
    live.start("--workers", "2")
    async with httpx.AsyncClient(base_url=live.url, timeout=20) as client:
        admin = await login_token(client, "gulaicun_admin")
        resident = await login_token(client, "gulaicun_r001")
        me = (await client.get("/api/v1/me", headers=resident)).json()
        village = me["village_id"]
        made = await client.post(f"/api/v1/villages/{village}/events", headers=admin, json={
            "title": "连接池演练", "kind": "drill", "points": 5, "qr_mode": "static",
            "starts_at": "2026-01-01T00:00:00+08:00", "ends_at": "2099-01-01T00:00:00+08:00"})
        assert made.status_code == 201, made.text
        token = made.json()["checkin_url"].rsplit("/", 1)[1]
        checked = await client.post("/api/v1/checkins", headers=resident, json={"token": token})
        assert checked.status_code == 201, checked.text
        again = await client.post("/api/v1/checkins", headers=resident, json={"token": token})
        assert again.json()["error"]["code"] == "already_checked_in"
        catalog = (await client.get(f"/api/v1/villages/{village}/rewards",
                                    headers=resident)).json()["items"]
        cheapest = min(catalog, key=lambda r: r["cost"])
        redeemed = await client.post("/api/v1/redemptions", headers=resident,
                                     json={"reward_id": cheapest["id"]})
        assert redeemed.status_code in (201, 409), redeemed.text
        adjusted = [await client.post(f"/api/v1/users/{me['id']}/adjustments",
                                      headers={**admin, "Idempotency-Key": "bouncer-1"},
                                      json={"delta": 3, "memo": "连接池补录"}) for _ in range(2)]
        assert [a.status_code for a in adjusted] == [201, 201]
        assert adjusted[1].headers["idempotent-replayed"] == "true"
        # the login's advisory locks (wrong passwords, SMS codes) take and free per transaction
        for _ in range(3):
            wrong = await client.post("/api/v1/auth/token", json={
                "username": "gulaicun_r002", "password": "not-the-password"})
            assert wrong.status_code == 401
        sent = await client.post("/api/v1/auth/sms-code", json={"phone": "13900000123"})
        assert sent.status_code in (202, 429), sent.text
        assert (await client.get(f"/api/v1/villages/{village}/leaderboard")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        balance = (await client.get("/api/v1/me", headers=resident)).json()["balance"]
        assert balance >= me["balance"] + 5 + 3 - cheapest["cost"]
    audit = live.cli("audit")
    assert audit.returncode == 0 and "clean" in audit.stdout, audit.stdout + audit.stderr
    assert "connection pooler" in live.logs[-1].read_text()


def test_a_pooler_said_up_front_is_not_asked():
    from torreya.settings import Settings

    said = Settings(DATABASE_URL="postgres://u@127.0.0.1:6432/t", SECRET_KEY="x" * 40,
                    DB_POOLER="pgbouncer").tortoise_config()["connections"]["default"]
    assert said["engine"] == "torreya.pg_backend"
    assert said["credentials"]["pooler"] is True
    assert "server_settings" not in said["credentials"]



async def test_the_offline_commands_notice_the_pooler_too(live, bouncer):
    """`torreya audit` and `migrate` send no timeouts; they are asked all the same (CI found
    the audit reusing named prepared statements through PgBouncer), and straight to
    PostgreSQL they keep asyncpg's statement cache."""
    from torreya.pg_backend import _behind_a_pooler
    from torreya.settings import Settings

    for port, pooled in ((bouncer, True), (5432, False)):
        url = f"postgres://postgres@127.0.0.1:{port}/{live.db_name}"
        config = Settings(DATABASE_URL=url, SECRET_KEY="x" * 40).tortoise_config(timeouts=False)
        credentials = config["connections"]["default"]["credentials"]
        assert credentials["server_settings"] == {"statement_timeout": "0"}
        assert await _behind_a_pooler(url, dict(credentials)) is pooled, port
