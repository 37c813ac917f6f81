"""API: tokens, me, towns, villages, users, adjustments."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from torreya.accounts import service, sessions
from torreya.accounts.permissions import require_over
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Cursor, Id, Int, Maybe, OneOf, Out, Query, QueryInt, Text, Time
from torreya.checkins.codes import member_code
from torreya.errors import ForbiddenError, InvalidRequestError, NotFoundError
from torreya.ledger import queries as ledger_queries
from torreya.ledger.rules import ENTRY_KINDS
from torreya.ledger.service import adjust_points
from torreya.models import LedgerEntry, Role, User
from torreya.security import issue_access_token
from torreya.signin import codes, totp
from torreya.trust.receipts import receipt_code
from torreya.web import (
    client_ip,
    confirm_big_action,
    current_sid,
    needs_step_up_for,
    require_user,
)

ROLES = tuple(r.value for r in Role if r != Role.PLATFORM_ADMIN)
RoleName = Literal[ROLES]  # type: ignore[valid-type]


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class TokenIn(Body):
    """A username and password (and the app's code when two-step login is on), or a phone
    and the SMS code (and which account, when the phone has several)."""

    required = True

    username: Maybe(Text(64, required=False), "") = ""
    password: Maybe(Text(256, markup=True, required=False), "") = ""
    phone: Maybe(Text(32, required=False), "") = ""
    code: Maybe(Text(12, required=False), "") = ""
    totp: Maybe(Text(12, required=False), "") = ""
    user_id: Id | None = None


class TokenOut(Out):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class PhoneIn(Body):
    phone: Text(32, description="An 11-digit mainland mobile number")


class CodeSent(Out):
    resend_after: int
    expires_in: int


class UserOut(Out):
    id: int
    username: str
    display_name: str
    village_id: int | None
    role: OneOf(Role)


class MeOut(UserOut):
    town_id: int | None
    balance: int
    lifetime_points: int


class LedgerQuery(Query):
    cursor: Cursor | None = None
    limit: QueryInt(1, 100) | None = None


class EntryOut(Out):
    id: int
    delta: int
    balance_after: int
    kind: OneOf(ENTRY_KINDS)
    memo: str
    created_at: Time
    receipt: str


def entry_out(entry: LedgerEntry) -> EntryOut:
    return EntryOut(id=entry.id, delta=entry.delta, balance_after=entry.balance_after,
                    kind=entry.kind, memo=entry.memo, created_at=entry.created_at,
                    receipt=receipt_code(entry.id))


class LedgerPage(Out):
    items: list[EntryOut]
    next_cursor: str | None


class CardOut(Out):
    code: str
    url: str


class TownIn(Body):
    name: Text(100)
    code: Text(32)
    currency_name: Text(32)


class TownOut(Out):
    id: int
    name: str
    code: str
    currency_name: str


class VillageIn(Body):
    name: Text(100)
    code: Text(32)


class VillageOut(Out):
    id: int
    town_id: int
    name: str
    code: str


class UserIn(Body):
    username: Text(64, min_length=3)
    password: Text(256, markup=True, min_length=8) | None = None
    display_name: Text(64)
    village_id: Id | None = None
    town_id: Id | None = None
    role: RoleName
    phone: Text(32, required=False) | None = None


class AdjustmentIn(Body):
    delta: Int(-1_000_000, 1_000_000, description="Not zero")
    memo: Text(200, description="The reason, shown to the resident")


class SessionOut(Out):
    id: str
    kind: str
    device: str
    ip: str | None
    created_at: Time
    last_seen_at: Time
    expires_at: Time
    current: bool


class SessionList(Out):
    items: list[SessionOut]


class PasswordChangeIn(Body):
    current_password: Text(256, markup=True)
    new_password: Text(256, markup=True)


class StepUpIn(Body):
    """The password; or the authenticator's 6-digit code where two-step login is on; or,
    for a resident without a password, `code`: the SMS code sent to their own phone by
    POST /auth/sms-code."""

    password: Text(256, markup=True) | None = None
    code: Text(12) | None = None


@api.endpoint("POST", "/auth/token", body=TokenIn, returns=TokenOut,
              summary="A bearer token for a username and password, or a phone and its SMS code",
              summary_zh="登录：用户名和密码，或手机号和短信验证码，换取访问令牌",
              auth=False, tag="accounts",
              errors=["invalid_credentials", "invalid_code", "too_many_attempts", "no_account",
                      "choose_account", "totp_required", "invalid_request"])
async def token(request: Request, body: TokenIn) -> object:
    settings = request.app.state.settings
    if body.phone:
        if not body.code:
            raise InvalidRequestError("Field %(name)s is required.", field="code", name="code")
        user, helper = await codes.verify_code(settings, phone=body.phone, code=body.code,
                                               user_id=body.user_id)
        return await _token_for(request, user, helper=helper)
    else:
        for name in ("username", "password"):
            if not getattr(body, name):
                raise InvalidRequestError("Field %(name)s is required.", field=name, name=name)
        user = await service.authenticate(settings, username=body.username,
                                          password=body.password, ip=client_ip(request))
        if user.totp_secret:  # two-step login is on: the app's code too
            if not body.totp:
                raise totp.TotpRequiredError()
            await totp.check(settings, user=user, code=body.totp, ip=client_ip(request))
    return await _token_for(request, user)


@api.endpoint("POST", "/auth/sms-code", body=PhoneIn, returns=CodeSent,
              summary="Send a sign-in code by SMS (the same answer for any well-formed number)",
              summary_zh="发送短信验证码（任何格式正确的号码都得到同样的回答）",
              auth=False, status=202, tag="accounts",
              errors=["invalid_request", "too_many_attempts", "sms_unavailable"])
async def sms_code(request: Request, body: PhoneIn) -> object:
    sent = await codes.request_code(request.app.state.settings, phone=body.phone,
                                    ip=client_ip(request))
    return CodeSent(resend_after=sent.resend_after, expires_in=sent.expires_in)


async def _token_for(request: Request, user: User, *, helper=None) -> TokenOut:
    """A bearer token for a new login of `user` from this client (`helper`: a family
    helper's, acting for them)."""
    settings = request.app.state.settings
    session = await sessions.start_session(settings, user, kind="api", ip=client_ip(request),
                                           user_agent=request.headers.get("user-agent", ""),
                                           helper=helper)
    return TokenOut(access_token=issue_access_token(settings, user.id, user.session_generation,
                                                    session.id, helper.id if helper else None),
                    token_type="bearer", expires_in=settings.ACCESS_TOKEN_SECONDS)


@api.endpoint("GET", "/me", returns=MeOut,
              summary="The logged-in user with balance and lifetime points",
              summary_zh="我的账户：余额和累计积分", tag="accounts")
async def me(request: Request, body: None) -> object:
    user = await require_user(request)
    return MeOut(id=user.id, username=user.username, display_name=user.display_name,
                 village_id=user.village_id, role=str(user.role), town_id=user.town_id,
                 balance=user.balance, lifetime_points=user.lifetime_points)


@api.endpoint("GET", "/me/ledger", query=LedgerQuery, returns=LedgerPage,
              summary="My ledger entries, newest first (cursor pagination)",
              summary_zh="我的积分明细，最新的在前（游标分页）", tag="ledger")
async def my_ledger(request: Request, body: None) -> object:
    user = await require_user(request)
    params: LedgerQuery = request.state.query
    entries, next_cursor = await ledger_queries.ledger_page(
        user.id, cursor=params.cursor, limit=params.limit or 20)
    return LedgerPage(items=[entry_out(e) for e in entries],
                      next_cursor=str(next_cursor) if next_cursor else None)


@api.endpoint("GET", "/me/member-card", returns=CardOut,
              summary="The code on my member card, for staff to scan",
              summary_zh="我的积分卡（工作人员扫码代签）", tag="checkins", errors=["forbidden"])
async def my_member_card(request: Request, body: None) -> object:
    user = await require_user(request)
    if user.role != Role.RESIDENT:
        raise ForbiddenError("Only residents have a member card.")
    settings = request.app.state.settings
    code = member_code(settings, user_id=user.id, serial=user.card_serial)
    return CardOut(code=code, url=f"{settings.BASE_URL}/card/{code}")


@api.endpoint("POST", "/towns", idempotent=True, body=TownIn, returns=TownOut,
              summary="Create a town (platform admin)", summary_zh="创建镇（平台管理员）",
              status=201, tag="accounts", errors=["forbidden", "code_taken", "invalid_request"])
async def create_town(request: Request, body: TownIn) -> object:
    actor = await require_user(request)
    town = await service.create_town(actor=actor, **body.model_dump())
    return TownOut(id=town.id, name=town.name, code=town.code, currency_name=town.currency_name)


@api.endpoint("POST", "/towns/{id:id}/villages", idempotent=True, body=VillageIn,
              returns=VillageOut, summary="Create a village (town admin)",
              summary_zh="创建村（镇管理员）", status=201, tag="accounts",
              errors=["forbidden", "not_found", "code_taken", "invalid_request"])
async def create_village(request: Request, body: VillageIn) -> object:
    actor = await require_user(request)
    village = await service.create_village(actor=actor, town_id=request.path_params["id"],
                                           **body.model_dump())
    return VillageOut(id=village.id, town_id=village.town_id, name=village.name,
                      code=village.code)


@api.endpoint("POST", "/users", idempotent=True, body=UserIn, returns=UserOut,
              summary="Create a user in a village the admin manages",
              summary_zh="在自己管理的村里添加用户", status=201, tag="accounts",
              errors=["forbidden", "not_found", "username_taken", "invalid_request"])
async def create_user(request: Request, body: UserIn) -> object:
    actor = await require_user(request)
    user = await service.create_user(actor=actor, new=service.NewUser(
        username=body.username, display_name=body.display_name,
        password=body.password, role=Role(body.role), village_id=body.village_id,
        town_id=body.town_id, phone=body.phone or None))
    return UserOut(id=user.id, username=user.username, display_name=user.display_name,
                   village_id=user.village_id, role=str(user.role))


@api.endpoint("POST", "/users/{id:id}/adjustments", idempotent=True, body=AdjustmentIn,
              returns=EntryOut, summary="Add or take points with a reason",
              summary_zh="加减积分（须写明原因）", status=201, tag="ledger",
              errors=["forbidden", "not_found", "insufficient_points", "invalid_request",
                      "step_up_required"])
async def adjust(request: Request, body: AdjustmentIn) -> object:
    actor = await require_user(request)
    target = await User.get_or_none(id=request.path_params["id"])
    if target is None:
        raise NotFoundError()
    require_over(actor, target, Role.VILLAGE_ADMIN)
    if body.delta == 0:
        raise InvalidRequestError("Field %(name)s must not be zero.", field="delta", name="delta")
    if await needs_step_up_for(target, body.delta):
        await confirm_big_action(request, actor)
    entry = await adjust_points(actor=actor, target=target, delta=body.delta, memo=body.memo)
    return entry_out(entry)


@api.endpoint("POST", "/me/sessions/revoke", status=204, tag="accounts",
              summary="Log out everywhere: end every session and bearer token of mine, "
                      "this one too",
              summary_zh="退出所有登录（包括这一个）", errors=["helper_forbidden"])
async def revoke_my_sessions(request: Request, body: None) -> object:
    user = await require_user(request)
    await service.end_sessions(actor=user, target=user)
    return Response(status_code=204)


@api.endpoint("POST", "/users/{id:id}/sessions/revoke", status=204, tag="accounts",
              summary="Lost phone: end every session and bearer token of someone below me",
              summary_zh="手机丢了：结束某位居民的全部登录", errors=["forbidden", "not_found"])
async def revoke_sessions(request: Request, body: None) -> object:
    actor = await require_user(request)
    target = await User.get_or_none(id=request.path_params["id"])
    if target is None:
        raise NotFoundError()
    await service.end_sessions(actor=actor, target=target)
    return Response(status_code=204)


@api.endpoint("GET", "/me/sessions", returns=SessionList,
              summary="Where I am logged in: each login's device, address and last use",
              summary_zh="我在哪些设备上登录着", tag="accounts", errors=["helper_forbidden"])
async def my_sessions(request: Request, body: None) -> object:
    user = await require_user(request)
    this = current_sid(request)
    return SessionList(items=[
        {"id": s.id, "kind": s.kind, "device": sessions.device_label(s.user_agent),
         "ip": s.ip, "created_at": s.created_at.isoformat(),
         "last_seen_at": s.last_seen_at.isoformat(), "expires_at": s.expires_at.isoformat(),
         "current": s.id == this} for s in await sessions.active_sessions(user)])


@api.endpoint("POST", "/me/sessions/{sid}/revoke", status=204, tag="accounts",
              summary="End one of my logins (a device I no longer use)",
              summary_zh="结束我的某一个登录", errors=["not_found", "helper_forbidden"])
async def revoke_one_session(request: Request, body: None) -> object:
    user = await require_user(request)
    await sessions.end_session(actor=user, user=user, sid=request.path_params["sid"])
    return Response(status_code=204)


@api.endpoint("POST", "/me/password", body=PasswordChangeIn, returns=TokenOut,
              summary="Change my password: every login ends; a new token for this client",
              summary_zh="修改密码：其他登录全部结束，本客户端得到新令牌", tag="accounts",
              errors=["invalid_credentials", "too_many_attempts", "invalid_request",
                      "helper_forbidden"])
async def change_password(request: Request, body: PasswordChangeIn) -> object:
    settings = request.app.state.settings
    user = await service.change_password(settings, user=await require_user(request),
                                         current=body.current_password,
                                         new=body.new_password, ip=client_ip(request))
    return await _token_for(request, user)


@api.endpoint("POST", "/auth/step-up", status=204, tag="accounts", body=StepUpIn,
              summary="Confirm it is me again (password, app code or SMS code): big actions "
                      "and changes to how I log in are allowed for 5 minutes",
              summary_zh="再次确认身份（密码、验证器或短信验证码）：5 分钟内可以做大额操作",
              errors=["invalid_credentials", "invalid_code", "too_many_attempts",
                      "invalid_request", "helper_forbidden"])
async def step_up(request: Request, body: StepUpIn) -> object:
    user = await require_user(request)
    if not (body.password or body.code):
        raise InvalidRequestError("Field %(name)s is required.", field="password",
                                  name="password")
    await sessions.step_up(request.app.state.settings, user=user, sid=current_sid(request),
                           password=body.password or "", code=body.code or "",
                           ip=client_ip(request))
    return Response(status_code=204)
