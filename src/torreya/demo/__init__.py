"""`torreya demo`: a realistic Gulai town (古来镇) with 香榧币, villages, people and history."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from rich.console import Console
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.db import now, orm
from torreya.ledger.rules import ensure_default_rules
from torreya.ledger.service import Credit, post_entry
from torreya.models import (
    Checkin,
    Checkpoint,
    Event,
    Group,
    GroupMember,
    Patrol,
    PatrolParticipant,
    PatrolScan,
    PatrolStatus,
    Role,
    Route,
    Town,
    User,
    Village,
)
from torreya.models.checkins import QrMode
from torreya.patrols.codes import new_join_code
from torreya.rewards.scheme import import_pack, load_pack_file
from torreya.security import hash_password
from torreya.settings import Settings, resource_dir
from torreya.templating import LOCAL

PASSWORD = "torreya2026"
VILLAGES = [("古来村", "gulaicun"), ("榧香村", "feixiang"), ("溪口村", "xikou")]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾"
GIVEN = ["建国", "秀英", "桂芳", "志强", "玉兰", "永明", "美华", "国平", "丽娟", "海峰", "春燕",
         "金水", "小明", "慧敏", "德福", "爱萍", "立新", "红梅", "文杰", "雪芬", "根土", "月娥"]
PAST_EVENTS = [
    ("反诈宣传进村入户", "campaign", 10),
    ("消防安全培训", "training", 15),
    ("防溺水安全宣讲", "campaign", 10),
    ("平安夜巡动员会", "meeting", 5),
    ("独居老人走访", "home_visit", 20),
    ("森林防火应急演练", "drill", 20),
]


async def load_demo(settings: Settings, *, residents: int, console: Console) -> dict:
    """Create the demo town once; running it again only prints the logins."""
    rng = random.Random(2026)
    async with orm(settings):
        users: list[tuple[str, str]] = [("platform_admin", "platform"),
                                        ("town_admin", "gulai_admin")]
        if await Town.exists(code="gulai"):
            console.print("The demo town 古来镇 already exists; nothing was changed.")
            for _name, code in VILLAGES[:1]:
                users += [("village_admin", f"{code}_admin"), ("staff", f"{code}_staff"),
                          ("resident", f"{code}_r001"), ("group leader", f"{code}_r006")]
            return {"password": PASSWORD, "users": users}
        password_hash = hash_password(PASSWORD)
        if not await User.exists(username="platform"):
            await User.create(username="platform", display_name="平台管理员",
                              password_hash=password_hash, role=Role.PLATFORM_ADMIN)
        town = await Town.create(name="古来镇", code="gulai", currency_name="香榧币")
        await ensure_default_rules(town)
        await User.create(username="gulai_admin", display_name="镇平安办", role=Role.TOWN_ADMIN,
                          town=town, password_hash=password_hash)
        moment = now()
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
            await _history(rng, town, village, admin, staff, people, moment)
            await Event.create(village=village, town=town, title="平安积分集市·现场签到",
                               kind="campaign", points=10, place=f"{village_name}文化礼堂",
                               starts_at=moment - timedelta(hours=1),
                               ends_at=moment + timedelta(days=7), qr_mode=QrMode.STATIC,
                               created_by=admin)
            await Event.create(village=village, town=town, title="反诈知识讲座（大屏签到）",
                               kind="training", points=15, place=f"{village_name}会议室",
                               starts_at=moment - timedelta(hours=1),
                               ends_at=moment + timedelta(days=7), qr_mode=QrMode.ROTATING,
                               created_by=admin)
        await _red_maple(rng, town, moment)
        users.append(("group leader", f"{VILLAGES[0][1]}_r006"))
        pack, problems = load_pack_file(resource_dir("rewards") / "gulai-torreya-coin.toml")
        if pack is None:
            raise RuntimeError("; ".join(str(p) for p in problems))
        await import_pack(pack, town=town, actor=None)
        # The history is chained and yesterday's record signed, as the worker would have.
        from torreya.trust.chain import chain_pending
        from torreya.trust.signing import sign_head

        await chain_pending()
        await sign_head(settings, town.id, kind="daily",
                        period=(moment.astimezone(LOCAL) - timedelta(days=1)).date().isoformat())
        console.print(f"Demo town 古来镇 created: {len(VILLAGES)} villages, "
                      f"{residents * len(VILLAGES)} residents.")
        return {"password": PASSWORD, "users": users}


async def _history(rng, town, village, admin, staff, people, moment) -> None:
    """Past events over the last three months, with check-ins credited at their time."""
    for weeks_ago, (title, kind, points) in zip(range(12, 0, -2), PAST_EVENTS, strict=False):
        day = (moment - timedelta(weeks=weeks_ago, days=rng.randint(0, 2))).astimezone(LOCAL)
        start = day.replace(hour=rng.choice([9, 14, 19]), minute=0, second=0, microsecond=0)
        event = await Event.create(village=village, town=town, title=title, kind=kind,
                                   points=points, place=f"{village.name}文化礼堂",
                                   starts_at=start, ends_at=start + timedelta(hours=3),
                                   qr_mode=QrMode.STATIC, created_by=admin)
        attendees = rng.sample(people, k=max(1, int(len(people) * rng.uniform(0.3, 0.7))))
        for person in attendees:
            at = start + timedelta(minutes=rng.randint(0, 170))
            card = person.password_hash is None
            async with in_transaction() as connection:
                await Checkin.create(event=event, user=person, points=points,
                                     method="card" if card else "static",
                                     staff=staff if card else None, created_at=at,
                                     using_db=connection)
                entry = await post_entry(
                    Credit(user=person, delta=points, kind="checkin", memo=title,
                           idem_key=f"checkin:{event.id}:{person.id}", source_type="event",
                           source_id=event.id, actor=staff if card else person, proxy=card,
                           earned=True, at=at), connection)
                if card:
                    await audit.record(staff, "checkins:checkin:proxy", connection=connection,
                                       subject=f"user:{person.id}", town_id=town.id,
                                       village_id=village.id, entry_id=entry.id,
                                       data={"event": event.id, "points": points})


CHECKPOINTS = ["村委会", "古来桥", "香榧林入口", "小学门口", "老年活动中心"]


async def _red_maple(rng, town, moment) -> None:
    """红枫义警: a town-wide volunteer group with a night route and approved history."""
    village = await Village.get(town=town, code=VILLAGES[0][1])
    people = await User.filter(village=village, role=Role.RESIDENT).order_by("id").limit(10)
    if len(people) < 7:
        return
    villages = await Village.filter(town=town).values_list("id", flat=True)
    group = await Group.create(town=town, name="红枫义警", village_ids=list(villages),
                               invite_code=secrets.token_urlsafe(9))
    # people[5] is r006: every fifth resident (r005) has no phone, so cannot lead
    leader, members = people[5], [p for i, p in enumerate(people) if i != 5]
    await GroupMember.create(group=group, user=leader, role="leader")
    for person in members[:6]:
        await GroupMember.create(group=group, user=person, role="member")
    route = await Route.create(group=group, village=village, name="古来村夜巡线",
                               min_checkpoints=3)
    checkpoints = [await Checkpoint.create(route=route, name=name, position=i)
                   for i, name in enumerate(CHECKPOINTS, start=1)]
    admin = await User.get(username=f"{VILLAGES[0][1]}_admin")
    rate = 20
    for days_ago in (21, 14, 7):
        day = (moment - timedelta(days=days_ago)).astimezone(LOCAL)
        start = day.replace(hour=20, minute=rng.choice([0, 15, 30]), second=0, microsecond=0)
        minutes = rng.choice([90, 120, 150])
        crew = [leader] + rng.sample(members[:6], k=3)
        patrol = await Patrol.create(group=group, route=route, leader=leader,
                                     village_id=village.id, town_id=town.id,
                                     status=PatrolStatus.APPROVED, join_code=new_join_code(),
                                     started_at=start, finished_at=start + timedelta(
                                         minutes=minutes), duration_minutes=minutes,
                                     reviewed_by=admin, reviewed_at=start + timedelta(days=1))
        for person in crew:
            await PatrolParticipant.create(patrol=patrol, user=person)
            for offset, checkpoint in enumerate(checkpoints[:4]):
                await PatrolScan.create(patrol=patrol, checkpoint=checkpoint, user=person,
                                        created_at=start + timedelta(minutes=20 * offset + 5))
            async with in_transaction() as connection:
                points = minutes * rate // 60
                entry = await post_entry(
                    Credit(user=person, delta=points, kind="patrol", memo=route.name,
                           idem_key=f"patrol:{patrol.id}:{person.id}", source_type="patrol",
                           source_id=patrol.id, actor=admin, earned=True,
                           at=start + timedelta(days=1)), connection)
                await audit.record(admin, "patrols:award:create", connection=connection,
                                   subject=f"user:{person.id}", town_id=town.id,
                                   village_id=village.id, entry_id=entry.id,
                                   data={"patrol": patrol.id, "points": points})
