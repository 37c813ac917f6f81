"""Checkpoint plate codes `C<id>-<mac>`: printed once, laminated, scanned for years."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from torreya.keys import derive_key
from torreya.settings import Settings

_PLATE = re.compile(r"^C(\d{1,10})-([A-Z2-7]{8})$")
JOIN_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"


def _mac(settings: Settings, checkpoint_id: int) -> str:
    digest = hmac.new(derive_key(settings, "checkpoint"), str(checkpoint_id).encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode()


def plate_code(settings: Settings, checkpoint_id: int) -> str:
    return f"C{checkpoint_id}-{_mac(settings, checkpoint_id)}"


def read_plate_code(settings: Settings, code: str) -> int | None:
    """The checkpoint id of a genuine plate (URL form and lower case accepted), or None."""
    text = (code or "").strip().rsplit("/", 1)[-1].upper()
    match = _PLATE.match(text)
    if not match or not hmac.compare_digest(match[2], _mac(settings, int(match[1]))):
        return None
    return int(match[1])


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(6))
