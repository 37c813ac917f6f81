"""Request helpers shared by the views: who is asking, forms with CSRF, redirects."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse

from torreya.accounts.permissions import rank, require_village
from torreya.db import get_one
from torreya.errors import DomainError, ForbiddenError, NotFoundError, UnauthenticatedError
from torreya.models import Role, User, Village
from torreya.security import csrf_ok, read_access_token


class LoginRequired(Exception):
    """A page needs a logged-in user; the handler redirects to /login?next=…"""


async def current_user(request: Request) -> User | None:
    """The user of this request: bearer token for the API, the session cookie for pages."""
    if hasattr(request.state, "user"):
        return request.state.user
    user = None
    header = request.headers.get("authorization", "")
    if request.url.path.startswith("/api/"):
        if header.lower().startswith("bearer "):
            user_id, generation = read_access_token(request.app.state.settings,
                                                    header[7:].strip())
            user = await get_one(User, id=user_id, is_active=True)
            if user is None or user.session_generation != generation:
                raise UnauthenticatedError("Your login has expired or is not valid. Please log "
                                           "in again.")
    else:
        user_id = request.session.get("uid")
        if isinstance(user_id, int):
            user = await get_one(User, id=user_id, is_active=True)
            if user is None or user.session_generation != request.session.get("gen", 0):
                user = None  # ended elsewhere ("log out everywhere", "lost phone")
                request.session.clear()
    request.state.user = user
    return user


async def require_user(request: Request, minimum: Role = Role.RESIDENT) -> User:
    user = await current_user(request)
    if user is None:
        if request.url.path.startswith("/api/"):
            raise UnauthenticatedError()
        raise LoginRequired()
    if user.rank < rank(minimum):
        raise ForbiddenError()
    return user


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


def pop_flashes(request: Request) -> list[list[str]]:
    return request.session.pop("flash", []) if "flash" in request.session else []


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""
