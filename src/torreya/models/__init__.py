"""All Tortoise models, one import path (no FK import cycles)."""

from torreya.models.audit import AuditEvent, LoginFailure
from torreya.models.checkins import Checkin, CheckinRefusal, Event
from torreya.models.community import (
    Pledge,
    PledgeSignature,
    Report,
    ReportCategory,
    ReportPhoto,
    ReportStatus,
    ReportUpdate,
)
from torreya.models.ledger import EarningRule, EarningTotal, LedgerEntry
from torreya.models.rewards import (
    Redemption,
    RedemptionStatus,
    Reward,
    RewardCategory,
    RewardImage,
    StockMovement,
)
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
    Reward,
    RewardImage,
    Redemption,
    StockMovement,
    Pledge,
    PledgeSignature,
    Report,
    ReportPhoto,
    ReportUpdate,
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
    "Pledge",
    "PledgeSignature",
    "Report",
    "ReportCategory",
    "ReportPhoto",
    "ReportStatus",
    "ReportUpdate",
    "Redemption",
    "RedemptionStatus",
    "Reward",
    "RewardCategory",
    "RewardImage",
    "Role",
    "StockMovement",
    "Town",
    "User",
    "Village",
]
