"""Voucher codes: short, typed by hand, without look-alike characters (no 0/O, 1/I/L, 2/Z,
5/S, 8/B)."""

from __future__ import annotations

import secrets

ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
LENGTH = 8


def new_voucher_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_voucher_code(text: str) -> str | None:
    """The stored form of a typed or scanned code, or None if it cannot be one."""
    code = (text or "").strip().rsplit("/", 1)[-1].upper().replace("-", "").replace(" ", "")
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def display_voucher_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"
