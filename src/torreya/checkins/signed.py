"""Member cards and vouchers signed with the town's Ed25519 key (issue 15), so that a staff
phone with no signal can tell a genuine one from a forgery with only the public key.

A signed code is `S1.<payload>.<signature>`, both base64url without padding. The payload
is UTF-8 text, fields joined by `|`:

- card:    `C|town|key|user|serial|masked name`
- voucher: `V|town|key|redemption|voucher code|masked name|item`

About 120–150 characters: a version 8 QR code, which a cheap phone camera reads from a
printed card. The short typed codes (`M12-1-ABCDEFGH`, the 8-letter voucher code) stay
valid online. A reissued card (a newer serial) or a deactivated resident is in the
revocation list a device downloads with the offline kit (`checkins/offline.py`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from torreya.checkins.codes import read_member_code
from torreya.masking import mask_name
from torreya.models import Redemption, TownKey, User
from torreya.settings import Settings
from torreya.trust.signing import current_key, sign

PREFIX = "S1"
MAX_LENGTH = 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _clean(text: str) -> str:
    return text.replace("|", "/")


async def _sign(settings: Settings, town_id: int, fields: list[object]) -> str:
    key = await current_key(settings, town_id)
    fields[2] = key.id
    payload = "|".join(_clean(str(f)) for f in fields).encode()
    return f"{PREFIX}.{_b64(payload)}.{_b64(sign(settings, key, payload))}"


async def card_code(settings: Settings, user: User) -> str:
    return await _sign(settings, user.town_id, ["C", user.town_id, 0, user.id, user.card_serial,
                                                mask_name(user.display_name)])


async def voucher_code(settings: Settings, redemption: Redemption, *, owner: User,
                       item: str) -> str:
    return await _sign(settings, redemption.town_id, [
        "V", redemption.town_id, 0, redemption.id, redemption.voucher_code,
        mask_name(owner.display_name), item[:24]])


@dataclass(frozen=True)
class Signed:
    kind: str  # "card" | "voucher"
    town_id: int
    key_id: int
    subject_id: int  # the user, or the redemption
    serial: int  # a card's serial (0 for a voucher)
    voucher: str  # a voucher's code ("" for a card)
    name: str  # masked
    item: str


def parse(code: str) -> tuple[Signed, bytes, bytes] | None:
    """(fields, payload, signature) of a well-formed signed code, unverified; the URL form
    (…/card/S1.…) is accepted."""
    code = (code or "").strip().rsplit("/", 1)[-1]
    if len(code) > MAX_LENGTH or not code.startswith(PREFIX + "."):
        return None
    try:
        _prefix, payload_text, signature_text = code.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        fields = payload.decode().split("|")
        if fields[0] == "C" and len(fields) == 6:
            signed = Signed("card", int(fields[1]), int(fields[2]), int(fields[3]),
                            int(fields[4]), "", fields[5], "")
        elif fields[0] == "V" and len(fields) == 7:
            signed = Signed("voucher", int(fields[1]), int(fields[2]), int(fields[3]), 0,
                            fields[4], fields[5], fields[6])
        else:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    if len(signature) != 64 or not all(0 <= n < 2**63 for n in (
            signed.town_id, signed.key_id, signed.subject_id, signed.serial)):
        return None
    return signed, payload, signature


async def verify(code: str, keys: dict[int, TownKey] | None = None) -> Signed | None:
    """The fields of a genuine signed code (its signature checked with the town's key that
    made it, retired or not); None for anything else. `keys`: the town's keys by id, when
    the caller checks many codes of one town."""
    parsed = parse(code)
    if parsed is None:
        return None
    if keys is None:
        key = await TownKey.get_or_none(id=parsed[0].key_id, town_id=parsed[0].town_id)
        keys = {key.id: key} if key is not None else {}
    return _checked(parsed, keys)


def verify_with(code: str, keys: dict[int, TownKey]) -> Signed | None:
    """`verify` with the town's keys given, without the event loop: the signature check
    lets other threads run meanwhile (a sync checks its cards in threads)."""
    parsed = parse(code)
    return _checked(parsed, keys) if parsed is not None else None


def _checked(parsed: tuple[Signed, bytes, bytes], keys: dict[int, TownKey]) -> Signed | None:
    signed, payload, signature = parsed
    key = keys.get(signed.key_id)
    if key is None or key.town_id != signed.town_id:
        return None
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key)).verify(signature,
                                                                                 payload)
    except InvalidSignature:
        return None
    return signed


def public_key_b64(key: TownKey) -> str:
    """The raw public key, base64url, as WebCrypto's importKey("raw", …) takes it."""
    return _b64(bytes.fromhex(key.public_key))


def is_signed(code: str) -> bool:
    return (code or "").strip().rsplit("/", 1)[-1].startswith(PREFIX + ".")


async def member_of(settings: Settings, code: str, keys: dict[int, TownKey] | None = None
                    ) -> tuple[int, int] | None:
    """(user_id, serial) of a genuine member card, signed (the QR) or typed (the short code).
    `keys` as for `verify`."""
    if keys is not None or not is_signed(code):
        return member_with(settings, code, keys or {})
    fields = await verify(code)
    return (fields.subject_id, fields.serial) if fields and fields.kind == "card" else None


def member_with(settings: Settings, code: str, keys: dict[int, TownKey]
                ) -> tuple[int, int] | None:
    """`member_of` with the town's keys given, without the event loop (see `verify_with`)."""
    if not is_signed(code):
        return read_member_code(settings, code)
    fields = verify_with(code, keys)
    return (fields.subject_id, fields.serial) if fields and fields.kind == "card" else None


async def short_voucher(code: str) -> str:
    """The 8-letter code of a genuine signed voucher (the QR), or the text as typed."""
    if not is_signed(code):
        return code
    fields = await verify(code)
    return fields.voucher if fields and fields.kind == "voucher" else ""
