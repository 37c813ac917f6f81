"""Idempotency-Key the way Stripe and pretix do it (SPEC §5.1): one mechanism for every write
that takes a key, in the API and in the console's forms.

A key (up to 255 characters) is scoped to the caller and the endpoint. The first request
claims it by inserting a row *in the same transaction as its effect*, then stores its
response there too: the effect, its key and its answer commit together or not at all. A
repeat with the same request replays the stored answer; with another body or target it is
409 `idempotency_mismatch`. A repeat while the first is still running waits on the unique
key (PostgreSQL holds the insert until the first commits; SQLite runs one transaction at a
time) and then replays, so there is never a second effect.

Only successes are stored: a request that failed changed nothing, so its retry runs again.
Keys are kept for `RETENTION` (at least 24 h, as Stripe promises), then purged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya.db import now
from torreya.errors import ConflictError, InvalidRequestError
from torreya.models import IdempotencyKey

MAX_KEY_LENGTH = 255
RETENTION = timedelta(days=7)


class IdempotencyMismatchError(ConflictError):
    code = "idempotency_mismatch"
    message = ("This Idempotency-Key was already used for a different request. Use a new key "
               "for a new request.")


@dataclass(frozen=True)
class Outcome:
    status: int
    body: str
    replayed: bool


def clean_key(raw: str) -> str:
    """The key as sent, or 422 naming the header: 1 to 255 printable characters."""
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequestError(
            "The Idempotency-Key header must be 1 to %(max)s printable characters.",
            field="Idempotency-Key", max=MAX_KEY_LENGTH)
    return key


def fingerprint(method: str, path: str, body: Mapping[str, Any]) -> str:
    """What makes two requests the same: method, path (the target) and the parsed body."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def once(*, user_id: int, scope: str, key: str, fingerprint: str,
               run: Callable[[], Awaitable[tuple[int, str]]]) -> Outcome:
    """Run `run` (which returns a status and a JSON body) once for this key.

    `run` executes inside the claiming transaction; services' own transactions nest in it
    as savepoints. Raises IdempotencyMismatchError, or whatever `run` raises (then nothing
    is stored and nothing changed).
    """
    try:
        async with in_transaction() as connection:
            claim = await IdempotencyKey.create(
                user_id=user_id, scope=scope, key=key, fingerprint=fingerprint, status_code=0,
                response="", created_at=now(), using_db=connection)
            status, body = await run()
            await IdempotencyKey.filter(id=claim.id).using_db(connection).update(
                status_code=status, response=body)
        return Outcome(status, body, replayed=False)
    except IntegrityError:
        # PostgreSQL aborted the transaction: read the winner outside it.
        existing = await IdempotencyKey.get_or_none(user_id=user_id, scope=scope, key=key)
        if existing is None:  # the effect's own constraint, not the key
            raise
    if existing.fingerprint != fingerprint:
        raise IdempotencyMismatchError()
    return Outcome(existing.status_code, existing.response, replayed=True)


async def purge_expired() -> int:
    """Forget keys older than RETENTION; safe to run from every worker."""
    return await IdempotencyKey.filter(created_at__lt=now() - RETENTION).delete()


async def once_for_form(*, user_id: int, scope: str, key: str, path: str,
                        body: Mapping[str, Any],
                        run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """`once` for a console or resident form whose page carries a fresh key (a double tap or
    a resubmitted form): returns what `run` returned the first time."""
    async def respond() -> tuple[int, str]:
        return 200, json.dumps(await run(), ensure_ascii=False)

    outcome = await once(user_id=user_id, scope=scope, key=clean_key(key),
                         fingerprint=fingerprint("POST", path, body), run=respond)
    return json.loads(outcome.body)
