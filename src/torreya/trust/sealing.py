"""The server keys that seal ledger entries as they are written (ledger/service.py), make
their receipt codes (trust/receipts.py) and salt their chain digests (trust/chain.py).

Set from the settings wherever Torreya opens its database (the web app, every CLI command),
so every writer of entries seals them; an entry without a valid seal was not written by
Torreya and is never chained.
"""

from __future__ import annotations

import hashlib
import hmac

from torreya.keys import derive_key
from torreya.settings import Settings

_KEYS: dict[str, bytes] = {}
PURPOSES = {"seal": "ledger-seal", "receipt": "ledger-receipt", "salt": "ledger-salt"}


def configure(settings: Settings) -> None:
    _KEYS.update({name: derive_key(settings, purpose) for name, purpose in PURPOSES.items()})


def key(name: str = "seal") -> bytes:
    """The entries' sealing key, or the receipts' ("receipt")."""
    if name not in _KEYS:
        raise RuntimeError("trust.sealing.configure(settings) was not called")
    return _KEYS[name]


def salt(entry_id: int) -> str:
    """The entry's salt in its chain digest (encoding version 2): 128 bits only the server
    (and an export) knows, so a public receipt's digest cannot be searched for the
    resident's id and balance."""
    return hmac.new(key("salt"), str(entry_id).encode(), hashlib.sha256).hexdigest()[:32]
