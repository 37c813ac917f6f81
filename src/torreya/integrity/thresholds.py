"""When a pattern becomes a signal: the defaults of SPEC §4.13, set per town in the console
(`Town.integrity`, only what differs from the defaults is stored)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from torreya.i18n import lazy_gettext as _l


@dataclass(frozen=True)
class Thresholds:
    device_residents: int = 5  # different residents checked in from one device …
    device_minutes: int = 10  # … at one event within this many minutes
    adjustments: int = 3  # manual positive adjustments by one actor to one resident …
    adjustment_days: int = 30  # … within this many days
    photo_distance: int = 6  # bits of 64 two photos' prints may differ by and be "the same"
    outlier_factor: int = 5  # 30 days' points above this many times the village median …
    outlier_top_percent: int = 1  # … and in the top this many percent …
    outlier_min_residents: int = 30  # … of at least this many earning residents


# (field, label, least, most) for the console's form, in its order
FORM = (
    ("device_residents", _l("Residents checked in from one device"), 2, 100),
    ("device_minutes", _l("… within minutes"), 1, 240),
    ("adjustments", _l("Manual additions by one person to one resident"), 2, 100),
    ("adjustment_days", _l("… within days"), 1, 365),
    ("photo_distance", _l("Photo difference still counted as the same (0–20)"), 0, 20),
    ("outlier_factor", _l("Earning above the village median, times"), 2, 100),
    ("outlier_top_percent", _l("… and in the top percent"), 1, 50),
    ("outlier_min_residents", _l("… of at least this many earning residents"), 5, 10_000),
)
DEFAULTS = Thresholds()


def of_town(stored: dict | None) -> Thresholds:
    """A town's thresholds: what it set over the defaults (unknown or bad values ignored)."""
    names = {f.name for f in fields(Thresholds)}
    bounds = {name: (least, most) for name, _label, least, most in FORM}
    chosen = {}
    for name, value in (stored or {}).items():
        if name in names and isinstance(value, int) and not isinstance(value, bool):
            least, most = bounds[name]
            if least <= value <= most:
                chosen[name] = value
    return replace(DEFAULTS, **chosen)


def to_store(thresholds: Thresholds) -> dict | None:
    """What differs from the defaults (None: nothing)."""
    default = asdict(DEFAULTS)
    changed = {k: v for k, v in asdict(thresholds).items() if default[k] != v}
    return changed or None
