"""Login, logout, language, and the home page."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from torreya.accounts import service, sessions
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import LANGUAGES
from torreya.i18n import gettext as _
from torreya.ledger import queries as ledger_queries
from torreya.models import Role, User
from torreya.notifications import service as notifications
from torreya.signin import codes, family, totp, wechat
from torreya.signin.family import refuse_helper
from torreya.signin.phones import mask_phone, normalize_phone
from torreya.templating import render
from torreya.web import (
    client_ip,
    current_sid,
    current_user,
    flash,
    flash_error,
    read_form,
    redirect,
    require_user,
    safe_next,
    start_web_session,
)


async def login_page(request: Request) -> Response:
    wechat.drop_pending(request)  # a new login: not the one WeChat's first time started
    if await current_user(request):
        return redirect(safe_next(request.query_params.get("next")))
    return render(request, "accounts/login.html",
                  {"next": safe_next(request.query_params.get("next")), "error": None,
                   "username": "", "phone": ""})


async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    username = str(form.get("username", ""))[:64]
    target = safe_next(str(form.get("next", "")))
    try:
        user = await service.authenticate(request.app.state.settings, username=username,
                                          password=str(form.get("password", ""))[:256],
                                          ip=client_ip(request))
    except DomainError as error:
        from torreya.i18n import gettext

        return render(request, "accounts/login.html",
                      {"next": target, "error": gettext(error.message), "username": username,
                       "phone": "", "password_error": True},
                      status=error.status)
    if user.totp_secret:  # two-step login: the app's code on the next page
        request.session.clear()
        request.session["totp_login"] = [user.id, int(time.time()), target]
        return render(request, "accounts/login_totp.html", {"error": None})
    await start_web_session(request, user)
    return redirect(target)


TOTP_STEP_SECONDS = 300  # how long the password stays good while the code is typed


async def login_totp(request: Request) -> Response:
    """Step 2 of a staff login with two-step login on: the authenticator's code."""
    form = await read_form(request)
    pending = request.session.get("totp_login")
    if not (isinstance(pending, list) and len(pending) == 3
            and time.time() - pending[1] < TOTP_STEP_SECONDS):
        return redirect("/login")
    user = await User.get_or_none(id=pending[0], is_active=True)
    if user is None:
        return redirect("/login")
    try:
        await totp.check(request.app.state.settings, user=user,
                         code=str(form.get("code", ""))[:12], ip=client_ip(request))
    except DomainError as error:
        return render(request, "accounts/login_totp.html", {"error": error.text()},
                      status=error.status)
    await start_web_session(request, user)
    return redirect(safe_next(pending[2]))


async def sms_login(request: Request) -> Response:
    """Step 1: a number → a code by SMS (the same page whether the number is known)."""
    form = await read_form(request)
    target = safe_next(str(form.get("next", "")))
    typed = str(form.get("phone", ""))[:32]
    from_wechat = form.get("wechat") == "1"
    try:
        phone = normalize_phone(typed)
        await codes.request_code(request.app.state.settings, phone=phone,
                                 ip=client_ip(request))
        if from_wechat:
            wechat.bind_pending(request, phone)
        else:
            wechat.drop_pending(request)
    except DomainError as error:
        if error.code == "too_many_attempts" and typed:  # keep them on the code page
            phone = normalize_phone(typed)
            return render(request, "accounts/login_code.html", {
                "next": target, "phone": phone, "masked": mask_phone(phone),
                "error": error.text()}, status=error.status)
        return render(request, "accounts/login.html", {
            "next": target, "error": error.text(), "username": "", "phone": typed,
            "wechat_pending": from_wechat and wechat.has_pending(request)},
            status=error.status)
    return render(request, "accounts/login_code.html", {
        "next": target, "phone": phone, "masked": mask_phone(phone), "error": None,
        "wechat": from_wechat})


