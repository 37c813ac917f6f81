"""Groups, routes, patrols and their review.

A patrol is proven by its participants scanning checkpoint plates. Approval is claimed by a
conditional status update, then each participant is credited duration × the town's patrol
rate, within the rule's caps, under a unique ledger key per patrol and person.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import in_village, is_platform_admin, require_town
from torreya.db import now
from torreya.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
)
from torreya.ledger.caps import caps_of, room_under_caps
from torreya.ledger.periods import CAP_PERIODS, period_key
from torreya.ledger.rules import rule_for
from torreya.ledger.service import Posting, post_entry
from torreya.models import (
    Checkpoint,
    EarningTotal,
    Group,
    GroupMember,
    Patrol,
    PatrolParticipant,
    PatrolScan,
    PatrolStatus,
    Role,
    Route,
    User,
    Village,
)
from torreya.outbox.service import Message, emit
from torreya.patrols.codes import new_join_code, read_plate_code
from torreya.settings import Settings

MAX_PATROL_MINUTES = 8 * 60


class PatrolStateError(ConflictError):
    code = "invalid_state"
    message = "This patrol is not in a state that allows this."


class NotEnoughCheckpointsError(ConflictError):
    code = "invalid_state"
    message = "Only %(covered)s of the %(required)s checkpoints were scanned; reject it instead."


class InvalidPlateError(DomainError):
    status = 400
    code = "invalid_token"
    message = "This checkpoint code is not valid for this patrol."


# -- groups -----------------------------------------------------------------------------------


def _is_admin_over_group(user: User, group: Group) -> bool:
    return is_platform_admin(user) or (user.role == Role.TOWN_ADMIN
                                       and user.town_id == group.town_id)


async def membership(user: User, group: Group) -> GroupMember | None:
    return await GroupMember.get_or_none(group_id=group.id, user_id=user.id, approved=True)


async def group_for(user: User, group_id: int) -> Group:
    """A group the user may see: members, and staff/admins of its town."""
    group = await Group.get_or_none(id=group_id)
    if group is None or (user.town_id != group.town_id and not is_platform_admin(user)):
        raise NotFoundError()
    return group


async def require_leader_or_admin(user: User, group: Group) -> None:
    if _is_admin_over_group(user, group):
        return
    if user.role == Role.VILLAGE_ADMIN and user.village_id in group.village_ids:
        return
    member = await membership(user, group)
    if member is None or member.role != "leader":
        raise ForbiddenError("Only the group's leaders and admins can do this.")


async def create_group(*, actor: User, town_id: int, name: str,
                       village_ids: list[int] | None = None) -> Group:
    require_town(actor, town_id, Role.TOWN_ADMIN)
    villages = await Village.filter(town_id=town_id).values_list("id", flat=True)
    chosen = [v for v in (village_ids or villages) if v in villages]
    if village_ids and len(chosen) != len(set(village_ids)):
        raise NotFoundError("Village not found.", field="village_ids")
    async with in_transaction() as connection:
        group = await Group.create(town_id=town_id, name=name, village_ids=chosen,
                                   invite_code=secrets.token_urlsafe(9), using_db=connection)
        await audit.record(actor, "patrols:group:create", connection=connection,
                           subject=f"group:{group.id}", town_id=town_id, data={"name": name})
    return group


async def add_member(*, actor: User, group: Group, user_id: int, role: str) -> GroupMember:
    await require_leader_or_admin(actor, group)
    if role == "leader" and not _is_admin_over_group(actor, group) and actor.role not in (
            Role.VILLAGE_ADMIN,):
        raise ForbiddenError("Only admins can appoint leaders.")
    person = await User.get_or_none(id=user_id)
    if person is None or person.town_id != group.town_id or not person.is_active:
        raise NotFoundError("No such person in this town.", field="user_id")
    for _attempt in range(2):
        try:
            async with in_transaction() as connection:
                member = await _upsert_member(connection, group, person, role)
                await audit.record(actor, "patrols:member:add", connection=connection,
                                   subject=f"group:{group.id}", town_id=group.town_id,
                                   data={"user": person.id, "role": role})
            return member
        except IntegrityError:
            continue  # a concurrent add made the row first: update it instead
    raise ConflictError("Please try again.")


async def person_by_phone(group: Group, phone: str) -> User:
    """The active resident of the group's town with this phone number (residents log in by
    phone and never see a username). Raises NotFoundError, or ConflictError when the
    number is several residents' (a shared family phone): they join by the group's QR."""
    people = await User.filter(phone=phone, town_id=group.town_id, is_active=True,
                               role=Role.RESIDENT).order_by("id").limit(4)
    if not people:
        raise NotFoundError("No resident of this town has this number.", field="phone")
    if len(people) > 1:
        raise ConflictError("This number is shared by %(names)s. Ask the one who joins to "
                            "scan the group's QR code instead.", field="phone",
                            names="、".join(p.display_name for p in people))
    return people[0]


async def _upsert_member(connection, group: Group, person: User, role: str) -> GroupMember:
    existing = await GroupMember.get_or_none(group_id=group.id, user_id=person.id
                                             ).using_db(connection)
    if existing is None:
        return await GroupMember.create(group=group, user=person, role=role,
                                        using_db=connection)
    await GroupMember.filter(id=existing.id).using_db(connection).update(role=role,
                                                                          approved=True)
    existing.role, existing.approved = role, True
    return existing


async def request_to_join(*, user: User, invite_code: str) -> GroupMember:
    group = await Group.get_or_none(invite_code=invite_code)
    if group is None or group.town_id != user.town_id:
        raise NotFoundError("This invitation is not valid.")
    try:
        return await GroupMember.create(group=group, user=user, role="member", approved=False)
    except IntegrityError:
        return await GroupMember.get(group_id=group.id, user_id=user.id)


async def approve_member(*, actor: User, group: Group, user_id: int) -> None:
    await require_leader_or_admin(actor, group)
    async with in_transaction() as connection:
        updated = await GroupMember.filter(group_id=group.id, user_id=user_id).using_db(
            connection).update(approved=True)
        if not updated:
            raise NotFoundError()
        await audit.record(actor, "patrols:member:approve", connection=connection,
                           subject=f"group:{group.id}", town_id=group.town_id,
                           data={"user": user_id})


# -- routes -----------------------------------------------------------------------------------


async def create_route(*, actor: User, group: Group, name: str, checkpoints: list[str],
                       min_checkpoints: int, village_id: int | None = None,
                       walk_minutes: int = 1) -> Route:
    await require_leader_or_admin(actor, group)
    names = [c.strip() for c in checkpoints if isinstance(c, str) and c.strip()]
    if not names or len(names) > 50 or any(len(n) > 80 or "<" in n or ">" in n for n in names):
        raise InvalidRequestError("Give 1 to 50 checkpoint names (80 characters each).",
                                  field="checkpoints")
    if not 1 <= min_checkpoints <= len(names):
        raise InvalidRequestError("Field %(name)s must be at most %(max)s.",
                                  field="min_checkpoints", name="min_checkpoints",
                                  max=len(names))
    village_id = village_id or (group.village_ids[0] if group.village_ids else None)
    if village_id not in group.village_ids:
        raise NotFoundError("Village not found.", field="village_id")
    async with in_transaction() as connection:
        route = await Route.create(group=group, village_id=village_id, name=name,
                                   min_checkpoints=min_checkpoints,
                                   walk_minutes=walk_minutes, using_db=connection)
        await Checkpoint.bulk_create([Checkpoint(route=route, name=n, position=i)
                                      for i, n in enumerate(names, start=1)],
                                     using_db=connection)
        await audit.record(actor, "patrols:route:create", connection=connection,
                           subject=f"route:{route.id}", town_id=group.town_id,
                           village_id=village_id, data={"name": name, "checkpoints": len(names)})
    return route


# -- patrols ----------------------------------------------------------------------------------


async def start_patrol(*, leader: User, group: Group, route_id: int) -> Patrol:
    member = await membership(leader, group)
    if member is None or member.role != "leader":
        raise ForbiddenError("Only a leader of the group can start a patrol.")
    route = await Route.get_or_none(id=route_id, group_id=group.id)
    if route is None:
        raise NotFoundError("Route not found.", field="route_id")
    async with in_transaction() as connection:
        patrol = await Patrol.create(group=group, route=route, leader=leader,
                                     village_id=route.village_id, town_id=group.town_id,
                                     status=PatrolStatus.ACTIVE, join_code=new_join_code(),
                                     started_at=now(), using_db=connection)
        await PatrolParticipant.create(patrol=patrol, user=leader, using_db=connection)
        await audit.record(leader, "patrols:patrol:start", connection=connection,
                           subject=f"patrol:{patrol.id}", town_id=group.town_id,
                           village_id=route.village_id)
    return patrol


async def join_patrol(*, user: User, patrol_id: int, join_code: str) -> PatrolParticipant:
    """Members join by the code on the leader's phone; joining twice is harmless."""
    patrol = await Patrol.get_or_none(id=patrol_id)
    if patrol is None:
        raise NotFoundError()
    group = await Group.get(id=patrol.group_id)
    if await membership(user, group) is None:
        raise ForbiddenError("Only members of this group can join its patrols.")
    # compared as bytes: compare_digest refuses non-ASCII text with a TypeError (a 500)
    if not secrets.compare_digest(join_code.strip().upper().encode(), patrol.join_code.encode()):
        raise InvalidPlateError("This join code is not valid.")
    if patrol.status != PatrolStatus.ACTIVE:
        raise PatrolStateError()
    try:
        return await PatrolParticipant.create(patrol=patrol, user=user)
    except IntegrityError:
        return await PatrolParticipant.get(patrol_id=patrol.id, user_id=user.id)


