"""Scheme packs: a town's currency, earning rules and catalog as one TOML file.

`check_pack` validates and names every problem with file, line and field;
`import_pack` is the only writer of scheme rows from files (create or update, never delete);
`export_pack` writes a town's scheme back out.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.boards.levels import BADGE_RULES, DEFAULT_BADGES, DEFAULT_LEVELS
from torreya.db import now
from torreya.errors import DomainError, InvalidRequestError
from torreya.i18n import gettext as _
from torreya.images import reencode_image
from torreya.ledger.expiry import RULES as EXPIRY_RULES
from torreya.ledger.rules import ACTIVITY_KINDS, ensure_default_rules
from torreya.models import (
    EarningRule,
    Reward,
    RewardCategory,
    RewardImage,
    StockMovement,
    Town,
    User,
    Village,
)
from torreya.rewards.service import LIMIT_PERIODS
from torreya.settings import LOCAL

# What a star criterion may be prefilled from: the household's entries of that kind in the year
STAR_SOURCES = ("checkin", "patrol", "pledge", "report")
KINDS = tuple(k.kind for k in ACTIVITY_KINDS)
CATEGORIES = tuple(c.value for c in RewardCategory)
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class PackProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class RulePack:
    kind: str
    points: int
    cap_day: int | None = None
    cap_month: int | None = None
    cap_year: int | None = None
    needs_review: bool = False


@dataclass
class RewardPack:
    key: str
    name: str
    cost: int
    category: str = "goods"
    description: str = ""
    stock: int | None = None
    per_user_limit: int | None = None
    limit_period: str | None = None
    village: str | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    # A picture beside the pack file ("images/rice-5jin.jpg"), re-encoded when the file is
    # read: (JPEG bytes, content type). A pack pasted into the console has no folder, so
    # there its pictures are left as they are.
    image: str | None = None
    picture: tuple[bytes, str] | None = None


@dataclass
class Pack:
    name: str
    currency_name: str
    town_code: str | None = None
    town_name: str | None = None
    voucher_days: int = 30
    expiry: str = "none"  # 积分有效期: ledger/expiry.py RULES
    star_bonus: int = 0  # points per star of a household's yearly rating, to its head
    star_criteria: list[dict] | None = None  # [{name, weight, source}] (星级平安户)
    rules: list[RulePack] = field(default_factory=list)
    rewards: list[RewardPack] = field(default_factory=list)
    levels: list[dict] | None = None
    badges: list[dict] | None = None


class _Lines:
    """Finds the line of `[[table]]` number n, or of a key inside it (tomllib has none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of(self, table: str, index: int | None = None, key: str | None = None) -> int:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen, start = -1, None
        for number, line in enumerate(self.lines, start=1):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = number
                    break
        if start is None:
            return 1
        if key is None:
            return start
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if line.lstrip().startswith("["):
                break
            if re.match(rf"^\s*{re.escape(key)}\s*=", line):
                return number
        return start


class _Checker:
    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.lines = _Lines(text)
        self.problems: list[PackProblem] = []

    def problem(self, table: str, index: int | None, key: str | None, message: str) -> None:
        where = f"{table}[{index}]" if index is not None else table
        self.problems.append(PackProblem(self.filename, self.lines.of(table, index, key),
                                         f"{where}.{key}" if key else where, message))

    def text(self, data, table, index, key, *, required=True, max_length=80):
        value = data.get(key)
        if value is None:
            if required:
                self.problem(table, index, None, _("missing field %(field)s", field=key))
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(table, index, key, _("must be non-empty text"))
            return None
        if len(value) > max_length:
            self.problem(table, index, key, _("longer than %(max)s characters", max=max_length))
            return None
        if re.search(r"[<>]", value):
            self.problem(table, index, key, _("may not contain < or >"))
            return None
        return value.strip()

    def integer(self, data, table, index, key, *, required=False, minimum=0, maximum=10**6):
        value = data.get(key)
        if value is None:
            if required:
                self.problem(table, index, None, _("missing field %(field)s", field=key))
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(table, index, key, _("must be a whole number"))
            return None
        if not minimum <= value <= maximum:
            self.problem(table, index, key, _("must be between %(min)s and %(max)s",
                                              min=minimum, max=maximum))
            return None
        return value

    def moment(self, data, table, index, key):
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=LOCAL)
        if isinstance(value, date):
            end = time.max if key.endswith("until") else time.min
            return datetime.combine(value, end, tzinfo=LOCAL)
        self.problem(table, index, key, _("must be a date (2026-01-31) or date-time"))
        return None


