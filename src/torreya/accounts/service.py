"""Commands on tenants and people: towns, villages, users, logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts import passwords, sessions
from torreya.accounts.permissions import (
    assignable_roles,
    in_village,
    require_over,
    require_role,
    require_town,
    require_village,
)
from torreya.accounts.roster import RosterProblem, parse_roster
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError, InvalidCredentialsError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.rules import ensure_default_rules
from torreya.models import Household, HouseholdMember, Role, Town, User, Village
from torreya.security import (
    hash_password,
    release_login_attempt,
    reserve_login_attempt,
    verify_password,
)
from torreya.settings import Settings
from torreya.signin.phones import normalize_phone


class UsernameTakenError(ConflictError):
    code = "username_taken"
    message = "The username %(username)s is already taken."


class CodeTakenError(ConflictError):
    code = "code_taken"
    message = "The code %(value)s is already in use."


async def authenticate(settings: Settings, *, username: str, password: str, ip: str) -> User:
    """The active user with these credentials.

    Raises TooManyAttemptsError while throttled, InvalidCredentialsError otherwise.
    """
    username = username.strip()
    reserved = await reserve_login_attempt(settings, username=username, ip=ip)
    user = await User.get_or_none(username=username)
    if not await verify_password(user.password_hash if user else None, password) or not (
        user and user.is_active
    ):
        await audit.record(user, "accounts:login:fail", connection=None,
                           subject=f"username:{username[:40]}")
        raise InvalidCredentialsError()
    await release_login_attempt(username=username, reserved=reserved)
    return user


async def create_town(*, actor: User, name: str, code: str, currency_name: str) -> Town:
    if actor.role != Role.PLATFORM_ADMIN:
        raise ForbiddenError()
    try:
        async with in_transaction() as connection:
            town = await Town.create(name=name, code=code, currency_name=currency_name)
            await ensure_default_rules(town)
            await audit.record(actor, "accounts:town:create", connection=connection,
                               subject=f"town:{town.id}", town_id=town.id,
                               data={"name": name, "code": code})
    except IntegrityError:
        raise CodeTakenError(value=code, field="code") from None
    return town


async def get_town_for(actor: User, town_id: int) -> Town:
    town = await Town.get_or_none(id=town_id)
    if town is None:
        raise NotFoundError()
    require_town(actor, town.id, Role.RESIDENT)
    return town


async def create_village(*, actor: User, town_id: int, name: str, code: str) -> Village:
    town = await Town.get_or_none(id=town_id)
    if town is None:
        raise NotFoundError()
    require_town(actor, town.id, Role.TOWN_ADMIN)
    try:
        async with in_transaction() as connection:
            village = await Village.create(town=town, name=name, code=code, using_db=connection)
            await audit.record(actor, "accounts:village:create", connection=connection,
                               subject=f"village:{village.id}", town_id=town.id,
                               village_id=village.id, data={"name": name, "code": code})
    except IntegrityError:
        raise CodeTakenError(value=code, field="code") from None
    return village


async def resolve_village(actor: User, village_id: int | None) -> Village:
    """A village the actor can reach; others' are reported as not found."""
    village = await Village.get_or_none(id=village_id) if village_id else None
    if village is None or not in_village(actor, village):
        raise NotFoundError("Village not found.", field="village_id")
    return village


@dataclass(frozen=True, kw_only=True)
class NewUser:
    username: str
    display_name: str
    password: str | None
    role: Role
    village_id: int | None = None
    town_id: int | None = None
    phone: str | None = None


async def _placement(actor: User, new: NewUser) -> tuple[int | None, int | None]:
    """(town_id, village_id) for the new user, checked against the actor's reach."""
    if new.role not in assignable_roles(actor):
        raise ForbiddenError("You may not create a user with this role.")
    if new.village_id is not None:
        village = await resolve_village(actor, new.village_id)
        return village.town_id, village.id
    if new.role == Role.TOWN_ADMIN:
        town_id = new.town_id if new.town_id is not None else actor.town_id
        if town_id is None or not await Town.exists(id=town_id):
            raise NotFoundError("Town not found.", field="town_id")
        require_town(actor, town_id, Role.TOWN_ADMIN)
        return town_id, None
    raise NotFoundError("Village not found.", field="village_id")


async def create_user(*, actor: User, new: NewUser, audit_it: bool = True) -> User:
    """Create a login. Raises UsernameTakenError (409), ForbiddenError, NotFoundError."""
    require_role(actor, Role.VILLAGE_ADMIN)
    phone = normalize_phone(new.phone) if new.phone else None
    if new.password:
        passwords.check(new.password, role=new.role, username=new.username, phone=phone)
    town_id, village_id = await _placement(actor, new)
    password_hash = await hash_password(new.password) if new.password else None
    try:
        async with in_transaction() as connection:
            user = await User.create(
                username=new.username,
                display_name=new.display_name,
                password_hash=password_hash,
                role=new.role,
                town_id=town_id,
                village_id=village_id,
                phone=phone,
                using_db=connection,
            )
            if audit_it:
                await audit.record(actor, "accounts:user:create", connection=connection,
                                   subject=f"user:{user.id}", town_id=town_id,
                                   village_id=village_id,
                                   data={"username": user.username, "role": str(new.role)})
    except IntegrityError:
        raise UsernameTakenError(username=new.username, field="username") from None
    return user


