"""The codes QR images carry: signed, typed, and told apart by purpose.

- poster code: a JWT naming the event, valid until the event ends;
- rotating code: a JWT naming the event and a 30-second window, accepted for at most two
  windows, so a photo of the screen stops working within a minute;
- member card: a short code `M<user>-<serial>-<mac>` that staff can also type by hand;
  reissuing a card bumps the serial and the old card stops working.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from torreya.db import now
from torreya.keys import derive_key
from torreya.security import claims_signed_with, sign_claims
from torreya.settings import Settings

POSTER = "checkin-poster"
ROTATING = "checkin-rotating"
CARD = "member-card"
_CARD = re.compile(r"^M(\d{1,10})-(\d{1,6})-([A-Z2-7]{8})$")


@dataclass(frozen=True)
class CheckinCode:
    event_id: int
    mode: str  # "static" | "rotating"
    expires_at: datetime


class CodeError(Exception):
    def __init__(self, code: str, event_id: int | None = None) -> None:
        super().__init__(code)
        self.code = code  # "invalid_token" | "token_expired"
        self.event_id = event_id  # of an expired code: to say whether its event is over


def poster_token(settings: Settings, *, event_id: int, ends_at: datetime) -> str:
    return sign_claims(settings, POSTER, {"e": event_id, "exp": int(ends_at.timestamp())})


def rotating_window(settings: Settings, moment: datetime | None = None) -> int:
    return int((moment or now()).timestamp()) // settings.ROTATING_CODE_SECONDS


def rotating_token(settings: Settings, *, event_id: int, window: int) -> tuple[str, datetime]:
    """The code for one window and the last moment it is accepted: the end of the next
    window, so a code is good for two whole windows (accepted while now <= that moment)."""
    last = (window + 2) * settings.ROTATING_CODE_SECONDS
    token = sign_claims(settings, ROTATING, {"e": event_id, "w": window, "exp": last})
    return token, datetime.fromtimestamp(last, UTC)


def read_checkin_token(settings: Settings, token: str) -> CheckinCode:
    """Claims of a poster or rotating code. Raises CodeError(invalid_token|token_expired)."""
    signed = _signed_claims(settings.SECRET_KEY, (token or "").strip())
    if signed is None:
        raise CodeError("invalid_token")
    if signed.expires_at.timestamp() < now().timestamp():
        raise CodeError("token_expired", signed.event_id)
    return signed


@functools.lru_cache(maxsize=1024)
def _signed_claims(secret: str, token: str) -> CheckinCode | None:
    """What a genuine poster or rotating code says, its expiry not yet checked; None for
    anything else. Kept per worker: one poster's code, or one screen's code of the last
    30 seconds, is what a whole village scans, and its signature is the same every time."""
    for purpose, mode in ((POSTER, "static"), (ROTATING, "rotating")):
        claims = claims_signed_with(secret, purpose, token)
        if claims is None:
            continue
        try:
            event_id, exp = int(claims["e"]), int(claims["exp"])
            return CheckinCode(event_id, mode, datetime.fromtimestamp(exp, UTC))
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return None
    return None


def _card_mac(settings: Settings, user_id: int, serial: int) -> str:
    digest = hmac.new(derive_key(settings, CARD), f"{user_id}:{serial}".encode(), hashlib.sha256)
    return base64.b32encode(digest.digest()[:5]).decode()


def member_code(settings: Settings, *, user_id: int, serial: int) -> str:
    return f"M{user_id}-{serial}-{_card_mac(settings, user_id, serial)}"


def read_member_code(settings: Settings, code: str) -> tuple[int, int] | None:
    """(user_id, serial) of a genuine card code; the URL form and lower case are accepted."""
    code = (code or "").strip().rsplit("/", 1)[-1].upper().replace(" ", "")
    match = _CARD.match(code)
    if not match:
        return None
    user_id, serial = int(match[1]), int(match[2])
    if not hmac.compare_digest(match[3], _card_mac(settings, user_id, serial)):
        return None
    return user_id, serial


def current_code(settings: Settings, *, event_id: int, qr_mode: str,
                 ends_at: datetime) -> tuple[str, datetime]:
    """The code to show for an event now and the last moment it is accepted."""
    if qr_mode == "static":
        return poster_token(settings, event_id=event_id, ends_at=ends_at), ends_at
    return rotating_token(settings, event_id=event_id, window=rotating_window(settings))


def checkin_url(settings: Settings, token: str) -> str:
    return f"{settings.BASE_URL}/c/{token}"
