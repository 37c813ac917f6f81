"""A client generated from the document by openapi-python-client, without hand edits, logs
in, lists the village's events, checks in and redeems (issue 16), and type-checks under
mypy --strict with the code that uses it (issue 29): what a partner's first day looks like."""

from __future__ import annotations

import importlib
import subprocess
import sys

import httpx

from tests.factories import PASSWORD, make_event, make_user, make_village
from tests.rewards.test_redemption import make_reward
from torreya.models import LedgerEntry, Redemption, Role, User


def generate(document: bytes, folder) -> object:
    (folder / "openapi.json").write_bytes(document)
    (folder / "config.yaml").write_text("post_hooks: []\n")  # no formatter run on it
    made = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
         "--meta", "none", "--output-path", "torreya_client", "--config", "config.yaml"],
        cwd=folder, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("torreya_client")
    finally:
        sys.path.remove(str(folder))


# What an integrator writes against the client: it must type-check as strictly as theirs.
USES = """
from torreya_client import AuthenticatedClient
from torreya_client.api.ledger import my_ledger
from torreya_client.api.checkins import list_events
from torreya_client.models import EventList, EventOutKind, LedgerPage
from torreya_client.types import UNSET


def upcoming(client: AuthenticatedClient, village_id: int) -> list[tuple[str, EventOutKind]]:
    answer = list_events.sync(client=client, id=village_id, from_="2026-12-01")
    if not isinstance(answer, EventList):
        return []
    return [(event.title, event.kind) for event in answer.items]


def every_entry(client: AuthenticatedClient) -> list[int]:
    deltas: list[int] = []
    cursor: str | None = None
    while True:
        page = my_ledger.sync(client=client, cursor=cursor if cursor is not None else UNSET)
        if not isinstance(page, LedgerPage):
            return deltas
        deltas += [entry.delta for entry in page.items]
        if not isinstance(page.next_cursor, str):
            return deltas
        cursor = page.next_cursor  # what a page gives is what the next request takes
"""


def test_the_generated_client_and_its_use_pass_mypy_strict(tmp_path):
    import json

    from torreya.api.openapi import _document
    from torreya.routes import API

    generate(json.dumps(_document("http://torreya", API)).encode(), tmp_path)
    (tmp_path / "uses.py").write_text(USES, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "torreya_client",
         "uses.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_a_generated_client_logs_in_checks_in_and_redeems(app, client, tmp_path):
    package = generate((await client.get("/api/v1/openapi.json")).content, tmp_path)
    models = importlib.import_module("torreya_client.models")
    token_op = importlib.import_module("torreya_client.api.accounts.token")
    me_op = importlib.import_module("torreya_client.api.accounts.me")
    code_op = importlib.import_module("torreya_client.api.checkins.checkin_code")
    events_op = importlib.import_module("torreya_client.api.checkins.list_events")
    check_in_op = importlib.import_module("torreya_client.api.checkins.check_in")
    redeem_op = importlib.import_module("torreya_client.api.rewards.redeem")

    village = await make_village()
    resident = await make_user(village=village, display_name="王秀英")
    staff = await make_user(Role.STAFF, village)
    event = await make_event(village, points=30)
    reward = await make_reward(village, cost=20, name="食用油")

    def plain() -> object:
        anonymous = package.Client(base_url="http://torreya")
        anonymous.set_async_httpx_client(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://torreya"))
        return anonymous

    async def login(user: User) -> object:
        answer = await token_op.asyncio(client=plain(), body=models.TokenIn(
            username=user.username, password=PASSWORD))
        assert isinstance(answer, models.TokenOut), answer
        authed = package.AuthenticatedClient(base_url="http://torreya",
                                             token=answer.access_token)
        authed.set_async_httpx_client(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://torreya",
            headers={"Authorization": f"Bearer {answer.access_token}"}))
        return authed

    # a wrong password comes back as the document's Error model, in the language asked for
    refused = await token_op.asyncio_detailed(client=plain(), accept_language="en",
                                              body=models.TokenIn(username=resident.username,
                                                                  password="wrong-password"))
    assert refused.status_code == 401
    assert refused.parsed.error.code == "invalid_credentials"
    assert "password" in refused.parsed.error.message

    as_staff = await login(staff)
    listed = await events_op.asyncio(client=as_staff, id=village.id)
    assert isinstance(listed, models.EventList), listed
    assert [(e.id, e.title) for e in listed.items] == [(event.id, event.title)]
    code = await code_op.asyncio(client=as_staff, id=event.id)
    assert isinstance(code, models.CodeOut) and code.url.endswith(code.token)

    as_resident = await login(resident)
    checked = await check_in_op.asyncio(client=as_resident,
                                        body=models.CheckinIn(token=code.token))
    assert isinstance(checked, models.CheckinOut), checked
    assert (checked.event_id, checked.points, checked.balance) == (event.id, 30, 30)

    voucher = await redeem_op.asyncio(client=as_resident,
                                      body=models.RedeemIn(reward_id=reward.id))
    assert isinstance(voucher, models.RedemptionOut), voucher
    assert voucher.balance == 10 and len(voucher.voucher_code) == 8
    me = await me_op.asyncio(client=as_resident)
    assert (me.balance, me.lifetime_points, me.display_name) == (10, 30, "王秀英")

    # what the client saw is what the ledger holds
    assert (await User.get(id=resident.id)).balance == 10
    assert sorted(await LedgerEntry.filter(user_id=resident.id).values_list(
        "delta", flat=True)) == [-20, 30]
    assert await Redemption.filter(user_id=resident.id, voucher_code=voucher.voucher_code
                                   ).exists()
