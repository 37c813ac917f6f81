"""API: volunteer groups, routes, patrols and their review."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.requests import Request

from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Id, Int, Out, Text
from torreya.models import Checkpoint
from torreya.patrols import service
from torreya.patrols.codes import plate_code
from torreya.web import require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class GroupIn(Body):
    name: Text(80)
    village_ids: list[Id] | None = Field(
        default=None, max_length=1000,
        description="The villages it serves (the town's own); absent: all of them")


class GroupOut(Out):
    id: int
    name: str
    village_ids: list[int]


class MemberIn(Body):
    user_id: Id
    role: Literal["member", "leader"]


class MemberOut(Out):
    group_id: int
    user_id: int
    role: str


class RouteIn(Body):
    name: Text(80)
    min_checkpoints: Int(1, 50)
    walk_minutes: Int(0, 120) = Field(1, description=(
        "The least minutes' walk from one plate to the next; scans faster than that raise "
        "a patrol_pace integrity signal (0: never)"))
    village_id: Id | None = None
    checkpoints: list[Text(80)] = Field(min_length=1, max_length=50,
                                        description="The plates' names, in walking order")


class CheckpointOut(Out):
    id: int
    name: str
    code: str


class RouteOut(Out):
    id: int
    name: str
    min_checkpoints: int
    walk_minutes: int
    checkpoints: list[CheckpointOut]


class StartIn(Body):
    route_id: Id


class PatrolOut(Out):
    id: int
    status: str
    join_code: str


class JoinIn(Body):
    join_code: Text(16, markup=True)


class ParticipantOut(Out):
    patrol_id: int
    user_id: int


class PlateScanIn(Body):
    code: Text(300, markup=True, description="The checkpoint plate's code")
    latitude: float | None = Field(default=None, ge=-90, le=90, strict=True)
    longitude: float | None = Field(default=None, ge=-180, le=180, strict=True)


class PlateScanOut(Out):
    id: int
    checkpoint_id: int
    checkpoint: str
    out_of_order: bool
    repeated: bool


class FinishedOut(Out):
    id: int
    status: str
    duration_minutes: int | None


class AwardOut(Out):
    user_id: int
    points: int


class ReviewedOut(Out):
    id: int
    status: str
    awards: list[AwardOut]


class RejectIn(Body):
    reason: Text(500, markup=True)


async def _group(request: Request):
    user = await require_user(request)
    return user, await service.group_for(user, request.path_params["id"])


@api.endpoint("POST", "/towns/{id:id}/groups", idempotent=True, body=GroupIn, returns=GroupOut,
              summary="Create a volunteer group", summary_zh="创建志愿队（如红枫义警）", status=201,
              tag="patrols", errors=["forbidden", "not_found", "invalid_request"])
async def create_group(request: Request, body: GroupIn) -> object:
    actor = await require_user(request)
    group = await service.create_group(actor=actor, town_id=request.path_params["id"],
                                       name=body.name, village_ids=body.village_ids)
    return GroupOut(id=group.id, name=group.name, village_ids=group.village_ids)


@api.endpoint("POST", "/groups/{id:id}/members", body=MemberIn, returns=MemberOut,
              summary="Add a member or leader", summary_zh="添加队员或队长", status=201,
              tag="patrols", errors=["forbidden", "not_found", "invalid_request"])
async def add_member(request: Request, body: MemberIn) -> object:
    user, group = await _group(request)
    member = await service.add_member(actor=user, group=group, **body.model_dump())
    return MemberOut(group_id=group.id, user_id=member.user_id, role=member.role)


@api.endpoint("POST", "/groups/{id:id}/routes", idempotent=True, body=RouteIn, returns=RouteOut,
              summary="A route of checkpoint plates", summary_zh="设置巡逻路线和打卡点",
              status=201, tag="patrols", errors=["forbidden", "not_found", "invalid_request"])
async def create_route(request: Request, body: RouteIn) -> object:
    user, group = await _group(request)
    route = await service.create_route(actor=user, group=group, **body.model_dump())
    settings = request.app.state.settings
    checkpoints = await Checkpoint.filter(route_id=route.id).order_by("position")
    return RouteOut(id=route.id, name=route.name, min_checkpoints=route.min_checkpoints,
                    walk_minutes=route.walk_minutes,
                    checkpoints=[CheckpointOut(id=c.id, name=c.name,
                                               code=plate_code(settings, c.id))
                                 for c in checkpoints])


@api.endpoint("POST", "/groups/{id:id}/patrols", idempotent=True, body=StartIn, returns=PatrolOut,
              summary="The leader starts a patrol", summary_zh="队长开始巡逻", status=201,
              tag="patrols", errors=["forbidden", "not_found", "invalid_request"])
async def start(request: Request, body: StartIn) -> object:
    user, group = await _group(request)
    patrol = await service.start_patrol(leader=user, group=group, route_id=body.route_id)
    return PatrolOut(id=patrol.id, status=str(patrol.status), join_code=patrol.join_code)


@api.endpoint("POST", "/patrols/{id:id}/participants", body=JoinIn, returns=ParticipantOut,
              summary="Join with the leader's code", summary_zh="凭队长给的加入码参加巡逻",
              status=201, tag="patrols",
              errors=["forbidden", "not_found", "invalid_token", "invalid_state",
              "invalid_request"])
async def join(request: Request, body: JoinIn) -> object:
    user = await require_user(request)
    participant = await service.join_patrol(user=user, patrol_id=request.path_params["id"],
                                            join_code=body.join_code)
    return ParticipantOut(patrol_id=participant.patrol_id, user_id=participant.user_id)


@api.endpoint("POST", "/patrols/{id:id}/scans", body=PlateScanIn, returns=PlateScanOut,
              summary="Record a checkpoint plate (optional numbers latitude, longitude)",
              summary_zh="巡逻中扫打卡点", status=201, tag="patrols",
              errors=["forbidden", "not_found", "invalid_token", "invalid_state",
              "invalid_request"])
async def scan(request: Request, body: PlateScanIn) -> object:
    user = await require_user(request)
    result = await service.record_scan(request.app.state.settings, user=user,
                                       patrol_id=request.path_params["id"], code=body.code,
                                       latitude=body.latitude, longitude=body.longitude)
    return PlateScanOut(id=result.scan.id, checkpoint_id=result.checkpoint.id,
                        checkpoint=result.checkpoint.name,
                        out_of_order=result.scan.out_of_order,
                        repeated=result.repeated)


@api.endpoint("POST", "/patrols/{id:id}/finish", returns=FinishedOut,
              summary="The leader finishes the patrol", summary_zh="队长结束巡逻，提交审核",
              tag="patrols", errors=["forbidden", "not_found", "invalid_state"])
async def finish(request: Request, body: None) -> object:
    user = await require_user(request)
    patrol = await service.finish_patrol(leader=user, patrol_id=request.path_params["id"])
    return FinishedOut(id=patrol.id, status=str(patrol.status),
                       duration_minutes=patrol.duration_minutes)


@api.endpoint("POST", "/patrols/{id:id}/approve", idempotent=True, returns=ReviewedOut,
              summary="Approve and pay the participants", summary_zh="审核通过，给队员记积分",
              tag="patrols", errors=["forbidden", "not_found", "invalid_state", "cap_reached"])
async def approve(request: Request, body: None) -> object:
    user = await require_user(request)
    patrol, awards = await service.approve_patrol(actor=user, patrol_id=request.path_params["id"])
    return ReviewedOut(id=patrol.id, status=str(patrol.status),
                       awards=[AwardOut(user_id=a.user_id, points=a.points) for a in awards])


@api.endpoint("POST", "/patrols/{id:id}/reject", idempotent=True, body=RejectIn,
              returns=ReviewedOut,
              summary="Reject with a reason", summary_zh="驳回并说明理由", tag="patrols",
              errors=["forbidden", "not_found", "invalid_state", "invalid_request"])
async def reject(request: Request, body: RejectIn) -> object:
    user = await require_user(request)
    patrol = await service.reject_patrol(actor=user, patrol_id=request.path_params["id"],
                                         reason=body.reason)
    return ReviewedOut(id=patrol.id, status=str(patrol.status), awards=[])

