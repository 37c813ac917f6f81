"""Reports as cases, as the grid works them (网格: 报事—受理—处置—反馈—回访, SPEC §4.16):
deadlines to accept and to resolve from the town's rules, an overdue case escalated to the
town once, departments that handle the cases sent to them across villages, the reporter's
rating of the handling (满意率), residents following a case (我也遇到了), and the
follow-up visit that closes the loop.

A case's due times are its filing time plus the town's hours (so a change of the rules
applies to the open cases too); overdue is read from them at any moment, and the
escalation is claimed by a conditional update, so two workers escalate a case once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import rank, require_town, require_village
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from torreya.models import (
    Department,
    Report,
    ReportFollower,
    ReportStatus,
    ReportUpdate,
    Role,
    Town,
    User,
    Village,
)
from torreya.notifications.service import Notice, notify
from torreya.notifications.texts import clip
from torreya.outbox.service import Message, emit

OPEN = (ReportStatus.SUBMITTED, ReportStatus.ACCEPTED, ReportStatus.IN_PROGRESS)
DEFAULT_ACK_HOURS, DEFAULT_RESOLVE_HOURS = 48, 168
SIMILAR_DAYS = 14
SATISFIED = 4  # stars and above count as satisfied (满意率)


class AlreadyRatedError(ConflictError):
    code = "already_rated"
    message = "You have already rated how this report was handled."


@dataclass(frozen=True)
class Rules:
    ack_hours: int = DEFAULT_ACK_HOURS
    resolve_hours: int = DEFAULT_RESOLVE_HOURS


@dataclass(frozen=True)
class Due:
    ack_due_at: datetime
    resolve_due_at: datetime
    overdue: bool
    overdue_by: timedelta | None  # how long past the deadline it missed, if overdue
    deadline: str | None  # "accept" or "resolve": the one missed


async def rules_of(town_id: int) -> Rules:
    town = await Town.get_or_none(id=town_id)
    return Rules(town.case_ack_hours, town.case_resolve_hours) if town else Rules()


async def rules_by_town(town_ids: set[int]) -> dict[int, Rules]:
    return {t.id: Rules(t.case_ack_hours, t.case_resolve_hours)
            for t in await Town.filter(id__in=town_ids)}


def due(report: Report, rules: Rules, moment: datetime | None = None) -> Due:
    """The case's due times and whether it is overdue at `moment` (SPEC §5.2: still
    submitted past the time to accept, or not resolved or rejected past the time to
    resolve)."""
    moment = moment or now()
    ack = report.created_at + timedelta(hours=rules.ack_hours)
    resolve = report.created_at + timedelta(hours=rules.resolve_hours)
    status = ReportStatus(report.status)
    missed = None
    if status in OPEN and moment > resolve:
        missed = ("resolve", moment - resolve)
    elif status == ReportStatus.SUBMITTED and moment > ack:
        missed = ("accept", moment - ack)
    return Due(ack, resolve, missed is not None, missed[1] if missed else None,
               missed[0] if missed else None)


def overdue_filter(rules: Rules, moment: datetime) -> Q:
    """The open cases of a town with these rules that are overdue at `moment`."""
    return (Q(status=ReportStatus.SUBMITTED,
              created_at__lt=moment - timedelta(hours=rules.ack_hours))
            | Q(status__in=list(OPEN),
                created_at__lt=moment - timedelta(hours=rules.resolve_hours)))


# -- who handles a case -----------------------------------------------------------------------


def handles(user: User, report: Report) -> bool:
    """A member of the department the case was sent to (within its town)."""
    return (report.department_id is not None and user.department_id == report.department_id
            and user.town_id == report.town_id and user.rank >= rank(Role.STAFF))


async def require_handler(user: User, report: Report) -> None:
    """Staff of the report's village (and above), or its department's members."""
    if handles(user, report):
        return
    require_village(user, await Village.get(id=report.village_id), Role.STAFF)


async def case_for(user: User, report_id: int) -> Report:
    """The reporter's own case, one the user handles, or a follower's; else not found."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    if report.user_id != user.id and not handles(user, report):
        if not await ReportFollower.exists(report_id=report.id, user_id=user.id):
            require_village(user, await Village.get(id=report.village_id), Role.STAFF)
    return report


