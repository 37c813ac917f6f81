"""The shop, vouchers, staff pickups, the public stock list and the catalog console."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya import idempotency, qr
from torreya.accounts.permissions import require_town, require_village
from torreya.api.rewards import RewardIn
from torreya.api.schema import validate_form
from torreya.checkins import signed
from torreya.console.workbench import LOW_STOCK
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.queries import currency_name
from torreya.models import Redemption, Reward, RewardImage, Role, Town, User, Village
from torreya.rewards import queries, service
from torreya.rewards.codes import display_voucher_code, normalize_voucher_code
from torreya.rewards.scheme import check_pack, export_pack, import_pack
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import (
    confirm_big_action,
    current_helper,
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_person,
    require_user,
    safe_next,
    village_from_path,
)


async def shop(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    user = await require_user(request)
    if user.village_id is None:
        raise NotFoundError()
    village = await Village.get(id=user.village_id)
    rewards = [r for r in await queries.catalog(village, include_inactive=False)
               if service.is_available(r)]
    return render(request, "rewards/shop.html", {
        "rewards": rewards, "balance": user.balance, "error": error, "village": village,
        "currency": await currency_name(user.town_id), "idem_key": uuid.uuid4().hex,
        "flashes": pop_flashes(request)}, status=status)


async def shop_page(request: Request) -> Response:
    return await shop(request)


async def confirm_page(request: Request) -> Response:
    """One more tap before points are spent: what it costs and what is left."""
    user = await require_user(request)
    reward = await Reward.get_or_none(id=request.path_params["id"])
    if reward is None or not service.visible_to(reward, user):
        raise NotFoundError("This item is not in your village's catalog.")
    return render(request, "rewards/confirm.html", {
        "reward": reward, "balance": user.balance, "idem_key": uuid.uuid4().hex,
        "currency": await currency_name(user.town_id)})


async def redeem(request: Request) -> Response:
    user, helper = await require_person(request)
    form = await read_form(request)
    reward_id = request.path_params["id"]

    async def run() -> dict:
        result = await service.redeem_reward(user=user, reward_id=reward_id, helper=helper)
        return {"redemption_id": result.redemption.id, "cost": result.redemption.cost,
                "balance": result.balance}

    try:
        done = await idempotency.once_for_form(
            user_id=user.id, scope="shop:redeem", key=str(form.get("idem_key", "")),
            path=request.url.path, body={"reward_id": reward_id}, run=run)
    except DomainError as error:
        return await shop(request, error=error.text(), status=error.status)
    if "balance" in done:  # a replayed answer of before issue 28 has no balance
        flash(request, _("Redeemed! %(cost)s %(currency)s spent; your balance is now "
                         "%(balance)s.", cost=done["cost"], balance=done["balance"],
                         currency=await currency_name(user.town_id)))
    return redirect(f"/vouchers/{done['redemption_id']}")


async def my_vouchers(request: Request) -> Response:
    user = await require_user(request)
    return render(request, "rewards/vouchers.html", {
        "vouchers": await queries.vouchers_of(user.id), "display": display_voucher_code})


async def _voucher_for(request: Request) -> tuple:
    user = await require_user(request)
    redemption = await Redemption.get_or_none(id=request.path_params["id"]).prefetch_related(
        "reward", "user")
    if redemption is None:
        raise NotFoundError()
    if redemption.user_id != user.id:
        require_village(user, await Village.get(id=redemption.village_id), Role.STAFF)
    return user, redemption


async def voucher_page(request: Request) -> Response:
    user, redemption = await _voucher_for(request)
    settings = request.app.state.settings
    signed_code = await signed.voucher_code(settings, redemption, owner=user if
                                            redemption.user_id == user.id else
                                            await User.get(id=redemption.user_id),
                                            item=(await redemption.reward).name)
    url = f"{settings.BASE_URL}/v/{signed_code}"
    return render(request, "rewards/voucher.html", {
        "r": redemption, "code": display_voucher_code(redemption.voucher_code),
        "qr_svg": qr.svg(url), "flashes": pop_flashes(request),
        "currency": await currency_name(redemption.town_id)})


async def cancel_voucher(request: Request) -> Response:
    user, redemption = await _voucher_for(request)
    await read_form(request)
    try:
        await service.cancel_redemption(actor=user, redemption_id=redemption.id,
                                        helper=current_helper(request))
        flash(request, _("Voucher cancelled; the points are back."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/vouchers/{redemption.id}")


async def scanned_voucher(request: Request) -> Response:
    """A voucher QR scanned with any camera: staff see it and hand over the item."""
    user = await require_user(request)
    code = normalize_voucher_code(await signed.short_voucher(request.path_params["code"]))
    redemption = await Redemption.get_or_none(voucher_code=code).prefetch_related(
        "reward", "user") if code else None
    if redemption is None:
        raise NotFoundError("No voucher with this code.")
    if redemption.user_id == user.id:
        return redirect(f"/vouchers/{redemption.id}")
    require_village(user, await Village.get(id=redemption.village_id), Role.STAFF)
    return render(request, "rewards/handover.html", {
        "r": redemption, "code": display_voucher_code(redemption.voucher_code),
        "flashes": pop_flashes(request)})


async def fulfil(request: Request) -> Response:
    user = await require_user(request, Role.STAFF)
    form = await read_form(request)
    code = str(form.get("code", "")) or request.path_params.get("code", "")
    back = str(form.get("back", "")) or f"/v/{code}"
    try:
        redemption = await service.fulfil_voucher(staff=user,
                                                  code=await signed.short_voucher(code))
        flash(request, _("Handed over: %(name)s.", name=(await redemption.reward).name))
    except DomainError as error:
        flash_error(request, error)

    return redirect(safe_next(back))


async def reward_image(request: Request) -> Response:
    image = await RewardImage.get_or_none(reward_id=request.path_params["id"])
    if image is None:
        raise NotFoundError()
    return Response(image.content, media_type=image.content_type,
                    headers={"cache-control": "public, max-age=300"})


async def public_stock(request: Request) -> Response:
    """Public: what came in and went out of the village's points shop (names masked)."""
    village = await Village.get_or_none(id=request.path_params["id"])
    if village is None:
        raise NotFoundError()
    return render(request, "rewards/stock.html", {
        "village": village, "movements": await queries.stock_movements(village),
        "rewards": await queries.catalog(village, include_inactive=False)})


