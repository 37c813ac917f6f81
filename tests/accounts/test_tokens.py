"""Signed tokens (bearer logins, QR codes): the direct HS256 check of our own tokens accepts
exactly what joserfc accepts, and refuses every change to them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random

from joserfc import jwt
from joserfc.jwk import OctKey

from torreya.security import _oct_key, claims_signed_with, issue_access_token
from torreya.settings import Settings

SECRET = "a-secret-for-token-tests-0123456789-abcdefgh"
SETTINGS = Settings(DATABASE_URL="sqlite://unused", SECRET_KEY=SECRET, BASE_URL="http://t")


def _joserfc(token: str, purpose: str = "api-access") -> dict | None:
    try:
        return dict(jwt.decode(token, _oct_key(SECRET, purpose), algorithms=["HS256"]).claims)
    except Exception:  # noqa: BLE001 (any refusal)
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_our_tokens_read_the_same_as_joserfc_reads_them():
    token = issue_access_token(SETTINGS, 42, 3, "sid-1")
    claims = claims_signed_with(SECRET, "api-access", token)
    assert claims == _joserfc(token) and claims["sub"] == "42" and claims["gen"] == 3


def test_every_change_to_a_token_is_refused_as_joserfc_refuses_it():
    token = issue_access_token(SETTINGS, 42, 0, "sid-1")
    rng = random.Random(13)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é"
    changed = 0
    for _ in range(3000):
        chars = list(token)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        forged = "".join(chars)
        assert claims_signed_with(SECRET, "api-access", forged) == _joserfc(forged), forged
        changed += forged != token
    assert changed > 2900


def test_another_key_purpose_or_algorithm_is_refused():
    token = issue_access_token(SETTINGS, 42)
    assert claims_signed_with(SECRET, "checkin-poster", token) is None  # another purpose
    assert claims_signed_with("another-secret-entirely-0123456789-abcd", "api-access",
                              token) is None
    head, body, _sig = token.split(".")
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    assert claims_signed_with(SECRET, "api-access", unsigned) is None
    # A payload swapped under our header, signed with a key that is not ours.
    other = jwt.encode({"alg": "HS256"}, {"sub": "1"}, OctKey.import_key(b"x" * 32))
    assert other.split(".")[0] == head
    assert claims_signed_with(SECRET, "api-access", other) is None
    # Ours, but not a JSON object inside.
    key = _oct_key(SECRET, "api-access")
    listed = jwt.encode({"alg": "HS256"}, {"sub": "1"}, key).split(".")
    payload = _b64(b"[1, 2]")
    signature = _b64(hmac.new(key.raw_value, f"{listed[0]}.{payload}".encode(),
                              hashlib.sha256).digest())
    assert claims_signed_with(SECRET, "api-access", f"{listed[0]}.{payload}.{signature}") \
        is None


def test_a_token_with_another_header_still_goes_through_joserfc():
    key = _oct_key(SECRET, "api-access")
    token = jwt.encode({"alg": "HS256", "kid": "k1"}, {"sub": "7"}, key)
    assert claims_signed_with(SECRET, "api-access", token) == {"sub": "7"}
