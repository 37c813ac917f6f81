"""`torreya demo`: a realistic Gulai town (古来镇) with 香榧币, villages, people and half a
year of their life (`torreya.demo.life`)."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from rich.console import Console

from torreya.db import now, orm, replaying
from torreya.demo.life import WEEKS, VillageCast, half_a_year
from torreya.ledger.rules import ensure_default_rules
from torreya.models import Role, Town, User, Village
from torreya.rewards.scheme import import_pack, load_pack_file
from torreya.security import hash_password
from torreya.settings import LOCAL, Settings, resource_dir

PASSWORD = "torreya2026"
VILLAGES = [("古来村", "gulaicun"), ("榧香村", "feixiang"), ("溪口村", "xikou")]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾"
GIVEN = ["建国", "秀英", "桂芳", "志强", "玉兰", "永明", "美华", "国平", "丽娟", "海峰", "春燕",
         "金水", "小明", "慧敏", "德福", "爱萍", "立新", "红梅", "文杰", "雪芬", "根土", "月娥"]


async def load_demo(settings: Settings, *, residents: int, console: Console) -> dict:
    """Create the demo town once; running it again only prints the logins."""
    rng = random.Random(2026)
    began = time.monotonic()
    async with orm(settings):
        users: list[tuple[str, str]] = [("platform_admin", "platform"),
                                        ("town_admin", "gulai_admin")]
        if await Town.exists(code="gulai"):
            console.print("The demo town 古来镇 already exists; nothing was changed.")
            for _name, code in VILLAGES[:1]:
                users += [("village_admin", f"{code}_admin"), ("staff", f"{code}_staff"),
                          ("resident", f"{code}_r001"), ("group leader", f"{code}_r006")]
            return {"password": PASSWORD, "users": users}
        password_hash = await hash_password(PASSWORD)
        if not await User.exists(username="platform"):
            await User.create(username="platform", display_name="平台管理员",
                              password_hash=password_hash, role=Role.PLATFORM_ADMIN)
        town = await Town.create(name="古来镇", code="gulai", currency_name="香榧币")
        await ensure_default_rules(town)
        await User.create(username="gulai_admin", display_name="镇平安办", role=Role.TOWN_ADMIN,
                          town=town, password_hash=password_hash)
        moment = now()
        pack, problems = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
        if pack is None:
            raise RuntimeError("; ".join(str(p) for p in problems))
        casts = []
        for index, (village_name, code) in enumerate(VILLAGES):
            village = await Village.create(town=town, name=village_name, code=code)
            admin = await User.create(username=f"{code}_admin", display_name=f"{village_name}村委",
                                      role=Role.VILLAGE_ADMIN, town=town, village=village,
                                      password_hash=password_hash)
            staff = await User.create(username=f"{code}_staff",
                                      display_name=f"{village_name}网格员", role=Role.STAFF,
                                      town=town, village=village, password_hash=password_hash)
            if index == 0:
                users += [("village_admin", admin.username), ("staff", staff.username),
                          ("resident", f"{code}_r001")]
            people = []
            for n in range(1, residents + 1):
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                # Every fifth resident has no phone: no password, a printed card instead.
                # The others have a mainland mobile (made up, in the 13800 block).
                phone = None if n % 5 == 0 else f"+86138{index:02d}{n:06d}"
                people.append(User(username=f"{code}_r{n:03d}", display_name=name,
                                   role=Role.RESIDENT, town=town, village=village, phone=phone,
                                   password_hash=None if n % 5 == 0 else password_hash))
            await User.bulk_create(people)
            people = await User.filter(village=village, role=Role.RESIDENT).order_by("id")
            casts.append(VillageCast(village, admin, staff, list(people)))
        with replaying(moment - timedelta(weeks=WEEKS, days=1)):
            await import_pack(pack, town=town, actor=None)
        await half_a_year(rng, town, casts, moment)
        users.append(("group leader", f"{VILLAGES[0][1]}_r006"))
        # The history is chained and yesterday's record signed, as the worker would have.
        from torreya.trust.chain import chain_pending
        from torreya.trust.signing import sign_head

        await chain_pending()
        await sign_head(settings, town.id, kind="daily",
                        period=(moment.astimezone(LOCAL) - timedelta(days=1)).date().isoformat())
        console.print(f"Demo town 古来镇 created: {len(VILLAGES)} villages, "
                      f"{residents * len(VILLAGES)} residents and {WEEKS} weeks of their life, "
                      f"in {time.monotonic() - began:.1f} s.")
        return {"password": PASSWORD, "users": users}
