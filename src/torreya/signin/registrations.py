"""Self-registration with village approval (居民认证, SPEC §4.7): someone whose proven phone
number matches nobody asks to join a village; its staff approve (a resident account is
made, and they are told by SMS) or reject with a reason (told by SMS too)."""

from __future__ import annotations

import re

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_village
from torreya.db import now
from torreya.errors import ConflictError, InvalidRequestError, NotFoundError
from torreya.models import (
    Registration,
    RegistrationStatus,
    Role,
    SmsMessage,
    Town,
    User,
    Village,
)
from torreya.notifications.service import Notice, notify
from torreya.notifications.texts import clip, sms_send_time, sms_text

_NAME = re.compile(r"[^<>\x00-\x1f]{1,64}")
_ID_LAST4 = re.compile(r"[0-9]{3}[0-9Xx]")


class RegistrationStateError(ConflictError):
    code = "invalid_state"
    message = "This registration was already decided."


async def register(*, phone: str, name: str, village_id: int | None,
                   id_last4: str | None) -> Registration:
    """A newcomer's request. `phone` must already be proven (a used SMS code).

    Raises InvalidRequestError naming the field, ConflictError (already a resident, or a
    request waiting).
    """
    name = " ".join(name.split())
    if not _NAME.fullmatch(name):
        raise InvalidRequestError("Please write your name (no < or >).", field="name")
    village = await Village.get_or_none(id=village_id) if village_id else None
    if village is None:
        raise InvalidRequestError("Please choose your village.", field="village_id")
    id_last4 = (id_last4 or "").strip().upper() or None
    if id_last4 is not None and not _ID_LAST4.fullmatch(id_last4):
        raise InvalidRequestError("The last 4 characters of an ID card are digits (the last "
                                  "may be X).", field="id_last4")
    if await User.filter(phone=phone, role=Role.RESIDENT, is_active=True).exists():
        raise ConflictError("This number already has a resident account: log in with it.",
                            code="already_registered")
    if await Registration.filter(phone=phone, status=RegistrationStatus.PENDING).exists():
        raise ConflictError("Your registration is waiting for the village to approve it.",
                            code="already_waiting")
    async with in_transaction() as connection:
        registration = await Registration.create(phone=phone, name=name, village=village,
                                                 id_last4=id_last4, using_db=connection)
        await audit.record(None, "signin:registration:create", connection=connection,
                           subject=f"registration:{registration.id}",
                           town_id=village.town_id, village_id=village.id,
                           data={"name": name})
    return registration


async def _decidable(staff: User, registration_id: int) -> tuple[Registration, Village]:
    registration = await Registration.get_or_none(id=registration_id)
    if registration is None:
        raise NotFoundError()
    village = await Village.get(id=registration.village_id)
    require_village(staff, village, Role.STAFF)
    return registration, village


async def approve(*, staff: User, registration_id: int) -> User:
    """Make the resident's account (no password: they log in with their phone) and tell
    them. Raises NotFoundError (out of reach), RegistrationStateError."""
    registration, village = await _decidable(staff, registration_id)
    try:
        async with in_transaction() as connection:
            claimed = await Registration.filter(
                id=registration.id, status=RegistrationStatus.PENDING).using_db(
                connection).update(status=RegistrationStatus.APPROVED, decided_at=now(),
                                   decided_by_id=staff.id)
            if not claimed:
                raise RegistrationStateError()
            # Never the phone number: a username is seen by staff and in exports.
            user = await User.create(username=f"{village.code}_r{registration.id}"[:64],
                                     display_name=registration.name, role=Role.RESIDENT,
                                     town_id=village.town_id, village_id=village.id,
                                     phone=registration.phone, using_db=connection)
            await Registration.filter(id=registration.id).using_db(connection).update(
                user_id=user.id)
            await audit.record(staff, "signin:registration:approve", connection=connection,
                               subject=f"user:{user.id}", town_id=village.town_id,
                               village_id=village.id,
                               data={"registration": registration.id})
            await notify(connection, [Notice(
                user_id=user.id, town_id=village.town_id, kind="registration_approved",
                dedup_key=f"registration:{registration.id}",
                params={"village": clip(village.name)})])
    except IntegrityError:  # the username (village code + registration) is taken
        raise ConflictError("An account with this number's username exists already.",
                            code="username_taken") from None
    return user


async def reject(*, staff: User, registration_id: int, reason: str) -> Registration:
    """Refuse with a reason; the person is told by SMS (they have no account to read)."""
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidRequestError("Please give a reason.", field="reason")
    registration, village = await _decidable(staff, registration_id)
    moment = now()
    async with in_transaction() as connection:
        claimed = await Registration.filter(
            id=registration.id, status=RegistrationStatus.PENDING).using_db(connection).update(
            status=RegistrationStatus.REJECTED, decided_at=moment, decided_by_id=staff.id,
            reason=reason[:200])
        if not claimed:
            raise RegistrationStateError()
        await audit.record(staff, "signin:registration:reject", connection=connection,
                           subject=f"registration:{registration.id}",
                           town_id=village.town_id, village_id=village.id,
                           data={"reason": reason[:200]})
        text = sms_text("registration_rejected", {"village": clip(village.name),
                                                  "reason": clip(reason, 20)})
        await SmsMessage.create(user_id=0, phone=registration.phone, text=text,
                                send_after=sms_send_time(moment), using_db=connection)
    return registration


async def pending_in(village: Village) -> list[Registration]:
    return await Registration.filter(village_id=village.id,
                                     status=RegistrationStatus.PENDING).order_by("id")


async def villages_to_choose() -> list[tuple[str, list[Village]]]:
    """Every village, by town, for the registration form."""
    towns = {t.id: t.name for t in await Town.all()}
    grouped: dict[int, list[Village]] = {}
    for village in await Village.all().order_by("town_id", "id"):
        grouped.setdefault(village.town_id, []).append(village)
    return [(towns.get(town_id, ""), villages) for town_id, villages in grouped.items()]
