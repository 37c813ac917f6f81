"""The words of every notification, one msgid per kind, and when a text message goes.

In-app notifications are rendered in the reader's language when shown; text messages are
plain Chinese, under 70 characters (one SMS segment), with the town's currency name.
Names that come from data are clipped so that no text can outgrow one segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from torreya import i18n
from torreya.i18n import gettext as _
from torreya.settings import LOCAL

SMS_MAX_CHARS = 70
QUIET_FROM, QUIET_UNTIL = time(21, 0), time(8, 0)
NAME_CHARS = 16  # a title, reward, route or place inside a text
REASON_CHARS = 20


def N_(message: str) -> str:  # noqa: N802 (the gettext convention): marks for extraction
    return message


# kind → (msgid, whether it also goes by text message). Keep in sync with texts.html.
KINDS: dict[str, tuple[str, bool]] = {
    "report_accepted": (N_("Your report (%(category)s) was accepted: "
                           "%(points)s %(currency)s credited."), True),
    "report_accepted_no_points": (N_("Your report (%(category)s) was accepted."), True),
    "report_in_progress": (N_("Your report (%(category)s) is being handled."), False),
    "report_resolved": (N_("Your report (%(category)s) has been resolved. Thank you for "
                           "keeping the village safe."), True),
    "report_rejected": (N_("Your report (%(category)s) was not accepted: %(reason)s"), True),
    "report_overdue": (N_("A %(category)s report of %(village)s is overdue (%(hours)s hours "
                          "passed): please see to it."), True),
    "report_followed": (N_("A report you follow (%(category)s) is now: %(status)s."), False),
    "patrol_approved": (N_("Your patrol on %(route)s was approved: %(points)s %(currency)s "
                           "credited."), True),
    "voucher_expiring": (N_("Your voucher for %(reward)s expires on %(date)s. Please collect "
                            "it at the village committee."), True),
    "voucher_expired": (N_("Your voucher for %(reward)s expired; %(points)s %(currency)s "
                           "were refunded."), False),
    "event_reminder": (N_("Reminder: %(title)s is tomorrow at %(time)s."), True),
    "points_expiring": (N_("%(points)s %(currency)s of yours expire on %(date)s. Spend them "
                           "at the points shop before then."), True),
    "event_reminder_at": (N_("Reminder: %(title)s is tomorrow at %(time)s, %(place)s."), True),
    "registration_approved": (N_("You are now a registered resident of %(village)s: log in "
                                 "with your phone number."), True),
    "registration_rejected": (N_("Your registration with %(village)s was not approved: "
                                 "%(reason)s"), True),
}
# Params holding a symbolic term (translated on display, see torreya/terms.py).
TERMS = ("category", "status")


def clip(text: str, limit: int = NAME_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(kind: str, params: Mapping[str, Any]) -> str:
    """The notification in the current language."""
    msgid, _sms = KINDS[kind]
    values = {k: (_(v) if k in TERMS else v) for k, v in params.items()}
    if "on" in values:  # an ISO date, said the reader's way
        day = date.fromisoformat(values.pop("on"))
        values["date"] = _("%(month)s/%(day)s", month=day.month, day=day.day)
    return _(msgid, **values)


def sms_text(kind: str, params: Mapping[str, Any]) -> str | None:
    """The Chinese text message for a kind that has one, else None."""
    if not KINDS[kind][1]:
        return None
    token = i18n.current_language.set("zh-CN")
    try:
        return render(kind, params)
    finally:
        i18n.current_language.reset(token)


def sms_send_time(moment: datetime) -> datetime:
    """`moment`, or 08:00 Asia/Shanghai after it when it falls in the quiet hours."""
    local = moment.astimezone(LOCAL)
    if local.time() >= QUIET_FROM:
        local = (local + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    elif local.time() < QUIET_UNTIL:
        local = local.replace(hour=8, minute=0, second=0, microsecond=0)
    return local.astimezone(moment.tzinfo)


def local_day(moment: datetime) -> str:
    """The Asia/Shanghai date of `moment`, ISO (the `on` param of a notification)."""
    return moment.astimezone(LOCAL).date().isoformat()


def local_clock(moment: datetime) -> str:
    return moment.astimezone(LOCAL).strftime("%H:%M")