# -- the town's rules and departments ---------------------------------------------------------


async def set_rules(*, actor: User, town: Town, ack_hours: int, resolve_hours: int) -> Rules:
    require_town(actor, town.id, Role.TOWN_ADMIN)
    if resolve_hours < ack_hours:
        raise InvalidRequestError("The time to resolve cannot be shorter than the time to "
                                  "accept.", field="resolve_hours")
    async with in_transaction() as connection:
        await Town.filter(id=town.id).using_db(connection).update(
            case_ack_hours=ack_hours, case_resolve_hours=resolve_hours)
        await audit.record(actor, "reports:rules:update", connection=connection,
                           subject=f"town:{town.id}", town_id=town.id,
                           data={"ack_hours": ack_hours, "resolve_hours": resolve_hours})
    town.case_ack_hours, town.case_resolve_hours = ack_hours, resolve_hours
    return Rules(ack_hours, resolve_hours)


async def create_department(*, actor: User, town: Town, name: str) -> Department:
    require_town(actor, town.id, Role.TOWN_ADMIN)
    try:
        async with in_transaction() as connection:
            department = await Department.create(town=town, name=name, using_db=connection)
            await audit.record(actor, "reports:department:create", connection=connection,
                               subject=f"department:{department.id}", town_id=town.id,
                               data={"name": name})
    except IntegrityError:
        raise ConflictError("The town already has a department of this name.",
                            code="duplicate") from None
    return department


async def department_for(actor: User, department_id: int, minimum: Role = Role.TOWN_ADMIN
                         ) -> Department:
    department = await Department.get_or_none(id=department_id)
    if department is None:
        raise NotFoundError()
    if actor.department_id != department.id:
        require_town(actor, department.town_id, minimum)
    return department


async def add_member(*, actor: User, department: Department, user_id: int) -> User:
    """A staff member (or village admin) of the town joins the department."""
    require_town(actor, department.town_id, Role.TOWN_ADMIN)
    member = await User.get_or_none(id=user_id)
    if member is None or member.town_id != department.town_id:
        raise NotFoundError()
    if member.role not in (Role.STAFF, Role.VILLAGE_ADMIN):
        raise ConflictError("Only the town's staff can join a department.",
                            code="invalid_state")
    async with in_transaction() as connection:
        await User.filter(id=member.id).using_db(connection).update(
            department_id=department.id)
        await audit.record(actor, "reports:department:member", connection=connection,
                           subject=f"user:{member.id}", town_id=department.town_id,
                           data={"department": department.id})
    member.department_id = department.id
    return member


async def departments_of(town_id: int) -> list[Department]:
    return await Department.filter(town_id=town_id).order_by("name")


# -- steps of a case --------------------------------------------------------------------------


