"""Logins that can be seen and ended, and step-up for big actions (issue 17).

Why a session table *and* a generation: the table lists each login (device, address,
last seen) and lets one be ended; the generation on the user row ends them all at once
(log out everywhere, a password change, a lost phone, deactivation). Neither costs the
hot path a query: every request already reads the user row, which carries the generation
and the few logins ended one by one (`ended_sessions`). `last_seen_at` is written at most
every few minutes per login and process.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.db import now
from torreya.errors import DomainError, InvalidCredentialsError, NotFoundError
from torreya.i18n import gettext
from torreya.models import AuditEvent, Role, User, UserSession
from torreya.security import release_login_attempt, reserve_login_attempt, verify_password
from torreya.settings import Settings
from torreya.signin import codes, totp
from torreya.terms import N_

SEEN_EVERY = timedelta(minutes=5)
_SEEN: dict[str, datetime] = {}  # sid → when this process last wrote (or knew) last_seen
_SEEN_KEPT = 10_000


class StepUpRequiredError(DomainError):
    status = 403
    code = "step_up_required"
    message = ("For this action, please confirm with your password again (valid for 5 "
               "minutes).")


def lifetime(settings: Settings, user: User) -> int:
    """Seconds a browser login lasts: short for anyone who moves points or goods."""
    if user.role == Role.RESIDENT:
        return settings.RESIDENT_SESSION_SECONDS
    return settings.STAFF_SESSION_SECONDS


async def start_session(settings: Settings, user: User, *, kind: str, ip: str,
                        user_agent: str, seconds: int | None = None,
                        helper=None) -> UserSession:
    """Record a login (web: the cookie's lifetime by role; api: the token's). A login with
    the password counts as a step-up: big actions are allowed for its first minutes, as a
    bank's or GitHub's "sudo mode" is."""
    moment = now().replace(microsecond=0)
    seconds = seconds or (lifetime(settings, user) if kind == "web"
                          else settings.ACCESS_TOKEN_SECONDS)
    session = await UserSession.create(
        id=secrets.token_urlsafe(16), user_id=user.id, kind=kind, ip=ip[:64],
        user_agent=user_agent[:200], created_at=moment, last_seen_at=moment,
        expires_at=moment + timedelta(seconds=seconds),
        stepped_up_at=None if helper is not None else moment)
    data = {"kind": kind, "user_agent": user_agent[:200], "session": session.id}
    if helper is None:
        await audit.record(user, "accounts:login:success", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id, data=data)
    else:  # 亲属代办: the resident sees this login among what their helpers did
        from torreya.signin.phones import mask_phone

        await audit.record(user, "signin:helper:login", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id,
                           data=data | {"helper": {"id": helper.id, "name": helper.name,
                                                   "phone": mask_phone(helper.phone)}})
    _SEEN[session.id] = moment
    return session


def is_ended(user: User, sid: str | None) -> bool:
    return bool(sid) and sid in (user.ended_sessions or {})


async def seen(sid: str | None, issued: datetime | None = None) -> None:
    """Note that a login was used now; writes at most every SEEN_EVERY per process."""
    if not sid:
        return
    moment = now()
    last = _SEEN.get(sid) or issued
    if last is not None and moment - last < SEEN_EVERY:
        _SEEN.setdefault(sid, last)
        return
    if len(_SEEN) >= _SEEN_KEPT:
        _SEEN.clear()
    _SEEN[sid] = moment
    await UserSession.filter(id=sid).update(last_seen_at=moment)


async def active_sessions(user: User) -> list[UserSession]:
    ended = user.ended_sessions or {}
    rows = await UserSession.filter(user_id=user.id, ended_at=None,
                                    expires_at__gt=now()).order_by("-last_seen_at")
    return [s for s in rows if s.id not in ended]


async def end_session(*, actor: User, user: User, sid: str,
                      tag: str = "accounts:session:end") -> None:
    """End one login of `user` (their own, from settings; `tag` "accounts:logout" for the
    login that logs out). Not found if it is not theirs or already ended."""
    session = await UserSession.get_or_none(id=sid, user_id=user.id, ended_at=None)
    if session is None:
        raise NotFoundError()
    moment = now()
    async with in_transaction() as connection:
        row = await User.filter(id=user.id).using_db(connection).select_for_update().first()
        ended = {k: v for k, v in (row.ended_sessions or {}).items()
                 if v > moment.timestamp()}
        ended[sid] = int(session.expires_at.timestamp())
        await User.filter(id=user.id).using_db(connection).update(ended_sessions=ended)
        await UserSession.filter(id=sid).using_db(connection).update(ended_at=moment)
        await audit.record(actor, tag, connection=connection,
                           subject=f"user:{user.id}", town_id=user.town_id,
                           village_id=user.village_id, data={"session": sid})
    user.ended_sessions = ended


async def end_all(connection, user: User) -> None:
    """Inside the caller's transaction: every login of `user` ends (generation bump)."""
    await User.filter(id=user.id).using_db(connection).update(
        session_generation=F("session_generation") + 1, ended_sessions=None)
    await UserSession.filter(user_id=user.id, ended_at=None).using_db(connection).update(
        ended_at=now())


