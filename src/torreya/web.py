"""Request helpers shared by the views: who is asking, forms with CSRF, redirects."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse

from torreya.accounts import sessions
from torreya.accounts.permissions import rank, require_village
from torreya.db import get_one, now
from torreya.errors import DomainError, ForbiddenError, NotFoundError, UnauthenticatedError
from torreya.models import Role, Town, User, Village
from torreya.security import AccessClaims, csrf_ok, read_access_token
from torreya.signin import family


class LoginRequired(Exception):
    """A page needs a logged-in user; the handler redirects to /login?next=…"""


async def current_user(request: Request) -> User | None:
    """The user of this request: bearer token for the API, the session cookie for pages."""
    if hasattr(request.state, "user"):
        return request.state.user
    user = None
    sid = None
    header = request.headers.get("authorization", "")
    if request.url.path.startswith("/api/"):
        if header.lower().startswith("bearer "):
            claims = getattr(request.state, "claims", None) or bearer_claims(request)
            user = await get_one(User, id=claims.user_id, is_active=True)
            if (user is None or user.session_generation != claims.generation
                    or sessions.is_ended(user, claims.sid)):
                raise UnauthenticatedError("Your login has expired or is not valid. Please log "
                                           "in again.")
            sid = claims.sid
            await sessions.seen(sid, claims.issued)
            if claims.helper_id is not None:
                await _act_as_helper(request, claims.helper_id, user)
    else:
        user_id = request.session.get("uid")
        if isinstance(user_id, int):
            sid = request.session.get("sid")
            user = await get_one(User, id=user_id, is_active=True)
            expires = request.session.get("exp", 0)
            if (user is None or user.session_generation != request.session.get("gen", 0)
                    or sessions.is_ended(user, sid)
                    or not isinstance(expires, int) or expires < now().timestamp()):
                user, sid = None, None  # ended elsewhere, or past its lifetime
                request.session.clear()
            else:
                await sessions.seen(sid)
                if "helper" in request.session:
                    user = await _act_as_helper(request, request.session["helper"], user)
                    if user is None:
                        sid = None
    request.state.user = user
    request.state.sid = sid
    return user


def bearer_claims(request: Request) -> AccessClaims:
    """The claims of the request's bearer token, checked (signature, expiry) but with no
    user read yet: `current_user` reads and checks the user. Raises 401."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise UnauthenticatedError()
    return read_access_token(request.app.state.settings, header[7:].strip())


async def _act_as_helper(request: Request, helper_id: object, user: User) -> User | None:
    """A family helper's login: it acts while the resident still names them; once removed,
    the login is over (None, or 401 for a token)."""
    acting = await family.acting_for(helper_id, user)
    if acting is not None and not family.helper_may(request.method,
                                                     route_template(request.scope)):
        raise family.HelperCannotDoThisError(name=user.display_name)
    if acting is None:
        if request.url.path.startswith("/api/"):
            raise UnauthenticatedError("Your login has expired or is not valid. Please log "
                                       "in again.")
        request.session.clear()
        return None
    family.acting_helper.set(acting)
    request.state.helper = acting
    return user


def route_template(scope) -> str:
    """The path template a request reached ("/api/v1/me/sessions/{sid}/revoke"), the
    mounts' prefixes included; "" before routing."""
    route = scope.get("route")
    # A mount sets app_root_path and adds its prefix to root_path; outside any mount the
    # root_path is the server's own (uvicorn --root-path), not part of the template.
    prefix = (scope.get("root_path", "").removeprefix(scope["app_root_path"])
              if "app_root_path" in scope else "")
    return prefix + getattr(route, "path", "") if route is not None else ""


def current_helper(request: Request):
    """The family helper acting in this request (after `current_user`), or None."""
    return getattr(request.state, "helper", None)


def current_sid(request: Request) -> str | None:
    """The login (session id) of this request, after `current_user`."""
    return getattr(request.state, "sid", None)


