"""The canonical encoding of a ledger entry and the chain's arithmetic, versions 1 and 2.

Pure functions on plain values, with no database: `torreya verify-export` and any outside
auditor's own program need nothing else (docs/trust.md says the same in plain words).

- canonical(entry): UTF-8 JSON, keys sorted, no spaces, of
  {"v": 1, "id", "town", "user", "delta", "balance_after", "kind", "memo", "source",
   "idem_key", "actor", "proxy", "created_at"}; `source` is "type:id" or ""; `actor` an
  id or null; `created_at` UTC as 2026-12-01T08:30:00.000000Z. The seal covers it without
  the id.
- version 2 (links made since issue 26): the same with "v": 2 and the entry's "salt" (32
  hex digits the server derives; an export carries it). Version 1's digest was over
  fields a stranger could guess (a user id, a balance): the digest a public receipt shows
  gave them away in thousands of guesses. The link records its version.
- digest = SHA-256(canonical), hex.
- hash = SHA-256(prev_hash + digest) over the two hex strings (ASCII); the first link's
  prev_hash is 64 zeros.
- the signed head's payload: the same JSON rules over
  {"v": 1, "town", "kind", "period", "seq", "entry_id", "hash", "total", "signed_at",
   "public_key"}, signed with Ed25519.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = 1  # of the signed heads, the seal's text and the export's format
SALTED = 2  # the version of the entry text new links digest
GENESIS = "0" * 64


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_text(moment: datetime | str) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    # isoformat, not strftime: the chainer encodes every entry twice (a third of its time).
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def entry_doc(entry: Mapping[str, Any], *, with_id: bool = True) -> dict:
    """The fields that are encoded, from a row (`…_id` names) or an exported entry."""
    def pick(*names):
        return next((entry[n] for n in names if n in entry), None)

    source = pick("source")
    if source is None:
        kind, ident = entry.get("source_type"), entry.get("source_id")
        source = f"{kind}:{ident}" if kind else ""
    doc = {"v": VERSION, "town": int(pick("town", "town_id")),
           "user": int(pick("user", "user_id")), "delta": int(entry["delta"]),
           "balance_after": int(entry["balance_after"]), "kind": str(entry["kind"]),
           "memo": str(entry.get("memo") or ""), "source": str(source),
           "idem_key": str(entry["idem_key"]), "actor": pick("actor", "actor_id"),
           "proxy": bool(entry["proxy"]), "created_at": utc_text(entry["created_at"])}
    if doc["actor"] is not None:
        doc["actor"] = int(doc["actor"])
    if with_id:
        doc["id"] = int(entry["id"])
    if with_id and entry.get("salt"):  # version 2: only the digest's text has a salt
        doc["v"], doc["salt"] = SALTED, str(entry["salt"])
    return doc


def canonical(entry: Mapping[str, Any], *, with_id: bool = True) -> bytes:
    return _json(entry_doc(entry, with_id=with_id))


def both_texts(entry: Mapping[str, Any], salt: str) -> tuple[bytes, bytes]:
    """`canonical(entry, with_id=False)` (what the seal covers) and the version 2 text with
    `salt` (what the digest covers), from one reading of the entry: the chainer needs
    both."""
    doc = entry_doc(entry, with_id=False)
    sealed = _json(doc)
    doc.update(id=int(entry["id"]), v=SALTED, salt=salt)
    return sealed, _json(doc)


def digest(entry: Mapping[str, Any], version: int = 1) -> str:
    """The digest a link of `version` holds for `entry` (version 2: `entry["salt"]`; an
    entry without one cannot match)."""
    if version == SALTED and not entry.get("salt"):
        return ""
    if version != SALTED:
        entry = {k: v for k, v in entry.items() if k != "salt"}
    return hashlib.sha256(canonical(entry)).hexdigest()


def link_hash(prev_hash: str, entry_digest: str) -> str:
    return hashlib.sha256((prev_hash + entry_digest).encode("ascii")).hexdigest()


def seal(key: bytes, entry: Mapping[str, Any]) -> str:
    """The server's HMAC of the entry without its id (the id comes from the INSERT)."""
    return hmac.new(key, canonical(entry, with_id=False), hashlib.sha256).hexdigest()


def seal_parts(entry: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical text without its id, cut where `balance_after` goes: for a writer that
    learns the balance only as it writes the entry (the express check-in, inside
    PostgreSQL). `head + str(balance_after) + tail` is `canonical(entry, with_id=False)`."""
    text = canonical({**entry, "balance_after": 0}, with_id=False).decode()
    # Keys are sorted, and only "actor" (a number or null) comes before it, so this is
    # the key itself, never text inside a value.
    cut = text.index('"balance_after":0') + len('"balance_after":')
    return text[:cut], text[cut + 1:]


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer keyed blocks (RFC 2104), so that
    HMAC(key, m) == SHA-256(outer + SHA-256(inner + m)): what a database that has SHA-256
    but no HMAC needs to compute a seal."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def seal_ok(key: bytes, entry: Mapping[str, Any], sealed: bytes | None = None) -> bool:
    """Whether the entry's seal is the server's; `sealed`: its text without the id, if the
    caller has it already (`both_texts`)."""
    given = entry.get("seal")
    if sealed is None:
        sealed = canonical(entry, with_id=False)
    return bool(given) and hmac.compare_digest(
        str(given), hmac.new(key, sealed, hashlib.sha256).hexdigest())


def head_payload(head: Mapping[str, Any]) -> bytes:
    return _json({"v": VERSION, "town": int(head["town"]), "kind": str(head["kind"]),
                  "period": str(head["period"]), "seq": int(head["seq"]),
                  "entry_id": int(head["entry_id"]), "hash": str(head["hash"]),
                  "total": int(head["total"]), "signed_at": utc_text(head["signed_at"]),
                  "public_key": str(head["public_key"])})


def verify_signature(public_key_hex: str, payload: bytes, signature_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def walk(prev_hash: str, digests: list[str]) -> str:
    """The hash after `digests` are linked onto `prev_hash` in turn (a receipt's path)."""
    for entry_digest in digests:
        prev_hash = link_hash(prev_hash, entry_digest)
    return prev_hash
