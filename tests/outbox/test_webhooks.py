"""Webhooks delivered from the outbox to a real local HTTP receiver (not a mock of httpx),
signed as Standard Webhooks says and verified with its reference implementation."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as ReferenceVerifier

from tests.conftest import settings_for
from tests.factories import api_token, make_event, make_user, make_village
from tests.live import login_token
from tests.receiver import Receiver
from torreya.app import create_app
from torreya.checkins.codes import poster_token
from torreya.db import now
from torreya.models import DeliveryStatus, Role, Town, Webhook, WebhookDelivery
from torreya.outbox import worker


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
async def hooks_app(db_url):
    """The app with webhooks allowed to this machine's own addresses (as the platform
    operator may allow) and a short receiver timeout."""
    settings = settings_for(db_url, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT_SECONDS=1.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, settings


async def _town_with_hook(client, url, events=("checkin.created",)):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    headers = await api_token(client, admin)
    created = await client.post(f"/api/v1/towns/{town.id}/webhooks", headers=headers,
                                json={"url": url, "events": list(events)})
    assert created.status_code == 201, created.text
    return village, headers, created.json()


async def _check_in(client, settings, village):
    resident = await make_user(village=village)
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    answer = await client.post("/api/v1/checkins", headers=await api_token(client, resident),
                               json={"token": token})
    assert answer.status_code == 201
    return resident, event


async def _work(settings) -> int:
    async with worker.http_client(settings) as http:
        return await worker.dispatch() + await worker.deliver_due(http, settings)


async def test_delivery_is_signed_as_standard_webhooks_says(hooks_app, receiver):
    client, settings = hooks_app
    village, headers, hook = await _town_with_hook(client, receiver.url)
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) >= 6 + 32
    resident, event = await _check_in(client, settings, village)
    await _work(settings)
    assert len(receiver.received) == 1
    sent_headers, body = receiver.received[0]
    payload = ReferenceVerifier(hook["secret"]).verify(body, sent_headers)
    assert payload["type"] == "checkin.created"
    assert payload["data"]["user_id"] == resident.id
    assert payload["data"]["event_id"] == event.id
    assert sent_headers["webhook-id"].startswith("msg_")
    log = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries",
                            headers=headers)).json()["items"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("succeeded", 1, 200)]
    # Only the subscribed type: the ledger.entry_created of the same check-in was not sent.
    assert json.loads(body)["type"] == "checkin.created"


async def test_a_failed_delivery_is_retried_with_the_same_id(hooks_app, receiver):
    client, settings = hooks_app
    receiver.plan = [500, 200]
    village, headers, hook = await _town_with_hook(client, receiver.url)
    await _check_in(client, settings, village)
    await _work(settings)
    delivery = await WebhookDelivery.get(webhook_id=hook["id"])
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    # The first retry is due within 10 s.
    assert timedelta(0) < delivery.next_attempt_at - now() <= timedelta(seconds=10)
    assert await _work(settings) == 0  # not yet due: nothing sent
    await WebhookDelivery.filter(id=delivery.id).update(next_attempt_at=now())  # time passes
    await _work(settings)
    ids = [h["webhook-id"] for h, _ in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1]
    log = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery.id}/attempts",
                            headers=headers)).json()["items"]
    assert [a["status_code"] for a in log] == [500, 200]
    assert (await WebhookDelivery.get(id=delivery.id)).status == DeliveryStatus.SUCCEEDED


async def test_a_receiver_that_hangs_times_out_and_is_retried(hooks_app, receiver):
    client, settings = hooks_app
    receiver.plan = ["hang"]
    village, headers, hook = await _town_with_hook(client, receiver.url)
    await _check_in(client, settings, village)
    started = time.monotonic()
    await _work(settings)
    assert time.monotonic() - started < 2.5  # the 1 s timeout, not the receiver's 3 s
    delivery = await WebhookDelivery.get(webhook_id=hook["id"])
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    attempts = (await client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery.id}/attempts",
        headers=headers)).json()["items"]
    assert attempts[0]["error"] == "timeout"


async def test_out_of_tries_is_failed_and_redeliver_sends_again(hooks_app, receiver):
    client, settings = hooks_app
    receiver.plan = [500]
    village, headers, hook = await _town_with_hook(client, receiver.url)
    await _check_in(client, settings, village)
    await worker.dispatch()
    delivery = await WebhookDelivery.get(webhook_id=hook["id"])
    await WebhookDelivery.filter(id=delivery.id).update(attempts=len(worker.RETRY_DELAYS))
    await _work(settings)
    assert (await WebhookDelivery.get(id=delivery.id)).status == DeliveryStatus.FAILED
    again = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery.id}/redeliver", headers=headers)
    assert again.status_code == 202 and again.json()["status"] == "pending"
    await _work(settings)
    assert (await WebhookDelivery.get(id=delivery.id)).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 2


def test_retries_back_off_from_seconds_to_hours_for_more_than_a_day():
    import random

    rng = random.Random(7)
    delays = [worker.retry_delay(n, rng) for n in range(1, len(worker.RETRY_DELAYS) + 1)]
    assert delays[0] <= 10
    assert sum(delays) >= 24 * 3600
    assert delays == sorted(delays)
    assert worker.retry_delay(len(worker.RETRY_DELAYS) + 1) is None


async def test_rotated_secret_signs_beside_the_old_one(hooks_app, receiver):
    client, settings = hooks_app
    village, headers, hook = await _town_with_hook(client, receiver.url)
    rotated = await client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
    await _check_in(client, settings, village)
    await _work(settings)
    sent_headers, body = receiver.received[0]
    assert len(sent_headers["webhook-signature"].split()) == 2
    for secret in (hook["secret"], rotated.json()["secret"]):
        ReferenceVerifier(secret).verify(body, sent_headers)


async def test_disabled_endpoint_gets_nothing(hooks_app, receiver):
    client, settings = hooks_app
    village, headers, hook = await _town_with_hook(client, receiver.url)
    off = await client.post(f"/api/v1/webhooks/{hook['id']}/active", headers=headers,
                            json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    await _check_in(client, settings, village)
    await _work(settings)
    assert receiver.received == []
    assert await WebhookDelivery.all().count() == 0


async def test_private_addresses_are_refused_unless_the_platform_allows_them(client, receiver):
    village = await make_village()
    admin = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=village.town_id))
    headers = await api_token(client, admin)
    for url in (receiver.url, "http://169.254.169.254/latest/meta-data",
                "http://10.0.0.8/hook", "http://[::1]:8080/hook",
                # IPv6 forms of IPv4 addresses (::127.0.0.1 passed: Python counts it global)
                "http://[::127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "http://[::10.0.0.8]/",
                "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a00:8::]/"):
        refused = await client.post(f"/api/v1/towns/{village.town_id}/webhooks",
                                    headers=headers,
                                    json={"url": url, "events": ["checkin.created"]})
        assert refused.status_code == 422, url
        assert refused.json()["error"]["code"] == "private_address"
    for url, events in (("ftp://example.org/x", ["checkin.created"]),
                        ("https://example.org/x", ["no.such_event"]),
                        ("https://example.org/x", [])):
        bad = await client.post(f"/api/v1/towns/{village.town_id}/webhooks", headers=headers,
                                json={"url": url, "events": events})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_request"


async def test_other_towns_webhooks_are_not_found(hooks_app, receiver):
    client, settings = hooks_app
    _, _, hook = await _town_with_hook(client, receiver.url)
    other_village = await make_village()
    stranger = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=other_village.town_id))
    headers = await api_token(client, stranger)
    for path in (f"/api/v1/webhooks/{hook['id']}/deliveries",):
        assert (await client.get(path, headers=headers)).status_code == 404
    assert (await client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret",
                              headers=headers)).status_code == 404


@pytest.mark.postgres_only
async def test_two_workers_never_deliver_one_message_twice(hooks_app, receiver):
    client, settings = hooks_app
    village, _, _ = await _town_with_hook(client, receiver.url)
    for _ in range(12):
        await _check_in(client, settings, village)

    async def one_worker() -> None:
        async with worker.http_client(settings) as http:
            for _ in range(5):
                await worker.dispatch(batch=3)
                await worker.deliver_due(http, settings, batch=2)

    await asyncio.gather(one_worker(), one_worker(), one_worker())
    await _work(settings)
    ids = [h["webhook-id"] for h, _ in receiver.received]
    assert len(ids) == 12 and len(set(ids)) == 12


async def test_killed_between_commit_and_delivery_it_arrives_once_after_restart(live, receiver):
    # First without the worker: the check-in commits with its outbox message, nothing is sent.
    live.env.update(TORREYA_WORKER="0", TORREYA_WEBHOOK_ALLOW_PRIVATE="1")
    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        town_admin = await login_token(client, "gulai_admin")
        town_id = (await client.get("/api/v1/me", headers=town_admin)).json()["town_id"]
        hook = (await client.post(f"/api/v1/towns/{town_id}/webhooks", headers=town_admin,
                                  json={"url": receiver.url,
                                        "events": ["ledger.entry_created"]})).json()
        admin = await login_token(client, "gulaicun_admin")
        resident = await login_token(client, "gulaicun_r001")
        me = (await client.get("/api/v1/me", headers=resident)).json()
        entry = (await client.post(f"/api/v1/users/{me['id']}/adjustments", headers=admin,
                                   json={"delta": 8, "memo": "送达演练"})).json()
    live.kill9()
    assert receiver.received == []
    live.env["TORREYA_WORKER"] = "1"
    live.start()
    assert await asyncio.to_thread(receiver.arrived.wait, 20)
    await asyncio.sleep(2)  # time enough for a second copy, if there were one
    bodies = [json.loads(body) for _, body in receiver.received]
    mine = [b for b in bodies if b["data"]["id"] == entry["id"]]
    assert len(mine) == 1
    ReferenceVerifier(hook["secret"]).verify(receiver.received[0][1], receiver.received[0][0])


async def test_town_clerk_manages_webhooks_in_the_console(hooks_app, receiver):
    from tests.factories import csrf_from, web_login

    client, settings = hooks_app
    village = await make_village()
    town = await Town.get(id=village.town_id)
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    await web_login(client, admin)
    page = await client.get(f"/console/towns/{town.id}/webhooks")
    assert page.status_code == 200 and "checkin.created" in page.text
    added = await client.post(f"/console/towns/{town.id}/webhooks", follow_redirects=True,
                              data={"csrf_token": csrf_from(page.text), "url": receiver.url,
                                    "events": ["checkin.created", "pledge.signed"]})
    hook = await Webhook.get(town_id=town.id)
    assert hook.secret in added.text  # shown once, right after adding
    assert sorted(hook.events) == ["checkin.created", "pledge.signed"]
    assert hook.secret not in (await client.get(f"/console/webhooks/{hook.id}")).text
    await _check_in(client, settings, village)
    await _work(settings)
    detail = await client.get(f"/console/webhooks/{hook.id}")
    assert "msg_" in detail.text and "200" in detail.text
    delivery = await WebhookDelivery.get(webhook_id=hook.id)
    again = await client.post(f"/console/webhooks/{hook.id}/deliveries/{delivery.id}/redeliver",
                              data={"csrf_token": csrf_from(detail.text)})
    assert again.status_code == 303
    await _work(settings)
    assert len(receiver.received) == 2
    off = await client.post(f"/console/webhooks/{hook.id}/toggle",
                            data={"csrf_token": csrf_from(detail.text)})
    assert off.status_code == 303 and not (await Webhook.get(id=hook.id)).is_active
    # Another town's administrator finds nothing; a village admin may not come in.
    stranger = await make_user(Role.TOWN_ADMIN, town=await Town.get(
        id=(await make_village()).town_id))
    client.cookies.clear()
    await web_login(client, stranger)
    assert (await client.get(f"/console/webhooks/{hook.id}")).status_code == 404
    assert (await client.get(f"/console/towns/{town.id}/webhooks")).status_code == 404
    client.cookies.clear()
    await web_login(client, await make_user(Role.VILLAGE_ADMIN, village))
    assert (await client.get(f"/console/towns/{town.id}/webhooks")).status_code == 403


async def test_old_dispatched_messages_are_purged_unless_a_delivery_waits(hooks_app, receiver):
    client, settings = hooks_app
    receiver.plan = [500]
    village, _, hook = await _town_with_hook(client, receiver.url)
    await _check_in(client, settings, village)
    await _work(settings)  # dispatched; its delivery failed once and waits for a retry
    from torreya.models import OutboxMessage

    long_ago = now() - worker.KEEP_MESSAGES - timedelta(days=1)
    await OutboxMessage.all().update(dispatched_at=long_ago)
    waiting = (await WebhookDelivery.get(webhook_id=hook["id"])).message_id
    assert await worker.purge_delivered() == 1  # the ledger message nobody subscribed to
    assert [m.id for m in await OutboxMessage.all()] == [waiting]
    await WebhookDelivery.filter(webhook_id=hook["id"]).update(status=DeliveryStatus.SUCCEEDED)
    assert await worker.purge_delivered() == 1
    assert await OutboxMessage.all().count() == 0


async def test_a_new_endpoint_gets_what_happens_next_not_history(hooks_app, receiver):
    client, settings = hooks_app
    village = await make_village()
    await _check_in(client, settings, village)  # before any endpoint exists
    admin = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=village.town_id))
    created = await client.post(f"/api/v1/towns/{village.town_id}/webhooks",
                                headers=await api_token(client, admin),
                                json={"url": receiver.url, "events": ["checkin.created"]})
    assert created.status_code == 201
    later, _ = await _check_in(client, settings, village)
    await _work(settings)
    assert [json.loads(body)["data"]["user_id"] for _, body in receiver.received] == [later.id]


async def _emit_checkins(town_id: int, count: int) -> None:
    """`count` check-in messages in the town's outbox, as check-ins write them."""
    from tortoise.transactions import in_transaction

    from torreya.outbox.service import Message, emit

    async with in_transaction() as connection:
        await emit(connection, *[Message(
            event_type="checkin.created", town_id=town_id,
            data={"id": n, "event_id": 1, "village_id": 1, "user_id": n, "points": 5,
                  "method": "static", "staff_id": None, "created_at": now()})
            for n in range(1, count + 1)])


