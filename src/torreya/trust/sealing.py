"""The server key that seals ledger entries as they are written (ledger/service.py).

Set from the settings wherever Torreya opens its database (the web app, every CLI command),
so every writer of entries seals them; an entry without a valid seal was not written by
Torreya and is never chained.
"""

from __future__ import annotations

from torreya.security import derive_key
from torreya.settings import Settings

_KEY: bytes | None = None


def configure(settings: Settings) -> None:
    global _KEY
    _KEY = derive_key(settings, "ledger-seal")


def key() -> bytes:
    if _KEY is None:
        raise RuntimeError("trust.sealing.configure(settings) was not called")
    return _KEY
