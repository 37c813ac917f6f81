"""What makes a change recorded-or-not-at-all: its outbox messages and the idempotency keys
that make a client's retry harmless."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class OutboxMessage(Model):
    """An event others care about, written in the same transaction as the change itself.

    The delivery worker (webhooks, notifications) reads rows whose `dispatched_at` is null;
    nothing calls out to the network inside the change's transaction.
    """

    id = fields.BigIntField(primary_key=True)
    town_id = fields.IntField(null=True)
    event_type = fields.CharField(max_length=48)
    payload = fields.JSONField()
    created_at = fields.DatetimeField()
    dispatched_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        # The only index besides the key is partial, on what is still to deliver
        # (migration 0009): it stays small, and every check-in pays for little upkeep.


class IdempotencyKey(Model):
    """A client's Idempotency-Key, scoped to the caller and the endpoint, with a fingerprint
    of the first request and its response (replayed for a repeat with the same body).

    Written in the same transaction as the effect: if the effect rolled back, so did the key.
    """

    id = fields.BigIntField(primary_key=True)
    user_id = fields.IntField()
    scope = fields.CharField(max_length=96)
    key = fields.CharField(max_length=255)
    fingerprint = fields.CharField(max_length=64)
    status_code = fields.SmallIntField()
    response = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_keys"
        unique_together = (("user_id", "scope", "key"),)
        indexes = (Index(fields=("created_at",)),)
