"""Sign-in pages of the providers: OpenID Connect (the button on /login) and linking a
provider account in settings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.errors import DomainError
from torreya.i18n import gettext as _
from torreya.signin import oidc
from torreya.templating import render
from torreya.web import (
    current_user,
    flash,
    read_form,
    redirect,
    require_user,
    safe_next,
    start_web_session,
)


async def oidc_start(request: Request) -> Response:
    """To the provider (PKCE, state and nonce kept by authlib in the signed session)."""
    settings = request.app.state.settings
    client = oidc.client_for(settings)
    request.session["oidc_next"] = safe_next(request.query_params.get("next"))
    user = await current_user(request)
    if request.query_params.get("link") == "1" and user is not None:
        request.session["oidc_link"] = user.id
    else:
        request.session.pop("oidc_link", None)
    return await client.authorize_redirect(request, f"{settings.BASE_URL}/login/oidc/callback")


async def oidc_callback(request: Request) -> Response:
    from torreya.console.views import error_text

    settings = request.app.state.settings
    target = request.session.pop("oidc_next", "/")
    linking = request.session.pop("oidc_link", None)
    try:
        claims = await oidc.claims_from_callback(settings, request)
        user = await current_user(request)
        if linking is not None and user is not None and user.id == linking:
            await oidc.link(settings, user=user, subject=str(claims["sub"])[:255])
            flash(request, _("%(provider)s is linked: you can log in with it.",
                             provider=oidc.label(settings)))
            return redirect("/me/settings")
        user = await oidc.resident_for(settings, claims)
    except DomainError as error:
        return render(request, "accounts/login.html", {
            "next": target, "error": error_text(error), "username": "", "phone": "",
            "oidc_label": oidc.label(settings)}, status=error.status)
    await start_web_session(request, user)
    return redirect(target)


async def unlink_identity(request: Request) -> Response:
    user = await require_user(request)
    await read_form(request)
    await oidc.unlink(user=user, identity_id=request.path_params["id"])
    flash(request, _("Unlinked."))
    return redirect("/me/settings")


routes = [
    Route("/login/oidc", oidc_start, name="oidc_start"),
    Route("/login/oidc/callback", oidc_callback, name="oidc_callback"),
    Route("/me/identities/{id:int}/unlink", unlink_identity, methods=["POST"],
          name="unlink_identity"),
]
