"""Half a year of village life for `torreya demo`, replayed in the order it happened.

Every action is scheduled on one timeline and done at its moment through the same services
a user's request calls (`torreya.db.replaying` dates what they write): residents redeem
what they can afford and staff hand it over, some cancel and some let a voucher lapse,
reports go through review to resolution or refusal, pledges are signed, the delivery worker
tells residents. Check-ins and patrols are written as their services would have, with the
entry credited at its time (their codes are signed for the present, not the past).
The last days are left as a clerk would find them on a Monday: reports and a patrol to
review, vouchers to hand over, registrations to approve, scans refused today.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.checkins.checkout import attended_minutes
from torreya.db import now, replaying
from torreya.errors import DomainError
from torreya.households.service import add_member as add_household_member
from torreya.households.service import create_household
from torreya.households.service import rate as rate_household
from torreya.ledger.service import Posting, adjust_points, post_entry
from torreya.models import (
    Checkin,
    CheckinRefusal,
    Checkpoint,
    Event,
    Group,
    GroupMember,
    Patrol,
    PatrolParticipant,
    PatrolScan,
    PatrolStatus,
    Registration,
    Reward,
    Route,
    SmsMessage,
    SmsStatus,
    Town,
    User,
    Village,
)
from torreya.models.checkins import QrMode
from torreya.outbox.worker import dispatch
from torreya.patrols.codes import new_join_code
from torreya.patrols.service import approve_patrol, reject_patrol
from torreya.pledges.service import create_pledge, sign_pledge
from torreya.reports.cases import rate as rate_report
from torreya.reports.cases import record_visit
from torreya.reports.service import advance_report, file_report, review_report
from torreya.rewards.service import (
    RewardFields,
    cancel_redemption,
    create_reward,
    expire_vouchers,
    fulfil_voucher,
    redeem_reward,
)
from torreya.settings import LOCAL

# A little over the six months the dashboard shows, so its first month is full too.
WEEKS = 27
PAST_EVENTS = [
    ("反诈宣传进村入户", "campaign", 10),
    ("消防安全培训", "training", 15),
    ("防溺水安全宣讲", "campaign", 10),
    ("平安夜巡动员会", "meeting", 5),
    ("独居老人走访", "home_visit", 20),
    ("森林防火应急演练", "drill", 20),
    ("电动车安全充电宣讲", "training", 10),
    ("平安家庭创建座谈", "meeting", 5),
]
REPORTS = [
    ("hazard", "村口桥边护栏松动，晚上看不清，小孩容易靠过去。", "古来桥"),
    ("hazard", "文化礼堂后面的电线垂得很低，下雨天有火花。", "文化礼堂后"),
    ("fraud", "有人打电话说是医保局的，要我点链接领补贴。", ""),
    ("fraud", "村里来了两个人推销“保健品”，说能治高血压，收现金。", "老年活动中心"),
    ("hazard", "香榧林入口有人烧垃圾，风大，怕引起山火。", "香榧林入口"),
    ("dispute", "两户人家为宅基地边界吵起来了，需要调解。", "后山脚"),
    ("other", "路灯坏了三盏，晚上巡逻看不清路。", "小学门口"),
    ("hazard", "池塘边的警示牌被风吹倒了。", "村西池塘"),
]
REJECT_NOTES = ["已核实，属于重复上报，之前已处理。", "经现场查看，未发现所述情况。"]
STEP_NOTES = {"in_progress": "已联系相关人员到现场处理。", "resolved": "已处理完毕，感谢您的上报！"}
CHECKPOINTS = ["村委会", "古来桥", "香榧林入口", "小学门口", "老年活动中心"]
PLEDGE_TEXT = ("我承诺：不轻信陌生来电，不点击不明链接，不向陌生账户转账；"
               "遇到可疑情况，及时告诉家人并拨打 96110。")
PLEDGE_CONFIRMATIONS = ["我已下载国家反诈中心App", "我会提醒家人防范电信诈骗"]

Action = Callable[[datetime], Awaitable[None]]


@dataclass
class Timeline:
    """Actions in time order; an action may schedule what follows from it."""

    _queue: list[tuple[datetime, int, Action]] = field(default_factory=list)
    _order: itertools.count = field(default_factory=itertools.count)

    def at(self, moment: datetime, action: Action) -> None:
        heapq.heappush(self._queue, (moment, next(self._order), action))

    async def run(self) -> None:
        """Each week's actions commit together (a service's own transaction is then a
        savepoint): a few dozen commits instead of a thousand, which is what makes the demo
        quick on SQLite with synchronous=FULL."""
        while self._queue:
            week = self._queue[0][0].isocalendar()[:2]
            async with in_transaction():
                while self._queue and self._queue[0][0].isocalendar()[:2] == week:
                    moment, _order, action = heapq.heappop(self._queue)
                    with replaying(moment):
                        try:
                            await action(moment)
                        except DomainError:
                            pass  # refused as it would have been (can't afford it …)


@dataclass
class VillageCast:
    village: Village
    admin: User
    staff: User
    people: list[User]

    @property
    def with_phone(self) -> list[User]:
        return [p for p in self.people if p.password_hash is not None]


def _local(moment: datetime, hour: int, minute: int = 0) -> datetime:
    return moment.astimezone(LOCAL).replace(hour=hour, minute=minute, second=0, microsecond=0)


async def half_a_year(rng: random.Random, town: Town, casts: list[VillageCast],
                      moment: datetime) -> None:
    """Fill the last 26 weeks up to `moment` for every village."""
    timeline = Timeline()
    start = moment - timedelta(weeks=WEEKS)
    for cast in casts:
        _events(rng, timeline, town, cast, start, moment)
        _shop(rng, timeline, cast, start, moment)
        _reports(rng, timeline, cast, start, moment)
        _pledge(rng, timeline, cast, start, moment)
        _today(rng, timeline, cast, moment)
        _live_events(rng, timeline, town, cast, moment)
    await _red_maple(rng, timeline, town, casts[0], start, moment)
    _favours(timeline, casts[0], moment)
    for cast in casts:
        _households(rng, timeline, cast, start)
    for week in range(1, WEEKS + 1):
        timeline.at(min(start + timedelta(weeks=week), moment),
                    functools.partial(_week_end, town_id=town.id))
    await timeline.run()
    await _week_end(moment, town_id=town.id)  # today's too: nothing left to send at start


async def _week_end(moment: datetime, *, town_id: int) -> None:
    """What the worker does meanwhile: lapsed vouchers refunded, residents told, and their
    text messages delivered then (marked sent), not replayed by the first `serve`."""
    await expire_vouchers()
    while await dispatch():
        pass
    people = await User.filter(town_id=town_id).values_list("id", flat=True)
    await SmsMessage.filter(status=SmsStatus.PENDING, user_id__in=people).update(
        status=SmsStatus.SENT, sent_at=moment)


def _households(rng, timeline: Timeline, cast: VillageCast, start: datetime) -> None:
    """Families of two to four, each named after its head (户主), there from the start and
    rated last year (星级平安户): the household board and the 红榜 have something to show."""
    async def settle(at: datetime) -> None:
        people = list(cast.people)
        while len(people) >= 2:
            size = min(len(people), rng.choice((2, 3, 3, 4)))
            family, people = people[:size], people[size:]
            home = await create_household(actor=cast.admin, village=cast.village,
                                          name=f"{family[0].display_name}家",
                                          head_user_id=family[0].id)
            for member in family[1:]:
                await add_household_member(actor=cast.admin, household_id=home.id,
                                           user_id=member.id)
            await rate_household(actor=cast.admin, household_id=home.id, year=at.year - 1,
                                 stars=rng.choice((3, 4, 4, 5, 5)), note="")
    timeline.at(start, settle)


def _favours(timeline: Timeline, cast: VillageCast, moment: datetime) -> None:
    """The committee's review queue is not empty in the demo: the admin thanks the same
    resident three times in three weeks (an integrity signal to look at, likely fine)."""
    friend = cast.people[3]
    for days, points, memo in ((20, 30, "帮忙布置文化礼堂"), (12, 20, "义务清扫村道"),
                               (4, 30, "协助反诈宣传")):
        async def thank(_at: datetime, points=points, memo=memo) -> None:
            await adjust_points(actor=cast.admin, target=friend, delta=points, memo=memo)
        timeline.at(_local(moment - timedelta(days=days), 16), thank)


# -- events and check-ins --------------------------------------------------------------------


def _events(rng, timeline: Timeline, town: Town, cast: VillageCast, start: datetime,
            moment: datetime) -> None:
    """An event every fortnight, the last one a few days ago, with its check-ins."""
    for number, weeks_after in enumerate(range(1, WEEKS, 2)):
        title, kind, points = PAST_EVENTS[number % len(PAST_EVENTS)]
        day = start + timedelta(weeks=weeks_after, days=rng.randint(0, 3))
        begins = _local(day, rng.choice([9, 14, 19]))
        if begins + timedelta(hours=3) > moment - timedelta(days=1):
            begins = _local(moment - timedelta(days=3), 14)

        async def hold(at: datetime, title=title, kind=kind, points=points) -> None:
            # Home visits and drills are volunteer work: leaving is recorded, and the
            # time counts as service hours (issue 34).
            event = await Event.create(village=cast.village, town=town, title=title, kind=kind,
                                       points=points, place=f"{cast.village.name}文化礼堂",
                                       starts_at=at, ends_at=at + timedelta(hours=3),
                                       qr_mode=QrMode.STATIC, created_by=cast.admin,
                                       checkout=kind in ("home_visit", "drill"),
                                       created_at=at - timedelta(days=5))
            await _checkins(rng, town, cast, event)

        timeline.at(begins, hold)


async def _checkins(rng, town: Town, cast: VillageCast, event: Event, *,
                    share: tuple[float, float] = (0.3, 0.7), minutes: int = 170) -> None:
    """Those who came, credited at the time they scanned (staff scan the cards of those
    without a phone) within `minutes` of the start; a few scans refused (twice, or after
    the end)."""
    attendees = rng.sample(cast.people, k=max(1, int(len(cast.people) * rng.uniform(*share))))
    async with in_transaction() as connection:
        for person in attendees:
            at = event.starts_at + timedelta(minutes=rng.randint(0, minutes))
            card = person.password_hash is None
            left = None  # most scan again when they leave; one in six forgets
            if event.checkout and rng.random() > 1 / 6:
                left = min(at + timedelta(minutes=rng.randint(40, 160)), event.ends_at)
            await Checkin.create(event=event, user=person, points=event.points,
                                 method="card" if card else "static",
                                 staff=cast.staff if card else None, created_at=at,
                                 checked_out_at=left,
                                 minutes=attended_minutes(event, at, left) if left else None,
                                 checkout_method=("card" if card else "static") if left else "",
                                 checkout_staff_id=cast.staff.id if card and left else None,
                                 using_db=connection)
            entry = await post_entry(
                Posting(user=person, delta=event.points, kind="checkin", memo=event.title,
                       idem_key=f"checkin:{event.id}:{person.id}", source_type="event",
                       source_id=event.id, actor=cast.staff if card else person, proxy=card,
                       earned=True, at=at), connection)
            if card:
                await audit.record(cast.staff, "checkins:checkin:proxy", connection=connection,
                                   subject=f"user:{person.id}", town_id=town.id,
                                   village_id=cast.village.id, entry_id=entry.id,
                                   data={"event": event.id, "points": event.points})
        for person in rng.sample(attendees, k=min(len(attendees), rng.randint(0, 2))):
            if event.ends_at > now():
                break
            late = rng.random() < 0.5
            await CheckinRefusal.create(
                event=event, user=person, village_id=cast.village.id, method="static",
                reason="event_not_open" if late else "already_checked_in",
                created_at=event.ends_at + timedelta(minutes=rng.randint(5, 90)) if late
                else event.starts_at + timedelta(minutes=rng.randint(20, 170)),
                using_db=connection)


def _live_events(rng, timeline: Timeline, town: Town, cast: VillageCast,
                 moment: datetime) -> None:
    """This week's two events, open since an hour ago; some have scanned already."""
    async def open_events(at: datetime) -> None:
        market = await Event.create(village=cast.village, town=town, title="平安积分集市·现场签到",
                                    kind="campaign", points=10,
                                    place=f"{cast.village.name}文化礼堂", starts_at=at,
                                    ends_at=at + timedelta(days=7), qr_mode=QrMode.STATIC,
                                    created_by=cast.admin, created_at=at - timedelta(days=3))
        await Event.create(village=cast.village, town=town, title="反诈知识讲座（大屏签到）",
                           kind="training", points=15, place=f"{cast.village.name}会议室",
                           starts_at=at, ends_at=at + timedelta(days=7),
                           qr_mode=QrMode.ROTATING, created_by=cast.admin,
                           created_at=at - timedelta(days=3))
        await _checkins(rng, town, cast, market, share=(0.1, 0.2), minutes=50)

    timeline.at(moment - timedelta(hours=1), open_events)


