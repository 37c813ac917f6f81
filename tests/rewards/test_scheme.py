"""Scheme packs: every shipped pack loads; problems name file, line and field; import is
create-or-update and export round-trips."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import SECRET
from tests.factories import make_town, make_user, make_village, web_login
from torreya.models import EarningRule, Reward, RewardImage, Role, StockMovement, Town
from torreya.rewards.scheme import check_pack, export_pack, import_pack, load_pack_file
from torreya.settings import resource_dir

PACKS = sorted(resource_dir("rewards").glob("*.toml"))


def test_the_demo_pack_ships():
    assert resource_dir("rewards") / "gulai-torreya-coin.toml" in PACKS


@pytest.mark.parametrize("path", PACKS, ids=lambda p: p.name)
def test_every_shipped_pack_is_valid(path):
    pack, problems = load_pack_file(path)
    assert problems == [] and pack is not None
    assert pack.rules and pack.rewards
    everyday = [r.cost for r in pack.rewards if r.category == "goods"]
    assert pack.levels and pack.badges
    assert all(10 <= cost <= 150 for cost in everyday)
    # the shop shows the goods: every item of a shipped pack has its picture
    assert all(r.picture is not None and r.picture[1] == "image/jpeg" for r in pack.rewards)


def test_a_pack_names_pictures_beside_it_and_a_missing_one_is_a_problem(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(tmp_path / "images" / "rice.png")
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not a picture")
    base = ('[scheme]\nname = "x"\ncurrency_name = "分"\n\n[[rewards]]\nkey = "rice"\n'
            'name = "大米"\ncost = 10\nimage = "{}"\n')
    path = tmp_path / "pack.toml"
    path.write_text(base.format("images/rice.png"), encoding="utf-8")
    pack, problems = load_pack_file(path)
    assert problems == [] and pack.rewards[0].picture[0][:2] == b"\xff\xd8"  # a JPEG
    for name, says in (("images/none.jpg", "找不到图片 images/none.jpg"),
                       ("../secret.jpg", "方案文件旁"),
                       ("/etc/passwd.png", "方案文件旁"),
                       ("images/rice.gif", "方案文件旁"),
                       ("images/broken.jpg", "images/broken.jpg: ")):
        path.write_text(base.format(name), encoding="utf-8")
        pack, problems = load_pack_file(path)
        assert pack is None, name
        assert [(p.line, p.field) for p in problems] == [(9, "rewards[0].image")], problems
        assert says in problems[0].message, problems
    # pasted into the console (no folder): the name is checked, the picture left alone
    pack, problems = check_pack(base.format("images/none.jpg"), "pasted.toml")
    assert problems == [] and pack.rewards[0].picture is None


def test_bad_levels_and_badges_are_named():
    text = """[scheme]
name = "x"
currency_name = "币"

[[levels]]
name = "新人"
min_points = 10

[[badges]]
rule = "fly"
name = "飞"
"""
    _pack, problems = check_pack(text, "lv.toml")
    assert {(p.line, p.field) for p in problems} >= {(7, "levels[0].min_points"),
                                                     (10, "badges[0].rule")}


BAD = """[scheme]
name = "测试"
currency_name = "币"

[[rules]]
kind = "patrol"
points = -5

[[rewards]]
key = "rice"
name = "大米"
cost = "many"

