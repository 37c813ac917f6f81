"""Households: made, joined, left, rated; their points read from the ledger.

Membership has a history (`joined_at`, `left_at`): a household's points in a period are
the earned entries of its members dated while each was a member, so a resident who moves
takes their past points with them to no one, and brings none along.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import in_village, require_village
from torreya.boards.kept import Kept
from torreya.db import conn, fetch, now
from torreya.errors import ConflictError, InvalidRequestError, NotFoundError
from torreya.ledger.periods import ALL_KINDS, period_key, period_start
from torreya.ledger.service import Posting, post_entry
from torreya.masking import mask_name
from torreya.models import (
    Household,
    HouseholdMember,
    HouseholdRating,
    Role,
    Town,
    User,
    Village,
)
from torreya.settings import LOCAL
from torreya.signin.phones import normalize_phone

PERIODS = ("week", "month", "year", "all")


class AlreadyInHouseholdError(ConflictError):
    code = "already_in_household"
    message = "This resident already belongs to a household."


class AlreadyRatedError(ConflictError):
    code = "already_rated"
    message = "This household has already been rated for that year."


@dataclass(frozen=True)
class Member:
    user_id: int
    display_name: str


async def _resident_of(village: Village, user_id: int) -> User:
    """An active resident of the village (another village's is not found)."""
    person = await User.get_or_none(id=user_id)
    if person is None or person.village_id != village.id:
        raise NotFoundError("Resident not found.", field="user_id")
    if person.role != Role.RESIDENT or not person.is_active:
        raise InvalidRequestError("Only residents belong to households.", field="user_id")
    return person


async def find_resident(village: Village, text: str, *, field: str) -> User:
    """The village's resident a clerk typed: a username, a mobile number, or a name that
    only one resident of the village has."""
    text = text.strip()
    found = await User.filter(village_id=village.id, role=Role.RESIDENT, is_active=True,
                              username=text).first()
    if found is None and any(ch.isdigit() for ch in text) and len(text) >= 11:
        try:
            phone = normalize_phone(text, field=field)
        except InvalidRequestError:
            phone = None
        if phone:
            found = await User.filter(village_id=village.id, role=Role.RESIDENT,
                                      is_active=True, phone=phone).first()
    if found is None:
        named = await User.filter(village_id=village.id, role=Role.RESIDENT, is_active=True,
                                  display_name=text).limit(2)
        if len(named) > 1:
            raise InvalidRequestError(
                "Several residents are called %(name)s: give the mobile number instead.",
                field=field, name=text)
        found = named[0] if named else None
    if found is None:
        raise NotFoundError("Resident not found.", field=field)
    return found


async def create_household(*, actor: User, village: Village, name: str,
                           head_user_id: int) -> Household:
    """A household with its head as its first member. Raises already_in_household."""
    require_village(actor, village, Role.VILLAGE_ADMIN)
    head = await _resident_of(village, head_user_id)
    moment = now()
    try:
        async with in_transaction() as connection:
            household = await Household.create(town_id=village.town_id, village=village,
                                               name=name, head=head, using_db=connection)
            await HouseholdMember.create(household=household, user=head, joined_at=moment,
                                         using_db=connection)
            await audit.record(actor, "households:create", connection=connection,
                               subject=f"household:{household.id}", town_id=village.town_id,
                               village_id=village.id, data={"name": name, "head": head.id})
    except IntegrityError:  # the head is in another household (the partial unique index)
        raise AlreadyInHouseholdError() from None
    return household


async def household_for(actor: User, household_id: int, minimum: Role = Role.STAFF, *,
                        members_too: bool = False) -> tuple[Household, Village]:
    """A household the actor may act on: `minimum` and up within its village; with
    `members_too`, also a resident who belongs to it (others' are not found)."""
    household = await Household.get_or_none(id=household_id)
    village = await Village.get_or_none(id=household.village_id) if household else None
    if household is None or village is None or not in_village(actor, village):
        raise NotFoundError()
    if members_too and actor.role == Role.RESIDENT:
        if not await HouseholdMember.exists(household_id=household.id, user_id=actor.id,
                                            left_at=None):
            raise NotFoundError()
        return household, village
    require_village(actor, village, minimum)
    return household, village


async def add_member(*, actor: User, household_id: int, user_id: int,
                     move: bool = False) -> Member:
    """Add a resident of the village; with `move`, one in another household leaves it first
    (in the same transaction; its head passes on as when leaving). Raises
    already_in_household otherwise."""
    household, village = await household_for(actor, household_id, Role.VILLAGE_ADMIN)
    person = await _resident_of(village, user_id)
    moment = now()
    try:
        async with in_transaction() as connection:
            if move:
                current = await HouseholdMember.filter(user_id=person.id, left_at=None).exclude(
                    household_id=household.id).using_db(connection).first()
                if current is not None:
                    await _leave(connection, current.household_id, person.id, moment)
            await HouseholdMember.create(household=household, user=person, joined_at=moment,
                                         using_db=connection)
            await audit.record(actor, "households:member:add", connection=connection,
                               subject=f"household:{household.id}", town_id=village.town_id,
                               village_id=village.id, data={"user": person.id, "move": move})
    except IntegrityError:
        raise AlreadyInHouseholdError() from None
    return Member(person.id, person.display_name)


async def _leave(connection, household_id: int, user_id: int, moment: datetime) -> bool:
    """End a membership; the head leaving hands the headship on. False: not a member."""
    left = await HouseholdMember.filter(household_id=household_id, user_id=user_id,
                                        left_at=None).using_db(connection).update(
        left_at=moment)
    if not left:
        return False
    head = await Household.filter(id=household_id).using_db(connection).values_list(
        "head_id", flat=True)
    if head and head[0] == user_id:
        successor = await HouseholdMember.filter(
            household_id=household_id, left_at=None).using_db(connection).order_by(
            "joined_at", "id").first()
        await Household.filter(id=household_id).using_db(connection).update(
            head_id=successor.user_id if successor else None)
    return True


async def dissolve(*, actor: User, household_id: int) -> int:
    """Every member leaves (their time as members is kept); the household is gone from the
    lists. Returns how many left."""
    household, village = await household_for(actor, household_id, Role.VILLAGE_ADMIN)
    moment = now()
    async with in_transaction() as connection:
        left = await HouseholdMember.filter(household_id=household.id, left_at=None).using_db(
            connection).update(left_at=moment)
        await Household.filter(id=household.id).using_db(connection).update(head_id=None)
        await audit.record(actor, "households:dissolve", connection=connection,
                           subject=f"household:{household.id}", town_id=village.town_id,
                           village_id=village.id, data={"members": left})
    return left


async def remove_member(*, actor: User, household_id: int, user_id: int) -> None:
    """The resident leaves (their time as a member is kept). The head leaving hands the
    headship to the longest-standing member left, if any. Removing a resident of the
    village who is not a member changes nothing (a retried DELETE answers as the first)."""
    household, village = await household_for(actor, household_id, Role.VILLAGE_ADMIN)
    await _resident_of(village, user_id)
    async with in_transaction() as connection:
        if await _leave(connection, household.id, user_id, now()):
            await audit.record(actor, "households:member:remove", connection=connection,
                               subject=f"household:{household.id}", town_id=village.town_id,
                               village_id=village.id, data={"user": user_id})


async def village_households(village: Village) -> list[tuple[Household, int, int,
                                                               tuple[int, int] | None]]:
    """(household, current members, points this year, latest (year, stars)) of the village's
    households with anyone in them, by name."""
    households = await Household.filter(village_id=village.id).order_by("name", "id")
    ids = [h.id for h in households]
    sizes: dict[int, int] = {}
    for household_id in await HouseholdMember.filter(household_id__in=ids, left_at=None
                                                     ).values_list("household_id", flat=True):
        sizes[household_id] = sizes.get(household_id, 0) + 1
    since = period_start("year", now())
    rows = await fetch(conn(), _EARNED + " JOIN households h ON h.id = m.household_id"
                       " WHERE h.village_id = ? AND e.created_at >= ? GROUP BY m.household_id",
                       [village.id, since]) if ids else []
    year_points = {row["household_id"]: int(row["points"]) for row in rows}
    stars = await latest_stars(ids)
    return [(h, sizes.get(h.id, 0), year_points.get(h.id, 0), stars.get(h.id))
            for h in households if sizes.get(h.id)]


async def rated_in(village: Village, year: int) -> list[tuple[Household, HouseholdRating]]:
    """The village's households rated for `year`, most stars first, then by name."""
    ratings = await HouseholdRating.filter(household__village_id=village.id, year=year
                                           ).prefetch_related("household")
    return sorted(((r.household, r) for r in ratings),
                  key=lambda pair: (-pair[1].stars, pair[0].name))


async def household_of(user_id: int) -> Household | None:
    """The resident's current household."""
    membership = await HouseholdMember.filter(user_id=user_id, left_at=None).first()
    return await Household.get_or_none(id=membership.household_id) if membership else None


async def members(household_id: int) -> list[Member]:
    rows = await HouseholdMember.filter(household_id=household_id, left_at=None).order_by(
        "joined_at", "id").prefetch_related("user")
    return [Member(row.user_id, row.user.display_name) for row in rows]


def _since(period: str, moment: datetime) -> datetime | None:
    return None if period == "all" else period_start(period, moment)


_EARNED = (
    "SELECT m.household_id, COALESCE(SUM(e.delta), 0) AS points FROM household_members m"
    " JOIN ledger_entries e ON e.user_id = m.user_id AND e.counts_as_earned"
    " AND e.created_at >= m.joined_at AND (m.left_at IS NULL OR e.created_at < m.left_at)")


async def points(household_id: int) -> dict[str, int]:
    """The members' earned points in each period, counted while they were members."""
    moment = now()
    found = {}
    for period in PERIODS:
        since = _since(period, moment)
        rows = await fetch(conn(), _EARNED + " WHERE m.household_id = ?"
                           + (" AND e.created_at >= ?" if since else "")
                           + " GROUP BY m.household_id",
                           [household_id, *([since] if since else [])])
        found[period] = int(rows[0]["points"]) if rows else 0
    return found


async def latest_stars(household_ids: list[int]) -> dict[int, tuple[int, int]]:
    """{household: (year, stars)} of each one's latest rating."""
    found: dict[int, tuple[int, int]] = {}
    for rating in await HouseholdRating.filter(household_id__in=household_ids).order_by(
            "year"):
        found[rating.household_id] = (rating.year, rating.stars)
    return found


@dataclass(frozen=True)
class BoardLine:
    rank: int
    name: str
    points: int
    stars: int | None


async def board(village_id: int, period: str, *, limit: int = 50,
                keep: float = 0) -> list[BoardLine]:
    """The village's households by points earned in the period, names masked (赵*家).
    `keep`: seconds this worker may answer with a board it worked out that long ago
    (BOARD_CACHE_SECONDS, kept as the residents' boards are: boards/kept.py)."""
    moment = now()

    async def work() -> list[BoardLine]:
        return await board_between(village_id, _since(period, moment), None, limit=limit,
                                   period=period)

    return await _BOARDS.get((village_id, period_key(period, moment), limit), keep, work)


def board_kept(village_id: int, period: str, *, limit: int, keep: float) -> bool:
    """Whether this worker holds the board, fresh (its village was found lately)."""
    return _BOARDS.fresh((village_id, period_key(period, now()), limit), keep)


# Household boards this worker worked out lately: (village, period key, limit) → lines
_BOARDS = Kept()


async def board_between(village_id: int, since: datetime | None, until: datetime | None, *,
                        limit: int = 50, mask: bool = True,
                        period: str | None = None) -> list[BoardLine]:
    """The village's households by points earned from `since` until before `until` (either
    open), names masked unless `mask` is False (the committee's monthly report).

    A whole calendar `period` (week, month, year, all) is read from the members' period
    totals (`earning_totals`, what the residents' boards read) for every member who belonged
    the whole period, and from the ledger only for those who joined or left within it.
    One statement with the households' names and latest stars: a worker reads each of a
    town's 300 villages' boards every few seconds (five had kept it behind, p99 460 ms)."""
    parts: list[str] = []
    values: list[object] = []
    partial, partial_values = "", []
    if period is not None:
        whole = ("m.left_at IS NULL AND " + (
            "m.joined_at <= ?" if since is not None else
            # belonged since before their first earned entry (a subquery per member: as
            # NOT EXISTS the planner anti-joined the whole ledger, 107 ms against 24)
            "m.joined_at <= COALESCE((SELECT min(b.created_at) FROM ledger_entries b"
            " WHERE b.user_id = m.user_id AND b.counts_as_earned), m.joined_at)"))
        whole_values = [since] if since is not None else []
        # From the village's totals of the period (the index the residents' board reads:
        # only those who earned in it), each to its member's household.
        parts.append("SELECT m.household_id, t.total AS points FROM earning_totals t"
                     " JOIN household_members m ON m.user_id = t.user_id"
                     " JOIN households h ON h.id = m.household_id"
                     " AND h.village_id = t.village_id"
                     f" WHERE t.village_id = ? AND t.kind = ? AND t.period = ? AND {whole}")
        values += [village_id, ALL_KINDS, period_key(period, since or now()), *whole_values]
        # the others: those who joined or left within the period (found by the indexes on
        # joined_at and left_at, not among all of the village's households; one who left
        # before it began earned nothing in it)
        partial, partial_values = (
            (" AND (m.joined_at > ? OR m.left_at > ?)", [since, since]) if since is not None
            else (f" AND NOT ({whole})", whole_values))
    where = " WHERE h.village_id = ?" + partial
    values += [village_id, *partial_values]
    if since is not None:
        where += " AND e.created_at >= ?"
        values.append(since)
    if until is not None:
        where += " AND e.created_at < ?"
        values.append(until)
    parts.append(_EARNED + " JOIN households h ON h.id = m.household_id" + where
                 + " GROUP BY m.household_id")
    rows = await fetch(conn(), (
        "SELECT s.household_id, SUM(s.points) AS score, h.name,"
        " (SELECT r.stars FROM household_ratings r WHERE r.household_id = s.household_id"
        "  ORDER BY r.year DESC LIMIT 1) AS stars"
        f" FROM ({' UNION ALL '.join(parts)}) s JOIN households h ON h.id = s.household_id"
        " GROUP BY s.household_id, h.name HAVING SUM(s.points) > 0"
        " ORDER BY score DESC, s.household_id LIMIT ?"), [*values, limit])
    lines, rank, last = [], 0, None
    for n, row in enumerate(rows, start=1):
        score = int(row["score"])
        rank = rank if score == last else n
        last = score
        lines.append(BoardLine(rank, masked(row["name"]) if mask else row["name"], score,
                               row["stars"]))
    return lines


def masked(name: str) -> str:
    """赵建国家 → 赵*家: the first character and the last, as public pages show names."""
    name = name.strip()
    if name.endswith("家") and len(name) > 1:
        return mask_name(name[:-1])[:1] + "*家"
    return mask_name(name)


async def evidence(household_id: int, year: int) -> dict[str, int]:
    """What Torreya knows of the household's year, for the rating's criteria: its members'
    entries of each kind while members (patrols, pledges, reports, check-ins)."""
    start = datetime(year, 1, 1, tzinfo=LOCAL).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=LOCAL).astimezone(UTC)
    rows = await fetch(conn(), (
        "SELECT e.kind, COUNT(*) AS n FROM household_members m JOIN ledger_entries e"
        " ON e.user_id = m.user_id AND e.created_at >= m.joined_at"
        " AND (m.left_at IS NULL OR e.created_at < m.left_at)"
        " WHERE m.household_id = ? AND e.created_at >= ? AND e.created_at < ? AND e.delta > 0"
        " GROUP BY e.kind"), [household_id, start, end])
    return {row["kind"]: int(row["n"]) for row in rows}


