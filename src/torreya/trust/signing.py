"""Town keys and signed heads: every day (and for each monthly report) the chain's head of
each town is signed with the town's Ed25519 key and kept; the public page shows the keys
and the heads. Rotating a key retires it: the heads it signed still verify with it.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.db import now
from torreya.keys import derive_key
from torreya.models import ChainHead, SignedHead, Town, TownKey
from torreya.settings import LOCAL, Settings
from torreya.trust import encoding
from torreya.trust.chain import chain_pending

_RAW = {"encoding": serialization.Encoding.Raw, "format": serialization.PublicFormat.Raw}


def _fernet(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(settings, "town-signing-keys")))


async def current_key(settings: Settings, town_id: int) -> TownKey:
    """The town's signing key, made the first time it is needed."""
    key = await TownKey.filter(town_id=town_id, retired_at=None).order_by("-id").first()
    if key is not None:
        return key
    return await _new_key(settings, town_id)


async def _new_key(settings: Settings, town_id: int) -> TownKey:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(encoding=serialization.Encoding.Raw,
                                format=serialization.PrivateFormat.Raw,
                                encryption_algorithm=serialization.NoEncryption())
    return await TownKey.create(
        town_id=town_id, public_key=private.public_key().public_bytes(**_RAW).hex(),
        private_key=_fernet(settings).encrypt(raw).decode())


async def rotate_key(settings: Settings, town_id: int, *, actor=None) -> TownKey:
    """A new key signs from now on; the old one is retired, not deleted."""
    async with in_transaction():
        await TownKey.filter(town_id=town_id, retired_at=None).update(retired_at=now())
        key = await _new_key(settings, town_id)
    await audit.record(actor, "trust:key:rotate", connection=None, subject=f"town:{town_id}",
                       town_id=town_id, data={"public_key": key.public_key})
    return key


def _private(settings: Settings, key: TownKey) -> Ed25519PrivateKey:
    raw = _fernet(settings).decrypt(key.private_key.encode())
    return Ed25519PrivateKey.from_private_bytes(raw)


def sign(settings: Settings, key: TownKey, payload: bytes) -> bytes:
    """Ed25519 signature of `payload` by this town key (member cards, vouchers)."""
    return _private(settings, key).sign(payload)


def head_doc(head: SignedHead, public_key: str) -> dict:
    return {"v": encoding.VERSION, "town": head.town_id, "kind": head.kind,
            "period": head.period, "seq": head.seq, "entry_id": head.entry_id,
            "hash": head.hash, "total": head.total,
            "signed_at": encoding.utc_text(head.signed_at), "public_key": public_key}


async def sign_head(settings: Settings, town_id: int, *, kind: str, period: str
                    ) -> SignedHead | None:
    """Sign the town's head now for `period`, once (None if that period is signed)."""
    if await SignedHead.exists(town_id=town_id, kind=kind, period=period):
        return None
    head = await ChainHead.get_or_none(town_id=town_id)
    if head is None:
        return None
    return await sign_state(settings, town_id, kind=kind, period=period, seq=head.seq,
                            entry_id=head.entry_id, hash=head.hash, total=head.total)


async def sign_state(settings: Settings, town_id: int, *, kind: str, period: str, seq: int,
                     entry_id: int, hash: str, total: int) -> SignedHead | None:
    """Sign a state of the town's chain (its link `seq`, that link's entry and hash, the
    running total), once for (kind, period): the day's head, or the link a full audit
    verified up to (kind "audit", the checkpoint of `torreya audit --since-checkpoint`)."""
    key = await current_key(settings, town_id)
    signed_at = now().replace(microsecond=0)
    doc = {"town": town_id, "kind": kind, "period": period, "seq": seq, "entry_id": entry_id,
           "hash": hash, "total": total, "signed_at": signed_at, "public_key": key.public_key}
    signature = _private(settings, key).sign(encoding.head_payload(doc)).hex()
    try:
        return await SignedHead.create(town_id=town_id, key_id=key.id, kind=kind, period=period,
                                       seq=seq, entry_id=entry_id, hash=hash, total=total,
                                       signed_at=signed_at, signature=signature)
    except IntegrityError:  # signed already (another worker, an earlier audit that day)
        return None


async def sign_due(settings: Settings, moment: datetime | None = None) -> int:
    """Housekeeping: the day's head (and the month's, on its first day) of every town,
    chained up to now, signed once. Returns how many heads were signed."""
    local = (moment or now()).astimezone(LOCAL)
    yesterday = (local - timedelta(days=1)).date()
    done = set(await SignedHead.filter(kind="daily", period=yesterday.isoformat())
               .values_list("town_id", flat=True))
    due = [t for t in await Town.all().values_list("id", flat=True) if t not in done]
    if not due:
        return 0  # the usual case: today's signing is done; no chaining, no writes
    await chain_pending()  # a sweep: the head to sign holds everything committed so far
    signed = 0
    for head in await ChainHead.filter(town_id__in=due):
        # Signed at the first run after midnight: the head that closes the day before.
        if await sign_head(settings, head.town_id, kind="daily", period=yesterday.isoformat()):
            signed += 1
        if local.day == 1 and await sign_head(settings, head.town_id, kind="monthly",
                                              period=yesterday.strftime("%Y-%m")):
            signed += 1  # the month just closed, for its report
    return signed


async def heads_of(town_id: int, *, limit: int = 60) -> list[dict]:
    """The town's signed heads, newest first, each with its key and signature."""
    keys = {k.id: k.public_key for k in await TownKey.filter(town_id=town_id)}
    heads = await SignedHead.filter(town_id=town_id).order_by("-seq", "-id").limit(limit)
    return [head_doc(h, keys.get(h.key_id, "")) | {"signature": h.signature, "id": h.id}
            for h in heads]


async def signed_head_for_report(town_id: int, month: str) -> dict | None:
    """For a monthly report's footer: the month's signed head, or else the newest daily."""
    head = await SignedHead.get_or_none(town_id=town_id, kind="monthly", period=month)
    if head is None:
        head = await SignedHead.filter(town_id=town_id, kind="daily").order_by("-id").first()
    if head is None:
        return None
    key = await TownKey.get(id=head.key_id)
    return head_doc(head, key.public_key) | {"signature": head.signature}
