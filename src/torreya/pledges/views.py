"""Pledge pages: read and sign, the certificate, the committee's list and CSV."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.functions import Count

from torreya import qr
from torreya.accounts.permissions import require_village
from torreya.api.community import PledgeIn, SignatureIn
from torreya.api.schema import validate_form
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.queries import currency_name
from torreya.models import Pledge, PledgeSignature, Role, Village
from torreya.pledges import service
from torreya.spreadsheet import csv_response
from torreya.templating import local_time, render
from torreya.web import (
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_person,
    require_user,
    village_from_path,
)


async def pledge_list(request: Request) -> Response:
    user = await require_user(request)
    pledges = await Pledge.filter(village_id=user.village_id or 0).order_by("-id")
    signed = set(await PledgeSignature.filter(user_id=user.id).values_list("pledge_id",
                                                                           flat=True))
    return render(request, "pledges/list.html", {
        "pledges": [p for p in pledges if service.is_open(p) or p.id in signed],
        "signed": signed})


async def pledge_page(request: Request) -> Response:
    user = await require_user(request)
    pledge = await service.visible_pledge(user, request.path_params["id"])
    signature = await PledgeSignature.get_or_none(pledge_id=pledge.id, user_id=user.id)
    return render(request, "pledges/sign.html", {
        "pledge": pledge, "signature": signature, "error": None, "open": service.is_open(pledge),
        "currency": await currency_name(pledge.town_id)})


async def sign(request: Request) -> Response:
    user, helper = await require_person(request)
    form = await read_form(request)
    pledge = await service.visible_pledge(user, request.path_params["id"])
    try:
        body = validate_form(SignatureIn, form)  # the API's model: one declaration
        await service.sign_pledge(user=user, pledge_id=pledge.id, signed_name=body.signed_name,
                                  confirmed=list(body.confirmations), helper=helper)
    except DomainError as error:
        if error.code == "already_signed":
            return redirect(f"/pledges/{pledge.id}/certificate")
        return render(request, "pledges/sign.html", {
            "pledge": pledge, "signature": None, "error": error.text(), "open": True,
            "currency": await currency_name(pledge.town_id)}, status=error.status)
    return redirect(f"/pledges/{pledge.id}/certificate")


async def certificate(request: Request) -> Response:
    user = await require_user(request)
    signature = await PledgeSignature.get_or_none(pledge_id=request.path_params["id"],
                                                  user_id=user.id).prefetch_related("pledge")
    if signature is None:
        raise NotFoundError()
    return _certificate(request, signature)


def _certificate(request: Request, signature: PledgeSignature) -> Response:
    settings = request.app.state.settings
    code = service.certificate_code(settings, signature.id)
    url = f"{settings.BASE_URL}/certificates/{code}"
    return render(request, "pledges/certificate.html", {
        "s": signature, "code": code, "url": url, "qr_svg": qr.svg(url)})


async def verify_certificate(request: Request) -> Response:
    """Public: anyone scanning a certificate's QR sees that it is genuine. Reached from
    `/certificates/{code}` (hours/views.py), which certificates of hours share."""
    signature_id = service.read_certificate_code(request.app.state.settings,
                                                 request.path_params["code"])
    signature = await PledgeSignature.get_or_none(id=signature_id).prefetch_related(
        "pledge") if signature_id else None
    if signature is None:
        raise NotFoundError("This certificate is not genuine.")
    return _certificate(request, signature)


# -- console ---------------------------------------------------------------------------------


async def console_list(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    pledges = await Pledge.filter(village_id=village.id).order_by("-id").annotate(
        signed=Count("signatures"))
    return render(request, "pledges/console.html", {
        "village": village, "pledges": pledges, "flashes": pop_flashes(request)})


async def console_create(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN, sign_in=Role.STAFF)
    form = await read_form(request)
    try:
        body = validate_form(PledgeIn, form)  # one line of the box per confirmation
        await service.create_pledge(actor=user, village=village, **body.model_dump())
        flash(request, _("Pledge campaign started."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/villages/{village.id}/pledges")


async def _pledge_for_staff(request: Request) -> tuple:
    user = await require_user(request, Role.STAFF)
    pledge = await Pledge.get_or_none(id=request.path_params["id"])
    if pledge is None:
        raise NotFoundError()
    require_village(user, await Village.get(id=pledge.village_id), Role.STAFF)
    return user, pledge


async def signatures(request: Request) -> Response:
    _user, pledge = await _pledge_for_staff(request)
    rows = await PledgeSignature.filter(pledge_id=pledge.id).order_by("id").prefetch_related(
        "user")
    return render(request, "pledges/signatures.html", {"pledge": pledge, "rows": rows})


async def signatures_csv(request: Request) -> Response:
    _user, pledge = await _pledge_for_staff(request)
    rows = await PledgeSignature.filter(pledge_id=pledge.id).order_by("id").prefetch_related(
        "user")
    return csv_response(f"pledge-{pledge.id}-signatures.csv", [
        ["签署时间", "姓名", "签名", "用户名", "积分"],
        *([local_time(row.created_at), row.user.display_name, row.signed_name,
           row.user.username, row.points] for row in rows)])


routes = [
    Route("/pledges", pledge_list, name="pledges"),
    Route("/pledges/{id:id}", pledge_page, name="pledge"),
    Route("/pledges/{id:id}/sign", sign, methods=["POST"], name="sign"),
    Route("/pledges/{id:id}/certificate", certificate, name="certificate"),
    Route("/console/villages/{id:id}/pledges", console_list, name="console_pledges"),
    Route("/console/villages/{id:id}/pledges/new", console_create, methods=["POST"],
          name="create_pledge"),
    Route("/console/pledges/{id:id}", signatures, name="signatures"),
    Route("/console/pledges/{id:id}/signatures.csv", signatures_csv, name="signatures_csv"),
]
