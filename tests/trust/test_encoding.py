"""The canonical encoding is what outside auditors re-implement (docs/trust.md): its text is
pinned here, byte for byte, whatever form the entry's time comes in."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from torreya.trust import encoding

ROW = {"id": 42, "town_id": 3, "user_id": 7, "delta": 10, "balance_after": 130,
       "kind": "checkin", "memo": "夜巡 \"古来村\"", "source_type": "event", "source_id": 5,
       "idem_key": "checkin:5:7", "actor_id": 7, "proxy": False}
WITHOUT_ID = ('{"actor":7,"balance_after":130,"created_at":"2026-12-01T08:30:00.000250Z",'
              '"delta":10,"idem_key":"checkin:5:7","kind":"checkin","memo":"夜巡 \\"古来村\\"",'
              '"proxy":false,"source":"event:5","town":3,"user":7,"v":1}').encode()
WITH_ID = WITHOUT_ID.replace(b'"idem_key"', b'"id":42,"idem_key"')
SALT = "0123456789abcdef0123456789abcdef"
# Version 2, what links made since issue 26 digest: the salt, and "v":2.
SALTED = WITH_ID.replace(b'"proxy":false', f'"proxy":false,"salt":"{SALT}"'.encode()).replace(
    b'"v":1', b'"v":2')
MOMENT = datetime(2026, 12, 1, 8, 30, 0, 250, tzinfo=UTC)


@pytest.mark.parametrize("created_at", [
    MOMENT,
    MOMENT.astimezone(timezone(timedelta(hours=8))),  # 16:30 in Gulai
    MOMENT.replace(tzinfo=None),  # SQLite's rows: UTC without a zone
    "2026-12-01T08:30:00.000250+00:00",
    "2026-12-01T16:30:00.000250+08:00",
    "2026-12-01T08:30:00.000250Z",
])
def test_the_texts_are_the_same_for_every_form_of_the_time(created_at):
    row = {**ROW, "created_at": created_at}
    assert encoding.canonical(row, with_id=False) == WITHOUT_ID
    assert encoding.canonical(row) == WITH_ID
    assert encoding.both_texts(row, SALT) == (WITHOUT_ID, SALTED)
    assert encoding.digest(row) == hashlib.sha256(WITH_ID).hexdigest()
    assert encoding.digest({**row, "salt": SALT}, 2) == hashlib.sha256(SALTED).hexdigest()
    assert encoding.digest({**row, "salt": SALT}, 1) == hashlib.sha256(WITH_ID).hexdigest()
    assert encoding.digest(row, 2) == ""  # a version 2 link needs the salt


def test_a_seal_verifies_with_the_text_given_or_worked_out_and_a_wrong_one_fails():
    key = b"k" * 32
    row = {**ROW, "created_at": MOMENT}
    row["seal"] = hmac.new(key, WITHOUT_ID, hashlib.sha256).hexdigest()
    assert encoding.seal(key, row) == row["seal"]
    assert encoding.seal_ok(key, row) and encoding.seal_ok(key, row, WITHOUT_ID)
    assert not encoding.seal_ok(key, {**row, "balance_after": 131})
    assert not encoding.seal_ok(b"x" * 32, row)
    assert not encoding.seal_ok(key, {**row, "seal": None}, WITHOUT_ID)
