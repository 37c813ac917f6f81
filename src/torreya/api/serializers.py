"""Model → JSON shapes of the stable API (SPEC §5). Keep in sync with the OpenAPI schemas."""

from __future__ import annotations

from torreya.models import LedgerEntry, User
from torreya.trust.receipts import receipt_code


def user_json(user: User, *, full: bool = False) -> dict:
    data: dict = {"id": user.id, "username": user.username, "display_name": user.display_name,
                  "village_id": user.village_id, "role": str(user.role)}
    if full:
        data.update(town_id=user.town_id, balance=user.balance,
                    lifetime_points=user.lifetime_points)
    return data


def entry_json(entry: LedgerEntry) -> dict:
    return {"id": entry.id, "delta": entry.delta, "balance_after": entry.balance_after,
            "kind": entry.kind, "memo": entry.memo, "created_at": entry.created_at.isoformat(),
            "receipt": receipt_code(entry.id)}
