"""The periodic chores: voucher expiry, stale patrols, purges, reminders, signing the chain's
heads. They run in `torreya worker`, or inside `torreya serve` when that host also runs the
worker (TORREYA_WORKER=1, the default); web hosts of a larger deployment run with
TORREYA_WORKER=0 and leave them to the worker hosts. Each chore is safe to run on several
hosts at once."""

from __future__ import annotations

import asyncio
import logging

from torreya.db import now
from torreya.idempotency import purge_expired
from torreya.integrity.detect import daily_sweep
from torreya.ledger import expiry
from torreya.notifications.service import (
    remind_events,
    remind_expiring_points,
    remind_expiring_vouchers,
)
from torreya.outbox.worker import purge_delivered
from torreya.patrols.service import auto_submit_stale
from torreya.reports.cases import escalate_overdue
from torreya.rewards.service import expire_vouchers
from torreya.settings import LOCAL, Settings
from torreya.trust.signing import sign_due

log = logging.getLogger("torreya")


_reminded: list[str] = []  # the village day the expiring points were last announced


async def _remind_daily() -> None:
    """The points-expiry notices, worked out once a village day (two grouped reads of each
    expiring town's ledger), not every round."""
    day = f"{now().astimezone(LOCAL):%Y-%m-%d}"
    if _reminded != [day]:
        await remind_expiring_points()
        _reminded[:] = [day]


async def housekeeping(settings: Settings) -> None:
    """Periodic chores of every worker; each is safe to run concurrently with itself."""
    await asyncio.sleep(settings.HOUSEKEEPING_FIRST_SECONDS)
    while True:
        try:
            await expire_vouchers()
            await auto_submit_stale()
            await purge_expired()
            await purge_delivered()
            await remind_expiring_vouchers()
            await remind_events()
            await sign_due(settings)
            await daily_sweep()
            await expiry.daily()
            await escalate_overdue()
            await _remind_daily()
        except Exception:  # keep the loop alive; the error is logged with its traceback
            log.exception("housekeeping failed")
        await asyncio.sleep(settings.HOUSEKEEPING_SECONDS)