[[rewards]]
key = "rice"
name = "<b>油</b>"
cost = 10
category = "food"
"""


def test_problems_name_file_line_and_field():
    pack, problems = check_pack(BAD, "bad.toml")
    assert pack is None
    found = {(p.line, p.field) for p in problems}
    assert (7, "rules[0].points") in found
    assert (12, "rewards[0].cost") in found
    assert (15, "rewards[1].key") in found
    assert (16, "rewards[1].name") in found
    assert (18, "rewards[1].category") in found
    assert all(str(p).startswith("bad.toml:") for p in problems)


def test_syntax_error_names_the_line():
    _pack, problems = check_pack('[scheme]\nname = "x\n', "broken.toml")
    assert problems[0].line == 2 and problems[0].field == "syntax"


async def test_import_creates_then_updates_without_touching_stock(app):
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    pack, _ = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
    first = await import_pack(pack, town=town, actor=None)
    assert first.created == len(pack.rewards) and first.updated == 0
    town = await Town.get(id=town.id)
    assert town.currency_name == "香榧币" and town.voucher_days == 30
    patrol = await EarningRule.get(town_id=town.id, kind="patrol")
    assert patrol.points == 20 and patrol.cap_day == 60 and patrol.needs_review
    assert town.levels[-1] == {"name": "香榧平安标兵", "min_points": 2000}
    assert {"rule": "first_patrol", "name": "红枫初巡"} in town.badges
    rice = await Reward.get(town_id=town.id, key="rice-5jin")
    assert rice.stock == 40 and rice.village_id is None
    assert rice.has_image and await RewardImage.filter(reward_id=rice.id).count() == 1
    assert await RewardImage.all().count() == len(pack.rewards)
    assert await StockMovement.filter(reward_id=rice.id, reason="initial").count() == 1
    await Reward.filter(id=rice.id).update(stock=12)
    pack.rewards[0].cost = 125
    second = await import_pack(pack, town=town, actor=None)
    assert second.created == 0 and second.updated == len(pack.rewards)
    assert await RewardImage.all().count() == len(pack.rewards)  # replaced, not added
    rice = await Reward.get(id=rice.id)
    assert rice.cost == 125 and rice.stock == 12
    assert await Reward.filter(town_id=town.id).count() == len(pack.rewards)


async def test_import_refuses_unknown_village_and_writes_nothing(app):
    town = await make_town()
    pack, _ = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
    with pytest.raises(Exception, match="not in this town"):
        await import_pack(pack, town=town, actor=None)
    assert await Reward.filter(town_id=town.id).count() == 0


async def test_export_round_trips(app):
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    pack, _ = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
    await import_pack(pack, town=town, actor=None)
    text = await export_pack(await Town.get(id=town.id))
    again, problems = check_pack(text, "export.toml")
    assert problems == []
    assert [r.key for r in again.rewards] == [r.key for r in pack.rewards]
    assert again.levels == pack.levels and again.badges == pack.badges
    assert {(r.kind, r.points, r.cap_day) for r in again.rules} >= {
        (r.kind, r.points, r.cap_day) for r in pack.rules}
    result = await import_pack(again, town=await Town.get(id=town.id), actor=None)
    assert result.created == 0


def _cli(args, cwd, db_url):
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET}
    return subprocess.run([sys.executable, "-m", "torreya.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_scheme_cli_check_import_export(tmp_path, db_url, app):
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD, encoding="utf-8")
    checked = _cli(["scheme", "check", str(bad)], tmp_path, db_url)
    assert checked.returncode == 1 and f"{bad}:12: rewards[0].cost" in checked.stdout
    good = resource_dir("rewards") / "gulai-torreya-coin.toml"
    assert _cli(["scheme", "check", str(good)], tmp_path, db_url).returncode == 0
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    imported = _cli(["scheme", "import", str(good)], tmp_path, db_url)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert await Reward.filter(town_id=town.id).count() == 8
    out = tmp_path / "out.toml"
    exported = _cli(["scheme", "export", str(out), "--town", "gulai"], tmp_path, db_url)
    assert exported.returncode == 0 and 'key = "rice-5jin"' in out.read_text(encoding="utf-8")


async def test_console_import_and_export(client):
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    token = await web_login(client, admin)
    data = (resource_dir("rewards") / "gulai-torreya-coin.toml").read_bytes()
    ok = await client.post(f"/console/towns/{town.id}/scheme", data={"csrf_token": token},
                           files={"pack": ("gulai.toml", data, "application/toml")})
    assert ok.status_code == 200 and "新增 8 件商品" in ok.text
    bad = await client.post(f"/console/towns/{town.id}/scheme", data={"csrf_token": token},
                            files={"pack": ("bad.toml", BAD.encode(), "application/toml")})
    assert bad.status_code == 422 and "bad.toml:12: rewards[0].cost: 必须是整数" in bad.text
    exported = await client.get(f"/console/towns/{town.id}/scheme.toml")
    assert exported.status_code == 200 and 'key = "rice-5jin"' in exported.text
    other = await make_town()
    assert (await client.get(f"/console/towns/{other.id}/scheme.toml")).status_code == 404


def _image(fmt: str, size=(1200, 900)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    image.save(out, format=fmt, exif=exif) if fmt in ("JPEG", "WEBP") else image.save(
        out, format=fmt)
    return out.getvalue()


async def test_item_with_picture_is_reencoded_without_exif(client, monkeypatch):
    from torreya import images
    from torreya.models import AuditEvent

    encodings = []
    encode = images.reencode_image
    monkeypatch.setattr(images, "reencode_image",
                        lambda data: encodings.append(len(data)) or encode(data))
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    response = await client.post(
        f"/console/villages/{village.id}/rewards/new",
        data={"csrf_token": token, "name": "理发服务", "cost": "40", "category": "service",
              "stock": "", "per_user_limit": "2", "limit_period": "month"},
        files={"image": ("photo.jpg", _image("JPEG"), "image/jpeg")})
    assert response.status_code == 303
    reward = await Reward.get(name="理发服务")
    assert reward.per_user_limit == 2 and reward.stock is None and reward.has_image
    stored = await RewardImage.get(reward_id=reward.id)
    with Image.open(io.BytesIO(stored.content)) as image:
        assert image.format == "JPEG" and max(image.size) <= 800
        assert not image.getexif()
    served = await client.get(f"/rewards/{reward.id}/image")
    assert served.headers["content-type"] == "image/jpeg"
    assert len(encodings) == 1  # checked and stored from one encoding, not two
    tags = await AuditEvent.filter(subject=f"reward:{reward.id}").values_list("tag", flat=True)
    assert sorted(tags) == ["rewards:reward:create", "rewards:reward:image"]


async def test_an_item_whose_picture_fails_to_store_is_not_written_at_all(app, monkeypatch):
    """The item, its stock movement, its picture and their audit records are one
    transaction: a failure storing the picture (after the item's rows) leaves none of them."""
    from torreya.models import AuditEvent
    from torreya.rewards import service

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)

    async def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(RewardImage, "create", broken)
    with pytest.raises(RuntimeError):
        await service.create_reward(actor=admin, village=village, fields=service.RewardFields(
            name="雨伞", cost=20, category="goods", stock=5), image=_image("PNG"))
    assert not await Reward.exists(name="雨伞")
    assert not await StockMovement.exists(village_id=village.id)
    assert not await AuditEvent.filter(tag__startswith="rewards:reward").exists()


