"""Several app hosts on one database (issue 31): two `torreya serve` processes on their own
ports, as two machines behind a load balancer. Concurrent duplicates land once, a last item
is sold once, and each webhook message is delivered once, whichever host does the work."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

from tests.live import Live, _free_port, login_token
from tests.receiver import Receiver


def _second(live: Live) -> Live:
    port = _free_port()
    other = Live(live.folder, {**live.env, "TORREYA_BASE_URL": f"http://127.0.0.1:{port}"},
                 f"http://127.0.0.1:{port}", live.db_name)
    other.start()
    return other


async def test_two_hosts_keep_check_ins_stock_and_webhooks_once(live):
    live.env.update(TORREYA_WEBHOOK_ALLOW_PRIVATE="1", TORREYA_WORKER="1")
    live.start()
    other = _second(live)
    with Receiver() as receiver:
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                hosts = [live.url, other.url]
                admin = await login_token(client, "gulaicun_admin", base=hosts[0])
                town_admin = await login_token(client, "gulai_admin", base=hosts[1])
                me = (await client.get(f"{hosts[0]}/api/v1/me", headers=admin)).json()
                village, town = me["village_id"], me["town_id"]
                hook = await client.post(f"{hosts[1]}/api/v1/towns/{town}/webhooks",
                                         headers=town_admin, json={
                                             "url": receiver.url,
                                             "events": ["checkin.created"]})
                assert hook.status_code == 201, hook.text
                residents = [await login_token(client, f"gulaicun_r{n:03d}",
                                               base=hosts[n % 2]) for n in range(1, 5)]

                # the same check-in 16 times at once, half to each host: once
                event = (await client.post(f"{hosts[0]}/api/v1/villages/{village}/events",
                                           headers=admin, json={
                                               "title": "两台主机", "kind": "drill", "points": 2,
                                               "qr_mode": "static",
                                               "starts_at": "2026-01-01T00:00:00+08:00",
                                               "ends_at": "2099-01-01T00:00:00+08:00"})).json()
                token = event["checkin_url"].rsplit("/", 1)[1]
                answers = await asyncio.gather(*(
                    client.post(f"{hosts[n % 2]}/api/v1/checkins", headers=residents[0],
                                json={"token": token}) for n in range(16)))
                assert sorted(a.status_code for a in answers) == [201] + [409] * 15
                for resident in residents[1:]:
                    done = await client.post(f"{hosts[1]}/api/v1/checkins", headers=resident,
                                             json={"token": token})
                    assert done.status_code == 201

                # the last two items, wanted by four residents on two hosts: sold twice
                item = await client.post(f"{hosts[0]}/api/v1/villages/{village}/rewards",
                                         headers=admin, json={"name": "最后两条毛巾", "cost": 1,
                                                              "stock": 2})
                assert item.status_code == 201, item.text
                bought = await asyncio.gather(*(
                    client.post(f"{hosts[n % 2]}/api/v1/redemptions", headers=resident,
                                json={"reward_id": item.json()["id"]})
                    for n, resident in enumerate(residents)))
                codes = sorted(a.status_code for a in bought)
                assert codes == [201, 201, 409, 409], [a.text for a in bought]
                assert {a.json()["error"]["code"] for a in bought if a.status_code == 409} \
                    == {"out_of_stock"}

                # four check-ins, one message each: delivered once, by whichever host
                deadline = time.monotonic() + 30
                while len(receiver.received) < 4:
                    assert time.monotonic() < deadline, receiver.received
                    await asyncio.sleep(0.2)
                await asyncio.sleep(3)  # a second delivery, if any, would arrive by now
        finally:
            other.stop()
            live.stop()
    ids = Counter(headers["webhook-id"] for headers, _body in receiver.received)
    assert len(ids) == 4 and set(ids.values()) == {1}, ids
    stock = live.rows("SELECT stock FROM rewards WHERE name = '最后两条毛巾'")
    assert stock == [(0,)]
    audit = live.cli("audit")
    assert audit.returncode == 0 and "clean" in audit.stdout, audit.stdout + audit.stderr
