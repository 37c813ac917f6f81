"""API: pledge campaigns, signatures, reports and their review."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.requests import Request

from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Int, Maybe, Moment, Out, Text
from torreya.models import ReportCategory
from torreya.pledges import service as pledges
from torreya.reports import service as reports
from torreya.web import require_person, require_user

Category = Literal[tuple(c.value for c in ReportCategory)]  # type: ignore[valid-type]


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class PledgeIn(Body):
    title: Text(120)
    text: Text(5000, markup=True, description="The pledge, as residents read it")
    points: Int(0, 10_000)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    confirmations: list[Text(100)] = Field(
        default_factory=list, max_length=10,
        description="What a signer ticks, each one required (我已知晓…)")


class PledgeOut(Out):
    id: int
    title: str
    points: int
    confirmations: list[str]


class SignatureIn(Body):
    signed_name: Text(64)
    confirmations: list[Text(100, markup=True)] = Field(
        default_factory=list, max_length=10,
        description="The campaign's confirmations the signer ticked, as given")


class SignatureOut(Out):
    id: int
    points: int
    balance: int
    certificate_url: str


class ReportIn(Body):
    category: Category
    description: Text(1000, markup=True)
    location: Maybe(Text(200, markup=True, required=False), "") = ""


class ReportOut(Out):
    id: int
    status: str


class ReviewIn(Body):
    decision: Literal["accept", "reject"]
    points: Int(0, 100_000) | None = None
    note: Maybe(Text(500, markup=True, required=False), "") = ""


class ReviewOut(ReportOut):
    points: int | None


class ProgressIn(Body):
    status: Literal["in_progress", "resolved"]
    note: Maybe(Text(500, markup=True, required=False), "") = ""


@api.endpoint("POST", "/villages/{id:id}/pledges", idempotent=True, body=PledgeIn,
              returns=PledgeOut, summary="Start a pledge campaign", summary_zh="发起承诺书签名活动",
              status=201, tag="pledges", errors=["forbidden", "not_found", "invalid_request"])
async def create_pledge(request: Request, body: PledgeIn) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    pledge = await pledges.create_pledge(actor=actor, village=village, **body.model_dump())
    return PledgeOut(id=pledge.id, title=pledge.title, points=pledge.points,
                     confirmations=pledge.confirmations)


@api.endpoint("POST", "/pledges/{id:id}/signatures", idempotent=True, body=SignatureIn,
              returns=SignatureOut, summary="Sign a pledge (points once)",
              summary_zh="签署承诺书（积分只得一次）", status=201, tag="pledges",
              errors=["not_found", "forbidden", "already_signed", "event_not_open", "cap_reached",
                      "invalid_request"])
async def sign(request: Request, body: SignatureIn) -> object:
    user, helper = await require_person(request)
    signature, balance = await pledges.sign_pledge(
        user=user, pledge_id=request.path_params["id"], signed_name=body.signed_name,
        confirmed=list(body.confirmations), helper=helper)
    settings = request.app.state.settings
    code = pledges.certificate_code(settings, signature.id)
    return SignatureOut(id=signature.id, points=signature.points, balance=balance,
                        certificate_url=f"{settings.BASE_URL}/certificates/{code}")


@api.endpoint("POST", "/reports", idempotent=True, body=ReportIn, returns=ReportOut,
              summary="Report a hazard, fraud clue or dispute",
              summary_zh="上报隐患、诈骗线索或纠纷",
              status=201, tag="reports", errors=["forbidden", "too_many_attempts",
              "invalid_request"])
async def file_report(request: Request, body: ReportIn) -> object:
    user = await require_user(request)
    report = await reports.file_report(user=user, **body.model_dump())
    return ReportOut(id=report.id, status=str(report.status))


@api.endpoint("POST", "/reports/{id:bigid}/review", idempotent=True, body=ReviewIn,
              returns=ReviewOut, summary="Accept with points, or reject",
              summary_zh="审核上报：采纳并给积分，或驳回", tag="reports",
              errors=["not_found", "forbidden", "invalid_state", "invalid_request", "cap_reached"])
async def review(request: Request, body: ReviewIn) -> object:
    staff = await require_user(request)
    report = await reports.review_report(staff=staff, report_id=request.path_params["id"],
                                         **body.model_dump())
    return ReviewOut(id=report.id, status=str(report.status), points=report.points)


@api.endpoint("POST", "/reports/{id:bigid}/progress", idempotent=True, body=ProgressIn,
              returns=ReportOut, summary="Move an accepted report on",
              summary_zh="推进已采纳的上报：处理中、已解决", tag="reports",
              errors=["not_found", "forbidden", "invalid_state", "invalid_request"])
async def progress(request: Request, body: ProgressIn) -> object:
    staff = await require_user(request)
    report = await reports.advance_report(staff=staff, report_id=request.path_params["id"],
                                          **body.model_dump())
    return ReportOut(id=report.id, status=str(report.status))
