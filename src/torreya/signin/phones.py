"""Mainland mobile numbers, as people type them, stored as E.164 (SPEC §5.1)."""

from __future__ import annotations

import re
import unicodedata

from torreya.errors import InvalidRequestError

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_phone(text: str, *, field: str = "phone") -> str:
    """`13800138000`, `138 0013 8000`, `+86 138-0013-8000`, `0086…`, `１３８…` →
    `+8613800138000`.

    Raises InvalidRequestError naming the field for anything that is not a mainland mobile.
    """
    # NFKC: full-width digits from a Chinese keyboard (１３８…) count as the digits they are.
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(text)))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise InvalidRequestError(
            "Please enter an 11-digit mainland mobile number, like 138 0013 8000.",
            field=field)
    return f"+86{digits}"


def readable_phone(phone: str | None) -> str:
    """`+8613800138000` → `138 0013 8000`, as people read and dial a number (issue 28);
    anything else as it is."""
    local = phone[3:] if phone and phone.startswith("+86") else (phone or "")
    if _MOBILE.fullmatch(local):
        return f"{local[:3]} {local[3:7]} {local[7:]}"
    return local


def mask_phone(phone: str | None) -> str:
    """`+8613800138000` → `138****8000`, for staff who do not need the whole number."""
    if not phone:
        return ""
    local = phone[3:] if phone.startswith("+86") else phone
    return f"{local[:3]}****{local[-4:]}" if len(local) >= 7 else "****"
