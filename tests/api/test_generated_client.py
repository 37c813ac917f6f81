"""A client generated from the document by openapi-python-client, without hand edits, logs
in, checks in and redeems (issue 16): what a partner's first day looks like."""

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


async def test_a_generated_client_logs_in_checks_in_and_redeems(app, client, tmp_path):
    package = generate((await client.get("/api/v1/openapi.json")).content, tmp_path)
    models = importlib.import_module("torreya_client.models")
    token_op = importlib.import_module("torreya_client.api.accounts.token")
    me_op = importlib.import_module("torreya_client.api.accounts.me")
    code_op = importlib.import_module("torreya_client.api.checkins.checkin_code")
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