@dataclass(frozen=True)
class PlateScanResult:
    scan: PatrolScan
    checkpoint: Checkpoint
    repeated: bool


async def record_scan(settings: Settings, *, user: User, patrol_id: int, code: str,
                      latitude: float | None = None, longitude: float | None = None
                      ) -> PlateScanResult:
    """A participant scanned a plate. Plates of other routes, finished patrols and
    non-participants are refused by name; scans out of order are kept and flagged."""
    patrol = await Patrol.get_or_none(id=patrol_id)
    if patrol is None:
        raise NotFoundError()
    if not await PatrolParticipant.exists(patrol_id=patrol.id, user_id=user.id):
        raise ForbiddenError("Join the patrol before scanning checkpoints.")
    if patrol.status != PatrolStatus.ACTIVE:
        raise PatrolStateError("This patrol has already finished.")
    checkpoint_id = read_plate_code(settings, code)
    checkpoint = await Checkpoint.get_or_none(id=checkpoint_id) if checkpoint_id else None
    if checkpoint is None or checkpoint.route_id != patrol.route_id:
        raise InvalidPlateError()
    done = set(await PatrolScan.filter(patrol_id=patrol.id).values_list(
        "checkpoint__position", flat=True))
    out_of_order = bool(done) and checkpoint.position < max(done)
    try:
        scan = await PatrolScan.create(patrol=patrol, checkpoint=checkpoint, user=user,
                                       latitude=latitude, longitude=longitude,
                                       out_of_order=out_of_order)
    except IntegrityError:  # the same person, the same plate: a retry or double tap
        scan = await PatrolScan.get(patrol_id=patrol.id, checkpoint_id=checkpoint.id,
                                    user_id=user.id)
        return PlateScanResult(scan, checkpoint, True)
    return PlateScanResult(scan, checkpoint, False)


