"""Issue 26: every route of the app, as each kind of person reaches it, gets the answer its
audience says: anonymous, a resident, the resident's family helper, village staff, a
village admin, and a town admin of another town.

The routes come from the app's own routing table, so a route added tomorrow fails here
until it is given its audience in AUDIENCE. Bodies that pass validation are sent where
an API endpoint reads one (a refusal must come from who is asking, not from a bad body).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx
from starlette.routing import Mount, Route

from tests.factories import (
    api_token,
    csrf_from,
    make_event,
    make_user,
    make_village,
    web_login,
)
from tests.receiver import Receiver
from tests.signin.flows import texts_to, web_code_login
from torreya.checkins.codes import member_code, poster_token
from torreya.db import now
from torreya.ledger.service import adjust_points
from torreya.models import (
    Department,
    FamilyHelper,
    Group,
    GroupMember,
    Household,
    HouseholdMember,
    LedgerEntry,
    Pledge,
    Registration,
    Reward,
    Role,
    Signal,
    SmsCode,
    Town,
    Webhook,
)
from torreya.signin.family import OWNER_ONLY
from torreya.trust.receipts import receipt_code

ELDER_PHONE = "+8613900000001"
SON_PHONE = "+8613700000002"

# Who a route is for. "public": anyone, no login; "login": anyone logged in (staff too);
# "resident": residents only (their points, vouchers, patrols); "own_staff": staff and up,
# for their own account; "staff", "village_admin", "town_admin", "platform": that role and
# up, within their own village or town. A family helper is the resident everywhere but
# OWNER_ONLY (the one policy, signin/family.py), where the answer is 403 helper_forbidden.
AUDIENCE: dict[str, str] = {}


def _audience(kind: str, *routes: str) -> None:
    for route in routes:
        AUDIENCE[route] = kind


_audience("public",  # no login
          "POST /api/v1/auth/sms-code", "POST /api/v1/auth/token", "GET /api/v1/openapi.json",
          "GET /api/v1/receipts/{code}", "GET /api/v1/towns/{id:id}/leaderboard",
          "GET /api/v1/towns/{id:id}/signed-heads", "GET /api/v1/villages/{id:id}/leaderboard",
          "GET /api/v1/groups/{id:id}/leaderboard", "GET /lang", "GET /login", "POST /login",
          "POST /login/sms", "POST /login/sms/verify", "GET /offline", "GET /r/{code}",
          "GET /sw.js",
          "GET /towns/{id:id}/display", "GET /towns/{id:id}/display.json",
          "GET /towns/{id:id}/leaderboard", "GET /towns/{id:id}/trust",
          "GET /villages/{id:id}/display", "GET /villages/{id:id}/display.json",
          "GET /villages/{id:id}/leaderboard", "GET /villages/{id:id}/stock",
          "GET /groups/{id:id}/display", "GET /groups/{id:id}/display.json",
          "GET /groups/{id:id}/leaderboard",
          "GET /api/v1/villages/{id:id}/household-leaderboard",
          "GET /c/{token}",  # logged out: which event, how many points, then the login
          "GET /healthz", "GET /readyz")  # for load balancers
_audience("public_absent",  # public, and the walk's world has no such thing: 404 to all
          "GET /rewards/{id:id}/image", "GET /certificates/{code}",
          "GET /api/v1/certificates/{code}", "GET /login/oidc",
          "GET /login/oidc/callback", "GET /login/wechat", "GET /login/wechat/callback")
# Everyone is sent to the login page: register after an SMS code, the second and third
# steps of a login with none begun, and logging out (a helper may log themselves out).
_audience("to_login", "GET /register", "POST /register", "POST /login/totp", "POST /login/choose",
          "POST /logout", "POST /logout/everywhere",
          "GET /metrics")  # this machine or its token's bearer only: 401 from the walk's address
_audience("login",  # anyone logged in, for their own account or the town's public things
          "GET /", "GET /api/v1/me", "GET /api/v1/me/ledger", "GET /api/v1/me/notifications",
          "POST /api/v1/me/notifications/read", "POST /api/v1/me/password",
          "GET /api/v1/me/redemptions", "GET /api/v1/me/sessions", "POST /api/v1/auth/step-up",
          "POST /api/v1/me/sessions/revoke", "GET /inbox", "GET /me/confirm", "POST /me/confirm",
          "POST /me/elder-mode", "GET /me/family", "GET /me/ledger", "POST /me/password",
          "GET /me/settings", "POST /me/settings", "GET /groups", "GET /pledges", "GET /reports",
          "GET /reports/new", "POST /reports/new", "GET /vouchers", "GET /cp/{code}",
          "POST /cp/{code}", "GET /card/{code}", "GET /scan", "GET /me/household",
          # hours: a staff member has none; asking for a certificate is answered no_hours
          "GET /api/v1/me/service-hours", "POST /api/v1/me/service-certificates",
          "GET /me/hours", "POST /me/hours/certificates")
_audience("login_absent",  # the walk's world has no such thing: 404 to all logged in
          "POST /me/identities/{id:id}/unlink", "POST /api/v1/me/sessions/{sid}/revoke",
          "POST /me/sessions/{sid}/end", "GET /reports/{id:bigid}/photo",
          "POST /api/v1/certificates/{code}/revoke", "POST /certificates/{code}/revoke")
_audience("local",  # anyone logged in within the town (its residents, staff and admins)
          "GET /api/v1/villages/{id:id}/rewards", "GET /shop", "GET /shop/{id:id}",
          "GET /pledges/{id:id}", "GET /groups/{id:id}", "GET /groups/join/{code}",
          "POST /groups/join/{code}", "GET /patrols/{id:id}", "GET /patrols/{id:id}/join",
          "POST /patrols/{id:id}/join", "POST /api/v1/redemptions/{id:bigid}/cancel",
          "GET /vouchers/{id:bigid}", "POST /vouchers/{id:bigid}/cancel", "GET /v/{code}",
          "GET /reports/{id:bigid}", "GET /api/v1/villages/{id:id}/events",
          "GET /api/v1/reports/{id:bigid}",  # the walk's resident filed it
          "GET /api/v1/villages/{id:id}/reports/similar")
_audience("resident",  # the resident's own points, vouchers, reports and patrols
          "POST /api/v1/checkins", "GET /api/v1/me/member-card", "POST /api/v1/redemptions",
          "POST /api/v1/reports", "POST /api/v1/pledges/{id:id}/signatures",
          "POST /api/v1/patrols/{id:id}/participants", "POST /api/v1/patrols/{id:id}/scans",
          "POST /pledges/{id:id}/sign",
          "GET /pledges/{id:id}/certificate", "POST /shop/{id:id}/redeem",
          "POST /patrols/{id:id}/join", "POST /me/family",
          "POST /api/v1/groups/{id:id}/patrols", "POST /api/v1/patrols/{id:id}/finish",
          "POST /patrols/{id:id}/finish", "POST /groups/{id:id}/patrols", "POST /c/{token}",
          "GET /card",
          # the reporter's: rating (not resolved yet: refused for that), following (own)
          "POST /api/v1/reports/{id:bigid}/rating", "POST /api/v1/reports/{id:bigid}/follow",
          "POST /reports/{id:bigid}/rating", "POST /reports/{id:bigid}/follow")
_audience("leader",  # the group's leader (the walk's resident) or a village admin and up
          "POST /api/v1/groups/{id:id}/members", "POST /api/v1/groups/{id:id}/routes",
          "POST /groups/{id:id}/members", "POST /groups/{id:id}/members/{uid:id}/approve",
          "POST /groups/{id:id}/routes", "GET /routes/{id:id}/sheet")
_audience("own_staff", "GET /me/totp", "POST /me/totp", "GET /console/")  # any town's staff
_audience("own_admin", "GET /console/audit")  # any village admin and up, their own records
_audience("staff",
          "GET /api/v1/events/{id:id}/checkin-code", "POST /api/v1/events/{id:id}/checkins",
          "GET /api/v1/events/{id:id}/offline-kit", "POST /api/v1/events/{id:id}/offline-scans",
          "POST /api/v1/reports/{id:bigid}/progress", "POST /api/v1/reports/{id:bigid}/review",
          "POST /api/v1/vouchers/{code}/fulfil", "POST /api/v1/users/{id:id}/sessions/revoke",
          "GET /console/users/{id:id}", "GET /console/villages/{id:id}",
          "GET /console/villages/{id:id}/residents",
          "GET /console/villages/{id:id}/residents.csv",
          "POST /console/villages/{id:id}/residents/bulk",
          "GET /console/villages/{id:id}/registrations", "POST /registrations/{id:id}/decide",
          "GET /console/villages/{id:id}/refusals",
          "GET /api/v1/villages/{id:id}/signals", "GET /console/villages/{id:id}/signals",
          "GET /console/signals/{id:bigid}",
          "GET /api/v1/households/{id:id}",  # and its members (the walk's resident is not)
          "GET /console/villages/{id:id}/households", "GET /console/households/{id:id}",
          "GET /console/villages/{id:id}/honour-roll", "GET /console/users/{id:id}/passbook",
          "POST /console/users/{id:id}/passbook/printed",
          "POST /api/v1/service-certificates", "GET /console/villages/{id:id}/hours",
          "GET /console/users/{id:id}/hours", "POST /console/users/{id:id}/hours/certificates",
          "POST /api/v1/events/{id:id}/checkouts", "POST /events/{id:id}/checkouts",
          "GET /api/v1/villages/{id:id}/reports", "POST /api/v1/reports/{id:bigid}/assign",
          "POST /api/v1/reports/{id:bigid}/visit", "POST /reports/{id:bigid}/assign",
          "POST /reports/{id:bigid}/visit",
          "GET /console/villages/{id:id}/reports", "POST /reports/{id:bigid}/advance",
          "POST /reports/{id:bigid}/review", "GET /console/villages/{id:id}/pledges",
          "GET /console/pledges/{id:id}", "GET /console/pledges/{id:id}/signatures.csv",
          "GET /console/villages/{id:id}/rewards", "POST /console/users/{id:id}/redeem",
          "GET /events/{id:id}", "GET /events/{id:id}/code.json", "GET /events/{id:id}/display",
          "GET /events/{id:id}/offline-kit.json", "POST /events/{id:id}/offline-scans",
          "GET /events/{id:id}/poster", "GET /events/{id:id}/poster.png",
          "GET /events/{id:id}/poster.svg", "GET /events/{id:id}/scan",
          "POST /events/{id:id}/scan", "GET /events/{id:id}/scan/offline", "POST /fulfil",
          "POST /v/{code}/fulfil", "GET /users/{id:id}/card", "POST /users/{id:id}/card/reissue",
          "POST /users/{id:id}/helpers", "POST /users/{id:id}/sessions/end")
_audience("village_admin",
          "POST /api/v1/users", "POST /api/v1/users/{id:id}/adjustments",
          "POST /api/v1/villages/{id:id}/events", "POST /api/v1/villages/{id:id}/pledges",
          "POST /api/v1/villages/{id:id}/rewards", "POST /api/v1/patrols/{id:id}/approve",
          "POST /api/v1/patrols/{id:id}/reject", "POST /patrols/{id:id}/approve",
          "POST /patrols/{id:id}/reject", "POST /console/users/{id:id}/adjust",
          "GET /console/villages/{id:id}/dashboard", "GET /console/villages/{id:id}/report.csv",
          "POST /console/villages/{id:id}/import", "POST /console/villages/{id:id}/users",
          "POST /console/villages/{id:id}/pledges/new",
          "POST /console/villages/{id:id}/rewards/new", "POST /console/rewards/{id:id}/edit",
          "POST /console/rewards/{id:id}/image", "POST /console/rewards/{id:id}/restock",
          "POST /console/rewards/{id:id}/toggle", "POST /villages/{id:id}/events",
          "GET /villages/{id:id}/events/new", "GET /console/villages/{id:id}/patrols",
          "POST /api/v1/signals/{id:bigid}/resolve", "POST /console/signals/{id:bigid}/resolve",
          "POST /api/v1/villages/{id:id}/households", "POST /api/v1/households/{id:id}/members",
          "DELETE /api/v1/households/{id:id}/members/{uid:id}",
          "POST /api/v1/households/{id:id}/ratings",
          "POST /console/villages/{id:id}/households/new",
          "POST /console/households/{id:id}/members",
          "POST /console/households/{id:id}/members/{uid:id}/remove",
          "POST /console/households/{id:id}/ratings",
          "POST /console/households/{id:id}/dissolve")
_audience("town_admin",
          "POST /api/v1/towns/{id:id}/groups", "POST /api/v1/towns/{id:id}/villages",
          "POST /api/v1/towns/{id:id}/webhooks", "POST /api/v1/webhooks/{id:id}/active",
          "GET /api/v1/webhooks/{id:id}/deliveries",
          "GET /api/v1/webhooks/{id:id}/deliveries/{delivery_id:bigid}/attempts",
          "POST /api/v1/webhooks/{id:id}/deliveries/{delivery_id:bigid}/redeliver",
          "POST /api/v1/webhooks/{id:id}/rotate-secret", "GET /console/towns/{id:id}",
          "POST /console/towns/{id:id}/admins", "GET /console/towns/{id:id}/dashboard",
          "GET /console/towns/{id:id}/groups", "POST /console/towns/{id:id}/groups",
          "GET /console/towns/{id:id}/report.csv", "POST /console/towns/{id:id}/rules",
          "POST /console/towns/{id:id}/scheme", "GET /console/towns/{id:id}/scheme.toml",
          "POST /console/towns/{id:id}/step-up", "POST /console/towns/{id:id}/villages",
          "POST /console/towns/{id:id}/integrity",
          "PATCH /api/v1/towns/{id:id}/case-rules", "POST /api/v1/towns/{id:id}/departments",
          "POST /api/v1/departments/{id:id}/members", "GET /api/v1/departments/{id:id}/reports",
          "GET /console/towns/{id:id}/reports", "GET /console/departments/{id:id}",
          "POST /console/towns/{id:id}/case-rules", "POST /console/towns/{id:id}/departments",
          "POST /console/departments/{id:id}/members",
          "GET /console/towns/{id:id}/webhooks", "POST /console/towns/{id:id}/webhooks",
          "GET /console/webhooks/{id:id}",
          "POST /console/webhooks/{id:id}/deliveries/{delivery_id:bigid}/redeliver",
          "POST /console/webhooks/{id:id}/rotate", "POST /console/webhooks/{id:id}/toggle")
_audience("platform", "POST /api/v1/towns", "POST /console/towns")

PERSONAS = ("anonymous", "resident", "helper", "staff", "village_admin", "other_town_admin")
RANKS = {"resident": 0, "staff": 1, "village_admin": 2, "town_admin": 3, "platform": 4}
PERSONA_RANK = {"resident": 0, "helper": 0, "staff": 1, "village_admin": 2,
                "other_town_admin": 3}
# Requests that end the persona's own logins: it logs in again after (the resident's ending
# all of theirs ends their helper's too).
SESSION_ENDING = {"POST /logout", "POST /logout/everywhere", "POST /api/v1/me/sessions/revoke"}


def app_routes(app) -> list[str]:
    """Every (method, path template) the app serves, static files aside."""
    found: list[str] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                if route.path != "/static":
                    walk(getattr(route.app, "routes", None) or route.routes,
                         prefix + route.path)
            elif isinstance(route, Route):
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    found.append(f"{method} {prefix}{route.path}")

    walk(app.routes, "")
    return found


@dataclass
class World:
    """Town A with a village and its people and things; town B's admin looks in."""

    ids: dict[str, object] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    people: dict[str, object] = field(default_factory=dict)
    bodies: dict[str, dict] = field(default_factory=dict)  # API bodies (and JSON pages')
    forms: dict[str, dict] = field(default_factory=dict)  # forms a page would send


