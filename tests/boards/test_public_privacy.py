"""Issue 28 (privacy, SPEC §3): a page or answer anyone can open without logging in shows a
masked name, points and event titles, and never a report's text or location, a phone
number, a full name, or what a clerk wrote as an adjustment's reason. Every public GET route
of the app (the route walk's table) is opened after a report was filed and accepted."""

from __future__ import annotations

import pytest

from tests.accounts.test_route_walk import AUDIENCE, app_routes, build_world, fill
from tests.factories import api_token
from torreya.db import now
from torreya.ledger.service import adjust_points
from torreya.models import LedgerEntry
from torreya.settings import LOCAL
from torreya.trust.chain import chain_pending
from torreya.trust.receipts import receipt_code
from torreya.trust.signing import sign_head

pytestmark = pytest.mark.usefixtures("clean_audit")
SECRETS = ("电线杆旁的电线掉下来", "赵家后门", "举报赌博", "13900000001", "139 0000 0001",
           "王秀英", "供电所来得很快", "回访时王阿姨说灯亮了")


async def test_no_public_page_shows_what_a_report_or_a_clerk_said(app, client, settings):
    world = await build_world(client, settings)
    resident, staff = world.people["resident"], world.people["staff"]
    filed = await client.post("/api/v1/reports", headers=await api_token(client, resident),
                              json={"category": "hazard", "location": "赵家后门",
                                    "description": "村口电线杆旁的电线掉下来了，很危险"})
    assert filed.status_code == 201, filed.text
    accepted = await client.post(f"/api/v1/reports/{filed.json()['id']}/review",
                                 headers=await api_token(client, staff),
                                 json={"decision": "accept", "points": 8, "note": "已处理"})
    assert accepted.status_code == 200, accepted.text
    # the case goes the whole loop: a department, resolved, rated, visited (issue 35)
    case = filed.json()["id"]
    staff_headers = await api_token(client, staff)
    assigned = await client.post(f"/api/v1/reports/{case}/assign", headers=staff_headers,
                                 json={"department_id": world.ids["departments"]})
    assert assigned.status_code == 200, assigned.text
    await client.post(f"/api/v1/reports/{case}/progress", headers=staff_headers,
                      json={"status": "resolved", "note": "电已接好"})
    rated = await client.post(f"/api/v1/reports/{case}/rating",
                              headers=await api_token(client, resident),
                              json={"stars": 5, "comment": "供电所来得很快"})
    assert rated.status_code == 201, rated.text
    visited = await client.post(f"/api/v1/reports/{case}/visit", headers=staff_headers,
                                json={"date": now().astimezone(LOCAL).date().isoformat(),
                                      "note": "回访时王阿姨说灯亮了"})
    assert visited.status_code == 200, visited.text
    await adjust_points(actor=world.people["village_admin"], target=resident, delta=3,
                        memo="举报赌博线索奖励")
    entries = await LedgerEntry.filter(user_id=resident.id).order_by("id")
    assert any("电线杆" in e.memo for e in entries)  # what would leak is in the ledger
    await chain_pending()
    await sign_head(settings, world.ids["towns"], kind="daily", period="2026-12-05")
    client.cookies.clear()
    pages = [fill(world, r) for r in app_routes(app)
             if AUDIENCE[r] == "public" and r.startswith("GET ")]
    pages += [p.replace(world.codes["receipt"], receipt_code(e.id)) for e in entries
              for p in (f"/r/{world.codes['receipt']}",
                        f"/api/v1/receipts/{world.codes['receipt']}")]
    opened = 0
    for path in pages:
        answer = await client.get(path)
        if answer.status_code != 200:
            continue
        opened += 1
        for secret in SECRETS:
            assert secret not in answer.text, (path, secret)
    assert opened >= 25
    shown = (await client.get(f"/villages/{world.ids['villages']}/display.json")).json()
    whats = [item["what"] for item in shown["recent"]]
    assert "隐患上报" in whats and "积分调整" in whats and "王*英" in str(shown)
