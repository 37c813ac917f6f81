"""Small factories: make_town(), make_village(), make_user(**over), login helpers."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from functools import cache

import httpx
from argon2 import PasswordHasher

from torreya.db import now
from torreya.ledger.rules import ensure_default_rules
from torreya.models import Event, Role, Town, User, Village
from torreya.models.checkins import QrMode

PASSWORD = "correct-horse-9"
_seq = itertools.count(1)


@cache
def password_hash() -> str:
    """The factories' users' password, as Argon2id with the lightest parameters: a login
    verifies with the parameters stored in the hash (torreya.security.verify_password), so
    each of the suite's many logins costs 0.5 ms instead of the 117 ms the product's own
    hashes take by design. What the product hashes (a new password, a registration, the
    demo's users) keeps the product's parameters."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


async def make_town(**over) -> Town:
    n = next(_seq)
    values = {"name": f"测试镇{n}", "code": f"town{n}", "currency_name": "香榧币"}
    values.update(over)
    town = await Town.create(**values)
    await ensure_default_rules(town)
    return town


async def make_village(town: Town | None = None, **over) -> Village:
    town = town or await make_town()
    n = next(_seq)
    values = {"name": f"测试村{n}", "code": f"village{n}"}
    values.update(over)
    return await Village.create(town=town, **values)


async def make_user(role: Role = Role.RESIDENT, village: Village | None = None, *,
                    town: Town | None = None, **over) -> User:
    n = next(_seq)
    if role == Role.PLATFORM_ADMIN:
        village, town = None, None
    elif role == Role.TOWN_ADMIN:
        town = town or (await Town.get(id=village.town_id) if village else await make_town())
        village = None
    else:
        village = village or await make_village(town)
        town = await Town.get(id=village.town_id)
    values = {"username": f"user{n}", "display_name": f"张小{n}", "role": role,
              "password_hash": password_hash(), "town": town, "village": village}
    values.update(over)
    return await User.create(**values)


async def make_event(village: Village, *, opens_in: timedelta = timedelta(hours=-1),
                     lasts: timedelta = timedelta(hours=3), points: int = 10,
                     qr_mode: QrMode = QrMode.STATIC, **over) -> Event:
    start = now() + opens_in
    values = {"title": "反诈宣传活动", "kind": "campaign", "points": points,
              "starts_at": start, "ends_at": start + lasts, "qr_mode": qr_mode}
    values.update(over)
    return await Event.create(village=village, town_id=village.town_id, **values)


async def api_token(client: httpx.AsyncClient, user: User) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token",
                                 json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def web_login(client: httpx.AsyncClient, user: User, *, next_url: str = "/") -> str:
    """Log in through /login; returns a CSRF token for later form posts."""
    page = await client.get("/login")
    token = csrf_from(page.text)
    response = await client.post("/login", data={"username": user.username,
                                                 "password": PASSWORD, "csrf_token": token,
                                                 "next": next_url})
    assert response.status_code == 303, response.text
    # The session is renewed at login, and with it the CSRF token.
    page = await client.get("/", follow_redirects=True)
    return csrf_from(page.text)