async def assign(*, actor: User, report_id: int, department_id: int) -> Report:
    """Send the case to a department of its town; a step of its timeline."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    await require_handler(actor, report)
    department = await Department.get_or_none(id=department_id)
    if department is None or department.town_id != report.town_id:
        raise InvalidRequestError("No such department in this town.", field="department_id")
    if ReportStatus(report.status) not in OPEN:
        raise ConflictError("This case is closed.", code="invalid_state")
    async with in_transaction() as connection:
        await Report.filter(id=report.id).using_db(connection).update(
            department_id=department.id)
        await ReportUpdate.create(report=report, status=report.status, actor=actor,
                                  note=f"→ {department.name}", created_at=now(),
                                  using_db=connection)
        await audit.record(actor, "reports:report:assign", connection=connection,
                           subject=f"report:{report.id}", town_id=report.town_id,
                           village_id=report.village_id,
                           data={"department": department.id})
    report.department_id = department.id
    return report


async def rate(*, user: User, report_id: int, stars: int, comment: str) -> Report:
    """The reporter judges the handling, once, after the case is resolved."""
    report = await Report.get_or_none(id=report_id)
    if report is None or report.user_id != user.id:
        if report is not None and await _sees(user, report):
            raise ForbiddenError("Only the reporter can rate how the report was handled.")
        raise NotFoundError()
    if report.status != ReportStatus.RESOLVED:
        raise ConflictError("You can rate the handling once the report is resolved.",
                            code="invalid_state")
    async with in_transaction() as connection:
        done = await Report.filter(id=report.id, rating=None).using_db(connection).update(
            rating=stars, rating_comment=comment, rated_at=now())
        if not done:
            raise AlreadyRatedError()
        await audit.record(user, "reports:report:rate", connection=connection,
                           subject=f"report:{report.id}", town_id=report.town_id,
                           village_id=report.village_id, data={"stars": stars})
    report.rating, report.rating_comment = stars, comment
    return report


async def _sees(user: User, report: Report) -> bool:
    try:
        await case_for(user, report.id)
    except (NotFoundError, ForbiddenError):
        return False
    return True


async def follow(*, user: User, report_id: int) -> bool:
    """A resident of the village follows the case (我也遇到了); True when new. The reporter
    follows their own already."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    if user.role != Role.RESIDENT or user.village_id != report.village_id:
        raise NotFoundError()
    if report.user_id == user.id:
        raise ConflictError("This is your own report: you are told of each change anyway.",
                            code="invalid_state")
    try:
        await ReportFollower.create(report_id=report.id, user_id=user.id, created_at=now())
    except IntegrityError:
        return False
    return True


async def record_visit(*, actor: User, report_id: int, day: date, note: str) -> Report:
    """回访: after a case is resolved, staff record the follow-up visit with the reporter."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    await require_handler(actor, report)
    if report.status != ReportStatus.RESOLVED:
        raise ConflictError("A follow-up visit comes after the report is resolved.",
                            code="invalid_state")
    if day > now().date() + timedelta(days=1) or day < report.created_at.date():
        raise InvalidRequestError("The visit's date must be between the report and today.",
                                  field="date")
    async with in_transaction() as connection:
        await Report.filter(id=report.id).using_db(connection).update(visited_on=day,
                                                                      visit_note=note)
        await ReportUpdate.create(report=report, status=report.status, actor=actor,
                                  note=note, created_at=now(), using_db=connection)
        await audit.record(actor, "reports:report:visit", connection=connection,
                           subject=f"report:{report.id}", town_id=report.town_id,
                           village_id=report.village_id, data={"date": day.isoformat()})
    report.visited_on, report.visit_note = day, note
    return report


# -- escalation (housekeeping) ----------------------------------------------------------------


async def escalate_overdue(moment: datetime | None = None) -> int:
    """Each overdue case not escalated yet: claimed (a conditional update, so two workers
    escalate it once), the town admins told (inbox and text), and the outbox event
    `report.overdue` written, all in one transaction. Returns how many."""
    moment = moment or now()
    escalated = 0
    for town in await Town.all().only("id", "case_ack_hours", "case_resolve_hours"):
        rules = Rules(town.case_ack_hours, town.case_resolve_hours)
        cases = await Report.filter(overdue_filter(rules, moment), town_id=town.id,
                                    escalated_at=None).limit(500)
        if not cases:
            continue
        admins = await User.filter(town_id=town.id, role=Role.TOWN_ADMIN,
                                   is_active=True).values_list("id", flat=True)
        names = dict(await Village.filter(id__in={c.village_id for c in cases}).values_list(
            "id", "name"))
        for report in cases:
            state = due(report, rules, moment)
            async with in_transaction() as connection:
                claimed = await Report.filter(id=report.id, escalated_at=None).using_db(
                    connection).update(escalated_at=moment)
                if not claimed:
                    continue
                hours = rules.ack_hours if state.deadline == "accept" else rules.resolve_hours
                await notify(connection, [Notice(
                    user_id=admin, town_id=town.id, kind="report_overdue",
                    dedup_key=f"report:{report.id}:overdue", link=f"/reports/{report.id}",
                    params={"village": clip(str(names.get(report.village_id, ""))),
                            "category": str(report.category), "hours": hours})
                    for admin in admins])
                await emit(connection, Message(event_type="report.overdue", town_id=town.id,
                                               data={
                    "id": report.id, "village_id": report.village_id,
                    "category": str(report.category), "status": str(report.status),
                    "department_id": report.department_id, "deadline": state.deadline,
                    "due_at": state.ack_due_at if state.deadline == "accept"
                    else state.resolve_due_at}))
                escalated += 1
    return escalated


# -- looking -----------------------------------------------------------------------------------


def overdue_first(reports: list[Report], rules: dict[int, Rules],
                  moment: datetime | None = None) -> list[tuple[Report, Due]]:
    """The cases with their due times, the overdue ones first (longest overdue first),
    then the rest newest first."""
    moment = moment or now()
    paired = [(r, due(r, rules.get(r.town_id, Rules()), moment)) for r in reports]
    late = sorted((p for p in paired if p[1].overdue), key=lambda p: -p[1].overdue_by)
    rest = [p for p in paired if not p[1].overdue]
    return late + rest


async def followers_of(report_ids: set[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for report_id, user_id in await ReportFollower.filter(
            report_id__in=report_ids).values_list("report_id", "user_id"):
        found.setdefault(report_id, []).append(user_id)
    return found


def _place_words(text: str) -> set[str]:
    """The character pairs of a place's name (村口桥 → 村口, 口桥), spaces and marks out."""
    letters = re.sub(r"[\s\W_]+", "", text.lower())
    return {letters[i:i + 2] for i in range(len(letters) - 1)} or ({letters} if letters else set())