async def sms_login_verify(request: Request) -> Response:
    """Step 2: the code → logged in; or, when the number may act for several residents
    (亲属代办, or two people sharing one phone), step 3: whom for."""
    form = await read_form(request)
    target = safe_next(str(form.get("next", "")))
    phone = str(form.get("phone", ""))[:32]
    try:
        phone = await codes.prove_phone(request.app.state.settings, phone=phone,
                                        code=str(form.get("code", ""))[:12])
    except DomainError as error:
        return render(request, "accounts/login_code.html", {
            "next": target, "phone": phone, "masked": mask_phone(phone),
            "error": error.text()}, status=error.status)
    choices = await family.choices_for(phone)
    if not choices:
        # The number is theirs (the code was right) and nobody has it: they may register.
        from torreya.signin.views import remember_proven_phone

        remember_proven_phone(request, phone)
        return redirect("/register")
    if len(choices) == 1 and choices[0].helper is None:
        return await _sign_in_by_phone(request, choices[0], target)
    request.session["choose"] = [phone, int(time.time()), target]
    return _chooser(request, choices)


CHOOSE_SECONDS = 10 * 60  # how long a proven number may pick whom it acts for


def _chooser(request: Request, choices, status: int = 200) -> Response:
    return render(request, "accounts/login_choose.html", {
        "choices": [{"user_id": c.user.id, "name": c.user.display_name,
                     "helper": c.helper.name if c.helper else None} for c in choices]},
        status=status)


async def choose_account(request: Request) -> Response:
    """Step 3: the person picks whom they act for; their proven number is in the session."""
    form = await read_form(request)
    pending = request.session.get("choose")
    if not (isinstance(pending, list) and len(pending) == 3 and isinstance(pending[1], int)
            and time.time() - pending[1] < CHOOSE_SECONDS):
        flash(request, _("That took too long. Please ask for a new code."), "error")
        return redirect("/login")
    phone, _at, target = pending
    choices = await family.choices_for(str(phone))
    wanted = str(form.get("user_id", ""))
    chosen = next((c for c in choices if str(c.user.id) == wanted), None)
    if chosen is None:
        return _chooser(request, choices, status=422)
    request.session.pop("choose", None)
    return await _sign_in_by_phone(request, chosen, safe_next(str(target)))


async def _sign_in_by_phone(request: Request, choice, target: str) -> Response:
    """Log in as the chosen resident; a WeChat account waiting for its first SMS login
    is linked to them (only to the phone's own resident, never to someone helped)."""
    openid = wechat.take_pending(request, choice.user.phone or "")
    await start_web_session(request, choice.user, helper=choice.helper)
    if openid and choice.helper is None and wechat.enabled(request.app.state.settings):
        if await wechat.link(request.app.state.settings, user=choice.user, openid=openid):
            flash(request, _("WeChat is linked: you can log in with it."))
    return redirect(target)


async def logout(request: Request) -> Response:
    """This browser's login ends on the server too: its session row is ended, so the cookie
    is worth nothing even if it was copied (a family helper's login likewise)."""
    await read_form(request)
    user = await current_user(request)
    sid = current_sid(request)
    if user is not None and sid:
        try:
            await sessions.end_session(actor=user, user=user, sid=sid, tag="accounts:logout")
        except NotFoundError:  # ended a moment ago from another tab: out all the same
            pass
    request.session.clear()
    return redirect("/login")


async def end_my_sessions(request: Request) -> Response:
    """Log out everywhere: every phone, tablet and token of mine, this browser too."""
    user = await require_user(request)
    refuse_helper(user)
    await read_form(request)
    await service.end_sessions(actor=user, target=user)
    request.session.clear()
    return redirect("/login")


async def end_one_session(request: Request) -> Response:
    """End one of my logins (a phone I no longer use), from my settings."""
    user = await require_user(request)
    refuse_helper(user)
    await read_form(request)
    await sessions.end_session(actor=user, user=user, sid=request.path_params["sid"])
    flash(request, _("That device is logged out."))
    return redirect("/me/settings")


async def change_my_password(request: Request) -> Response:
    """A new password ends every other login; this browser stays in with a new session."""
    user = await require_user(request)
    refuse_helper(user)
    form = await read_form(request)
    try:
        user = await service.change_password(
            request.app.state.settings, user=user, ip=client_ip(request),
            current=str(form.get("current_password", ""))[:256],
            new=str(form.get("new_password", ""))[:256])
    except DomainError as error:

        flash_error(request, error)
        return redirect("/me/settings")
    await start_web_session(request, user)
    flash(request, _("Password changed. Every other device is logged out."))
    return redirect("/me/settings")