async def build_world(client, settings) -> World:
    world = World()
    village = await make_village()
    town = await Town.get(id=village.town_id)
    resident = await make_user(village=village, display_name="王秀英", phone=ELDER_PHONE)
    neighbour = await make_user(village=village, display_name="李建国", phone="+8613900000003")
    staff = await make_user(Role.STAFF, village)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    town_admin = await make_user(Role.TOWN_ADMIN, town=town)
    other = await make_user(Role.TOWN_ADMIN, town=(await make_village()).town)
    await FamilyHelper.create(member_id=resident.id, phone=SON_PHONE, name="儿子",
                              added_by_id=staff.id)
    await adjust_points(actor=admin, target=resident, delta=500, memo="开户")
    event = await make_event(village)
    pledge = await Pledge.create(village=village, town_id=town.id, title="反诈承诺书",
                                 text="我承诺", points=5, confirmations=[])
    reward = await Reward.create(town=town, village=village, name="毛巾", cost=10)
    group = await Group.create(town=town, name="红枫义警", village_ids=[village.id],
                               invite_code="WALK01")
    await GroupMember.create(group=group, user=resident, role="leader")
    h_res = await api_token(client, resident)
    route = await client.post(f"/api/v1/groups/{group.id}/routes", headers=h_res, json={
        "name": "夜巡一线", "min_checkpoints": 1, "checkpoints": ["村委会", "古来桥"]})
    assert route.status_code == 201, route.text
    patrol = await client.post(f"/api/v1/groups/{group.id}/patrols", headers=h_res,
                               json={"route_id": route.json()["id"]})
    assert patrol.status_code == 201, patrol.text
    redeemed = await client.post("/api/v1/redemptions", headers=h_res,
                                 json={"reward_id": reward.id})
    assert redeemed.status_code == 201, redeemed.text
    report = await client.post("/api/v1/reports", headers=h_res, json={
        "category": "hazard", "description": "路灯坏了", "location": "村口"})
    assert report.status_code == 201, report.text
    webhook = await Webhook.create(town=town, url="https://example.org/hook",
                                   events=["checkin.created"], secret="whsec_x")
    registration = await Registration.create(phone="+8613600000009", name="新人",
                                             village_id=village.id)
    signal = await Signal.create(
        town_id=town.id, village_id=village.id, kind="adjustments_concentrated",
        incident=f"actor:{admin.id}:user:{resident.id}", user_ids=[resident.id],
        evidence={"actor_id": admin.id, "actor_name": admin.display_name, "count": 3,
                  "days": 30, "points": 30, "family_link": None, "entries": []},
        created_at=now(), updated_at=now())
    household = await Household.create(town_id=town.id, village=village, name="李建国家",
                                       head=neighbour)
    department = await Department.create(town=town, name="古来派出所")
    await HouseholdMember.create(household=household, user=neighbour, joined_at=now())
    client.cookies.clear()
    entry = await LedgerEntry.filter(user_id=resident.id).first()
    world.people = {"resident": resident, "staff": staff, "village_admin": admin,
                    "other_town_admin": other, "town_admin": town_admin}
    world.ids = {"events": event.id, "villages": village.id, "towns": town.id,
                 "users": neighbour.id, "pledges": pledge.id, "rewards": reward.id,
                 "vouchers": redeemed.json()["id"], "redemptions": redeemed.json()["id"],
                 "reports": report.json()["id"], "groups": group.id,
                 "patrols": patrol.json()["id"], "webhooks": webhook.id,
                 "routes": route.json()["id"], "registrations": registration.id,
                 "identities": 999_999, "members": resident.id, "deliveries": 1,
                 "signals": signal.id, "households": household.id,
                 "departments": department.id}
    world.codes = {
        "token": poster_token(settings, event_id=event.id, ends_at=event.ends_at),
        "card": member_code(settings, user_id=resident.id, serial=resident.card_serial),
        "voucher": redeemed.json()["voucher_code"], "receipt": receipt_code(entry.id),
        "join": group.invite_code, "plate": route.json()["checkpoints"][0]["code"],
        "sid": "no-such-login", "certificate": "no-such-certificate"}
    stamp = "2030-01-01T09:00:00+08:00"
    world.bodies = {
        "POST /api/v1/auth/sms-code": {"phone": "13800000000"},
        "POST /api/v1/auth/token": {"username": "nobody", "password": "wrong-password"},
        "POST /api/v1/auth/step-up": {"password": "wrong-password"},
        "POST /api/v1/me/password": {"current_password": "wrong-password",
                                     "new_password": "xiangfei-new-58"},
        "POST /api/v1/checkins": {"token": world.codes["token"]},
        "POST /api/v1/events/{id:id}/checkins": {"member_code": world.codes["card"]},
        "POST /api/v1/events/{id:id}/offline-scans": {"scans": [{
            "nonce": "walk-nonce-0001", "code": world.codes["card"],
            "scanned_at": "2026-12-01T09:00:00+08:00"}]},
        "POST /api/v1/groups/{id:id}/members": {"user_id": neighbour.id, "role": "member"},
        "POST /api/v1/groups/{id:id}/patrols": {"route_id": route.json()["id"]},
        "POST /api/v1/groups/{id:id}/routes": {"name": "二线", "min_checkpoints": 1,
                                               "checkpoints": ["小学"]},
        "POST /api/v1/patrols/{id:id}/participants": {"join_code": "WRONG1"},
        "POST /api/v1/patrols/{id:id}/scans": {"code": world.codes["plate"]},
        "POST /api/v1/patrols/{id:id}/reject": {"reason": "重复"},
        "POST /api/v1/pledges/{id:id}/signatures": {"signed_name": "王秀英",
                                                    "confirmations": []},
        "POST /api/v1/redemptions": {"reward_id": reward.id},
        "POST /api/v1/reports": {"category": "hazard", "description": "井盖", "location": "桥"},
        "POST /api/v1/reports/{id:bigid}/progress": {"status": "in_progress",
                                                     "note": "在处理"},
        "POST /api/v1/reports/{id:bigid}/review": {"decision": "accept", "points": 5,
                                                   "note": "属实"},
        "POST /api/v1/towns": {"name": "新镇", "code": "xinzhen", "currency_name": "币"},
        "POST /api/v1/towns/{id:id}/groups": {"name": "二队"},
        "POST /api/v1/towns/{id:id}/villages": {"name": "新村", "code": "xincun"},
        "POST /api/v1/towns/{id:id}/webhooks": {"url": "https://example.org/h",
                                                "events": ["checkin.created"]},
        "POST /api/v1/users": {"username": "newclerk", "password": "xiangfei-clerk-58",
                               "display_name": "新文书", "village_id": village.id,
                               "role": "staff"},
        "POST /api/v1/users/{id:id}/adjustments": {"delta": 1, "memo": "补录"},
        "POST /api/v1/villages/{id:id}/events": {
            "title": "培训", "kind": "training", "points": 5, "starts_at": stamp,
            "ends_at": "2030-01-01T11:00:00+08:00", "qr_mode": "static"},
        "POST /api/v1/villages/{id:id}/pledges": {"title": "承诺", "text": "我承诺",
                                                  "points": 5},
        "POST /api/v1/villages/{id:id}/rewards": {"name": "肥皂", "cost": 5, "stock": None,
                                                  "per_user_limit": None},
        "POST /api/v1/webhooks/{id:id}/active": {"is_active": True},
        "POST /api/v1/signals/{id:bigid}/resolve": {"decision": "dismiss", "note": "走查"},
        "POST /api/v1/me/service-certificates": {"from": "2020-01-01", "to": "2020-12-31"},
        "PATCH /api/v1/towns/{id:id}/case-rules": {"ack_hours": 48, "resolve_hours": 168},
        "POST /api/v1/towns/{id:id}/departments": {"name": "走查部门"},
        "POST /api/v1/departments/{id:id}/members": {"user_id": neighbour.id},
        "POST /api/v1/reports/{id:bigid}/assign": {"department_id": department.id},
        "POST /api/v1/reports/{id:bigid}/rating": {"stars": 5},
        "POST /api/v1/reports/{id:bigid}/visit": {"date": "2026-01-01", "note": "走查"},
        "POST /api/v1/service-certificates": {"user_id": neighbour.id, "from": "2020-01-01",
                                              "to": "2020-12-31"},
        "POST /api/v1/certificates/{code}/revoke": {"reason": "走查"},
        "POST /api/v1/events/{id:id}/checkouts": {"user_id": neighbour.id, "at": stamp,
                                                  "reason": "走查"},
        "POST /api/v1/villages/{id:id}/households": {"name": "王家", "head_user_id": resident.id},
        "POST /api/v1/households/{id:id}/members": {"user_id": resident.id},
        "POST /api/v1/households/{id:id}/ratings": {"year": 2025, "stars": 4},
    }
    world.bodies["POST /events/{id:id}/offline-scans"] = world.bodies[
        "POST /api/v1/events/{id:id}/offline-scans"]
    world.forms = {
        "POST /groups/{id:id}/members": {"username": neighbour.username, "role": "member"},
        "POST /groups/{id:id}/routes": {"name": "三线", "checkpoints": "小学",
                                        "min_checkpoints": "1"},
        "POST /groups/{id:id}/patrols": {"route_id": str(route.json()["id"])},
        "POST /pledges/{id:id}/sign": {"signed_name": "王秀英"},
        "POST /fulfil": {"code": world.codes["voucher"]},
        "POST /shop/{id:id}/redeem": {"idem_key": "walk-redeem-0001"},
        "POST /console/signals/{id:bigid}/resolve": {"decision": "dismiss"},
        "POST /me/hours/certificates": {"start": "2020-01-01", "end": "2020-12-31"},
        "POST /reports/{id:bigid}/assign": {"department_id": str(department.id)},
        "POST /reports/{id:bigid}/rating": {"stars": "5"},
        "POST /reports/{id:bigid}/visit": {"date": "2026-01-01", "note": "走查"},
        "POST /console/towns/{id:id}/case-rules": {"ack_hours": "48", "resolve_hours": "168"},
        "POST /console/towns/{id:id}/departments": {"name": "走查部门"},
        "POST /console/departments/{id:id}/members": {"person": neighbour.username},
        "POST /console/users/{id:id}/hours/certificates": {"start": "2020-01-01",
                                                           "end": "2020-12-31"},
        "POST /certificates/{code}/revoke": {"reason": "走查"},
        "POST /events/{id:id}/checkouts": {"user_id": str(neighbour.id),
                                           "at": "2030-01-01T09:00", "reason": "走查"},
        "POST /console/villages/{id:id}/households/new": {"name": "王家",
                                                          "head": resident.username},
        "POST /console/households/{id:id}/members": {"person": resident.username},
        "POST /console/households/{id:id}/ratings": {"year": "2025", "stars": "4"},
        "POST /console/users/{id:id}/passbook/printed": {"up_to": "1"},
    }
    return world