# -- console ----------------------------------------------------------------------------------


async def catalog_console(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    return render(request, "rewards/console.html", {
        "village": village, "rewards": await queries.catalog(village, include_inactive=True),
        "pickups": await queries.pending_pickups(village), "flashes": pop_flashes(request),
        "display": display_voucher_code, "periods": service.LIMIT_PERIODS, "error": None,
        "low_stock": LOW_STOCK, "low_only": request.query_params.get("low") == "1"})


async def create_reward(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN, sign_in=Role.STAFF)
    form = await read_form(request, max_files=1)
    try:
        body = validate_form(RewardIn, form)  # the API's model: one declaration
        image = form.get("image")
        content = await image.read() if hasattr(image, "read") and image.filename else b""
        reward = await service.create_reward(actor=user, village=village,
                                             fields=service.RewardFields(**body.model_dump()),
                                             image=content)
        flash(request, _("Item %(name)s added.", name=reward.name))
    except DomainError as error:
        flash_error(request, error)
    finally:
        await form.close()
    return redirect(f"/console/villages/{village.id}/rewards")


async def _reward_admin(request: Request) -> tuple:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    reward = await Reward.get_or_none(id=request.path_params["id"])
    if reward is None or reward.village_id is None:
        raise NotFoundError()
    require_village(user, await Village.get(id=reward.village_id), Role.VILLAGE_ADMIN)
    return user, reward


async def restock(request: Request) -> Response:
    user, reward = await _reward_admin(request)
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="delta", type=int, minimum=-100_000,
                                     maximum=100_000)])
        await service.restock(actor=user, reward=reward, delta=data["delta"])
        flash(request, _("Stock updated."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/villages/{reward.village_id}/rewards")


async def edit_reward(request: Request) -> Response:
    user, reward = await _reward_admin(request)
    form = await read_form(request)
    try:
        body = validate_form(RewardIn, form)
        await service.update_reward(actor=user, reward=reward,
                                    fields=service.RewardFields(**body.model_dump()))
        flash(request, _("Item %(name)s saved.", name=reward.name))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/villages/{reward.village_id}/rewards")


async def counter_redeem(request: Request) -> Response:
    """At the 积分超市 counter: staff redeem for a resident without a phone and hand the item
    over at once (the resident shows their member card)."""
    staff = await require_user(request, Role.STAFF)
    resident = await User.get_or_none(id=request.path_params["id"], role=Role.RESIDENT)
    if resident is None:
        raise NotFoundError()
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="reward_id", type=int, minimum=1),
                               Field(name="idem_key", max_length=255)])

        async def run() -> dict:
            result = await service.redeem_reward(user=resident, reward_id=data["reward_id"],
                                                 staff=staff)
            await service.fulfil_voucher(staff=staff, code=result.redemption.voucher_code)
            return {"redemption_id": result.redemption.id}

        await idempotency.once_for_form(
            user_id=staff.id, scope="console:counter_redeem", key=data["idem_key"],
            path=request.url.path, body={"reward_id": data["reward_id"]}, run=run)
        reward = await Reward.get(id=data["reward_id"])
        flash(request, _("Handed over: %(name)s.", name=reward.name))
    except DomainError as error:
        if error.code == "not_found" and error.field is None:
            raise
        flash_error(request, error)
    return redirect(f"/console/users/{resident.id}")


