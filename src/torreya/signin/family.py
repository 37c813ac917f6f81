"""亲属代办 (SPEC §4.7): one phone may act for several residents.

An elder's account is often run by a son or daughter, sometimes from another city. The
village's staff, or the resident themselves, names a helper by phone number. Whoever proves
that number with an SMS code is asked whom they act for (themselves, if the number is a
resident's, or each person who named it). A login made that way carries the helper in the
session; while it acts, `acting_helper` is set for the request, and so:
- every ledger entry it makes says so in its memo, is marked `proxy` and has an audit record
  naming the helper (ledger/service.py `post_entry`);
- every audit record it writes carries the helper (audit.py `record`);
- the resident sees who acted and when, in their history and in settings.
A helper cannot name other helpers, nor change the resident's logins; removing a helper
ends their logins at once (the session is checked against the row on every request).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit, i18n
from torreya.accounts.permissions import require_over
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError, NotFoundError
from torreya.i18n import gettext
from torreya.models import AuditEvent, FamilyHelper, Role, SmsMessage, User
from torreya.notifications.texts import sms_send_time
from torreya.signin.phones import mask_phone, normalize_phone
from torreya.validation import Field, clean_text

MAX_HELPERS = 5  # per resident
NAME = Field(name="name", max_length=32)


@dataclass(frozen=True)
class Acting:
    """Who is acting for the logged-in resident in this request."""

    helper_id: int
    member_id: int
    name: str
    phone: str

    def as_data(self) -> dict:
        return {"id": self.helper_id, "name": self.name, "phone": mask_phone(self.phone)}


acting_helper = audit.acting_helper  # holds an Acting while a helper's request runs


class TooManyHelpersError(ConflictError):
    code = "too_many_helpers"
    message = "A resident can have at most %(max)s family helpers."


class HelperExistsError(ConflictError):
    code = "helper_exists"
    message = "This number is already a family helper of this resident."


class OwnNumberError(ConflictError):
    code = "own_number"
    message = "This is the resident's own number: they log in with it themselves."


class HelperCannotDoThisError(ForbiddenError):
    code = "helper_forbidden"
    message = ("Only %(name)s can do this, not a family helper. Please ask them, or the "
               "village committee.")


def memo_mark(memo: str, acting: Acting) -> str:
    """The ledger memo of a change made by a helper (in Chinese: the books are the town's)."""
    previous = i18n.current_language.set("zh-CN")
    try:
        mark = gettext("Done by family helper %(name)s", name=acting.name)
    finally:
        i18n.current_language.reset(previous)
    return f"{memo} · {mark}" if memo else mark


async def helpers_of(member: User) -> list[FamilyHelper]:
    return await FamilyHelper.filter(member_id=member.id).order_by("id")


async def add_helper(*, actor: User, member: User, phone: str, name: str) -> FamilyHelper:
    """Name `phone` as a helper of `member` (staff of their village, or the member).
    The helper is told by SMS how to log in.

    Raises InvalidRequestError, NotFoundError (not the actor's resident),
    HelperCannotDoThisError (a helper's login), TooManyHelpersError, HelperExistsError,
    OwnNumberError.
    """
    _not_by_a_helper(member)
    if actor.id != member.id:
        require_over(actor, member, Role.STAFF)
    if member.role != Role.RESIDENT:
        raise NotFoundError()
    phone = normalize_phone(phone)
    name = clean_text(NAME, name)
    if phone == member.phone:
        raise OwnNumberError()
    async with in_transaction() as connection:
        if await FamilyHelper.filter(member_id=member.id).using_db(connection).count() \
                >= MAX_HELPERS:
            raise TooManyHelpersError(max=MAX_HELPERS)
        try:
            helper = await FamilyHelper.create(member_id=member.id, phone=phone, name=name,
                                               added_by_id=actor.id, using_db=connection)
        except IntegrityError:
            raise HelperExistsError() from None
        await audit.record(actor, "signin:helper:add", connection=connection,
                           subject=f"user:{member.id}", town_id=member.town_id,
                           village_id=member.village_id,
                           data={"helper": helper.id, "name": name, "phone": mask_phone(phone)})
        previous = i18n.current_language.set("zh-CN")
        try:
            text = gettext("%(member)s has asked you to help with their points. Log in with "
                           "this phone number to act for them.", member=member.display_name)
        finally:
            i18n.current_language.reset(previous)
        await SmsMessage.create(user_id=0, phone=phone, text=text[:200], purpose="notice",
                                send_after=sms_send_time(now()), using_db=connection)
    return helper


async def remove_helper(*, actor: User, member: User, helper_id: int) -> None:
    """The helper's logins end at once. Raises NotFoundError, HelperCannotDoThisError."""
    _not_by_a_helper(member)
    if actor.id != member.id:
        require_over(actor, member, Role.STAFF)
    helper = await FamilyHelper.get_or_none(id=helper_id, member_id=member.id)
    if helper is None:
        raise NotFoundError()
    async with in_transaction() as connection:
        await FamilyHelper.filter(id=helper.id).using_db(connection).delete()
        await audit.record(actor, "signin:helper:remove", connection=connection,
                           subject=f"user:{member.id}", town_id=member.town_id,
                           village_id=member.village_id,
                           data={"helper": helper.id, "name": helper.name,
                                 "phone": mask_phone(helper.phone)})


def _not_by_a_helper(member: User) -> None:
    acting = acting_helper.get()
    if acting is not None and acting.member_id == member.id:
        raise HelperCannotDoThisError(name=member.display_name)


def refuse_helper(member: User) -> None:
    """For what only the person may do (their logins, password, linked accounts)."""
    _not_by_a_helper(member)


# -- what a helper's login may reach -------------------------------------------------------
#
# A helper acts for the resident in what the resident does with points (check in, redeem,
# sign, report, read their inbox), never in the resident's own ways in: their logins and
# devices, password, two-step login, linked WeChat/OIDC accounts, their family helpers, and
# confirming big actions (a helper's login is never the resident's password). Checked for
# every request a helper's login makes, web and API alike (web.current_user), by the route
# the request reached; the route walk in tests/accounts/test_route_walk.py holds every
# route of the app to it.
OWNER_ONLY: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/api/v1/me/sessions"),
    ("POST", "/api/v1/me/sessions/revoke"),
    ("POST", "/api/v1/me/sessions/{sid}/revoke"),
    ("POST", "/api/v1/me/password"),
    ("POST", "/api/v1/auth/step-up"),
    ("POST", "/logout/everywhere"),
    ("POST", "/me/sessions/{sid}/end"),
    ("POST", "/me/password"),
    ("GET", "/me/totp"),
    ("POST", "/me/totp"),
    ("POST", "/me/identities/{id:id}/unlink"),
    ("POST", "/me/family"),
    ("GET", "/me/confirm"),
    ("POST", "/me/confirm"),
})


