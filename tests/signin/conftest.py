"""The SMS gateway's far end for the sign-in tests: a real local HTTP receiver."""

from __future__ import annotations

import pytest

from tests.receiver import Receiver


@pytest.fixture
def phone_inbox():
    with Receiver() as receiver:
        yield receiver
