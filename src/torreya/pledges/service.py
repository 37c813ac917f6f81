"""Pledge campaigns and signatures: points once per campaign, a verifiable certificate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_village
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from torreya.keys import derive_key
from torreya.ledger.rules import rule_for
from torreya.ledger.service import Posting, post_entry
from torreya.models import Pledge, PledgeSignature, Role, User, Village
from torreya.outbox.service import Message, emit
from torreya.settings import Settings
from torreya.signin.family import Acting

_CERT = re.compile(r"^P(\d{1,12})-([A-Z2-7]{8})$")


class AlreadySignedError(ConflictError):
    code = "already_signed"
    message = "You have already signed this pledge."


class PledgeClosedError(ConflictError):
    code = "event_not_open"
    message = "This pledge campaign is not open now."


async def create_pledge(*, actor: User, village: Village, title: str, text: str, points: int,
                        confirmations: list[str] | None = None,
                        starts_at: datetime | None = None,
                        ends_at: datetime | None = None) -> Pledge:
    require_village(actor, village, Role.VILLAGE_ADMIN)
    if starts_at and ends_at and ends_at <= starts_at:
        raise InvalidRequestError("The end must be after the start.", field="ends_at")
    async with in_transaction() as connection:
        pledge = await Pledge.create(village=village, town_id=village.town_id, title=title,
                                     text=text, points=points,
                                     confirmations=confirmations or [], starts_at=starts_at,
                                     ends_at=ends_at, created_by=actor, created_at=now(),
                                     using_db=connection)
        await audit.record(actor, "pledges:pledge:create", connection=connection,
                           subject=f"pledge:{pledge.id}", town_id=village.town_id,
                           village_id=village.id, data={"title": title, "points": points})
    return pledge


def is_open(pledge: Pledge, moment: datetime | None = None) -> bool:
    moment = moment or now()
    return not ((pledge.starts_at and moment < pledge.starts_at)
                or (pledge.ends_at and moment > pledge.ends_at))


async def visible_pledge(user: User, pledge_id: int) -> Pledge:
    """A pledge of the user's own village (residents) or within reach (staff); else 404."""
    pledge = await Pledge.get_or_none(id=pledge_id)
    if pledge is None:
        raise NotFoundError()
    if user.role == Role.RESIDENT:
        if pledge.village_id != user.village_id:
            raise NotFoundError()
    else:
        require_village(user, await Village.get(id=pledge.village_id), Role.STAFF)
    return pledge


async def sign_pledge(*, user: User, pledge_id: int, signed_name: str,
                      confirmed: list[str] | None = None, helper: Acting | None = None
                      ) -> tuple[PledgeSignature, int]:
    """Sign once and earn the campaign's points. Returns (signature, new balance).

    Raises not_found, forbidden (not a resident), event_not_open, invalid_request (a
    confirmation missing), already_signed (also for concurrent duplicates), cap_reached.
    """
    pledge = await visible_pledge(user, pledge_id)
    if user.role != Role.RESIDENT:
        raise ForbiddenError("Only residents can sign pledges.")
    if not is_open(pledge):
        raise PledgeClosedError()
    confirmed = confirmed or []
    missing = [c for c in pledge.confirmations if c not in confirmed]
    if missing:
        raise InvalidRequestError("Please confirm: %(item)s", field="confirmations",
                                  item=missing[0])
    rule = await rule_for(user.town_id, "pledge")
    try:
        async with in_transaction() as connection:
            signature = await PledgeSignature.create(
                pledge=pledge, user=user, village_id=user.village_id, signed_name=signed_name,
                confirmations=list(pledge.confirmations), points=pledge.points,
                created_at=now(), using_db=connection)
            message = Message(event_type="pledge.signed", town_id=user.town_id, data={
                "id": signature.id, "pledge_id": pledge.id, "user_id": user.id,
                "village_id": user.village_id, "points": pledge.points,
                "created_at": signature.created_at})
            if pledge.points:
                await post_entry(Posting(user=user, delta=pledge.points, kind="pledge",
                                        memo=pledge.title, idem_key=f"pledge:{pledge.id}:{user.id}",
                                        source_type="pledge", source_id=pledge.id, actor=user,
                                        earned=True, rule=rule, helper=helper), connection,
                                 also=[message])
            else:
                await emit(connection, message)
            await audit.record(user, "pledges:signature:create", connection=connection,
                               subject=f"pledge:{pledge.id}", town_id=user.town_id,
                               village_id=user.village_id, data={"points": pledge.points})
    except IntegrityError:
        raise AlreadySignedError() from None
    return signature, user.balance


def _mac(settings: Settings, signature_id: int) -> str:
    digest = hmac.new(derive_key(settings, "pledge-certificate"), str(signature_id).encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode()


def certificate_code(settings: Settings, signature_id: int) -> str:
    return f"P{signature_id}-{_mac(settings, signature_id)}"


def is_pledge_code(code: str) -> bool:
    """A pledge certificate's code by its form (genuine or not): P12-ABCDEFGH."""
    return bool(_CERT.match((code or "").strip().upper()))


def read_certificate_code(settings: Settings, code: str) -> int | None:
    match = _CERT.match((code or "").strip().upper())
    if not match or not hmac.compare_digest(match[2], _mac(settings, int(match[1]))):
        return None
    return int(match[1])
