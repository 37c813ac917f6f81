"""积分有效期 (issue 33): expiring points leave by an `expiry` entry, earliest credited first,
never what was spent, once however many workers run it; residents are told before."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from tests.factories import make_user, make_village, web_login
from torreya.db import now, replaying
from torreya.ledger import expiry
from torreya.ledger.invariants import audit_ledger
from torreya.ledger.service import Posting, post_entry
from torreya.models import LedgerEntry, Notification, Role, SmsMessage, Town, User
from torreya.notifications.service import remind_expiring_points

pytestmark = pytest.mark.usefixtures("clean_audit")

# village time is UTC+8: 2026-01-03 10:00 there
NEW_YEAR = datetime(2026, 1, 3, 2, 0, tzinfo=UTC)


async def _post(user: User, delta: int, at: datetime, kind: str = "adjustment") -> None:
    user = await User.get(id=user.id)
    async with in_transaction() as connection:
        await post_entry(Posting(user=user, delta=delta, kind=kind, memo="测试",
                                 idem_key=f"t:{user.id}:{at.isoformat()}:{delta}",
                                 earned=delta > 0, at=at), connection)


async def _town(rule: str):
    village = await make_village()
    await Town.filter(id=village.town_id).update(expiry=rule)
    return village


async def test_year_end_takes_what_last_year_left_unspent(client):
    village = await _town("end_of_year")
    resident = await make_user(village=village)
    await _post(resident, 100, datetime(2025, 6, 1, tzinfo=UTC))
    await _post(resident, -30, datetime(2025, 12, 20, tzinfo=UTC))  # spent from last year's
    await _post(resident, 20, datetime(2026, 1, 2, tzinfo=UTC))  # this year's stay
    assert await expiry.expire_due(moment=NEW_YEAR) == 70
    entry = await LedgerEntry.get(user_id=resident.id, kind="expiry")
    assert entry.delta == -70 and entry.memo == "积分到期" and entry.balance_after == 20
    assert (await User.get(id=resident.id)).balance == 20
    assert await expiry.expire_due(moment=NEW_YEAR) == 0  # run again: nothing more
    assert (await audit_ledger()).clean


async def test_twelve_months_never_takes_what_was_spent(client):
    village = await _town("12 months")
    spender, saver, young = [await make_user(village=village) for _ in range(3)]
    for person in (spender, saver):
        await _post(person, 50, datetime(2024, 11, 1, tzinfo=UTC))  # over 12 months old
        await _post(person, 40, datetime(2025, 7, 1, tzinfo=UTC))
    await _post(spender, -60, datetime(2025, 8, 1, tzinfo=UTC))  # the oldest 50 went first
    await _post(young, 80, datetime(2025, 9, 1, tzinfo=UTC))
    assert await expiry.expire_due(moment=NEW_YEAR) == 50
    assert not await LedgerEntry.exists(user_id=spender.id, kind="expiry")
    assert not await LedgerEntry.exists(user_id=young.id, kind="expiry")
    assert (await User.get(id=saver.id)).balance == 40
    assert (await User.get(id=spender.id)).balance == 30


async def test_a_town_without_expiry_keeps_everything(client):
    village = await _town("none")
    resident = await make_user(village=village)
    await _post(resident, 100, datetime(2020, 1, 1, tzinfo=UTC))
    assert await expiry.expire_due(moment=NEW_YEAR) == 0
    assert (await User.get(id=resident.id)).balance == 100


async def test_two_workers_at_once_expire_once(client):
    village = await _town("end_of_year")
    residents = [await make_user(village=village) for _ in range(4)]
    for person in residents:
        await _post(person, 25, datetime(2025, 3, 1, tzinfo=UTC))
    taken = await asyncio.gather(expiry.expire_due(moment=NEW_YEAR),
                                 expiry.expire_due(moment=NEW_YEAR))
    assert sum(taken) == 100
    assert await LedgerEntry.filter(kind="expiry").count() == 4
    for person in residents:
        assert (await User.get(id=person.id)).balance == 0


async def test_residents_are_told_a_month_before_year_end(client):
    village = await _town("end_of_year")
    resident = await make_user(village=village, phone="+8613900002222")
    quiet = await make_user(village=village)
    await _post(resident, 40, datetime(2026, 3, 1, tzinfo=UTC))
    await _post(quiet, 10, datetime(2026, 3, 1, tzinfo=UTC))
    await _post(quiet, -10, datetime(2026, 4, 1, tzinfo=UTC))  # nothing left to lose
    with replaying(datetime(2026, 11, 1, 2, tzinfo=UTC)):  # two months before: not yet
        assert await remind_expiring_points() == 0
    with replaying(datetime(2026, 12, 6, 2, tzinfo=UTC)):
        assert await remind_expiring_points() == 1
        assert await remind_expiring_points() == 0  # once a year
    notice = await Notification.get(user_id=resident.id)
    assert notice.kind == "points_expiring" and notice.params["points"] == 40
    sms = await SmsMessage.get(user_id=resident.id)
    assert sms.text == "您有40香榧币将于12月31日到期，请在此之前到积分超市兑换。"
    assert not await Notification.exists(user_id=quiet.id)


async def test_the_dashboard_shows_points_due_to_expire(client):
    village = await _town("12 months")
    resident = await make_user(village=village)
    await _post(resident, 45, now() - timedelta(days=355))  # leaves in about ten days
    await _post(resident, 5, now() - timedelta(days=10))
    await web_login(client, await make_user(Role.VILLAGE_ADMIN, village))
    page = await client.get(f"/console/villages/{village.id}/dashboard")
    assert page.status_code == 200
    section = page.text.split('id="expiring"')[1].split("</section>")[0]
    assert "积分将到期" in section
    amounts = [int(n) for n in re.findall(r"<td>(\d+) 香榧币</td>", section)]
    assert len(amounts) == 3 and sum(amounts) == 45
