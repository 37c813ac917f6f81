"""record(actor, tag, subject, data): the audit trail, written by services.

Tags read "capability:subject:action" (accounts:user:create, ledger:adjustment:create,
checkins:scan:refuse …). A record of a change is written with the change's own `connection`,
so the two commit together; `connection=None` is for records that stand alone (a refused
login, a denial) and commit by themselves.
"""

from __future__ import annotations

import contextvars
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from torreya.db import now
from torreya.models import AuditEvent, User

request_ip: contextvars.ContextVar[str] = contextvars.ContextVar("torreya_request_ip", default="")
# A family helper acting for the logged-in resident in this request (signin/family.py
# sets it): every record written meanwhile names them.
acting_helper: contextvars.ContextVar[Any] = contextvars.ContextVar("torreya_acting_helper",
                                                                    default=None)


async def record(
    actor: User | None,
    tag: str,
    *,
    connection: BaseDBAsyncClient | None,
    subject: str = "",
    town_id: int | None = None,
    village_id: int | None = None,
    data: dict[str, Any] | None = None,
    entry_id: int | None = None,
) -> AuditEvent:
    helper = acting_helper.get()
    if helper is not None:
        data = {**(data or {}), "helper": helper.as_data()}
    return await AuditEvent.create(
        actor=actor,
        tag=tag,
        subject=subject,
        town_id=town_id if town_id is not None else getattr(actor, "town_id", None),
        village_id=village_id,
        data=data or {},
        ip=request_ip.get(),
        entry_id=entry_id,
        created_at=now(),
        using_db=connection,
    )
