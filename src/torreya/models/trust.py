"""Trust anyone can check (SPEC §4.9): the ledger's hash chain, its heads and their
signatures. See docs/trust.md for the encoding and how an outsider verifies it."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class ChainLink(Model):
    """An entry's place in its town's chain: `hash` = SHA-256(prev_hash ‖ digest), where
    `digest` is the SHA-256 of the entry's canonical encoding. Append-only (triggers).
    Kept beside the entry, not in its row: the ledger table stays strictly append-only,
    and a link points at its entry by id only, so deleting an entry leaves its link behind
    as evidence."""

    entry_id = fields.BigIntField(primary_key=True, generated=False)
    town_id = fields.IntField()
    seq = fields.BigIntField()
    digest = fields.CharField(max_length=64)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)
    # The encoding its digest covers: 1 (the entry's fields), 2 (the same and a salt only
    # the server and an export know: docs/trust.md). Links made before version 2 stay 1.
    v = fields.SmallIntField(default=1, db_default=1)

    class Meta:
        table = "ledger_chain"
        unique_together = (("town_id", "seq"),)


class ChainHead(Model):
    """The newest link of a town's chain, and what the chainer needs to carry on."""

    town_id = fields.IntField(primary_key=True, generated=False)
    seq = fields.BigIntField(default=0)
    hash = fields.CharField(max_length=64)
    entry_id = fields.BigIntField(default=0)
    total = fields.BigIntField(default=0)  # the sum of the chained entries' deltas
    # Entries up to this id were written before entries were sealed: chained as they are.
    legacy_through = fields.BigIntField(default=0)
    # When the last sweep began: the next looks back from here for entries that committed
    # late (an id does not say when its transaction committed). None: never chained.
    swept_at = fields.DatetimeField(null=True)

    class Meta:
        table = "chain_heads"


class TownKey(Model):
    """A town's Ed25519 signing key. The private half is encrypted with a key derived from
    TORREYA_SECRET_KEY; a retired key still verifies the heads it signed."""

    id = fields.IntField(primary_key=True)
    town_id = fields.IntField()
    public_key = fields.CharField(max_length=64)  # raw 32 bytes, hex
    private_key = fields.CharField(max_length=400)  # Fernet token of the raw 32 bytes
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "town_keys"
        indexes = (Index(fields=("town_id",)),)


class SignedHead(Model):
    """A town's chain head as signed on a day (or for a monthly report). Append-only."""

    id = fields.IntField(primary_key=True)
    town_id = fields.IntField()
    key_id = fields.IntField()
    kind = fields.CharField(max_length=16)  # daily | monthly
    period = fields.CharField(max_length=10)  # 2026-12-01 | 2026-12
    seq = fields.BigIntField()
    entry_id = fields.BigIntField()
    hash = fields.CharField(max_length=64)
    total = fields.BigIntField()
    signed_at = fields.DatetimeField()
    signature = fields.CharField(max_length=128)  # Ed25519 over the payload, hex

    class Meta:
        table = "signed_heads"
        unique_together = (("town_id", "kind", "period"),)
        indexes = (Index(fields=("town_id", "seq")),)
