"""Sessions that can be ended (SPEC §5.1): "log out everywhere" and staff's "lost phone"."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import api_token, make_user, make_village, web_login
from torreya.models import AuditEvent, Role

pytestmark = pytest.mark.usefixtures("clean_audit")


@pytest.fixture
async def browser_client(app):
    """A second device: a browser with its own cookie session on the same server."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_log_out_everywhere_ends_every_token_and_cookie(client, browser_client):
    resident = await make_user(village=await make_village())
    phone, tablet = await api_token(client, resident), await api_token(client, resident)
    await web_login(browser_client, resident)
    assert (await browser_client.get("/me/ledger")).status_code == 200
    ended = await client.post("/api/v1/me/sessions/revoke", headers=phone)
    assert ended.status_code == 204
    for headers in (phone, tablet):
        answer = await client.get("/api/v1/me", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"
    page = await browser_client.get("/me/ledger")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    # Logging in again works at once.
    assert (await client.get("/api/v1/me", headers=await api_token(client, resident))
            ).status_code == 200
    assert await AuditEvent.filter(tag="accounts:sessions:revoke").count() == 1


async def test_lost_phone_ends_a_residents_sessions_not_the_staffs(client):
    village = await make_village()
    staff, resident = await make_user(Role.STAFF, village), await make_user(village=village)
    staff_headers = await api_token(client, staff)
    lost = await api_token(client, resident)
    answer = await client.post(f"/api/v1/users/{resident.id}/sessions/revoke",
                               headers=staff_headers)
    assert answer.status_code == 204
    assert (await client.get("/api/v1/me", headers=lost)).status_code == 401
    assert (await client.get("/api/v1/me", headers=staff_headers)).status_code == 200
    record = await AuditEvent.get(tag="accounts:sessions:revoke")
    assert record.actor_id == staff.id and record.subject == f"user:{resident.id}"


async def test_no_one_ends_the_sessions_of_someone_at_or_above_them(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    other_staff = await make_user(Role.STAFF, village)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    stranger = await make_user(Role.VILLAGE_ADMIN, await make_village())
    cases = [(staff, admin, 403), (staff, other_staff, 403), (resident, staff, 403),
             (stranger, resident, 404)]
    for actor, target, status in cases:
        answer = await client.post(f"/api/v1/users/{target.id}/sessions/revoke",
                                   headers=await api_token(client, actor))
        assert answer.status_code == status, (actor.role, target.role)
    assert await AuditEvent.filter(tag="accounts:sessions:revoke").count() == 0
    assert (await client.post("/api/v1/users/999999/sessions/revoke",
                              headers=await api_token(client, admin))).status_code == 404


async def test_lost_phone_button_in_the_console_ends_the_residents_browser(client,
                                                                          browser_client):
    village = await make_village()
    staff, resident = await make_user(Role.STAFF, village), await make_user(village=village)
    await web_login(browser_client, resident)
    token = await web_login(client, staff)
    page = await client.get(f"/console/users/{resident.id}")
    assert f"/users/{resident.id}/sessions/end" in page.text
    ended = await client.post(f"/users/{resident.id}/sessions/end", data={"csrf_token": token},
                              follow_redirects=True)
    assert ended.status_code == 200 and resident.display_name in ended.text
    assert (await browser_client.get("/me/ledger")).status_code == 303
    assert (await client.get(f"/console/users/{resident.id}")).status_code == 200


async def test_log_out_on_every_device_from_the_home_page(client, browser_client):
    resident = await make_user(village=await make_village())
    await web_login(browser_client, resident)
    token = await web_login(client, resident)
    home = await client.get("/")
    assert "/logout/everywhere" in home.text
    out = await client.post("/logout/everywhere", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await browser_client.get("/me/ledger")).status_code == 303
    assert (await client.get("/me/ledger")).status_code == 303
