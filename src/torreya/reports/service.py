"""Residents' reports and their closed loop: submitted → accepted → in progress → resolved,
or rejected with a reason. Points are credited once, on acceptance."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_village
from torreya.db import now
from torreya.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    TooManyAttemptsError,
)
from torreya.images import reencoded
from torreya.ledger.periods import period_start
from torreya.ledger.rules import rule_for
from torreya.ledger.service import Posting, post_entry
from torreya.models import (
    Report,
    ReportCategory,
    ReportPhoto,
    ReportStatus,
    ReportUpdate,
    Role,
    User,
    Village,
)
from torreya.outbox.service import Message, emit
from torreya.reports.cases import require_handler

REPORTS_PER_DAY = 5
# Which status may follow which, for staff moving a report along.
NEXT = {
    ReportStatus.ACCEPTED: {ReportStatus.IN_PROGRESS, ReportStatus.RESOLVED},
    ReportStatus.IN_PROGRESS: {ReportStatus.RESOLVED},
}


class ReportStateError(ConflictError):
    code = "invalid_state"
    message = "This report was already reviewed."


async def file_report(*, user: User, category: str, description: str, location: str = "",
                      latitude: float | None = None, longitude: float | None = None,
                      photo: bytes | None = None) -> Report:
    """A resident reports a hazard, fraud clue or dispute. Raises too_many_attempts past the
    daily limit and invalid_request for a bad photo (nothing is written then)."""
    if user.role != Role.RESIDENT or user.village_id is None:
        raise ForbiddenError("Only residents can file reports.")
    if category not in {c.value for c in ReportCategory}:
        raise InvalidRequestError("Field %(name)s must be one of: %(choices)s.",
                                  field="category", name="category",
                                  choices=", ".join(c.value for c in ReportCategory))
    today = await Report.filter(user_id=user.id,
                                created_at__gte=period_start("day", now())).count()
    if today >= REPORTS_PER_DAY:
        raise TooManyAttemptsError("You can file at most %(count)s reports a day.",
                                   count=REPORTS_PER_DAY)
    encoded = await reencoded(photo) if photo else None
    async with in_transaction() as connection:
        report = await Report.create(user=user, village_id=user.village_id,
                                     town_id=user.town_id, category=category,
                                     description=description, location=location,
                                     latitude=latitude, longitude=longitude,
                                     status=ReportStatus.SUBMITTED, has_photo=bool(encoded),
                                     created_at=now(), using_db=connection)
        if encoded:
            await ReportPhoto.create(report=report, content=encoded[0],
                                     content_type=encoded[1], using_db=connection)
        await ReportUpdate.create(report=report, status=ReportStatus.SUBMITTED, actor=user,
                                  created_at=now(), using_db=connection)
        await audit.record(user, "reports:report:create", connection=connection,
                           subject=f"report:{report.id}", town_id=user.town_id,
                           village_id=user.village_id, data={"category": category})
        await emit(connection, report_message("report.created", report))
    return report


def report_message(event_type: str, report: Report, *, points: int | None = None) -> Message:
    """About a report, for others: never the reporter's identity (staff only, SPEC §3)."""
    return Message(event_type=event_type, town_id=report.town_id, data={
        "id": report.id, "village_id": report.village_id, "category": str(report.category),
        "status": str(report.status), "points": points})


async def review_report(*, staff: User, report_id: int, decision: str, points: int | None,
                        note: str) -> Report:
    """Accept (crediting points within the rule, once) or reject with a reason."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    require_village(staff, await Village.get(id=report.village_id), Role.STAFF)
    if report.user_id == staff.id:
        raise ForbiddenError("You cannot review your own report.")
    if decision == "reject":
        if not note:
            raise InvalidRequestError("Please give a reason.", field="note")
        target, award = ReportStatus.REJECTED, 0
    elif decision == "accept":
        rule = await rule_for(report.town_id, "report")
        award = rule.points if points is None else points
        if not 0 <= award <= rule.points:
            raise InvalidRequestError("Points must be between 0 and %(max)s.", field="points",
                                      max=rule.points)
        target = ReportStatus.ACCEPTED
    else:
        raise InvalidRequestError("Field %(name)s must be one of: %(choices)s.",
                                  field="decision", name="decision", choices="accept, reject")
    reporter = await User.get(id=report.user_id)
    async with in_transaction() as connection:
        # The conditional update claims the review: a second one finds nothing to change.
        claimed = await Report.filter(id=report.id, status=ReportStatus.SUBMITTED).using_db(
            connection).update(status=target, points=award if award else None)
        if not claimed:
            raise ReportStateError()
        report.status, report.points = target, award or None
        message = report_message("report.status_changed", report, points=award)
        entry = None
        if award:
            entry = await post_entry(
                Posting(user=reporter, delta=award, kind="report", memo=report.description[:60],
                       idem_key=f"report:{report.id}", source_type="report",
                       source_id=report.id, actor=staff, earned=True, rule=rule),
                connection, also=[message])
        else:
            await emit(connection, message)
        await ReportUpdate.create(report=report, status=target, note=note, actor=staff,
                                  created_at=now(), using_db=connection)
        await audit.record(staff, f"reports:report:{decision}", connection=connection,
                           subject=f"report:{report.id}", town_id=report.town_id,
                           village_id=report.village_id, entry_id=entry.id if entry else None,
                           data={"points": award, "note": note[:200]})
    return report


async def advance_report(*, staff: User, report_id: int, status: str, note: str) -> Report:
    """Move an accepted report on (in progress, resolved) with feedback for the reporter."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise NotFoundError()
    await require_handler(staff, report)  # the village's staff, or the department's
    try:
        target = ReportStatus(status)
    except ValueError:
        raise InvalidRequestError("Field %(name)s must be one of: %(choices)s.",
                                  field="status", name="status",
                                  choices="in_progress, resolved") from None
    if target not in NEXT.get(ReportStatus(report.status), set()):
        raise ReportStateError("This report cannot move to that step now.")
    async with in_transaction() as connection:
        claimed = await Report.filter(id=report.id, status=report.status).using_db(
            connection).update(status=target, **(
                {"resolved_at": now()} if target == ReportStatus.RESOLVED else {}))
        if not claimed:
            raise ReportStateError()
        await ReportUpdate.create(report=report, status=target, note=note, actor=staff,
                                  created_at=now(), using_db=connection)
        report.status = target
        await audit.record(staff, f"reports:report:{target.value}", connection=connection,
                           subject=f"report:{report.id}", town_id=report.town_id,
                           village_id=report.village_id)
        await emit(connection, report_message("report.status_changed", report))
    return report
