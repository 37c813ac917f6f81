"""API: volunteer groups, routes, patrols and their review."""

from __future__ import annotations

from starlette.requests import Request

from torreya.api.registry import endpoint, json
from torreya.errors import InvalidRequestError
from torreya.models import Checkpoint
from torreya.patrols import service
from torreya.patrols.codes import plate_code
from torreya.validation import Field
from torreya.web import require_user


async def _group(request: Request):
    user = await require_user(request)
    return user, await service.group_for(user, request.path_params["id"])


@endpoint("POST", "/towns/{id:id}/groups", idempotent=True, returns="id:int name village_ids:list",
          summary="Create a volunteer group", status=201,
          tag="patrols", body=[Field(name="name", max_length=80)],
          errors=["forbidden", "not_found", "invalid_request"])
async def create_group(request: Request, body: dict) -> object:
    actor = await require_user(request)
    raw = (await request.json()).get("village_ids")
    if raw is not None and (not isinstance(raw, list)
                            or not all(isinstance(v, int) and not isinstance(v, bool)
                                       for v in raw)):
        raise InvalidRequestError("Field %(name)s must be a list of ids.", field="village_ids",
                                  name="village_ids")
    group = await service.create_group(actor=actor, town_id=request.path_params["id"],
                                       name=body["name"], village_ids=raw)
    return json({"id": group.id, "name": group.name, "village_ids": group.village_ids}, 201)


@endpoint("POST", "/groups/{id:id}/members", summary="Add a member or leader", status=201,
          tag="patrols",
          body=[Field(name="user_id", type=int, minimum=1),
                Field(name="role", max_length=8, choices=["member", "leader"])],
          errors=["forbidden", "not_found", "invalid_request"])
async def add_member(request: Request, body: dict) -> object:
    user, group = await _group(request)
    member = await service.add_member(actor=user, group=group, **body)
    return json({"group_id": group.id, "user_id": member.user_id, "role": member.role}, 201)


@endpoint("POST", "/groups/{id:id}/routes", idempotent=True,
          returns="id:int name min_checkpoints:int checkpoints:list",
          summary="A route of checkpoint plates", status=201,
          tag="patrols",
          body=[Field(name="name", max_length=80), Field(name="min_checkpoints", type=int,
                                                         minimum=1, maximum=50),
                Field(name="village_id", type=int, required=False, nullable=True)],
          errors=["forbidden", "not_found", "invalid_request"])
async def create_route(request: Request, body: dict) -> object:
    user, group = await _group(request)
    names = (await request.json()).get("checkpoints")
    if not isinstance(names, list):
        raise InvalidRequestError("Give 1 to 50 checkpoint names (80 characters each).",
                                  field="checkpoints")
    route = await service.create_route(actor=user, group=group, checkpoints=names, **body)
    settings = request.app.state.settings
    checkpoints = await Checkpoint.filter(route_id=route.id).order_by("position")
    return json({"id": route.id, "name": route.name, "min_checkpoints": route.min_checkpoints,
                 "checkpoints": [{"id": c.id, "name": c.name,
                                  "code": plate_code(settings, c.id)} for c in checkpoints]},
                201)


@endpoint("POST", "/groups/{id:id}/patrols", idempotent=True, returns="id:int status join_code",
          summary="The leader starts a patrol", status=201,
          tag="patrols", body=[Field(name="route_id", type=int, minimum=1)],
          errors=["forbidden", "not_found"])
async def start(request: Request, body: dict) -> object:
    user, group = await _group(request)
    patrol = await service.start_patrol(leader=user, group=group, route_id=body["route_id"])
    return json({"id": patrol.id, "status": str(patrol.status), "join_code": patrol.join_code},
                201)


@endpoint("POST", "/patrols/{id:id}/participants", summary="Join with the leader's code",
          status=201, tag="patrols", body=[Field(name="join_code", max_length=16)],
          errors=["forbidden", "not_found", "invalid_token", "invalid_state"])
async def join(request: Request, body: dict) -> object:
    user = await require_user(request)
    participant = await service.join_patrol(user=user, patrol_id=request.path_params["id"],
                                            join_code=body["join_code"])
    return json({"patrol_id": participant.patrol_id, "user_id": participant.user_id}, 201)


@endpoint("POST", "/patrols/{id:id}/scans",
          summary="Record a checkpoint plate (optional numbers latitude, longitude)", status=201,
          tag="patrols", body=[Field(name="code", max_length=300)],
          errors=["forbidden", "not_found", "invalid_token", "invalid_state"])
async def scan(request: Request, body: dict) -> object:
    user = await require_user(request)
    raw = await request.json()
    coords = [raw.get("latitude"), raw.get("longitude")]
    latitude, longitude = (c if isinstance(c, int | float) and not isinstance(c, bool)
                           else None for c in coords)
    result = await service.record_scan(request.app.state.settings, user=user,
                                       patrol_id=request.path_params["id"], code=body["code"],
                                       latitude=latitude, longitude=longitude)
    return json({"id": result.scan.id, "checkpoint_id": result.checkpoint.id,
                 "checkpoint": result.checkpoint.name, "out_of_order": result.scan.out_of_order,
                 "repeated": result.repeated}, 201)


@endpoint("POST", "/patrols/{id:id}/finish", returns="id:int status duration_minutes:int",
          summary="The leader finishes the patrol",
          tag="patrols", errors=["forbidden", "not_found", "invalid_state"])
async def finish(request: Request, body: dict) -> object:
    user = await require_user(request)
    patrol = await service.finish_patrol(leader=user, patrol_id=request.path_params["id"])
    return json({"id": patrol.id, "status": str(patrol.status),
                 "duration_minutes": patrol.duration_minutes})


@endpoint("POST", "/patrols/{id:id}/approve", idempotent=True, returns="id:int status awards:list",
          summary="Approve and pay the participants",
          tag="patrols", errors=["forbidden", "not_found", "invalid_state"])
async def approve(request: Request, body: dict) -> object:
    user = await require_user(request)
    patrol, awards = await service.approve_patrol(actor=user, patrol_id=request.path_params["id"])
    return json({"id": patrol.id, "status": str(patrol.status),
                 "awards": [{"user_id": a.user_id, "points": a.points} for a in awards]})


@endpoint("POST", "/patrols/{id:id}/reject", idempotent=True, returns="id:int status awards:list",
          summary="Reject with a reason", tag="patrols",
          body=[Field(name="reason", max_length=500, allow_markup=True)],
          errors=["forbidden", "not_found", "invalid_state", "invalid_request"])
async def reject(request: Request, body: dict) -> object:
    user = await require_user(request)
    patrol = await service.reject_patrol(actor=user, patrol_id=request.path_params["id"],
                                         reason=body["reason"])
    return json({"id": patrol.id, "status": str(patrol.status), "awards": []})

