"""The hours' tests share the sign-in tests' SMS far end (a family helper logs in by code)."""

from tests.signin.conftest import phone_inbox

__all__ = ["phone_inbox"]
