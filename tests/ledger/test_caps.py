"""The one cap rule (ledger/caps.py), and the same table of cases through every writer that
credits under caps: the pure function, the ordinary single-entry path (post_entry), and the
check-in batch (the PostgreSQL function on PostgreSQL, its Python twin on SQLite)."""

from __future__ import annotations

import pytest
from tortoise.transactions import in_transaction

from tests.factories import make_event, make_user, make_village
from torreya.db import now
from torreya.ledger import batch
from torreya.ledger.caps import room_under_caps, within_caps
from torreya.ledger.periods import period_key
from torreya.ledger.service import Posting, post_entry
from torreya.ledger.writer import CapReachedError
from torreya.models import EarningRule, EarningTotal, Role, Town

# (caps day/month/year, totals so far day/month/year, points, may credit)
CASES = [
    ((None, None, None), (0, 0, 0), 10, True),
    ((10, None, None), (0, 0, 0), 10, True),
    ((10, None, None), (0, 0, 0), 11, False),
    ((10, None, None), (5, 5, 5), 5, True),
    ((10, None, None), (5, 5, 5), 6, False),
    ((None, 30, None), (0, 25, 25), 5, True),
    ((None, 30, None), (0, 25, 25), 6, False),
    ((20, 100, 1000), (0, 95, 95), 10, False),  # the month's cap, not the day's
    ((20, 100, 15), (0, 10, 10), 5, True),
    ((20, 100, 15), (0, 10, 10), 6, False),  # the year's
    ((0, None, None), (0, 0, 0), 1, False),
    ((10, None, None), (12, 12, 12), 1, False),  # already over (a cap lowered since)
]
PERIODS = ("day", "month", "year")


def _as_maps(caps, totals):
    return dict(zip(PERIODS, caps, strict=True)), dict(zip(PERIODS, totals, strict=True))


@pytest.mark.parametrize(("caps", "totals", "points", "allowed"), CASES)
def test_the_rule(caps, totals, points, allowed):
    cap_map, total_map = _as_maps(caps, totals)
    assert within_caps(cap_map, total_map, points) is allowed
    room = room_under_caps(cap_map, total_map)
    assert room is None if caps == (None, None, None) else room >= 0


async def _person_under(caps, totals, kind: str):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    await EarningRule.filter(town=town, kind=kind).delete()
    await EarningRule.create(town=town, kind=kind, points=10, cap_day=caps[0],
                             cap_month=caps[1], cap_year=caps[2])
    person = await make_user(village=village)
    moment = now()
    for period, total in zip(PERIODS, totals, strict=True):
        if total:
            await EarningTotal.create(user=person, town_id=town.id, village_id=village.id,
                                      kind=kind, period=period_key(period, moment),
                                      total=total)
    return village, person


@pytest.mark.parametrize(("caps", "totals", "points", "allowed"), CASES)
async def test_the_check_in_batch_follows_the_rule(app, caps, totals, points, allowed):
    village, person = await _person_under(caps, totals, "checkin")
    staff = await make_user(Role.STAFF, village)
    event = await make_event(village, points=points)
    [written] = await batch.write_batch([batch.staff_checkin(
        event, user_id=person.id, serial=person.card_serial, staff_id=staff.id,
        method="card", moment=now())])
    assert (written is not None) is allowed


@pytest.mark.parametrize(("caps", "totals", "points", "allowed"), CASES)
async def test_a_single_entry_follows_the_rule(app, caps, totals, points, allowed):
    _village, person = await _person_under(caps, totals, "report")
    rule = await EarningRule.get(town_id=person.town_id, kind="report")
    try:
        async with in_transaction() as connection:
            await post_entry(Posting(user=person, delta=points, kind="report", memo="上报",
                                    idem_key=f"caps:{person.id}", earned=True, rule=rule),
                             connection)
        credited = True
    except CapReachedError:
        credited = False
    assert credited is allowed