def fill(world: World, route: str) -> str:
    """The route's path with the world's ids and codes in its parameters."""
    path = route.split(" ", 1)[1]
    parts = path.split("/")
    for n, part in enumerate(parts):
        name = re.fullmatch(r"\{(\w+)(?::\w+)?\}", part)
        if not name:
            continue
        key = name.group(1)
        before = parts[n - 1]
        if key in ("id", "uid", "delivery_id"):
            owner = {"uid": "members", "delivery_id": "deliveries"}.get(key, before)
            parts[n] = str(world.ids[{"shop": "rewards"}.get(owner, owner)])
        elif key == "sid":
            parts[n] = world.codes["sid"]
        elif key == "token":
            parts[n] = world.codes["token"]
        else:  # {code}
            parts[n] = world.codes[{"card": "card", "v": "voucher", "vouchers": "voucher",
                                    "r": "receipt", "receipts": "receipt", "join": "join",
                                    "cp": "plate", "certificates": "certificate"}[before]]
    return "/".join(parts)


class Logins:
    """Each persona's browser (its own client, with its cookies and CSRF token) and API
    token, all on the one app."""

    def __init__(self, app, world: World, inbox: Receiver) -> None:
        self.app, self.world, self.inbox = app, world, inbox
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.csrf: dict[str, str] = {}
        self.api: dict[str, dict] = {}

    async def all(self) -> None:
        for persona in PERSONAS:
            await self.login(persona)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def login(self, persona: str) -> None:
        if persona in self.clients:
            await self.clients[persona].aclose()
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.9", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients[persona] = client
        self.api[persona] = {}
        if persona == "anonymous":
            self.csrf[persona] = csrf_from((await client.get("/login")).text)
        elif persona == "helper":
            # The SMS limits (a code a minute, ten a day) are not what is walked here.
            await SmsCode.filter(phone=SON_PHONE).delete()
            chooser = await web_code_login(client, self.inbox, SON_PHONE)
            resident = self.world.people["resident"]
            await client.post("/login/choose", data={"user_id": str(resident.id),
                                                     "csrf_token": csrf_from(chooser.text)})
            self.csrf[persona] = csrf_from((await client.get("/me/family")).text)
            await SmsCode.filter(phone=SON_PHONE).delete()
            await client.post("/api/v1/auth/sms-code", json={"phone": SON_PHONE})
            code = (await texts_to(self.inbox, SON_PHONE))[-1]["code"]
            answer = await client.post("/api/v1/auth/token", json={
                "phone": SON_PHONE, "code": code, "user_id": resident.id})
            assert answer.status_code == 200, answer.text
            self.api[persona] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        else:
            user = self.world.people[persona]
            self.csrf[persona] = await web_login(client, user)
            self.api[persona] = await api_token(client, user)

    async def send(self, persona: str, route: str, path: str) -> httpx.Response:
        client = self.clients[persona]
        method = route.split(" ", 1)[0]
        body = self.world.bodies.get(route)
        if path.startswith("/api/"):
            return await client.request(method, path, headers=self.api[persona],
                                        json=body if method in ("POST", "PATCH") else None)
        if method == "POST":
            csrf = self.csrf[persona]
            if body is not None:  # a page's JSON endpoint (the offline sync)
                return await client.post(path, json=body, headers={"x-csrf-token": csrf})
            return await client.post(path, data={"csrf_token": csrf,
                                                 **self.world.forms.get(route, {})})
        return await client.get(path)


