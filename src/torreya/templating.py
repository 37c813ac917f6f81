"""The Jinja2 environment: i18n, filters (points, local times, masked names), globals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from torreya import i18n
from torreya.accounts.sessions import device_label
from torreya.masking import mask_name
from torreya.security import csrf_token_for
from torreya.settings import LOCAL, resource_dir
from torreya.signin.phones import readable_phone
from torreya.signin.providers import configured
from torreya.trust.receipts import receipt_code


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment in village time; also an ISO text as audit records keep them."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.astimezone(LOCAL).strftime(fmt)


def duration(minutes: int | None) -> str:
    """Service time as people say it: 2 小时 5 分钟, 45 分钟."""
    hours, rest = divmod(int(minutes or 0), 60)
    if not hours:
        return i18n.gettext("%(minutes)s min", minutes=rest)
    if not rest:
        return i18n.gettext("%(hours)s h", hours=hours)
    return i18n.gettext("%(hours)s h %(minutes)s min", hours=hours, minutes=rest)


def signed_points(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def csrf_token(request: Request) -> str:
    return csrf_token_for(request)


def _receipt_code(entry_id: int) -> str:
    return receipt_code(entry_id)


def _signin_providers(request: Request) -> list:
    return configured(request)


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message, **kw: i18n.gettext(message, **kw),
        lambda s, p, n, **kw: i18n.ngettext(s, p, n, **kw),
        newstyle=False,
    )
    env.globals.update(
        _=i18n.gettext,
        LANGUAGES=i18n.LANGUAGES,
        current_language=i18n.current_language.get,
        csrf_token=csrf_token,
        signin_providers=_signin_providers,
        receipt_code=_receipt_code,
    )
    env.filters.update(local_time=local_time, mask_name=mask_name, signed=signed_points,
                       phone=readable_phone, device=device_label,
                       duration=duration)
    return Jinja2Templates(env=env)


templates = build_templates()


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status=200):
    ctx = {"user": getattr(request.state, "user", None),
           "helper": getattr(request.state, "helper", None)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status)
