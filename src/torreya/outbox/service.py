"""The outbox's one writer: services call `emit` inside their own transaction, so a change and
the messages about it commit together or not at all (SPEC §4.8).

Delivery (webhooks, notifications) reads the table later; nothing here touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from torreya.db import now, placeholders

# The event types others may subscribe to (SPEC §5.1, Webhooks). Keep in sync with
# docs/events.md.
EVENT_TYPES = (
    "checkin.created",
    "ledger.entry_created",
    "redemption.created",
    "redemption.fulfilled",
    "redemption.cancelled",
    "redemption.expired",
    "report.created",
    "report.status_changed",
    "patrol.approved",
    "pledge.signed",
)


@dataclass(frozen=True, kw_only=True)
class Message:
    event_type: str
    town_id: int | None
    data: dict[str, Any]

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown outbox event type {self.event_type!r}")


def _encode(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in an outbox payload")


async def emit(connection: BaseDBAsyncClient, *messages: Message) -> None:
    """Write messages in the caller's transaction (one statement however many)."""
    if not messages:
        return
    moment = now()
    values: list[object] = []
    for message in messages:
        values += [message.town_id, message.event_type,
                   json.dumps(message.data, default=_encode, ensure_ascii=False), moment]
    rows = ", ".join(["(?, ?, ?, ?)"] * len(messages))
    sql = f"INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES {rows}"
    await connection.execute_query(placeholders(connection, sql), values)
