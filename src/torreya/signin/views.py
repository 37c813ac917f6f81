"""Sign-in pages of the providers: OpenID Connect (the button on /login) and linking a
provider account in settings."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from torreya import qr
from torreya.errors import DomainError
from torreya.i18n import gettext as _
from torreya.models import Registration, Role
from torreya.signin import oidc, registrations, totp, wechat
from torreya.signin.family import refuse_helper
from torreya.signin.phones import mask_phone, normalize_phone
from torreya.templating import render
from torreya.web import (
    confirm_big_action,
    confirm_first,
    confirmed,
    current_user,
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_user,
    safe_next,
    start_web_session,
    village_from_path,
)


async def oidc_start(request: Request) -> Response:
    """To the provider (PKCE, state and nonce kept by authlib in the signed session)."""
    settings = request.app.state.settings
    client = oidc.client_for(settings)
    request.session["oidc_next"] = safe_next(request.query_params.get("next"))
    user = await current_user(request)
    if request.query_params.get("link") == "1" and user is not None:
        if not await confirmed(request, user):
            return confirm_first("/login/oidc?link=1")
        request.session["oidc_link"] = user.id
    else:
        request.session.pop("oidc_link", None)
    return await client.authorize_redirect(request, f"{settings.BASE_URL}/login/oidc/callback")


async def oidc_callback(request: Request) -> Response:
    settings = request.app.state.settings
    target = request.session.pop("oidc_next", "/")
    linking = request.session.pop("oidc_link", None)
    try:
        claims = await oidc.claims_from_callback(settings, request)
        user = await current_user(request)
        if linking is not None and user is not None and user.id == linking:
            from torreya.signin.family import refuse_helper

            refuse_helper(user)
            if not await confirmed(request, user):
                return confirm_first("/me/settings")
            await oidc.link(settings, user=user, subject=str(claims["sub"])[:255])
            flash(request, _("%(provider)s is linked: you can log in with it.",
                             provider=oidc.name(settings)))
            return redirect("/me/settings")
        user = await oidc.resident_for(settings, claims)
    except DomainError as error:
        return login_page_with(request, target, error=error.text(), status=error.status)
    await start_web_session(request, user)
    return redirect(target)


def redirect_to(url: str) -> Response:
    """To an outside address (WeChat's): a plain 302 that keeps the `#wechat_redirect`."""
    return RedirectResponse(url, status_code=302)


async def wechat_start(request: Request) -> Response:
    """To WeChat's authorize page (state kept by authlib in the signed session)."""
    settings = request.app.state.settings
    request.session["wechat_next"] = safe_next(request.query_params.get("next"))
    user = await current_user(request)
    if request.query_params.get("link") == "1" and user is not None:
        if not await confirmed(request, user):
            return confirm_first("/login/wechat?link=1")
        request.session["wechat_link"] = user.id
    else:
        request.session.pop("wechat_link", None)
    callback = f"{settings.BASE_URL}/login/wechat/callback"
    return redirect_to(await wechat.authorize_url(settings, request, callback))


async def wechat_callback(request: Request) -> Response:
    settings = request.app.state.settings
    target = request.session.pop("wechat_next", "/")
    linking = request.session.pop("wechat_link", None)
    try:
        person = await wechat.openid_from_callback(settings, request)
    except DomainError as error:
        return login_page_with(request, target, error=error.text(), status=error.status)
    user = await current_user(request)
    if linking is not None and user is not None and user.id == linking:
        from torreya.signin.family import refuse_helper

        refuse_helper(user)
        if not await confirmed(request, user):
            return confirm_first("/me/settings")
        if await wechat.link(settings, user=user, openid=person["openid"]):
            flash(request, _("WeChat is linked: you can log in with it."))
        else:
            flash(request, _("This WeChat account is already linked to another resident."),
                  "error")
        return redirect("/me/settings")
    user = await wechat.linked_resident(settings, person["openid"])
    if user is None:  # first time: prove the phone once, then WeChat is linked to it
        wechat.remember_pending(request, person["openid"])
        return login_page_with(request, target, notice=_(
            "This is your first login with WeChat. Please get a code on your phone once; "
            "after that, the WeChat button logs you in."))
    await start_web_session(request, user)
    return redirect(target)


def login_page_with(request: Request, target: str, *, error: str | None = None,
                    notice: str | None = None, status: int = 200) -> Response:
    """The login page again, saying what happened."""
    return render(request, "accounts/login.html", {
        "next": target, "error": error, "notice": notice, "username": "", "phone": "",
        "wechat_pending": wechat.has_pending(request)}, status=status)


async def unlink_identity(request: Request) -> Response:
    user = await require_user(request)
    refuse_helper(user)
    form = await read_form(request)
    if not await confirmed(request, user, form):
        return confirm_first("/me/settings")
    await oidc.unlink(user=user, identity_id=request.path_params["id"])
    flash(request, _("Unlinked."))
    return redirect("/me/settings")


PROVEN_FOR = 15 * 60  # seconds a used SMS code lets its number register


def remember_proven_phone(request: Request, phone: str) -> None:
    request.session["proven_phone"] = [normalize_phone(phone), int(time.time())]


def _proven_phone(request: Request) -> str | None:
    value = request.session.get("proven_phone")
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
            and time.time() - value[1] < PROVEN_FOR):
        return str(value[0])
    return None