async def toggle(request: Request) -> Response:
    user, reward = await _reward_admin(request)
    await read_form(request)
    await service.set_reward_active(actor=user, reward=reward, active=not reward.is_active)
    return redirect(f"/console/villages/{reward.village_id}/rewards")


async def upload_image(request: Request) -> Response:
    user, reward = await _reward_admin(request)
    form = await read_form(request, max_files=1)
    try:
        image = form.get("image")
        content = await image.read() if hasattr(image, "read") else b""
        await service.set_reward_image(actor=user, reward=reward, data=content)
        flash(request, _("Picture saved."))
    except DomainError as error:
        flash_error(request, error)
    finally:
        await form.close()
    return redirect(f"/console/villages/{reward.village_id}/rewards")


async def _town_admin(request: Request):
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    return user, town


async def scheme_export(request: Request) -> Response:
    _user, town = await _town_admin(request)
    return Response(await export_pack(town), media_type="application/toml; charset=utf-8",
                    headers={"content-disposition":
                             f'attachment; filename="{town.code}-scheme.toml"'})


async def scheme_import(request: Request) -> Response:
    user, town = await _town_admin(request)
    form = await read_form(request, max_files=1)
    try:
        upload = form.get("pack")
        data = await upload.read() if hasattr(upload, "read") else b""
        name = getattr(upload, "filename", None) or "pack.toml"
    finally:
        await form.close()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    problems = [f"{name}: not UTF-8 text"] if text is None else []
    pack = None
    if text is not None:
        pack, found = check_pack(text, name)
        problems = [str(p) for p in found]
    if pack is None:
        return render(request, "rewards/scheme_result.html",
                      {"town": town, "problems": problems, "result": None}, status=422)
    try:
        await confirm_big_action(request, user, form)
        result = await import_pack(pack, town=town, actor=user)
    except DomainError as error:
        return render(request, "rewards/scheme_result.html",
                      {"town": town, "problems": [error.text()], "result": None},
                      status=error.status)
    return render(request, "rewards/scheme_result.html",
                  {"town": town, "problems": [], "result": result})


routes = [
    Route("/shop", shop_page, name="shop"),
    Route("/shop/{id:id}", confirm_page, name="confirm"),
    Route("/shop/{id:id}/redeem", redeem, methods=["POST"], name="redeem"),
    Route("/vouchers", my_vouchers, name="vouchers"),
    Route("/vouchers/{id:bigid}", voucher_page, name="voucher"),
    Route("/vouchers/{id:bigid}/cancel", cancel_voucher, methods=["POST"], name="cancel"),
    Route("/v/{code}", scanned_voucher, name="scanned_voucher"),
    Route("/v/{code}/fulfil", fulfil, methods=["POST"], name="fulfil"),
    Route("/fulfil", fulfil, methods=["POST"], name="fulfil_typed"),
    Route("/rewards/{id:id}/image", reward_image, name="image"),
    Route("/villages/{id:id}/stock", public_stock, name="stock"),
    Route("/console/villages/{id:id}/rewards", catalog_console, name="catalog"),
    Route("/console/villages/{id:id}/rewards/new", create_reward, methods=["POST"],
          name="create_reward"),
    Route("/console/rewards/{id:id}/restock", restock, methods=["POST"], name="restock"),
    Route("/console/rewards/{id:id}/toggle", toggle, methods=["POST"], name="toggle"),
    Route("/console/users/{id:id}/redeem", counter_redeem, methods=["POST"], name="counter"),
    Route("/console/rewards/{id:id}/edit", edit_reward, methods=["POST"], name="edit_reward"),
    Route("/console/rewards/{id:id}/image", upload_image, methods=["POST"], name="upload_image"),
    Route("/console/towns/{id:id}/scheme.toml", scheme_export, name="scheme_export"),
    Route("/console/towns/{id:id}/scheme", scheme_import, methods=["POST"],
          name="scheme_import"),
]