def check_pack(text: str, filename: str = "<pack>", folder: Path | None = None
               ) -> tuple[Pack | None, list[PackProblem]]:
    """The pack in `text`, or None and every problem found. `folder`: where the pack file
    lives, to read the pictures its items name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        return None, [PackProblem(filename, int(match[1]) if match else 1, "syntax",
                                  str(error))]
    c = _Checker(filename, text)
    scheme = data.get("scheme")
    if not isinstance(scheme, dict):
        c.problem("scheme", None, None, _("missing [scheme] table"))
        return None, c.problems
    for unknown in set(data) - {"scheme", "rules", "rewards", "levels", "badges",
                                "star_criteria"}:
        c.problems.append(PackProblem(filename, 1, unknown, _("unknown table")))
    pack = Pack(name=c.text(scheme, "scheme", None, "name") or "",
                currency_name=c.text(scheme, "scheme", None, "currency_name",
                                     max_length=32) or "",
                town_code=c.text(scheme, "scheme", None, "town_code", required=False,
                                 max_length=32),
                town_name=c.text(scheme, "scheme", None, "town_name", required=False,
                                 max_length=100),
                voucher_days=c.integer(scheme, "scheme", None, "voucher_days", minimum=1,
                                       maximum=3650) or 30)
    expiry = c.text(scheme, "scheme", None, "expiry", required=False, max_length=16)
    if expiry is not None and expiry not in EXPIRY_RULES:
        c.problem("scheme", None, "expiry", _("must be one of %(choices)s",
                                              choices=", ".join(EXPIRY_RULES)))
    pack.expiry = expiry if expiry in EXPIRY_RULES else "none"
    pack.star_bonus = c.integer(scheme, "scheme", None, "star_bonus", maximum=10_000) or 0
    if "star_criteria" in data:
        pack.star_criteria = []
    for index, item in enumerate(_tables(c, data, "star_criteria")):
        source = item.get("source")
        if source is not None and source not in STAR_SOURCES:
            c.problem("star_criteria", index, "source", _("must be one of %(choices)s",
                                                          choices=", ".join(STAR_SOURCES)))
            source = None
        pack.star_criteria.append({
            "name": c.text(item, "star_criteria", index, "name", max_length=40) or "",
            "weight": c.integer(item, "star_criteria", index, "weight", minimum=1,
                                maximum=100) or 1,
            "source": source})
    seen_kinds: set[str] = set()
    for index, rule in enumerate(_tables(c, data, "rules")):
        kind = rule.get("kind")
        if kind not in KINDS:
            c.problem("rules", index, "kind" if "kind" in rule else None,
                      _("kind must be one of %(choices)s", choices=", ".join(KINDS)))
            continue
        if kind in seen_kinds:
            c.problem("rules", index, "kind", _("rule for %(kind)s given twice", kind=kind))
        seen_kinds.add(kind)
        review = rule.get("needs_review", False)
        if not isinstance(review, bool):
            c.problem("rules", index, "needs_review", _("must be true or false"))
        pack.rules.append(RulePack(
            kind=kind, points=c.integer(rule, "rules", index, "points", required=True) or 0,
            cap_day=c.integer(rule, "rules", index, "cap_day"),
            cap_month=c.integer(rule, "rules", index, "cap_month"),
            cap_year=c.integer(rule, "rules", index, "cap_year"),
            needs_review=review is True))
    seen_keys: set[str] = set()
    for index, item in enumerate(_tables(c, data, "rewards")):
        key = item.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            c.problem("rewards", index, "key" if "key" in item else None,
                      _("key must be lower-case letters, digits, - _ . (e.g. rice-5kg)"))
            continue
        if key in seen_keys:
            c.problem("rewards", index, "key", _("key %(key)s given twice", key=key))
        seen_keys.add(key)
        category = item.get("category", "goods")
        if category not in CATEGORIES:
            c.problem("rewards", index, "category",
                      _("category must be one of %(choices)s", choices=", ".join(CATEGORIES)))
        period = item.get("limit_period")
        if period is not None and period not in LIMIT_PERIODS:
            c.problem("rewards", index, "limit_period",
                      _("limit_period must be one of %(choices)s",
                        choices=", ".join(LIMIT_PERIODS)))
        reward = RewardPack(
            key=key, name=c.text(item, "rewards", index, "name") or "",
            cost=c.integer(item, "rewards", index, "cost", required=True, minimum=1) or 1,
            category=category,
            description=c.text(item, "rewards", index, "description", required=False,
                               max_length=500) or "",
            stock=c.integer(item, "rewards", index, "stock"),
            per_user_limit=c.integer(item, "rewards", index, "per_user_limit", minimum=1),
            limit_period=period,
            village=c.text(item, "rewards", index, "village", required=False, max_length=32),
            available_from=c.moment(item, "rewards", index, "available_from"),
            available_until=c.moment(item, "rewards", index, "available_until"),
            image=c.text(item, "rewards", index, "image", required=False, max_length=200))
        if reward.image is not None:
            reward.picture = _picture(c, index, reward.image, folder)
        if (reward.available_from and reward.available_until
                and reward.available_until <= reward.available_from):
            c.problem("rewards", index, "available_until", _("must be after available_from"))
        pack.rewards.append(reward)
    _levels_and_badges(c, data, pack)
    return (None if c.problems else pack), c.problems


def _levels_and_badges(c: _Checker, data: dict, pack: Pack) -> None:
    if "levels" in data:
        pack.levels = []
        for index, level in enumerate(_tables(c, data, "levels")):
            name = c.text(level, "levels", index, "name", max_length=32)
            floor = c.integer(level, "levels", index, "min_points", required=True,
                              maximum=10**8)
            if name is not None and floor is not None:
                pack.levels.append({"name": name, "min_points": floor})
        if pack.levels and min(lv["min_points"] for lv in pack.levels) != 0:
            c.problem("levels", 0, "min_points", _("the first level must start at 0"))
    if "badges" in data:
        pack.badges = []
        for index, badge in enumerate(_tables(c, data, "badges")):
            rule = badge.get("rule")
            if rule not in BADGE_RULES:
                c.problem("badges", index, "rule" if "rule" in badge else None,
                          _("rule must be one of %(choices)s", choices=", ".join(BADGE_RULES)))
                continue
            name = c.text(badge, "badges", index, "name", max_length=32)
            if name is not None:
                pack.badges.append({"rule": rule, "name": name})


_PICTURE = re.compile(r"[A-Za-z0-9_./-]+\.(?:jpe?g|png|webp)", re.IGNORECASE)


def _picture(c: _Checker, index: int, name: str, folder: Path | None
             ) -> tuple[bytes, str] | None:
    """The item's picture, read from beside the pack and re-encoded as an upload is."""
    if not _PICTURE.fullmatch(name) or name.startswith("/") or ".." in name.split("/"):
        c.problem("rewards", index, "image",
                  _("image must be a .jpg, .png or .webp file beside the pack "
                    "(e.g. images/rice.jpg)"))
        return None
    if folder is None:
        return None
    path = folder / name
    if not path.is_file():
        c.problem("rewards", index, "image", _("no picture at %(path)s", path=name))
        return None
    try:
        return reencode_image(path.read_bytes())
    except DomainError as error:
        c.problem("rewards", index, "image", f"{name}: {error.text()}")
        return None


