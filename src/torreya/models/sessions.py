"""Logins that can be listed and ended one by one (issue 17)."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class UserSession(Model):
    """One login: a browser's session cookie or an API bearer token carries its id (`sid`).

    Ending one adds its id to the user's `ended_sessions` (the user row every request reads
    anyway), so the check costs no extra query; ending all bumps `session_generation`.
    """

    id = fields.CharField(max_length=32, primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="logins", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=8)  # "web" (cookie) or "api" (bearer token)
    user_agent = fields.CharField(max_length=200, default="")
    ip = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    # The password was given again (step-up) at this moment; big actions need it recent.
    stepped_up_at = fields.DatetimeField(null=True)

    user_id: int

    class Meta:
        table = "user_sessions"
        indexes = (Index(fields=("user_id", "expires_at")),)