async def confirm_page(request: Request) -> Response:
    """Confirm it is you (a bank's or GitHub's "sudo mode"): before changing how you log
    in, or a big action, when you last logged in or confirmed more than 5 minutes ago.
    With the password; the authenticator's code where two-step login is on; or, for a
    resident who has no password, a code sent by SMS to their own phone."""
    user = await require_user(request)
    settings = request.app.state.settings
    target = safe_next(request.query_params.get("next"))
    by_sms = sessions.confirms_by_sms(user)
    error, sent, status = None, False, 200
    if request.method == "POST":
        form = await read_form(request)
        target = safe_next(str(form.get("next", "")))
        try:
            if form.get("action") == "send" and by_sms:
                await codes.request_code(settings, phone=user.phone, ip=client_ip(request))
                sent = True
            else:
                await sessions.step_up(settings, user=user, sid=current_sid(request),
                                       password=str(form.get("password", ""))[:256],
                                       code=str(form.get("code", ""))[:12],
                                       ip=client_ip(request))
                flash(request, _("Thank you. For the next 5 minutes you can go on without "
                                 "confirming again."))
                return redirect(target)
        except DomainError as exc:
            error, status, sent = exc.text(), exc.status, by_sms
    return render(request, "accounts/confirm.html", {
        "next": target, "by_sms": by_sms, "sent": sent, "error": error,
        "masked": mask_phone(user.phone), "totp": bool(user.totp_secret)}, status=status)


async def end_sessions_of(request: Request) -> Response:
    """Lost phone: staff end every login of a resident or a colleague below them."""
    actor = await require_user(request, Role.STAFF)
    await read_form(request)
    target = await User.get_or_none(id=request.path_params["id"])
    if target is None:
        raise NotFoundError()
    await service.end_sessions(actor=actor, target=target)
    flash(request, _("Every login of %(name)s has ended; they log in again on their new "
                     "phone.", name=target.display_name))
    return redirect(f"/console/users/{target.id}")


async def switch_language(request: Request) -> Response:
    """A preference cookie, not data: a plain link works from any page."""
    language = request.query_params.get("to", "")
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if language in LANGUAGES:
        response.set_cookie("lang", language, max_age=365 * 24 * 3600, samesite="lax",
                            httponly=True)
    return response


async def elder_mode(request: Request) -> Response:
    """长辈模式 on or off for this account (every device it logs in on)."""
    user = await require_user(request)
    form = await read_form(request)
    on = form.get("on") == "1"
    await User.filter(id=user.id).update(elder_mode=on)
    user.elder_mode = on
    return redirect("/")


async def home(request: Request) -> Response:
    user = await require_user(request)
    if user.role != Role.RESIDENT:
        return redirect("/console/")
    summary = await ledger_queries.account_summary(user)
    return render(request, "accounts/home.html", {
        "summary": summary, "unread": await notifications.unread_count(user)})


routes = [
    Route("/", home, name="home"),
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"], name="login_submit"),
    Route("/login/totp", login_totp, methods=["POST"], name="login_totp"),
    Route("/login/sms", sms_login, methods=["POST"], name="sms_login"),
    Route("/login/sms/verify", sms_login_verify, methods=["POST"], name="sms_login_verify"),
    Route("/login/choose", choose_account, methods=["POST"], name="choose_account"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/logout/everywhere", end_my_sessions, methods=["POST"], name="logout_everywhere"),
    Route("/me/sessions/{sid}/end", end_one_session, methods=["POST"], name="end_session"),
    Route("/me/password", change_my_password, methods=["POST"], name="change_password"),
    Route("/me/confirm", confirm_page, methods=["GET", "POST"], name="confirm"),
    Route("/users/{id:id}/sessions/end", end_sessions_of, methods=["POST"],
          name="end_sessions"),
    Route("/lang", switch_language, name="lang"),
    Route("/me/elder-mode", elder_mode, methods=["POST"], name="elder_mode"),
]
