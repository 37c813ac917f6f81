"""Record the OpenAPI document's examples from real answers: a demo town is built in a scratch
SQLite database, the main flows are walked through the real app, and each request body and
answer is kept in src/torreya/api/examples.json (by operationId and status).

    .venv/bin/python scripts/api_examples.py

tests/api/test_document.py checks that every kept example still fits its schema.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "src" / "torreya" / "api" / "examples.json"
SECRET = "examples-secret-key-0123456789-abcdefghijkl"
PASSWORD = "torreya2026"


async def record(folder: Path) -> dict:
    from torreya.app import create_app
    from torreya.db import migrate
    from torreya.demo import load_demo
    from torreya.settings import LOCAL, Settings

    settings = Settings(DATABASE_URL=f"sqlite://{folder}/examples.sqlite3", SECRET_KEY=SECRET,
                        BASE_URL="https://torreya.example.cn")
    await migrate(settings)
    await load_demo(settings, residents=8, console=Console(quiet=True))
    app = create_app(settings)
    kept: dict[str, dict[str, dict]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://torreya") as client:

            async def call(operation: str, method: str, path: str, *, token: str | None = None,
                           body: dict | None = None, expect: int = 200) -> dict:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                answer = await client.request(method, "/api/v1" + path, json=body,
                                              headers={**headers, "Accept-Language": "zh-CN"})
                assert answer.status_code == expect, (operation, answer.status_code, answer.text)
                value = _trim(answer.json()) if answer.content else None
                entry = kept.setdefault(operation, {})
                entry.setdefault(str(expect), value)
                if body is not None:
                    entry.setdefault("request", body)
                return value

            async def login(username: str) -> str:
                answer = await call("token", "POST", "/auth/token",
                                    body={"username": username, "password": PASSWORD})
                return answer["access_token"]

            await call("token", "POST", "/auth/token", expect=401,
                       body={"username": "gulaicun_r001", "password": "wrong-password"})
            resident = await login("gulaicun_r001")
            staff = await login("gulaicun_staff")
            admin = await login("gulaicun_admin")
            me = await call("me", "GET", "/me", token=resident)
            village = me["village_id"]
            moment = datetime.now(LOCAL).replace(microsecond=0)
            await call("me", "GET", "/me", expect=401)
            await call("my_member_card", "GET", "/me/member-card", token=resident)
            await call("my_ledger", "GET", "/me/ledger?limit=3", token=resident)
            event = await call("create_event", "POST", f"/villages/{village}/events",
                               token=admin, expect=201, body={
                                   "title": "反诈宣传进村", "kind": "campaign", "points": 10,
                                   "starts_at": (moment - timedelta(hours=1)).isoformat(),
                                   "ends_at": (moment + timedelta(hours=2)).isoformat(),
                                   "qr_mode": "rotating", "place": "村文化礼堂",
                                   "remind_day_before": True})
            await call("create_event", "POST", f"/villages/{village}/events", token=admin,
                       expect=422, body={"title": "<b>活动</b>", "kind": "campaign"})
            await call("list_events", "GET", f"/villages/{village}/events?from="
                       f"{moment.date().isoformat()}", token=admin)
            code = await call("checkin_code", "GET", f"/events/{event['id']}/checkin-code",
                              token=staff)
            await call("check_in", "POST", "/checkins", token=resident, expect=201,
                       body={"token": code["token"]})
            await call("check_in", "POST", "/checkins", token=resident, expect=409,
                       body={"token": code["token"]})
            await call("offline_kit", "GET", f"/events/{event['id']}/offline-kit", token=staff)
            card = await call("my_member_card", "GET", "/me/member-card",
                              token=await login("gulaicun_r002"))
            await call("staff_check_in", "POST", f"/events/{event['id']}/checkins", token=staff,
                       expect=201, body={"member_code": card["code"]})
            other = await call("my_member_card", "GET", "/me/member-card",
                               token=await login("gulaicun_r003"))
            await call("offline_scans", "POST", f"/events/{event['id']}/offline-scans",
                       token=staff, body={"scans": [
                           {"nonce": "k3v9Qw2LmN8pXz4R", "code": other["code"],
                            "scanned_at": (moment - timedelta(minutes=20)).isoformat()},
                           {"nonce": "Jd7sHq1TbY6cWe0U", "code": card["code"],
                            "scanned_at": (moment - timedelta(minutes=15)).isoformat()}]})
            # Volunteer hours: an event with check-out, a phone's scans in and out, the
            # resident's hours and certificate, anyone checking it, staff revoking it.
            drill = await call("create_event", "POST", f"/villages/{village}/events",
                               token=admin, expect=201, body={
                                   "title": "红枫义警消防演练", "kind": "drill", "points": 5,
                                   "starts_at": (moment - timedelta(hours=3)).isoformat(),
                                   "ends_at": (moment + timedelta(hours=1)).isoformat(),
                                   "qr_mode": "static", "checkout": True,
                                   "points_per_hour": 2})
            volunteer = await login("gulaicun_r004")
            badge = await call("my_member_card", "GET", "/me/member-card", token=volunteer)
            await call("offline_scans", "POST", f"/events/{drill['id']}/offline-scans",
                       token=staff, body={"scans": [
                           {"nonce": "Rt5yUi8OpA2sDf4G", "code": badge["code"],
                            "scanned_at": (moment - timedelta(minutes=150)).isoformat()},
                           {"nonce": "Hj6kLz9XcV3bNm7Q", "code": badge["code"],
                            "scanned_at": (moment - timedelta(minutes=30)).isoformat()}]})
            await call("my_hours", "GET", f"/me/service-hours?year={moment.year}",
                       token=volunteer)
            period = {"from": f"{moment.year}-01-01", "to": moment.date().isoformat()}
            issued = await call("my_certificate", "POST", "/me/service-certificates",
                                token=volunteer, expect=201, body=period)
            await call("my_certificate", "POST", "/me/service-certificates", token=resident,
                       expect=409, body={"from": "2020-01-01", "to": "2020-12-31"})
            await call("get_certificate", "GET", f"/certificates/{issued['code']}")
            await call("revoke_certificate", "POST", f"/certificates/{issued['code']}/revoke",
                       token=staff, body={"reason": "时长录入有误，已重新开具"})
            pledge = await call("create_pledge", "POST", f"/villages/{village}/pledges",
                                token=admin, expect=201, body={
                                    "title": "防范电信诈骗承诺书", "points": 5,
                                    "text": "我承诺：不轻信陌生来电，不点不明链接，转账先核实。",
                                    "confirmations": ["我已知晓常见诈骗手法"]})
            await call("sign", "POST", f"/pledges/{pledge['id']}/signatures", token=resident,
                       expect=201, body={"signed_name": me["display_name"],
                                         "confirmations": ["我已知晓常见诈骗手法"]})
            catalog = await call("list_rewards", "GET", f"/villages/{village}/rewards",
                                 token=resident)
            cheapest = min(catalog["items"], key=lambda r: r["cost"])
            voucher = await call("redeem", "POST", "/redemptions", token=resident, expect=201,
                                 body={"reward_id": cheapest["id"]})
            await call("my_redemptions", "GET", "/me/redemptions", token=resident)
            await call("fulfil", "POST", f"/vouchers/{voucher['voucher_code']}/fulfil",
                       token=staff)
            again = await call("redeem", "POST", "/redemptions", token=resident, expect=201,
                               body={"reward_id": cheapest["id"]})
            await call("cancel", "POST", f"/redemptions/{again['id']}/cancel", token=resident)
            for scope, subject in (("village", village), ("town", me["town_id"])):
                await call(f"{scope}_board", "GET", f"/{scope}s/{subject}/leaderboard?period=all"
                           "&limit=3")
            filed = await call("file_report", "POST", "/reports", token=resident, expect=201,
                               body={"category": "hazard",
                                     "description": "村口电线杆倾斜，下雨天有危险。",
                                     "location": "村口桥头"})
            # The report as a case: the town's rules and departments, the case, similar ones.
            town_admin = await login("gulai_admin")
            await call("case_rules", "PATCH", f"/towns/{me['town_id']}/case-rules",
                       token=town_admin, body={"ack_hours": 48, "resolve_hours": 168})
            police = await call("create_department", "POST",
                                f"/towns/{me['town_id']}/departments", token=town_admin,
                                expect=201, body={"name": "古来派出所"})
            await call("assign", "POST", f"/reports/{filed['id']}/assign", token=staff,
                       body={"department_id": police["id"]})
            await call("get_case", "GET", f"/reports/{filed['id']}", token=resident)
            await call("village_reports", "GET", f"/villages/{village}/reports?overdue=false",
                       token=staff)
            await call("similar", "GET", f"/villages/{village}/reports/similar?category=hazard"
                       "&location=村口桥", token=await login("gulaicun_r002"))
            await call("rate", "POST", f"/reports/{filed['id']}/rating", token=resident,
                       expect=409, body={"stars": 5, "comment": "处理及时"})
            await call("my_notifications", "GET", "/me/notifications", token=resident)
            await call("my_sessions", "GET", "/me/sessions", token=resident)
            await call("signed_heads", "GET", f"/towns/{me['town_id']}/signed-heads")
    return kept


def _trim(value):
    """Lists cut to their first three items: an example, not a dump."""
    if isinstance(value, list):
        return [_trim(v) for v in value[:3]]
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    return value


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        kept = asyncio.run(record(Path(folder)))
    OUT.write_text(json.dumps(kept, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    print(f"{sum(len(v) for v in kept.values())} examples of {len(kept)} operations → "
          f"{OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