def helper_may(method: str, route: str) -> bool:
    """May a family helper's login make this request (`route`: the path template the
    request reached, e.g. "/api/v1/me/sessions")? The one place that decides."""
    return (("GET" if method == "HEAD" else method), route) not in OWNER_ONLY


@dataclass(frozen=True)
class Choice:
    """Someone a proven phone may act as: the phone's own resident, or a helped one."""

    user: User
    helper: FamilyHelper | None


async def choices_for(phone: str) -> list[Choice]:
    """Whom the holder of `phone` may act as, the phone's own resident first."""
    own = await User.filter(phone=phone, role=Role.RESIDENT, is_active=True).order_by("id")
    links = await FamilyHelper.filter(phone=phone).order_by("id")
    members = {u.id: u for u in await User.filter(
        id__in=[h.member_id for h in links], is_active=True)}
    return ([Choice(u, None) for u in own]
            + [Choice(members[h.member_id], h) for h in links if h.member_id in members])


async def acting_for(helper_id: object, member: User) -> Acting | None:
    """The helper of a session, if it still may act for `member`."""
    if not isinstance(helper_id, int):
        return None
    helper = await FamilyHelper.get_or_none(id=helper_id, member_id=member.id)
    if helper is None:
        return None
    return Acting(helper_id=helper.id, member_id=member.id, name=helper.name,
                  phone=helper.phone)


async def acts_for(member: User, *, limit: int = 20) -> list:
    """What helpers did for `member`, newest first (the audit records that name them)."""
    return await AuditEvent.filter(tag__in=["signin:helper:act", "signin:helper:login"],
                                   subject=f"user:{member.id}").order_by("-id").limit(limit)
