"""The sign-in buttons beside the SMS code: the OpenID Connect provider and WeChat, each
when configured; inside WeChat's own browser its button comes first."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from torreya.i18n import gettext as _
from torreya.signin import oidc, wechat


@dataclass(frozen=True)
class Provider:
    key: str  # "oidc" | "wechat": the button's id and its /login/<key> address
    label: str  # the button's text
    issuer: str  # what its linked identities carry
    primary: bool = False
    name: str = ""  # the provider's name, in sentences ("Link 浙里办")


def configured(request: Request) -> list[Provider]:
    settings = request.app.state.settings
    found = []
    if wechat.enabled(settings):
        inside = wechat.in_wechat(request.headers.get("user-agent", ""))
        found.append(Provider("wechat", _("Log in with WeChat"), wechat.issuer(settings),
                              primary=inside, name=_("WeChat")))
    if oidc.enabled(settings):
        found.append(Provider("oidc", oidc.label(settings), settings.OIDC_ISSUER,
                              name=oidc.name(settings)))
    return sorted(found, key=lambda p: not p.primary)
