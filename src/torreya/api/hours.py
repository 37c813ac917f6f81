"""API: volunteer hours and their signed certificates (SPEC §5.2 "Service hours and
certificates")."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from starlette.requests import Request

from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Day, Id, Out, Query, QueryInt, Text
from torreya.db import now
from torreya.errors import NotFoundError
from torreya.hours import service
from torreya.models import User
from torreya.settings import LOCAL
from torreya.web import require_person, require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class HoursQuery(Query):
    year: QueryInt(2000, 2100) | None = None


class HoursItem(Out):
    kind: Literal["patrol", "event"]
    ref_id: int
    title: str
    minutes: int
    date: str


class HoursOut(Out):
    year: int
    total_minutes: int
    items: list[HoursItem]


class CertificateIn(Body):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    start: Day = Field(alias="from")
    to: Day


class StaffCertificateIn(CertificateIn):
    user_id: Id


class CertificateIssued(Out):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True,
                              serialize_by_alias=True)
    code: str
    url: str
    minutes: int
    start: str = Field(serialization_alias="from")
    to: str


class CertificateOut(Out):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True,
                              serialize_by_alias=True)
    code: str
    status: Literal["valid", "revoked"]
    holder: str = Field(description="The holder's name, masked (张*明)")
    town: str
    village: str
    minutes: int
    items: int
    start: str = Field(serialization_alias="from")
    to: str
    issued_at: str
    key_id: int
    public_key: str = Field(description="The town key (Ed25519, hex) that signed it; the "
                                        "town's trust page lists its keys")
    revoked_at: str | None
    signature: str
    payload: str = Field(description="The signed canonical text (docs/trust.md)")


class RevokeIn(Body):
    reason: Text(200)


def _year(params: HoursQuery) -> int:
    return params.year or now().astimezone(LOCAL).year


@api.endpoint("GET", "/me/service-hours", query=HoursQuery, returns=HoursOut,
              summary="My volunteer hours in a year: patrols and events with check-out",
              summary_zh="我的志愿时长（巡逻与签退活动）", tag="hours",
              errors=["invalid_request"])
async def my_hours(request: Request, body: None) -> object:
    user, _helper = await require_person(request)
    year = _year(request.state.query)
    items = await service.items_for(user, *service.year_bounds(year))
    return HoursOut(year=year, total_minutes=sum(i.minutes for i in items), items=[
        HoursItem(kind=i.kind, ref_id=i.ref_id, title=i.title, minutes=i.minutes,
                  date=i.day.isoformat()) for i in items])


def _issued(request: Request, issued) -> CertificateIssued:
    base = request.app.state.settings.BASE_URL
    return CertificateIssued(code=issued.code, url=f"{base}/certificates/{issued.code}",
                             minutes=issued.minutes, start=issued.period_from.isoformat(),
                             to=issued.period_to.isoformat())


@api.endpoint("POST", "/me/service-certificates", idempotent=True, body=CertificateIn,
              returns=CertificateIssued, status=201,
              summary="A certificate of my volunteer hours in a period, signed with the "
                      "town's key", summary_zh="开具志愿服务时长证明（镇密钥签名）",
              tag="hours", errors=["no_hours", "invalid_request"])
async def my_certificate(request: Request, body: CertificateIn) -> object:
    user, _helper = await require_person(request)
    issued = await service.issue(request.app.state.settings, actor=user, holder=user,
                                 start=body.start, end=body.to)
    return _issued(request, issued)


@api.endpoint("POST", "/service-certificates", idempotent=True, body=StaffCertificateIn,
              returns=CertificateIssued, status=201,
              summary="Staff issue a certificate for a resident (one without a phone)",
              summary_zh="工作人员为居民开具时长证明", tag="hours",
              errors=["forbidden", "not_found", "no_hours", "invalid_request"])
async def staff_certificate(request: Request, body: StaffCertificateIn) -> object:
    actor = await require_user(request)
    holder = await User.get_or_none(id=body.user_id)
    if holder is None:
        raise NotFoundError()
    issued = await service.issue(request.app.state.settings, actor=actor, holder=holder,
                                 start=body.start, end=body.to)
    return _issued(request, issued)


@api.endpoint("GET", "/certificates/{code}", returns=CertificateOut, auth=False,
              summary="Check a certificate: its status, masked holder, hours and signature",
              summary_zh="核验时长证明", tag="hours", errors=["not_found"],
              description="Anyone. Check `signature` over `payload` with `public_key` "
                          "(docs/trust.md), or save this answer and run `torreya "
                          "verify-certificate`.")
async def get_certificate(request: Request, body: None) -> object:
    found = await service.by_code(request.path_params["code"])
    return CertificateOut.model_validate(_renamed(await service.public_doc(found)))


@api.endpoint("POST", "/certificates/{code}/revoke", body=RevokeIn, returns=CertificateOut,
              summary="Revoke a certificate (it stays listed, as revoked)",
              summary_zh="作废时长证明（保留记录）", tag="hours",
              errors=["forbidden", "not_found", "invalid_state", "invalid_request"])
async def revoke_certificate(request: Request, body: RevokeIn) -> object:
    actor = await require_user(request)
    found = await service.revoke(actor=actor, code=request.path_params["code"],
                                 reason=body.reason)
    return CertificateOut.model_validate(_renamed(await service.public_doc(found)))


def _renamed(doc: dict) -> dict:
    return {("start" if k == "from" else k): v for k, v in doc.items()}
