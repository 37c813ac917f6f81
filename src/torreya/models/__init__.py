"""All Tortoise models, one import path (no FK import cycles)."""

from torreya.models.audit import AuditEvent, LoginFailure
from torreya.models.checkins import Checkin, CheckinRefusal, Event
from torreya.models.ledger import EarningRule, EarningTotal, LedgerEntry
from torreya.models.tenancy import Role, Town, User, Village

__models__ = [
    AuditEvent,
    LoginFailure,
    Town,
    Village,
    User,
    LedgerEntry,
    EarningRule,
    EarningTotal,
    Event,
    Checkin,
    CheckinRefusal,
]

__all__ = [
    "AuditEvent",
    "Checkin",
    "CheckinRefusal",
    "EarningRule",
    "EarningTotal",
    "Event",
    "LedgerEntry",
    "LoginFailure",
    "Role",
    "Town",
    "User",
    "Village",
]
