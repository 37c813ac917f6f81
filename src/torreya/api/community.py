"""API: pledge campaigns, signatures, reports and their review."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from torreya.accounts.service import resolve_village
from torreya.api.registry import endpoint, json
from torreya.errors import InvalidRequestError
from torreya.models import ReportCategory
from torreya.pledges import service as pledges
from torreya.reports import service as reports
from torreya.validation import Field
from torreya.web import require_user


@endpoint("POST", "/villages/{id:id}/pledges", idempotent=True,
          returns="id:int title points:int confirmations:list",
          summary="Start a pledge campaign", status=201,
          tag="pledges",
          body=[Field(name="title", max_length=120), Field(name="text", max_length=5000,
                                                           allow_markup=True),
                Field(name="points", type=int, minimum=0, maximum=10_000),
                Field(name="starts_at", type=datetime, required=False, nullable=True),
                Field(name="ends_at", type=datetime, required=False, nullable=True)],
          errors=["forbidden", "not_found", "invalid_request"])
async def create_pledge(request: Request, body: dict) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    raw = (await request.json()).get("confirmations") or []
    if not isinstance(raw, list) or not all(isinstance(c, str) and 0 < len(c) <= 100
                                            for c in raw) or len(raw) > 10:
        raise InvalidRequestError("Field %(name)s must be a list of short texts.",
                                  field="confirmations", name="confirmations")
    pledge = await pledges.create_pledge(actor=actor, village=village, confirmations=raw,
                                         **body)
    return json({"id": pledge.id, "title": pledge.title, "points": pledge.points,
                 "confirmations": pledge.confirmations}, 201)


@endpoint("POST", "/pledges/{id:id}/signatures", idempotent=True,
          returns="id:int points:int balance:int certificate_url",
          summary="Sign a pledge (points once)",
          status=201, tag="pledges", body=[Field(name="signed_name", max_length=64)],
          errors=["not_found", "forbidden", "already_signed", "event_not_open", "cap_reached"])
async def sign(request: Request, body: dict) -> object:
    user = await require_user(request)
    confirmed = (await request.json()).get("confirmations") or []
    if not isinstance(confirmed, list):
        raise InvalidRequestError("Field %(name)s must be a list of short texts.",
                                  field="confirmations", name="confirmations")
    signature, balance = await pledges.sign_pledge(
        user=user, pledge_id=request.path_params["id"], signed_name=body["signed_name"],
        confirmed=[c for c in confirmed if isinstance(c, str)])
    settings = request.app.state.settings
    code = pledges.certificate_code(settings, signature.id)
    return json({"id": signature.id, "points": signature.points, "balance": balance,
                 "certificate_url": f"{settings.BASE_URL}/certificates/{code}"}, 201)


@endpoint("POST", "/reports", idempotent=True, returns="id:int status",
          summary="Report a hazard, fraud clue or dispute", status=201,
          tag="reports",
          body=[Field(name="category", max_length=16, choices=[c.value for c in ReportCategory]),
                Field(name="description", max_length=1000, allow_markup=True),
                Field(name="location", max_length=200, required=False, allow_markup=True)],
          errors=["forbidden", "too_many_attempts", "invalid_request"])
async def file_report(request: Request, body: dict) -> object:
    user = await require_user(request)
    report = await reports.file_report(user=user, **body)
    return json({"id": report.id, "status": str(report.status)}, 201)


@endpoint("POST", "/reports/{id:bigid}/review", idempotent=True,
          returns="id:int status points:int?",
          summary="Accept with points, or reject",
          tag="reports",
          body=[Field(name="decision", max_length=8, choices=["accept", "reject"]),
                Field(name="points", type=int, required=False, nullable=True, minimum=0,
                      maximum=100_000),
                Field(name="note", max_length=500, required=False, allow_markup=True)],
          errors=["not_found", "forbidden", "invalid_state", "invalid_request", "cap_reached"])
async def review(request: Request, body: dict) -> object:
    staff = await require_user(request)
    report = await reports.review_report(staff=staff, report_id=request.path_params["id"],
                                         **body)
    return json({"id": report.id, "status": str(report.status), "points": report.points})


@endpoint("POST", "/reports/{id:bigid}/progress", idempotent=True,
          summary="Move an accepted report on",
          tag="reports",
          body=[Field(name="status", max_length=16, choices=["in_progress", "resolved"]),
                Field(name="note", max_length=500, required=False, allow_markup=True)],
          errors=["not_found", "forbidden", "invalid_state"])
async def progress(request: Request, body: dict) -> object:
    staff = await require_user(request)
    report = await reports.advance_report(staff=staff, report_id=request.path_params["id"],
                                          **body)
    return json({"id": report.id, "status": str(report.status)})
