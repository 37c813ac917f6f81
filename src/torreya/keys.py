"""The server's keys, each derived from TORREYA_SECRET_KEY for one purpose (sessions, API
tokens, each QR kind, the ledger's seal). Needs nothing but the settings, so anything may
use it (the database plumbing included) without an import cycle."""

from __future__ import annotations

import functools
import hashlib
import hmac

from torreya.settings import Settings


def derive_key(settings: Settings, purpose: str) -> bytes:
    """One secret, a separate key per purpose (sessions, API tokens, each QR kind)."""
    return key_for(settings.SECRET_KEY, purpose)


@functools.lru_cache(maxsize=64)
def key_for(secret: str, purpose: str) -> bytes:
    """`derive_key` for a bare secret (kept per worker: tokens are checked on every request)."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()