async def create_platform_admin(*, username: str, password: str) -> User:
    passwords.check(password, role=Role.PLATFORM_ADMIN, username=username)
    password_hash = await hash_password(password)
    try:
        async with in_transaction() as connection:
            user = await User.create(username=username, display_name=username,
                                     password_hash=password_hash, role=Role.PLATFORM_ADMIN,
                                     using_db=connection)
            await audit.record(None, "accounts:admin:create", connection=connection,
                               subject=f"user:{user.id}",
                               data={"username": username, "via": "cli"})
    except IntegrityError:
        raise UsernameTakenError(username=username, field="username") from None
    return user


@dataclass(frozen=True)
class ImportResult:
    created: int
    problems: list


async def import_residents(*, actor: User, village: Village, data: bytes,
                           progress=None) -> ImportResult:
    """Import a CSV roster into a village: all rows or none.

    Returns the number created, or the problems (with line numbers) and nothing written.
    `progress(done, total)` is called while passwords are hashed (the slow part).
    """
    require_village(actor, village, Role.VILLAGE_ADMIN)
    rows, problems = parse_roster(data)
    # A made-up username: the village's code and 8 random hex digits (never the phone).
    rows = [r if r.username else replace(r, username=f"{village.code}_{secrets.token_hex(4)}")
            for r in rows]
    if not problems:
        taken = set(await User.filter(username__in=[r.username for r in rows])
                    .values_list("username", flat=True))
        problems = [RosterProblem(r.line, _("Line %(line)s: username %(username)s is already "
                                            "taken.", line=r.line, username=r.username))
                    for r in rows if r.username in taken]
    if problems:
        await audit.record(actor, "accounts:roster:refuse", connection=None,
                           subject=f"village:{village.id}",
                           town_id=village.town_id, village_id=village.id,
                           data={"problems": len(problems)})
        return ImportResult(0, problems)
    users = []
    for done, row in enumerate(rows, start=1):
        users.append(User(username=row.username, display_name=row.name, phone=row.phone,
                          password_hash=await hash_password(row.password) if row.password else None,
                          role=Role.RESIDENT, town_id=village.town_id, village_id=village.id))
        if progress:
            progress(done, len(rows))
    try:
        async with in_transaction() as connection:
            await User.bulk_create(users, batch_size=500, using_db=connection)
            homes = await _settle_households(connection, village, rows)
            await audit.record(actor, "accounts:roster:import", connection=connection,
                               subject=f"village:{village.id}", town_id=village.town_id,
                               village_id=village.id,
                               data={"created": len(users), "households": homes})
    except IntegrityError:
        # Someone took a username between our check and the insert: nothing was written.
        return ImportResult(0, [RosterProblem(0, _("A username was taken meanwhile; "
                                                   "please import again."))])
    return ImportResult(len(users), [])


async def _settle_households(connection, village: Village, rows: list) -> int:
    """The roster's 户 column: residents of one household name together, the first listed
    its head, in the village's household of that name if there is one. Returns how many
    households were made."""
    named = [r for r in rows if r.household]
    if not named:
        return 0
    ids = dict(await User.filter(username__in=[r.username for r in named]).using_db(
        connection).values_list("username", "id"))
    moment = now()
    made = 0
    for name in dict.fromkeys(r.household for r in named):
        people = [ids[r.username] for r in named if r.household == name]
        home = await Household.filter(village_id=village.id, name=name).using_db(
            connection).order_by("id").first()
        if home is None:
            home = await Household.create(town_id=village.town_id, village=village, name=name,
                                          head_id=people[0], using_db=connection)
            made += 1
        await HouseholdMember.bulk_create(
            [HouseholdMember(household=home, user_id=uid, joined_at=moment) for uid in people],
            using_db=connection)
    return made


async def end_sessions(*, actor: User, target: User) -> None:
    """End every session cookie and bearer token of `target` at once, the actor's own
    included when they are the same ("log out everywhere"). For someone else it is the
    "lost phone" action: staff and admins over a person of lower rank in their reach.

    Raises not_found (out of reach), forbidden (not above the target). Audited.
    """
    if actor.id != target.id:
        require_over(actor, target, Role.STAFF)
        if actor.role != Role.PLATFORM_ADMIN and target.rank >= actor.rank:
            raise ForbiddenError("You can only do this for people below you.")
    async with in_transaction() as connection:
        await sessions.end_all(connection, target)
        await audit.record(actor, "accounts:sessions:revoke", connection=connection,
                           subject=f"user:{target.id}", town_id=target.town_id,
                           village_id=target.village_id)


async def change_password(settings: Settings, *, user: User, current: str, new: str,
                          ip: str) -> User:
    """Set a new password after checking the current one (throttled like a login). Every
    login of the user ends, this one too: the caller starts a fresh one for this device.

    Raises InvalidCredentialsError, TooManyAttemptsError, WeakPasswordError.
    """
    passwords.check(new, role=user.role, username=user.username, phone=user.phone,
                    field="new_password")
    reserved = await reserve_login_attempt(settings, username=user.username, ip=ip)
    if not await verify_password(user.password_hash, current):
        await audit.record(user, "accounts:password:fail", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id)
        raise InvalidCredentialsError("The current password is wrong.")
    await release_login_attempt(username=user.username, reserved=reserved)
    async with in_transaction() as connection:
        await User.filter(id=user.id).using_db(connection).update(
            password_hash=await hash_password(new))
        await sessions.end_all(connection, user)
        await audit.record(user, "accounts:password:change", connection=connection,
                           subject=f"user:{user.id}", village_id=user.village_id)
    return await User.get(id=user.id)
