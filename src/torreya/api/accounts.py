"""API: tokens, me, towns, villages, users, adjustments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from torreya.accounts import service, sessions
from torreya.accounts.permissions import require_over
from torreya.api.registry import endpoint, json
from torreya.api.serializers import entry_json, user_json
from torreya.checkins.codes import member_code
from torreya.errors import ForbiddenError, InvalidRequestError, NotFoundError
from torreya.ledger import queries as ledger_queries
from torreya.ledger.service import adjust_points
from torreya.models import Role, User
from torreya.security import issue_access_token
from torreya.signin import codes, totp
from torreya.validation import Field
from torreya.web import (
    client_ip,
    confirm_big_action,
    current_sid,
    needs_step_up_for,
    require_user,
)

ROLES = [r.value for r in Role if r != Role.PLATFORM_ADMIN]


@endpoint("POST", "/auth/token", returns="access_token token_type expires_in:int",
          summary="A bearer token for a username and password, or a phone and its SMS code",
          auth=False, tag="accounts",
          body=[Field(name="username", max_length=64, required=False),
                Field(name="password", max_length=256, required=False),
                Field(name="phone", max_length=32, required=False),
                Field(name="code", max_length=12, required=False),
                Field(name="totp", max_length=12, required=False),
                Field(name="user_id", type=int, required=False, minimum=1)],
          errors=["invalid_credentials", "invalid_code", "too_many_attempts", "no_account",
                  "choose_account", "totp_required", "invalid_request"])
async def token(request: Request, body: dict) -> object:
    settings = request.app.state.settings
    if body["phone"]:
        if not body["code"]:
            raise InvalidRequestError("Field %(name)s is required.", field="code", name="code")
        user, helper = await codes.verify_code(settings, phone=body["phone"], code=body["code"],
                                               user_id=body["user_id"])
        return json(await _token_for(request, user, helper=helper))
    else:
        for name in ("username", "password"):
            if not body[name]:
                raise InvalidRequestError("Field %(name)s is required.", field=name, name=name)
        user = await service.authenticate(settings, username=body["username"],
                                          password=body["password"], ip=client_ip(request))
        if user.totp_secret:  # two-step login is on: the app's code too
            if not body["totp"]:
                raise totp.TotpRequiredError()
            await totp.check(settings, user=user, code=body["totp"], ip=client_ip(request))
    return json(await _token_for(request, user))


@endpoint("POST", "/auth/sms-code", returns="resend_after:int expires_in:int",
          summary="Send a sign-in code by SMS (the same answer for any well-formed number)",
          auth=False, status=202, tag="accounts", body=[Field(name="phone", max_length=32)],
          errors=["invalid_request", "too_many_attempts", "sms_unavailable"])
async def sms_code(request: Request, body: dict) -> object:
    sent = await codes.request_code(request.app.state.settings, phone=body["phone"],
                                    ip=client_ip(request))
    return json({"resend_after": sent.resend_after, "expires_in": sent.expires_in}, 202)


async def _token_for(request: Request, user: User, *, helper=None) -> dict:
    """A bearer token for a new login of `user` from this client (`helper`: a family
    helper's, acting for them)."""
    settings = request.app.state.settings
    session = await sessions.start_session(settings, user, kind="api", ip=client_ip(request),
                                           user_agent=request.headers.get("user-agent", ""),
                                           helper=helper)
    return {"access_token": issue_access_token(settings, user.id, user.session_generation,
                                               session.id, helper.id if helper else None),
            "token_type": "bearer", "expires_in": settings.ACCESS_TOKEN_SECONDS}


@endpoint("GET", "/me", returns=("id:int username display_name role village_id:int? town_id:int? "
                   "balance:int lifetime_points:int"),
          summary="The logged-in user with balance and lifetime points",
          tag="accounts")
async def me(request: Request, body: dict) -> object:
    user = await require_user(request)
    return json(user_json(user, full=True))


@endpoint("GET", "/me/ledger", returns="items:list next_cursor:str?",
          summary="My ledger entries, newest first (cursor pagination)",
          tag="ledger", query=[Field(name="cursor", type=int, required=False),
                               Field(name="limit", type=int, required=False, minimum=1,
                                     maximum=100)])
async def my_ledger(request: Request, body: dict) -> object:
    from torreya.validation import validate

    user = await require_user(request)
    params = validate(dict(request.query_params), [
        Field(name="cursor", type=int, required=False, minimum=0),
        Field(name="limit", type=int, required=False, minimum=1, maximum=100)])
    entries, next_cursor = await ledger_queries.ledger_page(
        user.id, cursor=params["cursor"], limit=params["limit"] or 20)
    return json({"items": [entry_json(e) for e in entries],
                 "next_cursor": str(next_cursor) if next_cursor else None})


@endpoint("GET", "/me/member-card", returns="code url",
          summary="The code on my member card, for staff to scan",
          tag="checkins")
async def my_member_card(request: Request, body: dict) -> object:
    user = await require_user(request)
    if user.role != Role.RESIDENT:
        raise ForbiddenError("Only residents have a member card.")
    settings = request.app.state.settings
    code = member_code(settings, user_id=user.id, serial=user.card_serial)
    return json({"code": code, "url": f"{settings.BASE_URL}/card/{code}"})


@endpoint("POST", "/towns", idempotent=True, returns="id:int name code currency_name",
          summary="Create a town (platform admin)", status=201, tag="accounts",
          body=[Field(name="name", max_length=100), Field(name="code", max_length=32),
                Field(name="currency_name", max_length=32)],
          errors=["forbidden", "code_taken", "invalid_request"])
async def create_town(request: Request, body: dict) -> object:
    actor = await require_user(request)
    town = await service.create_town(actor=actor, **body)
    return json({"id": town.id, "name": town.name, "code": town.code,
                 "currency_name": town.currency_name}, 201)


@endpoint("POST", "/towns/{id:id}/villages", idempotent=True,
          returns="id:int town_id:int name code",
          summary="Create a village (town admin)",
          status=201, tag="accounts",
          body=[Field(name="name", max_length=100), Field(name="code", max_length=32)],
          errors=["forbidden", "not_found", "code_taken", "invalid_request"])
async def create_village(request: Request, body: dict) -> object:
    actor = await require_user(request)
    village = await service.create_village(actor=actor, town_id=request.path_params["id"], **body)
    return json({"id": village.id, "town_id": village.town_id, "name": village.name,
                 "code": village.code}, 201)


@endpoint("POST", "/users", idempotent=True,
          returns="id:int username display_name village_id:int? role",
          summary="Create a user in a village the admin manages", status=201,
          tag="accounts",
          body=[Field(name="username", max_length=64, min_length=3),
                Field(name="password", max_length=256, min_length=6, required=False,
                      nullable=True),
                Field(name="display_name", max_length=64),
                Field(name="village_id", type=int, required=False, nullable=True),
                Field(name="town_id", type=int, required=False, nullable=True),
                Field(name="role", choices=ROLES, max_length=16),
                Field(name="phone", max_length=32, required=False, nullable=True)],
          errors=["forbidden", "not_found", "username_taken", "invalid_request"])
async def create_user(request: Request, body: dict) -> object:
    actor = await require_user(request)
    user = await service.create_user(actor=actor, new=service.NewUser(
        username=body["username"], display_name=body["display_name"],
        password=body["password"], role=Role(body["role"]), village_id=body["village_id"],
        town_id=body["town_id"], phone=body["phone"]))
    return json(user_json(user), 201)


@endpoint("POST", "/users/{id:id}/adjustments", idempotent=True,
          returns="id:int delta:int balance_after:int kind memo created_at:time",
          summary="Add or take points with a reason",
          status=201, tag="ledger",
          body=[Field(name="delta", type=int, minimum=-1_000_000, maximum=1_000_000),
                Field(name="memo", max_length=200, min_length=1)],
          errors=["forbidden", "not_found", "insufficient_points", "invalid_request",
                  "step_up_required"])
async def adjust(request: Request, body: dict) -> object:
    actor = await require_user(request)
    target = await User.get_or_none(id=request.path_params["id"])
    if target is None:
        raise NotFoundError()
    require_over(actor, target, Role.VILLAGE_ADMIN)
    if body["delta"] == 0:
        from torreya.errors import InvalidRequestError

        raise InvalidRequestError("Field %(name)s must not be zero.", field="delta", name="delta")
    if await needs_step_up_for(target, body["delta"]):
        await confirm_big_action(request, actor)
    entry = await adjust_points(actor=actor, target=target, delta=body["delta"],
                                memo=body["memo"])
    return json(entry_json(entry), 201)


@endpoint("POST", "/me/sessions/revoke", status=204, tag="accounts",
          summary="Log out everywhere: end every session and bearer token of mine, this one too")
async def revoke_my_sessions(request: Request, body: dict) -> object:
    user = await require_user(request)
    await service.end_sessions(actor=user, target=user)
    return Response(status_code=204)


@endpoint("POST", "/users/{id:id}/sessions/revoke", status=204, tag="accounts",
          summary="Lost phone: end every session and bearer token of someone below me",
          errors=["forbidden", "not_found"])
async def revoke_sessions(request: Request, body: dict) -> object:
    actor = await require_user(request)
    target = await User.get_or_none(id=request.path_params["id"])
    if target is None:
        raise NotFoundError()
    await service.end_sessions(actor=actor, target=target)
    return Response(status_code=204)


@endpoint("GET", "/me/sessions", returns="items:list",
          summary="Where I am logged in: each login's device, address and last use",
          tag="accounts")
async def my_sessions(request: Request, body: dict) -> object:
    user = await require_user(request)
    this = current_sid(request)
    return json({"items": [
        {"id": s.id, "kind": s.kind, "device": sessions.device_label(s.user_agent),
         "ip": s.ip, "created_at": s.created_at.isoformat(),
         "last_seen_at": s.last_seen_at.isoformat(), "expires_at": s.expires_at.isoformat(),
         "current": s.id == this} for s in await sessions.active_sessions(user)]})


@endpoint("POST", "/me/sessions/{sid}/revoke", status=204, tag="accounts",
          summary="End one of my logins (a device I no longer use)", errors=["not_found"])
async def revoke_one_session(request: Request, body: dict) -> object:
    user = await require_user(request)
    await sessions.end_session(actor=user, user=user, sid=request.path_params["sid"])
    return Response(status_code=204)


@endpoint("POST", "/me/password", returns="access_token token_type expires_in:int",
          summary="Change my password: every login ends; a new token for this client",
          tag="accounts",
          body=[Field(name="current_password", max_length=256),
                Field(name="new_password", max_length=256)],
          errors=["invalid_credentials", "too_many_attempts", "invalid_request"])
async def change_password(request: Request, body: dict) -> object:
    settings = request.app.state.settings
    user = await service.change_password(settings, user=await require_user(request),
                                         current=body["current_password"],
                                         new=body["new_password"], ip=client_ip(request))
    return json(await _token_for(request, user))


@endpoint("POST", "/auth/step-up", status=204, tag="accounts",
          summary="Confirm my password again: big actions are allowed for 5 minutes",
          body=[Field(name="password", max_length=256)],
          errors=["invalid_credentials", "too_many_attempts", "invalid_request"])
async def step_up(request: Request, body: dict) -> object:
    user = await require_user(request)
    await sessions.step_up(request.app.state.settings, user=user, sid=current_sid(request),
                           password=body["password"], ip=client_ip(request))
    return Response(status_code=204)