async def finish_patrol(*, leader: User, patrol_id: int, flag: str | None = None) -> Patrol:
    patrol = await Patrol.get_or_none(id=patrol_id)
    if patrol is None:
        raise NotFoundError()
    if patrol.leader_id != leader.id:
        raise ForbiddenError("Only the patrol's leader can finish it.")
    return await _submit(patrol, flag=flag)


async def _submit(patrol: Patrol, *, flag: str | None) -> Patrol:
    moment = now()
    minutes = min(int((moment - patrol.started_at).total_seconds() // 60), MAX_PATROL_MINUTES)
    flags = list(patrol.flags) + ([flag] if flag else [])
    if await PatrolScan.exists(patrol_id=patrol.id, out_of_order=True):
        flags.append("out_of_order")
    actor = None if flag else await User.get(id=patrol.leader_id)
    async with in_transaction() as connection:
        done = await Patrol.filter(id=patrol.id, status=PatrolStatus.ACTIVE).using_db(
            connection).update(status=PatrolStatus.SUBMITTED, finished_at=moment,
                               duration_minutes=minutes, flags=sorted(set(flags)))
        if not done:
            raise PatrolStateError()
        await audit.record(actor, "patrols:patrol:submit", connection=connection,
                           subject=f"patrol:{patrol.id}", town_id=patrol.town_id,
                           village_id=patrol.village_id,
                           data={"minutes": minutes, "flags": flags})
    await patrol.refresh_from_db()
    return patrol


async def auto_submit_stale() -> int:
    """Patrols left active past the maximum are submitted and flagged for the reviewer."""
    cutoff = now() - timedelta(minutes=MAX_PATROL_MINUTES)
    count = 0
    for patrol in await Patrol.filter(status=PatrolStatus.ACTIVE, started_at__lt=cutoff):
        try:
            await _submit(patrol, flag="auto_submitted")
            count += 1
        except PatrolStateError:
            pass
    return count


async def covered_checkpoints(patrol: Patrol) -> int:
    return len(set(await PatrolScan.filter(patrol_id=patrol.id).values_list("checkpoint_id",
                                                                            flat=True)))


async def _reviewable(actor: User, patrol_id: int) -> Patrol:
    """A patrol this actor may approve or reject: an admin over its village, not its leader.

    Other tenants' patrols are not found; people of the village without the role are
    forbidden.
    """
    patrol = await Patrol.get_or_none(id=patrol_id)
    if patrol is None or not in_village(actor, await Village.get(id=patrol.village_id)):
        raise NotFoundError()
    if patrol.leader_id == actor.id:
        raise ForbiddenError("A leader cannot review their own patrol.")
    if actor.rank < 2:
        raise ForbiddenError("Only village or town admins approve patrols.")
    return patrol


@dataclass(frozen=True)
class Award:
    user_id: int
    points: int


async def approve_patrol(*, actor: User, patrol_id: int) -> tuple[Patrol, list[Award]]:
    """Approve a submitted patrol and pay each participant once (duration × rate, capped)."""
    patrol = await _reviewable(actor, patrol_id)
    route = await Route.get(id=patrol.route_id)
    covered = await covered_checkpoints(patrol)
    if patrol.status == PatrolStatus.SUBMITTED and covered < route.min_checkpoints:
        raise NotEnoughCheckpointsError(covered=covered, required=route.min_checkpoints)
    rule = await rule_for(patrol.town_id, "patrol")
    awards: list[Award] = []
    async with in_transaction() as connection:
        claimed = await Patrol.filter(id=patrol.id, status=PatrolStatus.SUBMITTED).using_db(
            connection).update(status=PatrolStatus.APPROVED, reviewed_by_id=actor.id,
                               reviewed_at=now())
        if not claimed:
            raise PatrolStateError()
        for person, points in await planned_awards(patrol, rule, connection):
            if points > 0:
                entry = await post_entry(
                    Posting(user=person, delta=points, kind="patrol", memo=route.name,
                           idem_key=f"patrol:{patrol.id}:{person.id}", source_type="patrol",
                           source_id=patrol.id, actor=actor, earned=True, rule=rule),
                    connection)
                await audit.record(actor, "patrols:award:create", connection=connection,
                                   subject=f"user:{person.id}", town_id=patrol.town_id,
                                   village_id=patrol.village_id, entry_id=entry.id,
                                   data={"patrol": patrol.id, "points": points})
            awards.append(Award(person.id, max(points, 0)))
        patrol.status = PatrolStatus.APPROVED
        await audit.record(actor, "patrols:patrol:approve", connection=connection,
                           subject=f"patrol:{patrol.id}", town_id=patrol.town_id,
                           village_id=patrol.village_id,
                           data={"awards": [a.__dict__ for a in awards]})
        await emit(connection, Message(event_type="patrol.approved", town_id=patrol.town_id,
                                       data={"id": patrol.id, "group_id": patrol.group_id,
                                             "village_id": patrol.village_id,
                                             "route_id": patrol.route_id,
                                             "duration_minutes": patrol.duration_minutes,
                                             "awards": [a.__dict__ for a in awards]}))
    return patrol, awards


def points_for_minutes(minutes: int | None, rule) -> int:
    """What a patrol of `minutes` earns each participant before the caps (the rule's points
    per hour, whole points)."""
    return (minutes or 0) * rule.points // 60


async def planned_awards(patrol: Patrol, rule, connection=None) -> list[tuple[User, int]]:
    """Each participant and the points approving would give them now: the duration's
    points, within what their caps leave. The reviewer sees this before approving;
    approving pays exactly it."""
    participants = await User.filter(
        id__in=await PatrolParticipant.filter(patrol_id=patrol.id).values_list("user_id",
                                                                               flat=True)
    ).using_db(connection)
    base = points_for_minutes(patrol.duration_minutes, rule)
    return [(person, min(base, await _room_under_caps(person, rule, connection)))
            for person in sorted(participants, key=lambda p: p.id)]


async def _room_under_caps(person: User, rule, connection) -> int:
    """Points the person may still earn from patrols today/this month/this year."""
    moment = now()
    keys = {period_key(period, moment): period for period in CAP_PERIODS}
    totals = {keys[t.period]: t.total for t in await EarningTotal.filter(
        user_id=person.id, kind="patrol", period__in=list(keys)).using_db(connection)}
    room = room_under_caps(caps_of(rule), totals)
    return 10**9 if room is None else room


async def reject_patrol(*, actor: User, patrol_id: int, reason: str) -> Patrol:
    patrol = await _reviewable(actor, patrol_id)
    if not reason:
        raise InvalidRequestError("Please give a reason.", field="reason")
    async with in_transaction() as connection:
        done = await Patrol.filter(id=patrol.id, status=PatrolStatus.SUBMITTED).using_db(
            connection).update(status=PatrolStatus.REJECTED, reviewed_by_id=actor.id,
                               reviewed_at=now(), reason=reason)
        if not done:
            raise PatrolStateError()
        patrol.status = PatrolStatus.REJECTED
        await audit.record(actor, "patrols:patrol:reject", connection=connection,
                           subject=f"patrol:{patrol.id}", town_id=patrol.town_id,
                           village_id=patrol.village_id, data={"reason": reason[:200]})
    return patrol
