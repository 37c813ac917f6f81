"""API: integrity signals, the village's review queue (SPEC §5.2 "Integrity signals")."""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request

from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Maybe, OneOf, Out, Query, Text, Time
from torreya.integrity import signals
from torreya.models import Signal, SignalKind, SignalStatus
from torreya.web import require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)

Status = Literal[tuple(s.value for s in SignalStatus)]  # type: ignore[valid-type]


class SignalsQuery(Query):
    status: Status | None = None


class SignalOut(Out):
    id: int
    kind: OneOf(SignalKind)
    village_id: int
    user_ids: list[int]
    evidence: dict[str, Any]
    status: OneOf(SignalStatus)
    note: str
    created_at: Time
    updated_at: Time
    resolved_at: Time | None


class SignalList(Out):
    items: list[SignalOut]


class ResolveIn(Body):
    decision: Literal["dismiss", "confirm"]
    note: Maybe(Text(500, markup=True, required=False), "") = ""


class ResolvedOut(Out):
    id: int
    status: OneOf(SignalStatus)


def signal_out(signal: Signal) -> SignalOut:
    return SignalOut(id=signal.id, kind=str(signal.kind), village_id=signal.village_id,
                     user_ids=signal.user_ids, evidence=signal.evidence,
                     status=str(signal.status), note=signal.note,
                     created_at=signal.created_at, updated_at=signal.updated_at,
                     resolved_at=signal.resolved_at)


@api.endpoint("GET", "/villages/{id:id}/signals", query=SignalsQuery, returns=SignalList,
              summary="The village's integrity signals, newest first",
              summary_zh="本村的异常提示（代签、集中加分、重复照片等），最新的在前",
              tag="integrity", errors=["not_found", "forbidden", "invalid_request"],
              description="Staff of the village and above. The latest 200. A signal is a hint "
                          "with its evidence: nothing was blocked or reversed.")
async def list_signals(request: Request, body: None) -> object:
    user = await require_user(request)
    village = await resolve_village(user, request.path_params["id"])
    params: SignalsQuery = request.state.query
    status = SignalStatus(params.status) if params.status else None
    found = await signals.village_signals(user, village, status=status)
    return SignalList(items=[signal_out(s) for s in found])


@api.endpoint("POST", "/signals/{id:bigid}/resolve", idempotent=True, body=ResolveIn,
              returns=ResolvedOut, summary="Dismiss or confirm a signal, with a note",
              summary_zh="处理异常提示：排除或确认，并写明理由", tag="integrity",
              errors=["not_found", "forbidden", "invalid_state", "invalid_request"],
              description="Village admins and above. Confirming changes nothing by itself: "
                          "use the adjustment or the end-logins tools as the case needs.")
async def resolve(request: Request, body: ResolveIn) -> object:
    user = await require_user(request)
    signal = await signals.resolve(user, request.path_params["id"], decision=body.decision,
                                   note=body.note)
    return ResolvedOut(id=signal.id, status=str(signal.status))