# -- step-up ---------------------------------------------------------------------------------


async def step_up(settings: Settings, *, user: User, sid: str | None, password: str = "",
                  code: str = "", ip: str) -> None:
    """Confirm it is still the person, for this login; big actions (and changes to how
    they log in) are allowed for STEP_UP_SECONDS. The proof is the password; or, where
    two-step login is on, the app's current code; or, for someone with no password (a
    resident who logs in by SMS), a code sent to their own phone (`code`).
    Throttled like a login. Raises InvalidCredentialsError, InvalidCodeError,
    InvalidTotpError, TooManyAttemptsError."""
    typed = (code or password).strip()
    if not sid:
        raise InvalidCredentialsError("Wrong password.")
    if user.totp_secret and typed.isdigit() and len(typed) == 6:
        await totp.check(settings, user=user, code=typed, ip=ip)  # the app's code
    elif code and not user.password_hash and user.phone:
        await codes.prove_phone(settings, phone=user.phone, code=code)
    else:
        reserved = await reserve_login_attempt(settings, username=user.username, ip=ip)
        if not await verify_password(user.password_hash, password):
            await audit.record(user, "accounts:step_up:fail", connection=None,
                               subject=f"user:{user.id}", village_id=user.village_id)
            raise InvalidCredentialsError("Wrong password.")
        await release_login_attempt(username=user.username, reserved=reserved)
    await UserSession.filter(id=sid, user_id=user.id).update(stepped_up_at=now())
    await audit.record(user, "accounts:step_up:success", connection=None,
                       subject=f"user:{user.id}", village_id=user.village_id)


def confirms_by_sms(user: User) -> bool:
    """Someone without a password confirms with a code sent to their phone."""
    return not user.password_hash and bool(user.phone)


async def require_step_up(settings: Settings, *, user: User, sid: str | None) -> None:
    """Raises StepUpRequiredError unless this login gave the password again recently."""
    if sid:
        session = await UserSession.get_or_none(id=sid, user_id=user.id, ended_at=None)
        if (session is not None and session.stepped_up_at is not None
                and now() - session.stepped_up_at
                <= timedelta(seconds=settings.STEP_UP_SECONDS)):
            return
    raise StepUpRequiredError()


# -- showing them ------------------------------------------------------------------------------

# What a person calls the device (issue 28: "华为手机 · 微信", "电脑 · Chrome"), never the raw
# User-Agent. The first match wins: HarmonyOS phones also say Android, iPads Mac OS.
_SYSTEMS = (("HarmonyOS", N_("Huawei phone")), ("iPhone", N_("iPhone")),
            ("iPad", N_("iPad")), ("Android", N_("Android phone")),
            ("Windows", N_("Computer")), ("Mac OS", N_("Mac")), ("Linux", N_("Computer")))
_BROWSERS = (("MicroMessenger", N_("WeChat")), ("Edg/", "Edge"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("python-httpx", N_("App")))


def device_label(user_agent: str | None) -> str:
    """A person's name for a device from its User-Agent, in their language: "安卓手机 ·
    微信"; "未知设备" for one that says nothing we know."""
    user_agent = user_agent or ""
    system = next((name for key, name in _SYSTEMS if key in user_agent), "")
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    return " · ".join(gettext(part) for part in (system, browser) if part) or gettext(
        "Unknown device")


async def login_history(user: User, *, limit: int = 10) -> list:
    """The person's own recent logins and failed attempts (audit records)."""
    return await AuditEvent.filter(
        subject__in=[f"user:{user.id}", f"username:{user.username[:40]}"],
        tag__in=["accounts:login:success", "accounts:login:fail", "accounts:step_up:fail",
                 "accounts:password:change", "accounts:password:fail"]).order_by(
                     "-id").limit(limit)