async def test_a_round_sends_at_once_and_a_failing_endpoint_holds_up_no_other(hooks_app):
    """Issue 36: a round's deliveries go out over several connections at once (a receiver
    that takes 0.3 s a request is answering many of them at the same moment), each attempt
    is recorded, and an endpoint answering 500 is retried later without delaying the
    other."""
    client, settings = hooks_app
    with Receiver(plan=["hang"] * 32, hang_seconds=0.3) as slow, Receiver(
            plan=[500] * 32) as failing:
        village, headers, good = await _town_with_hook(client, slow.url)
        bad = (await client.post(f"/api/v1/towns/{village.town_id}/webhooks", headers=headers,
                                 json={"url": failing.url, "events": ["checkin.created"]})).json()
        await _emit_checkins(village.town_id, 32)
        await _work(settings)
    # one connection per endpoint would make it 1; the worker opens PER_ENDPOINT lanes
    assert worker.PER_ENDPOINT // 2 <= slow.peak <= worker.PER_ENDPOINT, slow.peak
    assert len({h["webhook-id"] for h, _ in slow.received}) == 32
    assert len(failing.received) == 32
    done = await WebhookDelivery.filter(webhook_id=good["id"])
    assert len(done) == 32 and {(d.status, d.attempts, d.last_status_code) for d in done} == {
        (DeliveryStatus.SUCCEEDED, 1, 200)}
    waiting = await WebhookDelivery.filter(webhook_id=bad["id"])
    assert {(d.status, d.attempts, d.last_status_code) for d in waiting} == {
        (DeliveryStatus.PENDING, 1, 500)}
    assert all(timedelta(0) < d.next_attempt_at - now() <= timedelta(seconds=10)
               for d in waiting)
    log = (await client.get(f"/api/v1/webhooks/{bad['id']}/deliveries/{waiting[0].id}/attempts",
                            headers=headers)).json()["items"]
    assert [a["status_code"] for a in log] == [500]


async def test_the_receivers_answer_is_logged_in_its_own_charset(hooks_app, receiver):
    """A receiver in China may answer in GBK: the delivery log shows its words, not mojibake."""
    client, settings = hooks_app
    receiver.plan = [(503, "服务暂停，请稍后".encode("gbk"), "text/plain; charset=gbk")]
    village, headers, hook = await _town_with_hook(client, receiver.url)
    await _check_in(client, settings, village)
    await _work(settings)
    delivery = await WebhookDelivery.get(webhook_id=hook["id"])
    log = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery.id}/attempts",
                            headers=headers)).json()["items"]
    assert [(a["status_code"], a["response"]) for a in log] == [(503, "服务暂停，请稍后")]
