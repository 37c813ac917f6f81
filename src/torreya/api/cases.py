"""API: reports as cases (SPEC §5.2 "Reports as cases"): the town's case rules and
departments, a case with its due times, the overdue-first lists, assigning, rating,
following and the follow-up visit."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from torreya.accounts.permissions import rank, require_town, require_village
from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Day, Id, Int, Maybe, Out, Query, Text, Time
from torreya.db import get_one
from torreya.errors import NotFoundError
from torreya.models import Report, ReportCategory, ReportFollower, Role, Town
from torreya.reports import cases
from torreya.web import require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)

Category = Literal[tuple(c.value for c in ReportCategory)]  # type: ignore[valid-type]


class RulesIn(Body):
    ack_hours: Int(1, 8760, description="Hours from filing to accept a report (default 48)")
    resolve_hours: Int(1, 8760, description="Hours from filing to resolve it (default 168)")


class RulesOut(Out):
    ack_hours: int
    resolve_hours: int


class DepartmentIn(Body):
    name: Text(40, description="派出所, 应急办, 综治中心 …")


class DepartmentOut(Out):
    id: int
    name: str


class DepartmentMemberIn(Body):
    user_id: Id


class DepartmentMemberOut(Out):
    user_id: int
    department_id: int


class CaseRating(Out):
    stars: int
    comment: str


class CaseOut(Out):
    id: int
    status: str
    category: Category
    description: str
    location: str
    created_at: Time
    ack_due_at: Time
    resolve_due_at: Time
    overdue: bool
    escalated_at: Time | None
    department_id: int | None
    rating: CaseRating | None
    followers: int
    visited_on: str | None


class CaseList(Out):
    items: list[CaseOut]


class CasesQuery(Query):
    overdue: Literal["true", "false"] | None = None


class SimilarQuery(Query):
    category: Category | None = None
    location: Text(200, markup=True, required=False) = ""


class SimilarCase(Out):
    id: int
    category: Category
    location: str
    status: str
    created_at: Time
    followers: int


class SimilarList(Out):
    items: list[SimilarCase]


class AssignIn(Body):
    department_id: Id


class AssignOut(Out):
    id: int
    department_id: int


class RateIn(Body):
    stars: Int(1, 5)
    comment: Maybe(Text(500, markup=True, required=False), "") = ""


class FollowOut(Out):
    report_id: int
    following: bool


class VisitIn(Body):
    date: Day
    note: Text(500, markup=True)


def case_out(report: Report, rules: cases.Rules, followers: int) -> CaseOut:
    state = cases.due(report, rules)
    return CaseOut(
        id=report.id, status=str(report.status), category=str(report.category),
        description=report.description, location=report.location,
        created_at=report.created_at, ack_due_at=state.ack_due_at,
        resolve_due_at=state.resolve_due_at, overdue=state.overdue,
        escalated_at=report.escalated_at, department_id=report.department_id,
        rating=CaseRating(stars=report.rating, comment=report.rating_comment)
        if report.rating else None, followers=followers,
        visited_on=report.visited_on.isoformat() if report.visited_on else None)


async def _list(reports: list[Report], only_overdue: bool) -> CaseList:
    rules = await cases.rules_by_town({r.town_id for r in reports})
    counts = await cases.followers_of({r.id for r in reports})
    paired = cases.overdue_first(reports, rules)
    return CaseList(items=[case_out(r, rules[r.town_id], len(counts.get(r.id, [])))
                           for r, state in paired if state.overdue or not only_overdue])


async def _town(request: Request, minimum: Role = Role.TOWN_ADMIN) -> tuple:
    actor = await require_user(request)
    town = await get_one(Town, id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(actor, town.id, minimum)
    return actor, town


@api.endpoint("PATCH", "/towns/{id:id}/case-rules", body=RulesIn, returns=RulesOut,
              summary="The town's case deadlines: hours to accept, hours to resolve",
              summary_zh="设置镇的办件时限（受理、办结小时数）", tag="reports",
              errors=["forbidden", "not_found", "invalid_request"])
async def case_rules(request: Request, body: RulesIn) -> object:
    actor, town = await _town(request)
    rules = await cases.set_rules(actor=actor, town=town, ack_hours=body.ack_hours,
                                  resolve_hours=body.resolve_hours)
    return RulesOut(ack_hours=rules.ack_hours, resolve_hours=rules.resolve_hours)


@api.endpoint("POST", "/towns/{id:id}/departments", idempotent=True, body=DepartmentIn,
              returns=DepartmentOut, status=201, summary="A department that handles cases",
              summary_zh="新建处置部门（派出所、应急办等）", tag="reports",
              errors=["forbidden", "not_found", "duplicate", "invalid_request"])
async def create_department(request: Request, body: DepartmentIn) -> object:
    actor, town = await _town(request)
    department = await cases.create_department(actor=actor, town=town, name=body.name)
    return DepartmentOut(id=department.id, name=department.name)


@api.endpoint("POST", "/departments/{id:id}/members", body=DepartmentMemberIn,
              returns=DepartmentMemberOut, status=201,
              summary="A staff member of the town joins the department",
              summary_zh="把镇里的工作人员加入部门", tag="reports",
              errors=["forbidden", "not_found", "invalid_state"])
async def department_member(request: Request, body: DepartmentMemberIn) -> object:
    actor = await require_user(request)
    department = await cases.department_for(actor, request.path_params["id"])
    member = await cases.add_member(actor=actor, department=department, user_id=body.user_id)
    return DepartmentMemberOut(user_id=member.id, department_id=department.id)


@api.endpoint("GET", "/departments/{id:id}/reports", query=CasesQuery, returns=CaseList,
              summary="The cases sent to the department, overdue first",
              summary_zh="部门受理的案件（超期在前）", tag="reports",
              errors=["forbidden", "not_found"])
async def department_reports(request: Request, body: None) -> object:
    actor = await require_user(request)
    department = await cases.department_for(actor, request.path_params["id"])
    reports = await Report.filter(department_id=department.id).order_by("-id").limit(500)
    return await _list(reports, request.state.query.overdue == "true")


@api.endpoint("GET", "/reports/{id:bigid}", returns=CaseOut,
              summary="A case: its status, due times, department, rating",
              summary_zh="查看案件（办理时限、是否超期、评价）", tag="reports",
              errors=["not_found"],
              description="The reporter, staff of the village and above, and the members of "
                          "the department it was sent to.")
async def get_case(request: Request, body: None) -> object:
    actor = await require_user(request)
    report = await Report.get_or_none(id=request.path_params["id"])
    if report is None:
        raise NotFoundError()
    if report.user_id != actor.id:
        if actor.rank < rank(Role.STAFF):
            raise NotFoundError()  # another resident's report: not even that it exists
        await cases.require_handler(actor, report)
    followers = await ReportFollower.filter(report_id=report.id).count()
    return case_out(report, await cases.rules_of(report.town_id), followers)


@api.endpoint("GET", "/villages/{id:id}/reports", query=CasesQuery, returns=CaseList,
              summary="The village's cases, overdue first (the latest 500)",
              summary_zh="村里的案件（超期在前）", tag="reports",
              errors=["forbidden", "not_found", "invalid_request"])
async def village_reports(request: Request, body: None) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    require_village(actor, village, Role.STAFF)
    reports = await Report.filter(village_id=village.id).order_by("-id").limit(500)
    return await _list(reports, request.state.query.overdue == "true")


@api.endpoint("GET", "/villages/{id:id}/reports/similar", query=SimilarQuery,
              returns=SimilarList, summary="Before filing: open cases of the same kind at a "
                                           "similar place in the last 14 days",
              summary_zh="上报前查相似案件（14 天内、同类、相近地点）", tag="reports",
              errors=["not_found", "invalid_request"],
              description="Residents of the village and its staff. Only the kind, the place "
                          "and the progress: never what was written or who wrote it.")
async def similar(request: Request, body: None) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    params: SimilarQuery = request.state.query
    found = await cases.similar_cases(village.id, params.category, params.location,
                                      exclude_user=actor.id) if params.category else []
    counts = await cases.followers_of({r.id for r in found})
    return SimilarList(items=[SimilarCase(
        id=r.id, category=str(r.category), location=r.location, status=str(r.status),
        created_at=r.created_at, followers=len(counts.get(r.id, []))) for r in found])


@api.endpoint("POST", "/reports/{id:bigid}/assign", body=AssignIn, returns=AssignOut,
              summary="Send the case to a department of the town",
              summary_zh="把案件派给部门", tag="reports",
              errors=["forbidden", "not_found", "invalid_state", "invalid_request"])
async def assign(request: Request, body: AssignIn) -> object:
    actor = await require_user(request)
    report = await cases.assign(actor=actor, report_id=request.path_params["id"],
                                department_id=body.department_id)
    return AssignOut(id=report.id, department_id=report.department_id)


@api.endpoint("POST", "/reports/{id:bigid}/rating", body=RateIn, returns=CaseRating,
              status=201, summary="The reporter rates the handling, once it is resolved",
              summary_zh="上报人评价办理结果（办结后一次）", tag="reports",
              errors=["forbidden", "not_found", "invalid_state", "already_rated",
                      "invalid_request"])
async def rate(request: Request, body: RateIn) -> object:
    actor = await require_user(request)
    report = await cases.rate(user=actor, report_id=request.path_params["id"],
                              stars=body.stars, comment=body.comment)
    return CaseRating(stars=report.rating, comment=report.rating_comment)


@api.endpoint("POST", "/reports/{id:bigid}/follow", returns=FollowOut, status=201,
              summary="I have this problem too (我也遇到了): be told of each change",
              summary_zh="我也遇到了：关注案件进展", tag="reports",
              errors=["not_found", "invalid_state"])
async def follow(request: Request, body: None) -> object:
    actor = await require_user(request)
    await cases.follow(user=actor, report_id=request.path_params["id"])
    return FollowOut(report_id=request.path_params["id"], following=True)


@api.endpoint("POST", "/reports/{id:bigid}/visit", body=VisitIn, returns=CaseOut,
              summary="回访: the follow-up visit after the case is resolved",
              summary_zh="记录回访", tag="reports",
              errors=["forbidden", "not_found", "invalid_state", "invalid_request"])
async def visit(request: Request, body: VisitIn) -> object:
    actor = await require_user(request)
    report = await cases.record_visit(actor=actor, report_id=request.path_params["id"],
                                      day=body.date, note=body.note)
    followers = await ReportFollower.filter(report_id=report.id).count()
    return case_out(report, await cases.rules_of(report.town_id), followers)