@pytest.mark.parametrize(("name", "data"), [
    ("notes.txt", b"just some text"),
    ("fake.jpg", b"\xff\xd8\xff\xe0" + b"0" * 100),
    ("anim.gif", None),
])
async def test_bad_pictures_are_refused_and_nothing_is_created(client, name, data):
    if data is None:
        out = io.BytesIO()
        Image.new("RGB", (10, 10)).save(out, format="GIF")
        data = out.getvalue()
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    response = await client.post(
        f"/console/villages/{village.id}/rewards/new",
        data={"csrf_token": token, "name": "坏图片", "cost": "10", "category": "goods"},
        files={"image": (name, data, "application/octet-stream")})
    assert response.status_code == 303
    page = await client.get(f"/console/villages/{village.id}/rewards")
    assert "只支持 JPEG、PNG 或 WebP 图片" in page.text
    assert not await Reward.exists(name="坏图片")


async def test_restock_and_write_off_are_public_movements(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    reward = await Reward.create(town_id=village.town_id, village=village, name="毛巾", cost=15,
                                 stock=2)
    token = await web_login(client, admin)
    await client.post(f"/console/rewards/{reward.id}/restock",
                      data={"csrf_token": token, "delta": "10"})
    await client.post(f"/console/rewards/{reward.id}/restock",
                      data={"csrf_token": token, "delta": "-50"})
    await reward.refresh_from_db()
    assert reward.stock == 12
    deltas = await StockMovement.filter(reward_id=reward.id).values_list("delta", flat=True)
    assert deltas == [10]




async def test_admin_edits_an_item_and_the_change_is_audited(client):
    from torreya.models import AuditEvent

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    reward = await Reward.create(town_id=village.town_id, village=village, name="毛巾", cost=15,
                                 stock=4)
    token = await web_login(client, admin)
    response = await client.post(f"/console/rewards/{reward.id}/edit", data={
        "csrf_token": token, "name": "纯棉毛巾", "cost": "20", "category": "goods",
        "per_user_limit": "2", "limit_period": "month", "stock": "999"})
    assert response.status_code == 303
    await reward.refresh_from_db()
    assert (reward.name, reward.cost, reward.per_user_limit, reward.stock) == (
        "纯棉毛巾", 20, 2, 4)
    assert await AuditEvent.filter(tag="rewards:reward:update").exists()
    bad = await client.post(f"/console/rewards/{reward.id}/edit", data={
        "csrf_token": token, "name": "纯棉毛巾", "cost": "0", "category": "goods"})
    assert bad.status_code == 303
    await reward.refresh_from_db()
    assert reward.cost == 20


async def test_a_pack_sets_points_expiry_and_a_wrong_rule_is_named(app):
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    text = (resource_dir("rewards") / "gulai-torreya-coin.toml").read_text()
    assert 'expiry = "none"' in text
    pack, problems = check_pack(text.replace('expiry = "none"', 'expiry = "12 months"'),
                                "gulai.toml", resource_dir("rewards"))
    assert problems == [] and pack.expiry == "12 months"
    await import_pack(pack, town=town, actor=None)
    assert (await Town.get(id=town.id)).expiry == "12 months"
    assert 'expiry = "12 months"' in await export_pack(await Town.get(id=town.id))
    _pack, wrong = check_pack(text.replace('expiry = "none"', 'expiry = "forever"'),
                              "gulai.toml", resource_dir("rewards"))
    assert [(p.field, p.message) for p in wrong] == [
        ("scheme.expiry", "必须是以下之一：none, end_of_year, 12 months")]


async def test_star_criteria_and_bonus_come_with_the_pack(app):
    town = await make_town(code="gulai")
    await make_village(town, code="gulaicun")
    pack, problems = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
    assert problems == [] and pack.star_bonus == 10
    assert {"name": "参加平安巡逻", "weight": 3, "source": "patrol"} in pack.star_criteria
    await import_pack(pack, town=town, actor=None)
    town = await Town.get(id=town.id)
    assert town.star_bonus == 10 and town.star_criteria == pack.star_criteria
    again, problems = check_pack(await export_pack(town), "again.toml", resource_dir("rewards"))
    assert problems == [] and again.star_criteria == pack.star_criteria
    text = (resource_dir("rewards") / "gulai-torreya-coin.toml").read_text()
    _pack, wrong = check_pack(text.replace('source = "patrol"', 'source = "gossip"'),
                              "gulai.toml", resource_dir("rewards"))
    assert [p.field for p in wrong] == ["star_criteria[1].source"]  # the second
