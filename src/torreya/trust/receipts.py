"""Receipts: every entry a resident sees has a short code (and, on its page, a QR). Anyone
can open /r/<code> or GET /api/v1/receipts/<code> and see that the entry is in the town's
chain under a signed head, with the path of hashes from the entry's link to that head:
the digests of the links after it, which say nothing about other residents. A verifier
recomputes hash = SHA-256(hash + digest) along the path, compares it with the signed
head's hash, and checks the head's Ed25519 signature with the town's public key.

The code is the entry id and 6 characters of an HMAC of it, so codes cannot be guessed
to walk through other people's entries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from torreya.db import conn, fetch
from torreya.masking import mask_name
from torreya.models import ChainLink, LedgerEntry, SignedHead, TownKey, User, Village
from torreya.trust import encoding, sealing
from torreya.trust.signing import head_doc

CODE = re.compile(r"^(\d{1,18})-([A-Z2-7]{6})$")
MAX_PATH = 50_000  # links between an entry and its signed head (a day of a big town)


def _mac(entry_id: int) -> str:
    digest = hmac.new(sealing.key("receipt"), str(entry_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:6]


def receipt_code(entry_id: int) -> str:
    return f"{entry_id}-{_mac(entry_id)}"


def parse(code: str) -> int | None:
    match = CODE.match(code.strip().upper())
    if not match or not hmac.compare_digest(match.group(2), _mac(int(match.group(1)))):
        return None
    return int(match.group(1))


async def receipt(code: str) -> dict | None:
    """What the receipt proves, or None for a code that is not one of ours.

    `status`: "verified" (under a signed head whose signature and path check out),
    "pending" (recorded and chained or sealed, not yet under a signed head: the next
    daily signature covers it), "invalid" (the entry or its link does not match).
    """
    entry_id = parse(code)
    if entry_id is None:
        return None
    found = await LedgerEntry.filter(id=entry_id).values()
    if not found:
        return None
    values = found[0]  # the row as stored: what the seal and the digest are checked on
    person = await User.get_or_none(id=values["user_id"])
    village = await Village.get_or_none(id=person.village_id) if person and \
        person.village_id else None
    shown = {"code": receipt_code(entry_id), "delta": values["delta"], "kind": values["kind"],
             "created_at": encoding.utc_text(values["created_at"]),
             "resident": mask_name(person.display_name) if person else "",
             "village": village.name if village else "", "town_id": values["town_id"]}
    link = await ChainLink.get_or_none(entry_id=entry_id)
    if link is None:
        sealed = encoding.seal_ok(sealing.key(), values)
        return shown | {"status": "pending" if sealed else "invalid", "link": None,
                        "path": [], "signed_head": None}
    link_doc = {"seq": link.seq, "digest": link.digest, "prev_hash": link.prev_hash,
                "hash": link.hash}
    if encoding.digest(values | {"salt": sealing.salt(entry_id)}, link.v) != link.digest or \
            encoding.link_hash(link.prev_hash, link.digest) != link.hash:
        return shown | {"status": "invalid", "link": link_doc, "path": [],
                        "signed_head": None}
    head = await SignedHead.filter(town_id=link.town_id, seq__gte=link.seq).order_by(
        "seq", "id").first()
    if head is None or head.seq - link.seq > MAX_PATH:
        return shown | {"status": "pending", "link": link_doc, "path": [],
                        "signed_head": None}
    rows = await fetch(conn(), "SELECT digest FROM ledger_chain WHERE town_id = ? AND seq > ?"
                       " AND seq <= ? ORDER BY seq", [link.town_id, link.seq, head.seq])
    path = [r["digest"] for r in rows]
    key = await TownKey.get(id=head.key_id)
    signed = head_doc(head, key.public_key) | {"signature": head.signature}
    ok = (len(path) == head.seq - link.seq and encoding.walk(link.hash, path) == head.hash
          and encoding.verify_signature(key.public_key, encoding.head_payload(signed),
                                        head.signature))
    return shown | {"status": "verified" if ok else "invalid", "link": link_doc,
                    "path": path, "signed_head": signed}
