"""Telling residents: the one writer of notifications and their text messages.

`notify` runs in the caller's transaction, so a notification commits with what caused it
(the outbox's dispatch, a reminder's claim) or not at all; each (resident, dedup key) is
told once however often it runs. Text messages are queued here and sent by the worker,
outside every transaction (notifications/sender.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from torreya.db import conn, fetch, now, placeholders
from torreya.models import Event, Notification, Role, User
from torreya.notifications.texts import (
    KINDS,
    REASON_CHARS,
    clip,
    local_clock,
    local_day,
    render,
    sms_send_time,
    sms_text,
)

EXPIRY_NOTICE = timedelta(days=3)


@dataclass(frozen=True, kw_only=True)
class Notice:
    user_id: int
    town_id: int | None
    kind: str
    dedup_key: str
    params: dict[str, Any] = field(default_factory=dict)
    link: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # a programming error, caught by the tests
            raise ValueError(f"unknown notification kind {self.kind!r}")


async def notify(connection: BaseDBAsyncClient, notices: Sequence[Notice]) -> int:
    """Write notices the residents were not told yet, with a text message for the kinds that
    have one when the resident has a phone and has not turned them off. Returns how many
    were new."""
    if not notices:
        return 0
    moment = now()
    values: list[object] = []
    for notice in notices:
        values += [notice.user_id, notice.town_id, notice.kind,
                   json.dumps(notice.params, ensure_ascii=False), notice.link,
                   notice.dedup_key, moment]
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(notices))
    made = await fetch(connection, (
        "INSERT INTO notifications (user_id, town_id, kind, params, link, dedup_key,"
        f" created_at) VALUES {rows} ON CONFLICT (user_id, dedup_key) DO NOTHING"
        " RETURNING id, user_id, dedup_key"), values)
    if not made:
        return 0
    by_key = {(n.user_id, n.dedup_key): n for n in notices}
    wanted = {row["user_id"] for row in made
              if KINDS[by_key[(row["user_id"], row["dedup_key"])].kind][1]}
    phones: dict[int, str] = {}
    if wanted:
        marks = ", ".join("?" * len(wanted))
        for person in await fetch(connection, (
                f"SELECT id, phone FROM users WHERE id IN ({marks}) AND is_active"
                " AND sms_notifications AND phone IS NOT NULL AND phone <> ''"),
                sorted(wanted)):
            phones[person["id"]] = person["phone"]
    send_at = sms_send_time(moment)
    sms: list[object] = []
    for row in made:
        notice = by_key[(row["user_id"], row["dedup_key"])]
        text = sms_text(notice.kind, notice.params)
        if text is not None and row["user_id"] in phones:
            sms += [row["id"], row["user_id"], phones[row["user_id"]], text, "pending",
                    send_at, 0, "", moment]
    if sms:
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * (len(sms) // 9))
        await connection.execute_query(placeholders(connection, (
            "INSERT INTO sms_messages (notification_id, user_id, phone, text, status,"
            f" send_after, attempts, last_error, created_at) VALUES {rows}")), sms)
    return len(made)


# -- from the outbox (called by the worker's dispatch, in its transaction) ---------------------


async def notices_from_outbox(connection: BaseDBAsyncClient,
                              messages: Sequence[dict]) -> list[Notice]:
    """What residents are told about the outbox messages being dispatched."""
    notices: list[Notice] = []
    currencies: dict[int, str] = {}

    async def currency(town_id: int) -> str:
        if town_id not in currencies:
            rows = await fetch(connection, "SELECT currency_name FROM towns WHERE id = ?",
                               [town_id])
            currencies[town_id] = rows[0]["currency_name"] if rows else ""
        return currencies[town_id]

    for message in messages:
        kind = message["event_type"]
        if kind not in ("report.status_changed", "patrol.approved", "redemption.expired"):
            continue
        payload = message["payload"]
        data = payload if isinstance(payload, dict) else json.loads(payload)
        town = message["town_id"]
        if kind == "report.status_changed":
            notices += await _report_notices(connection, data, town, await currency(town))
        elif kind == "patrol.approved":
            route = await fetch(connection, "SELECT name FROM routes WHERE id = ?",
                                [data["route_id"]])
            name = clip(route[0]["name"]) if route else ""
            notices += [Notice(user_id=award["user_id"], town_id=town, kind="patrol_approved",
                               dedup_key=f"patrol:{data['id']}",
                               params={"route": name, "points": award["points"],
                                       "currency": await currency(town)}, link="/me/ledger")
                        for award in data["awards"] if award["points"] > 0]
        else:
            reward = await fetch(connection, "SELECT name FROM rewards WHERE id = ?",
                                 [data["reward_id"]])
            notices.append(Notice(
                user_id=data["user_id"], town_id=town, kind="voucher_expired",
                dedup_key=f"voucher:{data['id']}:expired", link="/vouchers",
                params={"reward": clip(reward[0]["name"]) if reward else "",
                        "points": data["cost"], "currency": await currency(town)}))
    return notices


async def _report_notices(connection: BaseDBAsyncClient, data: dict, town: int,
                          currency: str) -> list[Notice]:
    rows = await fetch(connection, "SELECT user_id FROM reports WHERE id = ?", [data["id"]])
    if not rows:
        return []
    status, params = data["status"], {"category": data["category"]}
    if status == "accepted":
        kind = "report_accepted" if data["points"] else "report_accepted_no_points"
        if data["points"]:
            params |= {"points": data["points"], "currency": currency}
    elif status in ("in_progress", "resolved"):
        kind = f"report_{status}"
    elif status == "rejected":
        kind = "report_rejected"
        note = await fetch(connection, "SELECT note FROM report_updates WHERE report_id = ?"
                           " ORDER BY id DESC LIMIT 1", [data["id"]])
        params["reason"] = clip(note[0]["note"] if note else "", REASON_CHARS)
    else:
        return []
    return [Notice(user_id=rows[0]["user_id"], town_id=town, kind=kind,
                   dedup_key=f"report:{data['id']}:{status}", params=params,
                   link=f"/reports/{data['id']}")]


# -- reminders (housekeeping; safe from every worker at once) ----------------------------------


async def remind_expiring_vouchers(*, limit: int = 500) -> int:
    """Tell residents, once, that a voucher they have not collected expires within 3 days."""
    moment = now()
    due = await fetch(conn(), (
        "SELECT r.id, r.user_id, r.town_id, r.expires_at, w.name FROM redemptions r"
        " JOIN rewards w ON w.id = r.reward_id WHERE r.status = ? AND r.expires_at > ?"
        " AND r.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM notifications n"
        " WHERE n.user_id = r.user_id AND n.dedup_key = 'voucher:' || r.id || ':expiring')"
        " ORDER BY r.id LIMIT ?"), ["pending", moment, moment + EXPIRY_NOTICE, limit])
    notices = [Notice(user_id=row["user_id"], town_id=row["town_id"], kind="voucher_expiring",
                      dedup_key=f"voucher:{row['id']}:expiring", link=f"/vouchers/{row['id']}",
                      params={"reward": clip(row["name"]),
                              "on": local_day(_moment(row["expires_at"]))})
               for row in due]
    async with in_transaction() as connection:
        return await notify(connection, notices)


async def remind_events() -> int:
    """The day before an event whose committee asked for it, tell the village's residents.
    Each event is claimed by a conditional update, so it is announced once."""
    moment = now()
    tomorrow = local_day(moment + timedelta(days=1))
    told = 0
    candidates = await Event.filter(remind_day_before=True, reminded_at=None,
                                    starts_at__gt=moment,
                                    starts_at__lte=moment + timedelta(days=2))
    for event in candidates:
        if local_day(event.starts_at) != tomorrow:
            continue
        async with in_transaction() as connection:
            claimed = await Event.filter(id=event.id, reminded_at=None).using_db(
                connection).update(reminded_at=moment)
            if not claimed:
                continue
            residents = await User.filter(village_id=event.village_id, role=Role.RESIDENT,
                                          is_active=True).using_db(connection).values_list(
                                              "id", flat=True)
            params = {"title": clip(event.title), "time": local_clock(event.starts_at)}
            kind = "event_reminder"
            if event.place:
                kind, params = "event_reminder_at", params | {"place": clip(event.place)}
            notices = [Notice(user_id=uid, town_id=event.town_id, kind=kind,
                              dedup_key=f"event:{event.id}:reminder", params=params)
                       for uid in residents]
            for start in range(0, len(notices), 200):
                told += await notify(connection, notices[start:start + 200])
    return told


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# -- reading ----------------------------------------------------------------------------------


async def unread_count(user: User) -> int:
    return await Notification.filter(user_id=user.id, read_at=None).count()


@dataclass(frozen=True)
class Shown:
    id: int
    kind: str
    text: str
    link: str
    created_at: datetime
    read: bool


async def inbox(user: User, *, limit: int = 50) -> list[Shown]:
    """The newest notifications, rendered in the current language."""
    rows = await Notification.filter(user_id=user.id).order_by("-id").limit(limit)
    return [Shown(n.id, n.kind, render(n.kind, n.params), n.link, n.created_at,
                  n.read_at is not None) for n in rows]


async def mark_read(user: User) -> int:
    return await Notification.filter(user_id=user.id, read_at=None).update(read_at=now())