def similar_place(a: str, b: str) -> bool:
    """Whether two places people typed are likely the same: one inside the other, or
    sharing half their character pairs."""
    a, b = a.strip(), b.strip()
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    left, right = _place_words(a), _place_words(b)
    return bool(left and right) and len(left & right) * 2 >= min(len(left), len(right))


async def similar_cases(village_id: int, category: str, location: str,
                        *, exclude_user: int | None = None) -> list[Report]:
    """Cases of the village in the last 14 days, of the same category at a similar place,
    still open: what a resident about to file may rather follow."""
    if not location.strip():
        return []  # no place given: nothing to compare
    since = now() - timedelta(days=SIMILAR_DAYS)
    found = await Report.filter(village_id=village_id, category=category,
                                created_at__gte=since,
                                status__in=list(OPEN)).order_by("-id").limit(50)
    return [r for r in found if r.user_id != exclude_user
            and similar_place(location, r.location)][:5]


@dataclass(frozen=True)
class Satisfaction:
    ratings: int
    satisfied: int
    stars: float  # the mean

    @property
    def rate(self) -> float | None:
        return round(100 * self.satisfied / self.ratings, 1) if self.ratings else None


async def satisfaction(*, town_id: int, since: datetime, until: datetime,
                       by: str = "village_id") -> dict[int | None, Satisfaction]:
    """满意率 of the ratings given in [since, until), per village (or per department)."""
    rows = await Report.filter(town_id=town_id, rating__not_isnull=True, rated_at__gte=since,
                               rated_at__lt=until).values_list(by, "rating")
    grouped: dict[int | None, list[int]] = {}
    for key, stars in rows:
        grouped.setdefault(key, []).append(stars)
    return {key: Satisfaction(len(stars), sum(1 for s in stars if s >= SATISFIED),
                              round(sum(stars) / len(stars), 2))
            for key, stars in grouped.items()}
