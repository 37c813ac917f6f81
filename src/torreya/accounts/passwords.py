"""What a password must be (OWASP ASVS 4.0 §2.1): at least 8 characters for everyone and 10
for staff and admins, who move points and hand goods over; never one of the passwords most
common in breaches; never holding the person's username or phone number.

The list is Django's (`data/common-passwords.txt.gz`, 19,640 passwords compiled by Royce
Williams, the one its CommonPasswordValidator uses; licence beside it). It ships inside the
package, so the check needs no network; it holds the Chinese favourites too (woaini1314,
5201314, qq123456, 1qaz2wsx)."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

from torreya.accounts.permissions import rank
from torreya.errors import InvalidRequestError
from torreya.models import Role
from torreya.terms import N_

MIN_LENGTH = 8
STAFF_MIN_LENGTH = 10
MAX_LENGTH = 256
COMMON = Path(__file__).parent / "data" / "common-passwords.txt.gz"


class WeakPasswordError(InvalidRequestError):
    code = "weak_password"
    message = "This password is too easy to guess."


@functools.cache
def _common() -> frozenset[str]:
    with gzip.open(COMMON, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def min_length(role: Role) -> int:
    return STAFF_MIN_LENGTH if rank(role) >= rank(Role.STAFF) else MIN_LENGTH


def problem(password: str, *, role: Role, username: str = "",
            phone: str | None = None) -> tuple[str, dict] | None:
    """Why `password` will not do, as a message and its parameters; None when it will."""
    shortest = min_length(role)
    if len(password) < shortest:
        return N_("The password needs at least %(min)s characters."), {"min": shortest}
    folded = password.lower()
    digits = (phone or "").removeprefix("+86")
    if (folded in _common() or (len(username) >= 4 and username.lower() in folded)
            or (digits and digits in password)):
        return N_("This password is too common or too easy to guess (a well-known "
                  "password, your username or your phone number). Please choose another."), {}
    return None


def check(password: str, *, role: Role, username: str = "", phone: str | None = None,
          field: str = "password") -> None:
    """Raises WeakPasswordError (422, naming `field`) unless `password` will do."""
    found = problem(password, role=role, username=username, phone=phone)
    if found is not None:
        message, params = found
        raise WeakPasswordError(message, field=field, **params)
