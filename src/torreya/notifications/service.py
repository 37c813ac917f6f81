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
from torreya.ledger import expiry
from torreya.models import Event, Notification, Role, Town, User
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


_TOLD = ("report.status_changed", "patrol.approved", "redemption.expired")


async def _column_by_id(connection: BaseDBAsyncClient, table: str, column: str,
                        ids: set[int]) -> dict[int, object]:
    """{id: column} for the rows named (one query, whatever the number)."""
    if not ids:
        return {}
    rows = await fetch(connection, f"SELECT id, {column} FROM {table}"
                       f" WHERE id IN ({', '.join('?' * len(ids))})", sorted(ids))
    return {row["id"]: row[column] for row in rows}


async def notices_from_outbox(connection: BaseDBAsyncClient,
                              messages: Sequence[dict]) -> list[Notice]:
    """What residents are told about the outbox messages being dispatched. The names and
    people they need are read with one query per table for the whole batch."""
    told = []
    for message in messages:
        if message["event_type"] in _TOLD:
            payload = message["payload"]
            told.append((message["event_type"], message["town_id"],
                         payload if isinstance(payload, dict) else json.loads(payload)))
    if not told:
        return []
    currencies = await _column_by_id(connection, "towns", "currency_name",
                                     {town for _k, town, _d in told})
    reporters = await _column_by_id(connection, "reports", "user_id", {
        d["id"] for k, _t, d in told if k == "report.status_changed"})
    routes = await _column_by_id(connection, "routes", "name", {
        d["route_id"] for k, _t, d in told if k == "patrol.approved"})
    rewards = await _column_by_id(connection, "rewards", "name", {
        d["reward_id"] for k, _t, d in told if k == "redemption.expired"})
    reasons = await _latest_notes(connection, {
        d["id"] for k, _t, d in told
        if k == "report.status_changed" and d["status"] == "rejected"})
    followers = await _followers(connection, {
        d["id"] for k, _t, d in told if k == "report.status_changed"})
    notices: list[Notice] = []
    for kind, town, data in told:
        currency = str(currencies.get(town, ""))
        if kind == "report.status_changed":
            notice = _report_notice(data, town, currency, reporters, reasons)
            notices += [notice] if notice else []
            # those who follow the case (我也遇到了) are told of each change too
            notices += [Notice(user_id=follower, town_id=town, kind="report_followed",
                               dedup_key=f"report:{data['id']}:{data['status']}",
                               params={"category": data["category"],
                                       "status": data["status"]},
                               link=f"/reports/{data['id']}")
                        for follower in followers.get(data["id"], [])]
        elif kind == "patrol.approved":
            notices += [Notice(user_id=award["user_id"], town_id=town, kind="patrol_approved",
                               dedup_key=f"patrol:{data['id']}",
                               params={"route": clip(str(routes.get(data["route_id"], ""))),
                                       "points": award["points"], "currency": currency},
                               link="/me/ledger")
                        for award in data["awards"] if award["points"] > 0]
        else:
            notices.append(Notice(
                user_id=data["user_id"], town_id=town, kind="voucher_expired",
                dedup_key=f"voucher:{data['id']}:expired", link="/vouchers",
                params={"reward": clip(str(rewards.get(data["reward_id"], ""))),
                        "points": data["cost"], "currency": currency}))
    return notices


async def _followers(connection: BaseDBAsyncClient, report_ids: set[int]) -> dict[int, list]:
    if not report_ids:
        return {}
    rows = await fetch(connection, "SELECT report_id, user_id FROM report_followers WHERE"
                       f" report_id IN ({', '.join('?' * len(report_ids))}) ORDER BY id",
                       sorted(report_ids))
    found: dict[int, list] = {}
    for row in rows:
        found.setdefault(row["report_id"], []).append(row["user_id"])
    return found


async def _latest_notes(connection: BaseDBAsyncClient, report_ids: set[int]) -> dict[int, str]:
    """The newest feedback note of each report (the reason of a rejection)."""
    if not report_ids:
        return {}
    rows = await fetch(connection, "SELECT report_id, note FROM report_updates WHERE"
                       f" report_id IN ({', '.join('?' * len(report_ids))}) ORDER BY id",
                       sorted(report_ids))
    return {row["report_id"]: row["note"] for row in rows}  # later rows win


def _report_notice(data: dict, town: int, currency: str, reporters: dict,
                   reasons: dict) -> Notice | None:
    if data["id"] not in reporters:
        return None
    status, params = data["status"], {"category": data["category"]}
    if status == "accepted":
        kind = "report_accepted" if data["points"] else "report_accepted_no_points"
        if data["points"]:
            params |= {"points": data["points"], "currency": currency}
    elif status in ("in_progress", "resolved"):
        kind = f"report_{status}"
    elif status == "rejected":
        kind = "report_rejected"
        params["reason"] = clip(reasons.get(data["id"], ""), REASON_CHARS)
    else:
        return None
    return Notice(user_id=int(reporters[data["id"]]), town_id=town, kind=kind,
                  dedup_key=f"report:{data['id']}:{status}", params=params,
                  link=f"/reports/{data['id']}")


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


async def remind_expiring_points(*, days: int = 30) -> int:
    """Tell residents, once a year (year-end expiry) or once a month (12-month expiry), how
    many of their points expire within `days` (积分有效期)."""
    moment = now()
    told = 0
    for town in await Town.exclude(expiry="none"):
        notice = expiry.notice_of(town.expiry, moment, days)
        soon = await expiry.expiring_soon(town, days=days, moment=moment)
        if notice is None or not soon:
            continue
        by, key = notice
        notices = [Notice(user_id=user_id, town_id=town.id, kind="points_expiring",
                          dedup_key=key, link="/me/ledger",
                          params={"points": points, "currency": town.currency_name,
                                  "on": local_day(by)})
                   for user_id, points in soon.items()]
        async with in_transaction() as connection:
            told += await notify(connection, notices)
    return told


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