def _tables(c: _Checker, data: dict, name: str) -> list[dict]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        c.problem(name, None, None, _("write each entry as [[%(name)s]]", name=name))
        return []
    return value


def load_pack_file(path: Path) -> tuple[Pack | None, list[PackProblem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [PackProblem(str(path), 1, "file", _("not UTF-8 text"))]
    return check_pack(text, str(path), path.parent)


@dataclass(frozen=True)
class ImportResult:
    town: Town
    rules: int
    created: int
    updated: int


async def import_pack(pack: Pack, *, town: Town | None, actor: User | None,
                      town_name: str | None = None) -> ImportResult:
    """Apply a checked pack to a town (created when missing and a code is known).

    Villages named by rewards must exist in the town. Items are matched by key: new keys are
    created with their stock; known keys get their fields updated, their stock left alone
    (it has history); nothing is deleted.
    """
    async with in_transaction() as connection:
        if town is None:
            if not pack.town_code:
                raise InvalidRequestError("The pack names no town_code; pass --town.")
            town = await Town.create(name=town_name or pack.town_name or pack.name,
                                     code=pack.town_code, currency_name=pack.currency_name,
                                     voucher_days=pack.voucher_days, expiry=pack.expiry,
                                     star_bonus=pack.star_bonus, using_db=connection)
        else:
            await Town.filter(id=town.id).using_db(connection).update(
                currency_name=pack.currency_name, voucher_days=pack.voucher_days,
                expiry=pack.expiry, star_bonus=pack.star_bonus)
        if pack.star_criteria is not None:
            await Town.filter(id=town.id).using_db(connection).update(
                star_criteria=pack.star_criteria)
        if pack.levels is not None or pack.badges is not None:
            changes = {k: v for k, v in (("levels", pack.levels), ("badges", pack.badges))
                       if v is not None}
            await Town.filter(id=town.id).using_db(connection).update(**changes)
        villages = {v.code: v for v in await Village.filter(town_id=town.id)
                    .using_db(connection)}
        for rule in pack.rules:
            values = {k: v for k, v in rule.__dict__.items() if k != "kind"}
            updated = await EarningRule.filter(town_id=town.id, kind=rule.kind).using_db(
                connection).update(**values)
            if not updated:
                await EarningRule.create(town_id=town.id, kind=rule.kind, using_db=connection,
                                         **values)
        created = updated_count = 0
        for item in pack.rewards:
            village = None
            if item.village:
                village = villages.get(item.village)
                if village is None:
                    raise InvalidRequestError("Village %(code)s is not in this town.",
                                              field="village", code=item.village)
            values = {k: v for k, v in item.__dict__.items() if k not in {
                "key", "village", "stock", "image", "picture"}}
            existing = await Reward.get_or_none(town_id=town.id, key=item.key).using_db(
                connection)
            if existing is None:
                reward = await Reward.create(town_id=town.id, village=village, key=item.key,
                                             stock=item.stock, using_db=connection, **values)
                if item.stock:
                    await StockMovement.create(reward=reward, village_id=reward.village_id,
                                               town_id=town.id, delta=item.stock,
                                               reason="initial", actor=actor,
                                               created_at=now(), using_db=connection)
                created += 1
            else:
                reward = existing
                await Reward.filter(id=existing.id).using_db(connection).update(
                    village_id=village.id if village else None, **values)
                updated_count += 1
            if item.picture is not None:
                content, content_type = item.picture
                await RewardImage.filter(reward_id=reward.id).using_db(connection).delete()
                await RewardImage.create(reward_id=reward.id, content=content,
                                         content_type=content_type, using_db=connection)
                await Reward.filter(id=reward.id).using_db(connection).update(has_image=True)
        await ensure_default_rules(town)
        await audit.record(actor, "rewards:scheme:import", connection=connection,
                           subject=f"town:{town.id}", town_id=town.id,
                           data={"name": pack.name, "rules": len(pack.rules),
                                 "created": created, "updated": updated_count})
    town = await Town.get(id=town.id)
    return ImportResult(town, len(pack.rules), created, updated_count)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(LOCAL).isoformat()
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _toml_table(name: str, values: dict[str, Any]) -> list[str]:
    lines = [f"[[{name}]]" if name != "scheme" else "[scheme]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return lines + [""]


async def export_pack(town: Town) -> str:
    """The town's scheme as TOML that `check_pack` accepts and `import_pack` round-trips."""
    villages = {v.id: v.code for v in await Village.filter(town_id=town.id)}
    lines = [f"# {town.name} scheme pack, exported by torreya", ""]
    lines += _toml_table("scheme", {"name": f"{town.name}{town.currency_name}",
                                    "town_code": town.code, "town_name": town.name,
                                    "currency_name": town.currency_name,
                                    "voucher_days": town.voucher_days,
                                    "expiry": town.expiry, "star_bonus": town.star_bonus})
    for rule in await EarningRule.filter(town_id=town.id).order_by("id"):
        lines += _toml_table("rules", {"kind": rule.kind, "points": rule.points,
                                       "cap_day": rule.cap_day, "cap_month": rule.cap_month,
                                       "cap_year": rule.cap_year,
                                       "needs_review": rule.needs_review})

    for criterion in town.star_criteria or []:
        lines += _toml_table("star_criteria", criterion)
    for level in town.levels or DEFAULT_LEVELS:
        lines += _toml_table("levels", level)
    for badge in town.badges or DEFAULT_BADGES:
        lines += _toml_table("badges", badge)
    for reward in await Reward.filter(town_id=town.id).order_by("id"):
        lines += _toml_table("rewards", {
            "key": reward.key or f"item-{reward.id}", "name": reward.name,
            "category": str(reward.category), "description": reward.description or None,
            "cost": reward.cost, "stock": reward.stock, "per_user_limit": reward.per_user_limit,
            "limit_period": reward.limit_period,
            "village": villages.get(reward.village_id) if reward.village_id else None,
            "available_from": reward.available_from, "available_until": reward.available_until})
    return "\n".join(lines)
