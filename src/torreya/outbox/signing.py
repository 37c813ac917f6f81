"""Standard Webhooks signing (https://www.standardwebhooks.com, SPEC §5.1).

`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
secret's decoded bytes (the part after "whsec_"). Several signatures, separated by spaces,
while a rotated secret still overlaps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_in_force: list[str], message_id: str, timestamp: int,
            body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret still in force."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body)
                                      for s in secrets_in_force),
        "content-type": "application/json",
        "user-agent": "Torreya-Webhooks/1",
    }
