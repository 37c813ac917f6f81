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

_REDEMPTION = ("id:int reward_id:int user_id:int village_id:int? cost:int status actor_id:int? "
               "created_at:time expires_at:time closed_at:time?")
_REPORT = "id:int village_id:int category status points:int?"

# The event types others may subscribe to (SPEC §5.1, Webhooks) and the fields of each one's
# `data`, in the API registry's notation; the OpenAPI document's `webhooks` are built from
# it and every message is checked against it. Keep in sync with docs/events.md.
PAYLOADS = {
    "checkin.created": ("id:int event_id:int village_id:int user_id:int points:int method "
                        "staff_id:int? created_at:time"),
    "ledger.entry_created": ("id:int user_id:int village_id:int? delta:int balance_after:int "
                             "kind memo source_type:str? source_id:int? proxy:bool "
                             "created_at:time"),
    "redemption.created": _REDEMPTION,
    "redemption.fulfilled": _REDEMPTION,
    "redemption.cancelled": _REDEMPTION,
    "redemption.expired": _REDEMPTION,
    "report.created": _REPORT,
    "report.status_changed": _REPORT,
    "patrol.approved": "id:int group_id:int village_id:int route_id:int duration_minutes:int? "
                       "awards:list",
    "pledge.signed": "id:int pledge_id:int user_id:int village_id:int? points:int created_at:time",
}
EVENT_TYPES = tuple(PAYLOADS)


def payload_fields(event_type: str) -> set[str]:
    return {token.partition(":")[0] for token in PAYLOADS[event_type].split()}


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
    values: list[object] = []
    for message in messages:
        values += [message.town_id, message.event_type,
                   json.dumps(message.data, default=_encode, ensure_ascii=False), moment]
    rows = ", ".join(["(?, ?, ?, ?)"] * len(messages))
    sql = f"INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES {rows}"
    await connection.execute_query(placeholders(connection, sql), values)