async def start_web_session(request: Request, user: User, *, helper=None) -> None:
    """Log this browser in as `user` (a new session id: never the one from before);
    `helper`: a family helper acting for them (signin/family.py)."""
    settings = request.app.state.settings
    session = await sessions.start_session(
        settings, user, kind="web", ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""), helper=helper)
    request.session.clear()
    request.session.update({"uid": user.id, "gen": user.session_generation, "sid": session.id,
                            "exp": int(session.expires_at.timestamp())})
    if helper is not None:
        request.session["helper"] = helper.id


async def require_user(request: Request, minimum: Role = Role.RESIDENT) -> User:
    user = await current_user(request)
    if user is None:
        if request.url.path.startswith("/api/"):
            raise UnauthenticatedError()
        raise LoginRequired()
    if user.rank < rank(minimum):
        raise ForbiddenError()
    return user


async def require_person(request: Request) -> tuple[User, family.Acting | None]:
    """The logged-in resident (or any user) and the family helper acting for them in this
    request, if any: who a command that moves their points is for, and who does it."""
    user = await require_user(request)
    return user, current_helper(request)


async def village_from_path(request: Request, minimum: Role, *,
                            sign_in: Role | None = None) -> tuple[User, Village]:
    """The user and the `{id}` village of a console page: the user must hold `sign_in` (by
    default `minimum`) to get here, and `minimum` within the village's reach; a village
    outside the reach is not found."""
    user = await require_user(request, sign_in or minimum)
    village = await Village.get_or_none(id=request.path_params["id"])
    if village is None:
        raise NotFoundError()
    require_village(user, village, minimum)
    return user, village


class CsrfError(DomainError):
    status = 403
    code = "csrf_failed"
    message = "This form has expired. Please go back, reload the page and try again."


async def read_form(request: Request, *, max_files: int = 0) -> FormData:
    """The submitted form, after its CSRF token was checked. The only way views read forms."""
    form = await request.form(max_files=max_files, max_fields=200)
    token = form.get("csrf_token")
    if not csrf_ok(request, token if isinstance(token, str) else None):
        raise CsrfError()
    return form


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: never an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def flash_error(request: Request, error: DomainError) -> None:
    """A refusal shown on the next page, with its code (the page carries it as
    data-code, for the route walk and for anyone who reads the page by machine)."""
    request.session.setdefault("flash", []).append(["error", error.text(), error.code])


def pop_flashes(request: Request) -> list[list[str]]:
    return request.session.pop("flash", []) if "flash" in request.session else []


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def confirm_big_action(request: Request, user: User, form: FormData | None = None
                             ) -> None:
    """Big actions (large adjustments, scheme imports, roles, webhook secrets) need the
    password given again within STEP_UP_SECONDS. A console form may carry it as
    `confirm_password`; an API client calls POST /auth/step-up first.

    Raises StepUpRequiredError (403 step_up_required), InvalidCredentialsError.
    """
    settings = request.app.state.settings
    password = form.get("confirm_password") if form is not None else None
    if isinstance(password, str) and password:
        await sessions.step_up(settings, user=user, sid=current_sid(request),
                               password=password[:256], ip=client_ip(request))
    await sessions.require_step_up(settings, user=user, sid=current_sid(request))


async def confirmed(request: Request, user: User, form: FormData | None = None) -> bool:
    """`confirm_big_action` for pages that send the person to /me/confirm instead of
    answering 403: False when this login has not confirmed lately."""
    try:
        await confirm_big_action(request, user, form)
    except sessions.StepUpRequiredError:
        return False
    return True


def confirm_first(back: str) -> RedirectResponse:
    """To the page where a person confirms it is them (/me/confirm), then back to `back`."""
    return redirect(f"/me/confirm?next={quote(safe_next(back))}")


async def needs_step_up_for(person: User, delta: int) -> bool:
    """An adjustment of more points than the town allows without confirming (either way)."""
    town = await Town.get_or_none(id=person.town_id) if person.town_id else None
    return town is not None and abs(delta) > town.step_up_points
