"""The server keys that seal ledger entries as they are written (ledger/service.py) and
make their receipt codes (trust/receipts.py).

Set from the settings wherever Torreya opens its database (the web app, every CLI command),
so every writer of entries seals them; an entry without a valid seal was not written by
Torreya and is never chained.
"""

from __future__ import annotations

from torreya.security import derive_key
from torreya.settings import Settings

_KEYS: dict[str, bytes] = {}
PURPOSES = {"seal": "ledger-seal", "receipt": "ledger-receipt"}


def configure(settings: Settings) -> None:
    _KEYS.update({name: derive_key(settings, purpose) for name, purpose in PURPOSES.items()})


def key(name: str = "seal") -> bytes:
    """The entries' sealing key, or the receipts' ("receipt")."""
    if name not in _KEYS:
        raise RuntimeError("trust.sealing.configure(settings) was not called")
    return _KEYS[name]