def expected(route: str, persona: str) -> str:
    """"allowed", "denied" (403 or 404), "login" (401 or to the login page),
    "helper_forbidden"."""
    audience = AUDIENCE[route]
    method, path = route.split(" ", 1)
    if audience == "public":
        return "allowed"
    if audience == "public_absent":
        return "denied"
    if persona == "helper" and (method, path) in OWNER_ONLY:
        return "helper_forbidden"
    if audience == "to_login" or persona == "anonymous":
        return "login"
    if audience == "login":
        return "allowed"
    if audience == "login_absent":
        return "denied"
    if audience == "resident":
        return "allowed" if persona in ("resident", "helper") else "denied"
    if audience in ("own_staff", "own_admin"):
        wanted = RANKS["staff" if audience == "own_staff" else "village_admin"]
        return "allowed" if PERSONA_RANK[persona] >= wanted else "denied"
    if persona == "other_town_admin":
        return "denied"  # never another town's things
    if audience == "local":
        return "allowed"
    if audience == "leader":
        return "allowed" if persona != "staff" else "denied"
    return "allowed" if PERSONA_RANK[persona] >= RANKS[audience] else "denied"


REFUSALS = {"forbidden", "not_found"}


async def outcome(client: httpx.AsyncClient, response: httpx.Response) -> str:
    """What the person got: "login", "helper_forbidden", "denied" (403 or 404; on a page,
    also a redirect to a page whose error says so) or "allowed" (anything else: done, or
    refused for what was sent rather than who sent it)."""
    location = response.headers.get("location", "")
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        code = (body.get("error") or {}).get("code", "") if isinstance(body, dict) else ""
        if response.status_code == 401 and code == "unauthenticated":
            return "login"
        if code == "helper_forbidden":
            return "helper_forbidden"
        return "denied" if response.status_code in (403, 404) and code in REFUSALS \
            else "allowed"
    if response.status_code in (302, 303) and location.startswith("/login"):
        return "login"
    if response.status_code in (403, 404):
        return "helper_forbidden" if "本人办理" in response.text else "denied"
    if response.status_code in (302, 303) and location.startswith("/"):
        shown = await client.get(location)
        codes = set(re.findall(r'data-code="([a-z_]+)"', shown.text))
        if "helper_forbidden" in codes:
            return "helper_forbidden"
        if codes & REFUSALS:
            return "denied"
    return "allowed"