async def rate(*, actor: User, household_id: int, year: int, stars: int,
               note: str) -> HouseholdRating:
    """The year's rating (village admin and up). With the town's star_bonus, the head of
    household is credited stars × bonus in the same transaction. Raises already_rated."""
    household, village = await household_for(actor, household_id, Role.VILLAGE_ADMIN)
    if year > now().year:
        raise InvalidRequestError("A year still to come cannot be rated.", field="year")
    town = await Town.get(id=village.town_id)
    head = await User.get_or_none(id=household.head_id) if household.head_id else None
    try:
        async with in_transaction() as connection:
            rating = await HouseholdRating.create(household=household, year=year, stars=stars,
                                                  note=note, rated_by=actor,
                                                  using_db=connection)
            bonus = stars * town.star_bonus
            entry = None
            if bonus and head is not None and head.is_active:
                entry = await post_entry(Posting(
                    user=head, delta=bonus, kind="adjustment", actor=actor, earned=True,
                    memo=f"{year}年度星级平安户{'★' * stars}（{household.name}）",
                    idem_key=f"stars:{household.id}:{year}", source_type="household_rating",
                    source_id=rating.id), connection)
            await audit.record(actor, "households:rate", connection=connection,
                               subject=f"household:{household.id}", town_id=village.town_id,
                               village_id=village.id, entry_id=entry.id if entry else None,
                               data={"year": year, "stars": stars,
                                     "bonus": bonus if entry else 0})
    except IntegrityError:
        raise AlreadyRatedError() from None
    return rating
