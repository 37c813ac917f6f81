"""Passwords, API tokens, CSRF, and the login throttle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import Request

from torreya.db import now
from torreya.errors import UnauthenticatedError
from torreya.models import LoginFailure
from torreya.settings import Settings

_hasher = PasswordHasher()  # Argon2id, memory-hard
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def derive_key(settings: Settings, purpose: str) -> bytes:
    """One secret, a separate key per purpose (sessions, API tokens, each QR kind)."""
    return hmac.new(settings.SECRET_KEY.encode(), purpose.encode(), hashlib.sha256).digest()


def _jwt_key(settings: Settings, purpose: str) -> OctKey:
    return OctKey.import_key(derive_key(settings, purpose))


def sign_claims(settings: Settings, purpose: str, claims: dict) -> str:
    return jwt.encode({"alg": "HS256"}, claims, _jwt_key(settings, purpose))


def read_claims(settings: Settings, purpose: str, token: str) -> dict | None:
    """The claims of a token we signed for this purpose, or None if forged or malformed.

    Expiry is left to the caller, which names it (token_expired is not invalid_token).
    """
    if not token or len(token) > 2048:
        return None
    try:
        return dict(jwt.decode(token, _jwt_key(settings, purpose), algorithms=["HS256"]).claims)
    except (JoseError, ValueError, TypeError):
        return None


def issue_access_token(settings: Settings, user_id: int) -> str:
    issued = int(now().timestamp())
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + settings.ACCESS_TOKEN_SECONDS}
    return sign_claims(settings, "api-access", claims)


def read_access_token(settings: Settings, token: str) -> int:
    claims = read_claims(settings, "api-access", token)
    if not claims or int(claims.get("exp", 0)) < now().timestamp():
        raise UnauthenticatedError("Your login has expired or is not valid. Please log in again.")
    return int(claims["sub"])


def csrf_token_for(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(expected, submitted))


# -- login throttle: counted in the database so every worker and host sees the same ----------


async def check_login_allowed(settings: Settings, *, username: str, ip: str) -> None:
    from torreya.errors import TooManyAttemptsError

    since = now() - timedelta(seconds=settings.LOGIN_WINDOW_SECONDS)
    account = await LoginFailure.filter(key=f"u:{username.lower()}", created_at__gte=since).count()
    if account >= settings.LOGIN_MAX_PER_ACCOUNT:
        raise TooManyAttemptsError()
    address = await LoginFailure.filter(key=f"ip:{ip}", created_at__gte=since).count()
    if address >= settings.LOGIN_MAX_PER_IP:
        raise TooManyAttemptsError()


async def record_login_failure(*, username: str, ip: str) -> None:
    await LoginFailure.bulk_create(
        [LoginFailure(key=f"u:{username.lower()}"), LoginFailure(key=f"ip:{ip}")]
    )


async def clear_login_failures(*, username: str) -> None:
    await LoginFailure.filter(key=f"u:{username.lower()}").delete()