def test_every_route_has_an_audience(app):
    routes = app_routes(app)
    assert len(routes) > 150
    assert sorted(set(routes) - set(AUDIENCE)) == [], "give these routes an audience"
    assert sorted(set(AUDIENCE) - set(routes)) == [], "these routes are gone"
    owner_routes = {f"{m} {p}" for m, p in OWNER_ONLY}
    assert owner_routes <= set(routes), "OWNER_ONLY names routes the app does not serve"


async def test_every_route_answers_each_kind_of_person_as_its_audience_says(
        app, client, settings):
    world = await build_world(client, settings)
    with Receiver() as inbox:
        logins = Logins(app, world, inbox)
        await logins.all()
        wrong: list[str] = []
        for route in app_routes(app):
            path = fill(world, route)
            for persona in PERSONAS:
                answer = await logins.send(persona, route, path)
                want = expected(route, persona)
                got = await outcome(logins.clients[persona], answer)
                if want != got:
                    said = re.findall(r'(?:flash-error|role="alert")[^>]*>([^<]+)', answer.text)
                    wrong.append(f"{route} as {persona}: wanted {want}, got {got} "
                                 f"({answer.status_code} {(said or [answer.text[:120]])[0]!r})")
                if route in SESSION_ENDING:
                    for again in (persona, "helper") if persona == "resident" else (persona,):
                        await logins.login(again)
        await logins.close()
    assert wrong == [], "\n".join(wrong)

