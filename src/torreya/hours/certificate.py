"""A certificate of volunteer hours, as signed and as checked (docs/trust.md, "Certificates
of volunteer hours"). Pure functions on plain values, with no database: the server signs
with them, `torreya verify-certificate` checks a saved one offline with them, and an
outside verifier can be written from the document alone.

- payload: UTF-8 JSON, keys sorted, no spaces, non-ASCII as is, of
  {"v": 1, "type": "service_hours", "code", "holder" (masked), "name_salt" (32 hex),
   "name_hash" (SHA-256 hex of name_salt + the full name, UTF-8), "town", "town_id",
   "village", "minutes", "items", "from", "to" (YYYY-MM-DD), "issued_at" (UTC, seconds, Z),
   "key_id"};
- signature: Ed25519 over the payload's bytes, by the town key `key_id`, as 128 hex digits;
- the offline QR: "TYC1." + base64url(payload, unpadded) + "." + signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = 1
TYPE = "service_hours"
QR_PREFIX = "TYC1."
# What the public answer repeats beside the payload: each must equal the signed value.
SHOWN = {"holder": "holder", "town": "town", "village": "village", "minutes": "minutes",
         "items": "items", "from": "from", "to": "to", "issued_at": "issued_at",
         "key_id": "key_id", "code": "code"}


def name_hash(salt: str, full_name: str) -> str:
    return hashlib.sha256((salt + full_name).encode()).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(16)


def issued_text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def payload(*, code: str, holder: str, salt: str, full_name: str, town: str, town_id: int,
            village: str, minutes: int, items: int, start: date, end: date,
            issued_at: datetime, key_id: int) -> str:
    """The canonical text the town key signs."""
    doc = {"v": VERSION, "type": TYPE, "code": code, "holder": holder, "name_salt": salt,
           "name_hash": name_hash(salt, full_name), "town": town, "town_id": town_id,
           "village": village, "minutes": minutes, "items": items,
           "from": start.isoformat(), "to": end.isoformat(),
           "issued_at": issued_text(issued_at), "key_id": key_id}
    return canonical(doc)


def canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def qr_text(payload_text: str, signature: str) -> str:
    encoded = base64.urlsafe_b64encode(payload_text.encode()).rstrip(b"=").decode()
    return f"{QR_PREFIX}{encoded}.{signature}"


def from_qr_text(text: str) -> tuple[str, str] | None:
    """(payload, signature) of an offline QR's text; None when it is not one."""
    text = text.strip()
    if not text.startswith(QR_PREFIX) or text.count(".") != 2:
        return None
    _prefix, encoded, signature = text.split(".")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return raw.decode(), signature
    except (ValueError, UnicodeDecodeError):
        return None


def read_saved(text: str) -> dict:
    """A saved certificate: the JSON the verify address answers, or the offline QR's text.
    Raises ValueError saying why it is neither."""
    pair = from_qr_text(text)
    if pair is not None:
        return {"payload": pair[0], "signature": pair[1]}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not a certificate: neither its JSON nor the text of its QR") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("payload"), str):
        raise ValueError("not a certificate: no signed payload in it")
    return doc


def problems(saved: Mapping[str, Any], public_key_hex: str, *,
             full_name: str | None = None) -> list[str]:
    """Why a saved certificate does not hold, each in a sentence; [] when it verifies.
    Checks the signature over the payload with the key, that every field shown beside the
    payload equals the signed one, its status, and (given) the holder's full name."""
    text = saved.get("payload")
    signature = saved.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        return ["the certificate has no payload or no signature"]
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
    except ValueError:
        return ["the public key is not 64 hex digits of an Ed25519 key"]
    try:
        key.verify(bytes.fromhex(signature), text.encode())
    except (InvalidSignature, ValueError):
        return ["the signature does not match: the payload was edited, or another key signed "
                "it"]
    found: list[str] = []
    try:
        signed = json.loads(text)
    except json.JSONDecodeError:
        return ["the signed payload is not JSON"]
    if signed.get("v") != VERSION or signed.get("type") != TYPE:
        found.append(f"unknown certificate version {signed.get('v')!r}")
    if canonical(signed) != text:
        found.append("the payload is not in its canonical form")
    for shown, name in SHOWN.items():
        if shown in saved and saved[shown] != signed.get(name):
            found.append(f"field {shown!r} says {saved[shown]!r} but the signed value is "
                         f"{signed.get(name)!r}")
    if saved.get("status") == "revoked":
        found.append("the town revoked this certificate"
                     + (f" on {saved['revoked_at']}" if saved.get("revoked_at") else ""))
    if full_name is not None and name_hash(signed.get("name_salt", ""), full_name) \
            != signed.get("name_hash"):
        found.append("the holder's full name does not match the certificate")
    return found
