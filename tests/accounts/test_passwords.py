"""Issue 26 (6), ASVS 2.1: at least 8 characters everywhere, 10 for staff and admins, and
never a password common in breaches (the list ships with the package), the username or the
phone number; on every road a password is set."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, api_token, make_user, make_village
from torreya.accounts import passwords
from torreya.models import Role, User

pytestmark = pytest.mark.usefixtures("clean_audit")


def test_the_rules():
    assert passwords.problem("xiangfei-58", role=Role.RESIDENT) is None
    assert passwords.problem("xiangfei-58", role=Role.STAFF) is None
    assert passwords.problem("xiangfei5", role=Role.STAFF) is not None  # 9 < 10
    assert passwords.problem("xiangfei5", role=Role.RESIDENT) is None
    for common in ("1234567890", "woaini1314", "qq123456", "1qaz2wsx", "Password1",
                   "iloveyou"):
        assert passwords.problem(common, role=Role.RESIDENT) is not None, common
    assert passwords.problem("wang.xiuying", role=Role.RESIDENT,
                             username="Wang.Xiuying") is not None
    assert passwords.problem("a13800138000", role=Role.RESIDENT,
                             phone="+8613800138000") is not None


async def test_staff_are_not_created_with_a_weak_password(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    headers = await api_token(client, admin)

    async def create(password: str):
        return await client.post("/api/v1/users", headers=headers, json={
            "username": "clerk-wang-01", "password": password, "display_name": "文书",
            "village_id": village.id, "role": "staff"})

    short = await create("123456")
    assert short.status_code == 422 and short.json()["error"]["field"] == "password"
    for weak in ("1234567890", "password12", "clerk-wang-01", "xiangfei5"):
        answer = await create(weak)
        assert answer.status_code == 422, weak
        assert answer.json()["error"]["code"] in {"weak_password", "invalid_request"}
    assert not await User.exists(username="clerk-wang-01")
    assert (await create("xiangfei-clerk-58")).status_code == 201


async def test_a_new_password_is_checked_too(client):
    staff = await make_user(Role.STAFF, await make_village())
    headers = await api_token(client, staff)
    for weak in ("short", "qwertyuiop", staff.username.upper() + "x" * 10):
        answer = await client.post("/api/v1/me/password", headers=headers, json={
            "current_password": PASSWORD, "new_password": weak})
        assert answer.status_code == 422, weak
        assert answer.json()["error"]["field"] == "new_password"
    commonly = await client.post("/api/v1/me/password", headers=headers, json={
        "current_password": PASSWORD, "new_password": "1q2w3e4r5t"})
    assert commonly.json()["error"]["code"] == "weak_password"
    assert "太常见" in commonly.json()["error"]["message"]
    good = await client.post("/api/v1/me/password", headers=headers, json={
        "current_password": PASSWORD, "new_password": "xiangfei-new-58"})
    assert good.status_code == 200
