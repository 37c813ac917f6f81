"""Passwords, API tokens, CSRF, and the login throttle."""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import Request
from tortoise.transactions import in_transaction

from torreya.db import fetch, is_postgres, now
from torreya.errors import TooManyAttemptsError, UnauthenticatedError
from torreya.keys import key_for
from torreya.models import LoginFailure
from torreya.settings import Settings

_hasher = PasswordHasher()  # Argon2id, memory-hard
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


# Argon2 takes about a tenth of a second of CPU by design. It runs in a thread beside the
# event loop (argon2-cffi lets go of the GIL meanwhile): on the loop it held up every other
# request of the worker, so a village logging in at once stalled everyone's check-ins.


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@functools.lru_cache(maxsize=64)
def _oct_key(secret: str, purpose: str) -> OctKey:
    # Deriving and importing the key was an eighth of a check-in's CPU (two per request).
    return OctKey.import_key(key_for(secret, purpose))


def _jwt_key(settings: Settings, purpose: str) -> OctKey:
    return _oct_key(settings.SECRET_KEY, purpose)


def sign_claims(settings: Settings, purpose: str, claims: dict) -> str:
    return jwt.encode({"alg": "HS256"}, claims, _jwt_key(settings, purpose))


def read_claims(settings: Settings, purpose: str, token: str) -> dict | None:
    """The claims of a token we signed for this purpose, or None if forged or malformed.

    Expiry is left to the caller, which names it (token_expired is not invalid_token).
    """
    return claims_signed_with(settings.SECRET_KEY, purpose, token)


def claims_signed_with(secret: str, purpose: str, token: str) -> dict | None:
    """`read_claims` for a bare secret (what a per-worker cache of verified codes keys by)."""
    if not token or len(token) > 2048:
        return None
    head, _, rest = token.partition(".")
    if head == _OUR_HEADER:
        return _hs256_claims(key_for(secret, purpose), head, rest)
    try:
        return dict(jwt.decode(token, _oct_key(secret, purpose), algorithms=["HS256"]).claims)
    except (JoseError, ValueError, TypeError):
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# The header joserfc writes on every token we sign ({"typ":"JWT","alg":"HS256"}). A token
# with exactly this header is checked directly: the HMAC-SHA256 of its first two parts,
# written as we write it, compared in constant time, then its payload read. That is all
# HS256 is, and it costs a tenth of the general decoder, which reads and checks the header
# first (two tokens on every check-in). Any other header goes to joserfc, which refuses
# what we did not sign ("none", another algorithm, another key).
_OUR_HEADER = jwt.encode({"alg": "HS256"}, {}, OctKey.import_key(b"0" * 32)).split(".")[0]


def _hs256_claims(key: bytes, head: str, rest: str) -> dict | None:
    body, _, signature = rest.partition(".")
    try:
        signed = f"{head}.{body}".encode("ascii")
        given = signature.encode("ascii")
    except UnicodeEncodeError:
        return None
    expected = _b64(hmac.digest(key, signed, "sha256")).encode("ascii")
    if not hmac.compare_digest(expected, given):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:  # not base64 or not JSON (UnicodeDecodeError is one too)
        return None
    return claims if isinstance(claims, dict) else None


def issue_access_token(settings: Settings, user_id: int, generation: int = 0,
                       sid: str | None = None, helper_id: int | None = None) -> str:
    """`helper_id`: a family helper's token, acting for the user (signin/family.py)."""
    issued = int(now().timestamp())
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + settings.ACCESS_TOKEN_SECONDS,
              "gen": generation}
    if sid:
        claims["sid"] = sid
    if helper_id:
        claims["hlp"] = helper_id
    return sign_claims(settings, "api-access", claims)


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    generation: int
    sid: str | None
    issued: datetime
    helper_id: int | None = None


def read_access_token(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid, unexpired token; else 401."""
    known = _access_claims(settings.SECRET_KEY, token)
    if known is None or known[1] < now().timestamp():
        raise UnauthenticatedError("Your login has expired or is not valid. Please log in again.")
    return known[0]


@functools.lru_cache(maxsize=20_000)
def _access_claims(secret: str, token: str) -> tuple[AccessClaims, int] | None:
    """A genuine access token's claims and expiry (not yet checked); None for anything
    else. Kept per worker, as the check-in codes are (checkins/codes.py): a phone sends the
    same token with every request of a login, and its signature proves the same every time.
    Whether the login still stands (ended, password changed) is checked against the user."""
    claims = claims_signed_with(secret, "api-access", token)
    if not claims:
        return None
    sid = claims.get("sid")
    return AccessClaims(int(claims["sub"]), int(claims.get("gen", 0)),
                        sid if isinstance(sid, str) else None,
                        datetime.fromtimestamp(int(claims.get("iat", 0)), UTC),
                        claims["hlp"] if isinstance(claims.get("hlp"), int) else None
                        ), int(claims.get("exp", 0))


def csrf_token_for(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    # as bytes: compare_digest raises TypeError on non-ASCII text (a forged form's token)
    return bool(expected and submitted and hmac.compare_digest(expected.encode(),
                                                               submitted.encode()))


# -- login throttle: counted in the database so every worker and host sees the same ----------


async def reserve_login_attempt(settings: Settings, *, username: str, ip: str) -> list[int]:
    """Reserve an attempt *before* the password is checked, so a burst of N guesses checks
    at most the limit. One short transaction per attempt: on PostgreSQL it first takes
    advisory locks on the account and the address (concurrent attempts for them queue
    here), on SQLite the INSERT takes the write lock; then the attempt is written and the
    window counted with it. Over the limit, the transaction rolls back: nothing is kept.

    Returns the reserved rows' ids; they stay as failures unless `release_login_attempt`
    is called after a success. Raises TooManyAttemptsError.
    """
    moment = now()
    account, address = f"u:{username.lower()}", f"ip:{ip}"
    since = moment - timedelta(seconds=settings.LOGIN_WINDOW_SECONDS)
    async with in_transaction() as connection:
        if is_postgres(connection):
            await fetch(connection, "SELECT pg_advisory_xact_lock(hashtext(?)),"
                        " pg_advisory_xact_lock(hashtext(?))", sorted([account, address]))
        rows = await fetch(connection, "INSERT INTO login_failures (key, created_at)"
                           " VALUES (?, ?), (?, ?) RETURNING id",
                           [account, moment, address, moment])
        counts = {r["key"]: int(r["n"]) for r in await fetch(
            connection, "SELECT key, COUNT(*) AS n FROM login_failures"
            " WHERE key IN (?, ?) AND created_at >= ? GROUP BY key", [account, address, since])}
        if (counts.get(account, 0) > settings.LOGIN_MAX_PER_ACCOUNT
                or counts.get(address, 0) > settings.LOGIN_MAX_PER_IP):
            raise TooManyAttemptsError()
    return [int(r["id"]) for r in rows]


async def release_login_attempt(*, username: str, reserved: list[int]) -> None:
    """After a success: the account's failures are forgiven, and this attempt's address row
    is taken back (the address keeps its other failures)."""
    await LoginFailure.filter(key=f"u:{username.lower()}").delete()
    await LoginFailure.filter(id__in=reserved).delete()
