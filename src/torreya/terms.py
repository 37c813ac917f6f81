"""Words shown from data (roles, kinds, reasons, methods), marked for the catalog.

Templates translate them with `_(value)`; listing them here puts them in messages.po.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802  (the gettext convention for "mark only")
    return message


TERMS = (
    # roles
    N_("resident"), N_("staff"), N_("village_admin"), N_("town_admin"), N_("platform_admin"),
    # ledger entry kinds
    N_("checkin"), N_("patrol"), N_("pledge"), N_("report"), N_("adjustment"),
    N_("redemption"), N_("refund"), N_("expiry"),
    # event kinds
    N_("campaign"), N_("training"), N_("home_visit"), N_("meeting"), N_("drill"), N_("other"),
    # check-in methods
    N_("static"), N_("rotating"), N_("card"), N_("token"),
    # refusal reasons (error codes)
    N_("invalid_token"), N_("token_expired"), N_("event_not_open"), N_("already_checked_in"),
    N_("cap_reached"), N_("forbidden"),
    # cap and limit periods
    N_("day"), N_("week"), N_("month"), N_("year"),
    # vouchers, items, stock movements
    N_("pending"), N_("fulfilled"), N_("cancelled"), N_("expired"),
    N_("goods"), N_("service"), N_("honour"),
    N_("redeem"), N_("restock"), N_("initial"),
    # patrols
    N_("active"), N_("approved"), N_("leader"), N_("member"), N_("auto_submitted"),
    N_("out_of_order"),
    # boards and the monthly report
    N_("period_week"), N_("period_month"), N_("period_quarter"), N_("period_year"),
    N_("period_all"), N_("active_residents"), N_("checkins"), N_("patrol_hours"),
    N_("reports_filed"), N_("reports_accepted"), N_("pledges_signed"), N_("points_issued"),
    N_("points_redeemed"), N_("outstanding_points"),
    # reports
    N_("submitted"), N_("accepted"), N_("in_progress"), N_("resolved"), N_("rejected"),
    N_("hazard"), N_("fraud"), N_("dispute"),
    N_("out_of_stock"), N_("limit_reached"), N_("insufficient_points"), N_("invalid_state"),
)
