"""Boards against a brute-force recomputation from the ledger; display, dashboard, CSV."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime

import pytest
from tortoise.transactions import in_transaction

from tests.factories import api_token, make_event, make_user, make_village, web_login
from torreya.boards.queries import forget_boards, rank_residents
from torreya.checkins.codes import poster_token
from torreya.i18n import current_language
from torreya.ledger.periods import period_key
from torreya.ledger.service import Posting, post_entry
from torreya.models import Group, GroupMember, LedgerEntry, Role, Town, User
from torreya.settings import LOCAL, ConfigurationError, Settings

pytestmark = pytest.mark.usefixtures("clean_audit")

# Instants around the edges of periods in Asia/Shanghai (UTC+8).
MOMENTS = [
    datetime(2026, 3, 31, 23, 59, tzinfo=LOCAL),   # last minute of March / Q1
    datetime(2026, 4, 1, 0, 1, tzinfo=LOCAL),      # first minute of April / Q2
    datetime(2026, 4, 5, 23, 30, tzinfo=LOCAL),    # Sunday night: ISO week 14
    datetime(2026, 4, 6, 0, 30, tzinfo=LOCAL),     # Monday: ISO week 15
    datetime(2025, 12, 31, 23, 0, tzinfo=LOCAL),   # the year before
]


async def credit(user: User, points: int, at: datetime, kind: str = "checkin") -> None:
    async with in_transaction() as connection:
        await post_entry(Posting(user=user, delta=points, kind=kind, earned=True, at=at,
                                idem_key=f"test:{user.id}:{at.isoformat()}:{points}:{kind}"),
                         connection)


async def brute_force(scope_ids: set[int], period: str, moment: datetime) -> dict[int, int]:
    key = period_key(period, moment)
    totals: dict[int, int] = defaultdict(int)
    for entry in await LedgerEntry.filter(counts_as_earned=True, user_id__in=scope_ids):
        if period_key(period, entry.created_at) == key:
            totals[entry.user_id] += entry.delta
    return {k: v for k, v in totals.items() if v > 0}


@pytest.mark.parametrize("period", ["week", "month", "quarter", "year", "all"])
async def test_boards_match_the_ledger_at_period_edges(app, period):
    rng = random.Random(7)
    village = await make_village()
    residents = [await make_user(village=village) for _ in range(8)]
    for person in residents:
        for at in rng.sample(MOMENTS, k=3):
            await credit(person, rng.choice([5, 10, 10, 20]), at)
    ids = {p.id for p in residents}
    for moment in MOMENTS:
        expected = await brute_force(ids, period, moment)
        rows, _mine = await rank_residents(scope="village", scope_id=village.id, period=period,
                                           limit=100, moment=moment)
        assert {r.user_id: r.points for r in rows} == expected
        ordered = sorted(expected.values(), reverse=True)
        assert [r.points for r in rows] == ordered
        for row in rows:  # competition ranking: ties share a rank
            assert row.rank == 1 + sum(1 for v in ordered if v > row.points)


async def test_spending_does_not_lower_a_rank(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    rich, spender = await make_user(village=village), await make_user(village=village)
    headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{rich.id}/adjustments", headers=headers,
                      json={"delta": 50, "memo": "表彰"})
    await client.post(f"/api/v1/users/{spender.id}/adjustments", headers=headers,
                      json={"delta": 60, "memo": "表彰"})
    await client.post(f"/api/v1/users/{spender.id}/adjustments", headers=headers,
                      json={"delta": -60, "memo": "兑换纠错"})
    board = (await client.get(f"/api/v1/villages/{village.id}/leaderboard?period=month")
             ).json()
    assert [i["points"] for i in board["items"]] == [60, 50]


async def test_api_board_masks_names_and_honours_opt_out(client):
    village = await make_village()
    shown = await make_user(village=village, display_name="张小明")
    hidden = await make_user(village=village, display_name="李秀英", hide_from_boards=True)
    for person, points in ((shown, 30), (hidden, 20)):
        await credit(person, points, datetime.now(LOCAL))
    body = (await client.get(f"/api/v1/villages/{village.id}/leaderboard?period=week&limit=5")
            ).json()
    assert body["period"] == "week"
    assert body["items"] == [{"rank": 1, "display_name": "张*明", "points": 30},
                             {"rank": 2, "display_name": "匿名居民", "points": 20}]
    bad = await client.get(f"/api/v1/villages/{village.id}/leaderboard?period=decade")
    assert bad.status_code == 422
    assert (await client.get("/api/v1/villages/999999/leaderboard")).status_code == 404


async def test_town_and_group_boards(client):
    town_village = await make_village()
    town = await Town.get(id=town_village.town_id)
    other_village = await make_village(town)
    a, b = await make_user(village=town_village), await make_user(village=other_village)
    await credit(a, 10, datetime.now(LOCAL))
    await credit(b, 40, datetime.now(LOCAL))
    body = (await client.get(f"/api/v1/towns/{town.id}/leaderboard")).json()
    assert [i["points"] for i in body["items"]] == [40, 10]
    # a volunteer group's board: its approved members only, wherever they live
    waiting = await make_user(village=town_village)
    await credit(waiting, 90, datetime.now(LOCAL))
    group = await Group.create(town=town, name="红枫义警", village_ids=[town_village.id],
                               invite_code="HF" + str(town.id))
    for member, approved in ((a, True), (b, True), (waiting, False)):
        await GroupMember.create(group=group, user=member, role="member", approved=approved)
    body = (await client.get(f"/api/v1/groups/{group.id}/leaderboard")).json()
    assert [i["points"] for i in body["items"]] == [40, 10]
    assert (await client.get("/api/v1/groups/999999/leaderboard")).status_code == 404


async def test_own_row_is_highlighted_even_below_the_top(client):
    village = await make_village()
    people = [await make_user(village=village) for _ in range(4)]
    for n, person in enumerate(people):
        await credit(person, 10 * (n + 1), datetime.now(LOCAL))
    await web_login(client, people[0])
    page = await client.get(f"/villages/{village.id}/leaderboard?period=month&limit=2")
    assert "您的排名：第 4 名" in page.text
    assert "平安新人" in page.text  # each row shows the resident's level


async def test_opt_out_in_settings(client):
    resident = await make_user()
    token = await web_login(client, resident)
    await client.post("/me/settings", data={"csrf_token": token, "hide_from_boards": "on"})
    assert (await User.get(id=resident.id)).hide_from_boards


async def test_home_shows_level_progress_and_badges(client):
    resident = await make_user()
    await credit(resident, 120, datetime.now(LOCAL))
    await web_login(client, resident)
    home = await client.get("/")
    assert "平安志愿者" in home.text and "再得 180 分升为「平安卫士」" in home.text
    assert "初次签到" in home.text


async def test_display_page_and_json(client):
    village = await make_village()
    resident = await make_user(village=village, display_name="王秀英")
    await credit(resident, 25, datetime.now(LOCAL))
    page = await client.get(f"/villages/{village.id}/display?refresh=5")
    assert page.status_code == 200 and 'data-refresh="5"' in page.text
    data = (await client.get(f"/villages/{village.id}/display.json")).json()
    assert data["items"] == [{"rank": 1, "name": "王*英", "points": 25}]
    assert data["recent"][0]["points"] == 25


async def test_dashboard_and_monthly_csv(client, settings):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    second = await make_village(town)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    a = await make_user(village=village)
    b = await make_user(village=second)
    await credit(a, 30, datetime.now(LOCAL))
    await credit(b, 12, datetime.now(LOCAL), kind="patrol")
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    headers = await api_token(client, a)
    assert (await client.post("/api/v1/checkins", headers=headers,
                              json={"token": token})).status_code == 201
    assert (await client.post("/api/v1/reports", headers=headers, json={
        "category": "hazard", "description": "路灯坏了"})).status_code == 201
    await web_login(client, admin)
    page = await client.get(f"/console/villages/{village.id}/dashboard")
    assert page.status_code == 200 and "<svg" in page.text
    assert 'id="stat-outstanding">35<' in page.text
    month = datetime.now(LOCAL).strftime("%Y-%m")
    csv = await client.get(f"/console/villages/{village.id}/report.csv?month={month}")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("村/社区,活跃居民")
    # active, check-ins, patrol hours, reports filed, accepted, pledges, issued, redeemed, owed
    assert lines[1] == f"{village.name},1,1,0.0,1,0,0,35,0,35"
    assert (await client.get(f"/console/towns/{town.id}/dashboard")).status_code == 403
    assert (await client.get(f"/console/villages/{second.id}/dashboard")).status_code == 404
    client.cookies.clear()
    town_admin = await make_user(Role.TOWN_ADMIN, town=town)
    await web_login(client, town_admin)
    town_csv = await client.get(f"/console/towns/{town.id}/report.csv?month={month}")
    rows = town_csv.text.lstrip("\ufeff").splitlines()
    assert rows[-1] == "合计,2,1,0.0,1,0,0,47,0,47"
    bad = await client.get(f"/console/towns/{town.id}/report.csv?month=2026-13")
    assert bad.status_code == 422


async def test_a_worker_keeps_a_board_for_seconds_and_the_viewers_row_is_fresh(app):
    """BOARD_CACHE_SECONDS: the top is worked out once per worker for that long; the
    viewer's own row is read every time, and a hidden resident is named in each reader's
    language."""
    village = await make_village()
    first, second = await make_user(village=village), await make_user(village=village)
    hidden = await make_user(village=village, hide_from_boards=True)
    await credit(first, 30, datetime.now(LOCAL))
    await credit(hidden, 20, datetime.now(LOCAL))

    async def board(viewer=None, keep=0.5):
        return await rank_residents(scope="village", scope_id=village.id, period="month",
                                    limit=10, viewer=viewer, keep=keep)

    forget_boards()
    rows, _mine = await board()
    assert [(r.user_id, r.points) for r in rows] == [(first.id, 30), (hidden.id, 20)]
    await credit(second, 50, datetime.now(LOCAL))
    kept, mine = await board(viewer=second)
    assert [(r.user_id, r.points) for r in kept] == [(first.id, 30), (hidden.id, 20)]
    assert mine is not None and (mine.rank, mine.points) == (1, 50)  # the viewer's own: fresh
    assert [(r.user_id, r.points) for r in (await board(keep=0))[0]][0] == (second.id, 50)
    token = current_language.set("en")
    try:
        assert (await board())[0][1].display_name == "Anonymous resident"
    finally:
        current_language.reset(token)
    assert (await board())[0][1].display_name != "Anonymous resident"  # zh-CN
    await asyncio.sleep(0.6)
    assert [r.user_id for r in (await board())[0]] == [second.id, first.id, hidden.id]


def test_board_cache_seconds_from_the_environment():
    env = {"TORREYA_SECRET_KEY": "x" * 40}
    assert Settings.from_env(env).BOARD_CACHE_SECONDS == 5.0
    assert Settings.from_env(env | {"TORREYA_BOARD_CACHE_SECONDS": "0"}).BOARD_CACHE_SECONDS \
        == 0
    for wrong in ("-1", "soon", "nan", "7200"):
        with pytest.raises(ConfigurationError, match="TORREYA_BOARD_CACHE_SECONDS"):
            Settings.from_env(env | {"TORREYA_BOARD_CACHE_SECONDS": wrong})
