"""Schemathesis against a live `torreya serve` on the demo town, as an integrator's CI would
run it (issue 16): every check but one, a fixed seed, 100 examples per operation, as a
resident and as a village admin, with the path ids pinned to the demo's own rows.

Left out, and why:
- the `positive_data_acceptance` check: the document cannot promise that every body its
  schemas allow is accepted. A well-formed redemption is refused when points run short, a
  check-in code when it has expired, a name of spaces only once trimmed: 4xx, documented.
- the stateful phase (it follows the document's links): minutes more for this run, for
  flows the API tests walk already (event → code → check-in, reward → voucher → fulfil).
- the operations that end the runner's own login (log out everywhere, a password change,
  ending one login or someone's): the rest of the run would be 401.

As a resident in the SQLite run and as a village admin in the PostgreSQL run: the document
is the same on both, and the two runs go side by side in CI, so each takes half of the
fuzzing (about three minutes of CPU in all) and both databases meet it.
"""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import BACKEND
from tests.live import PASSWORD, live  # noqa: F401  (the fixture)

EXAMPLES = 100
SEED = 2026
LEFT_OUT = ["revoke_my_sessions", "change_password", "revoke_one_session", "revoke_sessions"]


def _config(ids: dict[str, object]) -> str:
    """Pinned path ids: each operation meets a row of the demo, not only 404s."""
    pins = {
        "village": ["village_board", "list_rewards", "create_reward", "create_event",
                    "create_pledge"],
        "town": ["town_board", "signed_heads", "create_village", "create_group",
                 "create_webhook"],
        "group": ["group_board", "add_member", "create_route", "start"],
        "event": ["checkin_code", "staff_check_in", "offline_kit", "offline_scans"],
        "pledge": ["sign"],
        "patrol": ["join", "scan", "finish", "approve", "reject"],
        "report": ["review", "progress"],
        "redemption": ["cancel"],
        "user": ["adjust"],
    }
    lines = []
    for kind, operations in pins.items():
        for operation in operations:
            lines += ["[[operations]]", f'include-operation-id = "{operation}"',
                      f'parameters = {{ "path.id" = {ids[kind]} }}', ""]
    lines += ["[[operations]]", 'include-operation-id = "fulfil"',
              f'parameters = {{ "path.code" = "{ids["voucher"]}" }}', ""]
    return "\n".join(lines)


def _run(url: str, token: str, config: str, folder) -> subprocess.CompletedProcess:
    path = folder / "schemathesis.toml"
    path.write_text(config)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(path), "run",
               f"{url}/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--phases", "examples,coverage,fuzzing", "--seed", str(SEED),
               "--max-examples", str(EXAMPLES), "--generation-database", "none",
               "--no-color"]
    for operation in LEFT_OUT:
        command += ["--exclude-operation-id", operation]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder)


# who runs it, in which database's run
AS = {"sqlite": "gulaicun_r001", "postgres": "gulaicun_admin"}


def test_schemathesis_finds_nothing_as_a_resident_on_sqlite_an_admin_on_postgres(
        live, tmp_path):  # noqa: F811
    username = AS[BACKEND]
    live.start()
    [(village, town)] = live.rows("SELECT id, town_id FROM villages WHERE code = 'gulaicun'")
    ids = {"village": village, "town": town}
    for kind, sql in {
        "group": "SELECT id FROM groups WHERE town_id = ? ORDER BY id LIMIT 1",
        "event": "SELECT id FROM events WHERE town_id = ? ORDER BY ends_at DESC LIMIT 1",
        "pledge": "SELECT p.id FROM pledges p JOIN villages v ON v.id = p.village_id"
                  " WHERE v.town_id = ? ORDER BY p.id LIMIT 1",
        "patrol": "SELECT p.id FROM patrols p JOIN villages v ON v.id = p.village_id"
                  " WHERE v.town_id = ? ORDER BY p.id DESC LIMIT 1",
        "report": "SELECT r.id FROM reports r JOIN villages v ON v.id = r.village_id"
                  " WHERE v.town_id = ? ORDER BY r.id DESC LIMIT 1",
    }.items():
        [(ids[kind],)] = live.rows(sql, town)
    [(resident,)] = live.rows("SELECT id FROM users WHERE username = 'gulaicun_r001'")
    [(ids["user"],)] = live.rows("SELECT id FROM users WHERE username = 'gulaicun_r002'")
    [(ids["redemption"], ids["voucher"])] = live.rows(
        "SELECT id, voucher_code FROM redemptions WHERE user_id = ? ORDER BY id DESC LIMIT 1",
        resident)
    answer = httpx.post(f"{live.url}/api/v1/auth/token",
                        json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    run = _run(live.url, answer.json()["access_token"], _config(ids), tmp_path)
    assert run.returncode == 0, f"as {username}:\n{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    assert "failures" not in summary.split("Test cases:")[-1], summary
    assert " passed" in summary, summary
    print(f"schemathesis as {username}:", summary.split("Test cases:")[-1].strip()
          .splitlines()[0])
    audit = live.cli("audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