async def register_page(request: Request) -> Response:
    """居民认证: a newcomer whose number the SMS code proved asks to join a village."""
    phone = _proven_phone(request)
    if phone is None:
        flash(request, _("Please log in with your phone first; then you can register."))
        return redirect("/login")
    error, done, values = None, None, {}
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        values = {k: str(form.get(k, ""))[:64] for k in ("name", "village_id", "id_last4")}
        try:
            done = await registrations.register(
                phone=phone, name=values["name"],
                village_id=int(values["village_id"]) if values["village_id"].isdigit()
                else None, id_last4=values["id_last4"])
            request.session.pop("proven_phone", None)
        except DomainError as exc:
            error, status = exc.text(), exc.status
    return render(request, "signin/register.html", {
        "masked": mask_phone(phone), "towns": await registrations.villages_to_choose(),
        "error": error, "done": done, "values": values}, status=status)


async def registration_queue(request: Request) -> Response:
    """The village's queue of registrations to approve or reject (staff and up)."""
    _user, village = await village_from_path(request, Role.STAFF)
    waiting = await registrations.pending_in(village)
    return render(request, "signin/queue.html", {
        "village": village, "flashes": pop_flashes(request),
        "waiting": [{"r": r, "phone": mask_phone(r.phone)} for r in waiting]})


async def decide_registration(request: Request) -> Response:
    staff = await require_user(request, Role.STAFF)
    form = await read_form(request)
    registration = await Registration.get_or_none(id=request.path_params["id"])
    village_id = registration.village_id if registration else 0
    try:
        if form.get("decision") == "approve":
            user = await registrations.approve(staff=staff,
                                               registration_id=request.path_params["id"])
            flash(request, _("%(name)s is now a resident and is told by SMS.",
                             name=user.display_name))
        else:
            await registrations.reject(staff=staff, registration_id=request.path_params["id"],
                                       reason=str(form.get("reason", ""))[:200])
            flash(request, _("Rejected; they are told why by SMS."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/villages/{village_id}/registrations")


async def totp_page(request: Request) -> Response:
    """Turn two-step login on: scan the QR with an authenticator app, type its code."""
    user = await require_user(request, Role.STAFF)
    settings = request.app.state.settings
    error, status = None, 200
    if request.method == "POST":
        form = await read_form(request)
        secret = request.session.get("totp_new", "")
        if form.get("action") == "disable":
            try:
                await confirm_big_action(request, user, form)
                await totp.disable(settings, user=user)
                flash(request, _("Two-step login is off."))
                return redirect("/me/settings")
            except DomainError as exc:
                error, status = exc.text(), exc.status
        else:
            try:
                await confirm_big_action(request, user, form)
                await totp.enable(settings, user=user, secret=secret,
                                  code=str(form.get("code", ""))[:12])
                request.session.pop("totp_new", None)
                flash(request, _("Two-step login is on: from now on you log in with your "
                                 "password and the app's code."))
                return redirect("/me/settings")
            except DomainError as exc:
                error, status = exc.text(), exc.status
    if not user.totp_secret and not request.session.get("totp_new"):
        request.session["totp_new"] = totp.new_secret()
    secret = request.session.get("totp_new", "")
    uri = totp.provisioning_uri(user, secret) if secret and not user.totp_secret else ""
    return render(request, "signin/totp.html", {
        "enabled": bool(user.totp_secret), "secret": secret, "uri": uri,
        "qr_svg": qr.svg(uri) if uri else "", "error": error}, status=status)


routes = [
    Route("/me/totp", totp_page, methods=["GET", "POST"], name="totp"),
    Route("/register", register_page, methods=["GET", "POST"], name="register"),
    Route("/console/villages/{id:id}/registrations", registration_queue,
          name="registrations"),
    Route("/registrations/{id:id}/decide", decide_registration, methods=["POST"],
          name="decide_registration"),
    Route("/login/oidc", oidc_start, name="oidc_start"),
    Route("/login/oidc/callback", oidc_callback, name="oidc_callback"),
    Route("/login/wechat", wechat_start, name="wechat_start"),
    Route("/login/wechat/callback", wechat_callback, name="wechat_callback"),
    Route("/me/identities/{id:id}/unlink", unlink_identity, methods=["POST"],
          name="unlink_identity"),
]