# -- the shop --------------------------------------------------------------------------------


def _shop(rng, timeline: Timeline, cast: VillageCast, start: datetime,
          moment: datetime) -> None:
    """The village's own item (which runs low), then each week a few residents spend."""

    async def stock_own_item(at: datetime) -> None:
        await create_reward(actor=cast.admin, village=cast.village, fields=RewardFields(
            name=f"{cast.village.name}土鸡蛋 10 个", cost=50, stock=6, per_user_limit=1,
            limit_period="month", description="本村养殖户提供，村委会领取。"))

    timeline.at(start + timedelta(days=1), stock_own_item)
    for week in range(1, WEEKS):
        for person in rng.sample(cast.people, k=max(1, len(cast.people) // 12)):
            at = _local(start + timedelta(weeks=week, days=rng.randint(0, 6)),
                        rng.randint(8, 18), rng.choice([0, 15, 30, 45]))
            if at < moment - timedelta(hours=2):
                timeline.at(at, _spend(rng, timeline, cast, person, moment))


def _spend(rng, timeline: Timeline, cast: VillageCast, person: User, moment: datetime, *,
           collect: bool = True) -> Action:
    """Redeem an affordable item; then mostly collect it, sometimes cancel, now and then
    forget it (the worker refunds it when it lapses). `collect=False`: still to collect."""
    async def spend(at: datetime) -> None:
        user = await User.get(id=person.id)
        rewards = await Reward.filter(town_id=user.town_id, is_active=True,
                                      cost__lte=user.balance).order_by("id")
        choices = [r for r in rewards if r.village_id in (None, user.village_id)]
        if not choices:
            return
        # most save up for something worth having rather than spend it all on towels
        reward = rng.choices(choices, weights=[r.cost for r in choices])[0]
        card = user.password_hash is None
        result = await redeem_reward(user=user, reward_id=reward.id,
                                     staff=cast.staff if card else None)
        code, roll = result.redemption.voucher_code, rng.random()
        later = at + timedelta(days=rng.choice([0, 1, 1, 2, 3]), hours=rng.randint(1, 5))
        if later >= moment or not collect:
            return  # still waiting for hand-over today
        if roll < 0.8:
            async def hand_over(_at: datetime) -> None:
                await fulfil_voucher(staff=cast.staff, code=code)
            timeline.at(later, hand_over)
        elif roll < 0.9:
            async def cancel(_at: datetime) -> None:
                await cancel_redemption(actor=user, redemption_id=result.redemption.id)
            timeline.at(later, cancel)
        # else: never collected; the worker refunds it when it lapses

    return spend


# -- reports ---------------------------------------------------------------------------------


def _reports(rng, timeline: Timeline, cast: VillageCast, start: datetime,
             moment: datetime) -> None:
    """About two a month, each taken through review; the newest still waiting."""
    filers = cast.with_phone
    if not filers:
        return
    fortnights = range(1, WEEKS, 2)
    for number, weeks_after in enumerate(fortnights):
        category, text, place = REPORTS[(number + cast.village.id) % len(REPORTS)]
        at = _local(start + timedelta(weeks=weeks_after, days=rng.randint(0, 4)),
                    rng.randint(7, 20), rng.randint(0, 59))
        # the newest are still being handled: one accepted, one in progress
        steps = {len(fortnights) - 1: 0, len(fortnights) - 2: 1}.get(number, 2)
        timeline.at(at, _report(rng, timeline, cast, rng.choice(filers), category, text,
                                place, moment, steps=steps))
    for hours_ago in (20, 3):
        category, text, place = REPORTS[rng.randrange(len(REPORTS))]
        timeline.at(moment - timedelta(hours=hours_ago),
                    _report(rng, timeline, cast, rng.choice(filers), category, text, place,
                            moment, steps=None))


def _report(rng, timeline: Timeline, cast: VillageCast, reporter: User, category: str,
            text: str, place: str, moment: datetime, *, steps: int | None) -> Action:
    """Filed, then reviewed the next day (one in five refused with a reason), then taken
    `steps` steps on (in progress, resolved); `steps=None`: not reviewed yet."""
    async def report(at: datetime) -> None:
        user = await User.get(id=reporter.id)
        filed = await file_report(user=user, category=category, description=text,
                                  location=place)
        if steps is None:
            return
        when = at + timedelta(hours=rng.randint(2, 30))
        if steps == 2 and rng.random() < 0.2:
            timeline.at(when, _review(cast, filed.id, "reject", rng.choice(REJECT_NOTES)))
            return
        timeline.at(when, _review(cast, filed.id, "accept", "感谢上报，已安排处理。"))
        for step in ("in_progress", "resolved")[:steps]:
            when += timedelta(days=rng.randint(1, 4))
            if when < moment:
                timeline.at(when, _advance(cast, filed.id, step))
        # after resolving: most reporters rate the handling, and staff visit them (回访)
        rated = when + timedelta(days=1, hours=rng.randint(0, 12))
        if steps == 2 and rated < moment and rng.random() < 0.8:
            timeline.at(rated, _rate_and_visit(cast, filed.id, reporter.id,
                                               rng.choice((5, 5, 5, 4, 4, 3, 2))))

    return report


def _rate_and_visit(cast: VillageCast, report_id: int, reporter_id: int, stars: int) -> Action:
    async def rate(at: datetime) -> None:
        reporter = await User.get(id=reporter_id)
        await rate_report(user=reporter, report_id=report_id, stars=stars,
                          comment=RATING_COMMENTS[stars])
        await record_visit(actor=cast.staff, report_id=report_id,
                           day=at.astimezone(LOCAL).date(), note=VISIT_NOTES[stars >= 4])
    return rate


RATING_COMMENTS = {5: "处理很及时，谢谢村里。", 4: "解决了，就是等了几天。", 3: "还行。",
                   2: "拖得有点久。"}
VISIT_NOTES = {True: "电话回访，群众表示满意。", False: "上门回访，已解释处理经过，群众表示理解。"}


def _review(cast: VillageCast, report_id: int, decision: str, note: str) -> Action:
    async def review(_at: datetime) -> None:
        await review_report(staff=cast.staff, report_id=report_id, decision=decision,
                            points=None, note=note)
    return review


def _advance(cast: VillageCast, report_id: int, step: str) -> Action:
    async def advance(_at: datetime) -> None:
        await advance_report(staff=cast.staff, report_id=report_id, status=step,
                             note=STEP_NOTES[step])
    return advance


# -- the pledge campaign ---------------------------------------------------------------------


def _pledge(rng, timeline: Timeline, cast: VillageCast, start: datetime,
            moment: datetime) -> None:
    """反诈承诺: open all along, signed by most residents with a phone over the months."""
    opened = start + timedelta(days=4)
    signers = rng.sample(cast.with_phone, k=int(len(cast.with_phone) * 0.7))
    pledge_id: list[int] = []

    async def open_campaign(at: datetime) -> None:
        pledge = await create_pledge(actor=cast.admin, village=cast.village,
                                     title="全民反诈 · 家庭承诺", text=PLEDGE_TEXT, points=10,
                                     confirmations=PLEDGE_CONFIRMATIONS, starts_at=at)
        pledge_id.append(pledge.id)

    timeline.at(opened, open_campaign)
    for person in signers:
        at = opened + timedelta(hours=rng.randint(2, int((moment - opened).total_seconds()
                                                          // 3600) - 2))

        async def sign(_at: datetime, person=person) -> None:
            user = await User.get(id=person.id)
            await sign_pledge(user=user, pledge_id=pledge_id[0], signed_name=user.display_name,
                              confirmed=PLEDGE_CONFIRMATIONS)

        timeline.at(at, sign)


# -- what is waiting today -------------------------------------------------------------------


def _today(rng, timeline: Timeline, cast: VillageCast, moment: datetime) -> None:
    """Registrations to approve, vouchers to hand over, scans refused this morning."""

    async def register(at: datetime) -> None:
        surname = "王李张刘陈"[cast.village.id % 5]
        await Registration.create(phone=f"+86139{cast.village.id:04d}{rng.randint(0, 9999):04d}",
                                  name=f"{surname}新来", village=cast.village, created_at=at)

    timeline.at(moment - timedelta(hours=5), register)
    for person in rng.sample(cast.people, k=min(3, len(cast.people))):
        timeline.at(moment - timedelta(minutes=rng.randint(30, 300)),
                    _spend(rng, timeline, cast, person, moment, collect=False))

    async def refused(at: datetime) -> None:
        event = await Event.filter(village=cast.village).order_by("-starts_at").first()
        for person in rng.sample(cast.people, k=min(2, len(cast.people))):
            await CheckinRefusal.create(event=event, user=person, village_id=cast.village.id,
                                        method="static", reason="event_not_open",
                                        created_at=at)

    # this morning, or just after midnight when the demo is built then (still today)
    timeline.at(max(_local(moment, 0, 0), min(_local(moment, 8, 30),
                                             moment - timedelta(minutes=5))), refused)


# -- 红枫义警 -----------------------------------------------------------------------------------


async def _red_maple(rng, timeline: Timeline, town: Town, cast: VillageCast,
                     start: datetime, moment: datetime) -> None:
    """A town-wide volunteer group with a night route: a patrol most weeks, approved the
    next day; one refused for reaching too few checkpoints; last night's waits for review."""
    people = cast.people[:10]
    if len(people) < 7:
        return
    villages = await Village.filter(town=town).values_list("id", flat=True)
    group = await Group.create(town=town, name="红枫义警", village_ids=list(villages),
                               invite_code=secrets.token_urlsafe(9))
    # people[5] is r006: every fifth resident (r005) has no phone, so cannot lead
    leader, members = people[5], [p for i, p in enumerate(people) if i != 5][:6]
    await GroupMember.create(group=group, user=leader, role="leader")
    for person in members:
        await GroupMember.create(group=group, user=person, role="member")
    route = await Route.create(group=group, village=cast.village, name="古来村夜巡线",
                               min_checkpoints=3)
    checkpoints = [await Checkpoint.create(route=route, name=name, position=i)
                   for i, name in enumerate(CHECKPOINTS, start=1)]
    last, rained = WEEKS - 1, False
    for week in range(1, WEEKS):
        rained = not rained and rng.random() < 0.25 and week not in (last, last - 4)
        if rained:
            continue  # never two weeks running
        night = _local(start + timedelta(weeks=week, days=rng.randint(0, 5)), 20,
                       rng.choice([0, 15, 30]))
        if week == last:
            night = _local(moment - timedelta(days=1), 20)
        crew = [leader] + rng.sample(members, k=3)
        review = None if week == last else "reject" if week == last - 4 else "approve"
        timeline.at(night, _patrol(rng, timeline, cast, route, checkpoints, crew, review))


def _patrol(rng, timeline: Timeline, cast: VillageCast, route: Route,
            checkpoints: list[Checkpoint], crew: list[User], review: str | None) -> Action:
    """A night patrol, submitted when it ends; reviewed by the village admin next day."""
    async def patrol(start: datetime) -> None:
        minutes = rng.choice([90, 120, 150])
        reached = checkpoints[:2] if review == "reject" else checkpoints[:4]
        row = await Patrol.create(group_id=route.group_id, route=route, leader=crew[0],
                                  village_id=cast.village.id, town_id=cast.village.town_id,
                                  status=PatrolStatus.SUBMITTED, join_code=new_join_code(),
                                  started_at=start, finished_at=start + timedelta(
                                      minutes=minutes), duration_minutes=minutes)
        for person in crew:
            await PatrolParticipant.create(patrol=row, user=person, joined_at=start)
            for offset, checkpoint in enumerate(reached):
                await PatrolScan.create(patrol=row, checkpoint=checkpoint, user=person,
                                        created_at=start + timedelta(minutes=20 * offset + 5))
        if review is None:
            return

        async def decide(_at: datetime) -> None:
            if review == "approve":
                await approve_patrol(actor=cast.admin, patrol_id=row.id)
            else:
                await reject_patrol(actor=cast.admin, patrol_id=row.id,
                                    reason="只到了两个点位，请按路线走完再提交。")

        timeline.at(start + timedelta(hours=14, minutes=rng.randint(0, 120)), decide)

    return patrol
