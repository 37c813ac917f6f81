"""The outbox's one writer: services call `emit` inside their own transaction, so a change and
the messages about it commit together or not at all (SPEC §4.8).

Delivery (webhooks, notifications) reads the table later; nothing here touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient

from torreya.api.schema import OneOf, Out, Time
from torreya.db import insert_rows, now
from torreya.ledger.rules import ENTRY_KINDS
from torreya.models import RedemptionStatus, ReportCategory, ReportStatus, SignalKind


class CheckinCreated(Out):
    id: int
    event_id: int
    village_id: int
    user_id: int
    points: int
    method: str
    staff_id: int | None
    created_at: Time


class EntryCreated(Out):
    id: int
    user_id: int
    village_id: int | None
    delta: int
    balance_after: int
    kind: OneOf(ENTRY_KINDS)
    memo: str
    source_type: str | None
    source_id: int | None
    proxy: bool
    created_at: Time


class RedemptionEvent(Out):
    id: int
    reward_id: int
    user_id: int
    village_id: int | None
    cost: int
    status: OneOf(RedemptionStatus)
    actor_id: int | None
    created_at: Time
    expires_at: Time
    closed_at: Time | None


class ReportEvent(Out):
    id: int
    village_id: int
    category: OneOf(ReportCategory)
    status: OneOf(ReportStatus)
    points: int | None


class ReportOverdue(Out):
    id: int
    village_id: int
    category: OneOf(ReportCategory)
    status: OneOf(ReportStatus)
    department_id: int | None
    deadline: Literal["accept", "resolve"]
    due_at: Time


class Award(Out):
    user_id: int
    points: int


class PatrolApproved(Out):
    id: int
    group_id: int
    village_id: int
    route_id: int
    duration_minutes: int | None
    awards: list[Award]


class PledgeSigned(Out):
    id: int
    pledge_id: int
    user_id: int
    village_id: int | None
    points: int
    created_at: Time


class SignalRaised(Out):
    id: int
    kind: OneOf(SignalKind)
    village_id: int
    user_ids: list[int]
    created_at: Time


# The event types others may subscribe to (SPEC §5.1, Webhooks) and the model of each one's
# `data`; the OpenAPI document's `webhooks` are built from it and every message is checked
# against its fields. Keep in sync with docs/events.md.
PAYLOADS: dict[str, type[Out]] = {
    "checkin.created": CheckinCreated,
    "ledger.entry_created": EntryCreated,
    "redemption.created": RedemptionEvent,
    "redemption.fulfilled": RedemptionEvent,
    "redemption.cancelled": RedemptionEvent,
    "redemption.expired": RedemptionEvent,
    "report.created": ReportEvent,
    "report.status_changed": ReportEvent,
    "report.overdue": ReportOverdue,
    "patrol.approved": PatrolApproved,
    "pledge.signed": PledgeSigned,
    "signal.raised": SignalRaised,
}
EVENT_TYPES = tuple(PAYLOADS)


def payload_fields(event_type: str) -> set[str]:
    return set(PAYLOADS[event_type].model_fields)


@dataclass(frozen=True, kw_only=True)
class Message:
    event_type: str
    town_id: int | None
    data: dict[str, Any]

    def __post_init__(self) -> None:
        # A programming error, caught by the tests of every command that emits: what is
        # sent must be what the document promises.
        if self.event_type not in PAYLOADS:
            raise ValueError(f"unknown outbox event type {self.event_type!r}")
        if set(self.data) != payload_fields(self.event_type):
            raise ValueError(f"{self.event_type} data {sorted(self.data)} differs from its "
                             f"declared fields {sorted(payload_fields(self.event_type))}")


def _encode(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in an outbox payload")


async def emit(connection: BaseDBAsyncClient, *messages: Message) -> None:
    """Write messages in the caller's transaction (one statement however many)."""
    if not messages:
        return
    moment = now()
    await insert_rows(connection, "outbox", [
        {"town_id": message.town_id, "event_type": message.event_type,
         "payload": json.dumps(message.data, default=_encode, ensure_ascii=False),
         "created_at": moment} for message in messages])
