"""Date filters and ``now()``: Kestra's AbstractDate family.

Inputs are ISO-8601 strings (what the context holds), epoch seconds, or text in an
``existingFormat``. Without ``timeZone`` the zone is UTC (Kestra uses the server's zone, UTC in
its images). ``locale`` is accepted; names are always English.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from typing import Any

from . import registry
from .errors import EvaluationError
from .javatime import format_datetime, to_datetime, zone

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
# ChronoUnit names: instant-based ones as microseconds, date-based ones as months or days.
_TIME_UNITS = {"NANOS": 0.001, "MICROS": 1, "MILLIS": 1_000, "SECONDS": 1_000_000, "MINUTES": 60_000_000,
               "HOURS": 3_600_000_000, "HALF_DAYS": 43_200_000_000}
_DAY_UNITS = {"DAYS": 1, "WEEKS": 7}
_MONTH_UNITS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def _epoch_micros(value: _dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _add_months(value: _dt.datetime, months: int) -> _dt.datetime:
    total = value.year * 12 + value.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise EvaluationError("The resulting date is out of range")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def add_to_date(value: _dt.datetime, amount: Any, unit: Any) -> _dt.datetime:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount != int(amount):
        raise EvaluationError(f"The dateAdd amount must be an integer, not {amount!r}")
    amount = int(amount)
    name = unit.upper() if isinstance(unit, str) else unit
    try:
        if name in _TIME_UNITS:
            shifted = value.astimezone(_dt.UTC) + _dt.timedelta(microseconds=amount * _TIME_UNITS[name])
            return shifted.astimezone(value.tzinfo)
        if name in _DAY_UNITS:
            return value + _dt.timedelta(days=amount * _DAY_UNITS[name])
        if name in _MONTH_UNITS:
            return _add_months(value, amount * _MONTH_UNITS[name])
    except OverflowError:
        raise EvaluationError("The resulting date is out of range") from None
    units = ", ".join([*_TIME_UNITS, *_DAY_UNITS, *_MONTH_UNITS])
    raise EvaluationError(f"Unknown time unit {unit!r} (expected one of {units})")


@registry.filter("date")
def date_filter(call, value, format=None, timeZone=None, existingFormat=None, locale=None):
    """``date(format, timeZone, existingFormat, locale)``: format a date, by default as ``iso``."""
    if value is None:
        return None
    tz = zone(timeZone)
    return format_datetime(to_datetime(value, tz, existingFormat), format, tz)


@registry.filter("dateAdd")
def date_add_filter(call, value, amount, unit, format=None, timeZone=None, existingFormat=None,
                    locale=None):
    """``dateAdd(amount, unit)``: add (or subtract) ChronoUnit amounts, formatted like ``date``."""
    if value is None:
        return None
    tz = zone(timeZone)
    shifted = add_to_date(to_datetime(value, tz, existingFormat), amount, unit)
    return format_datetime(shifted, format, tz)


def _instant(value: Any, timeZone: Any, existingFormat: Any) -> int:
    return _epoch_micros(to_datetime(value, zone(timeZone), existingFormat))


@registry.filter("timestamp")
def timestamp_filter(call, value, timeZone=None, existingFormat=None):
    return None if value is None else _instant(value, timeZone, existingFormat) // 1_000_000


@registry.filter("timestampMilli")
def timestamp_milli_filter(call, value, timeZone=None, existingFormat=None):
    return None if value is None else _instant(value, timeZone, existingFormat) // 1_000


@registry.filter("timestampMicro")
def timestamp_micro_filter(call, value, timeZone=None, existingFormat=None):
    return None if value is None else _instant(value, timeZone, existingFormat)


@registry.filter("timestampNano")
def timestamp_nano_filter(call, value, timeZone=None, existingFormat=None):
    return None if value is None else _instant(value, timeZone, existingFormat) * 1_000


@registry.function("now")
def now_function(call, format=None, timeZone=None, existingFormat=None, locale=None):
    """``now()``: the current date-time, formatted like ``date`` (``iso`` by default)."""
    tz = zone(timeZone)
    return format_datetime(_dt.datetime.now(_dt.UTC), format, tz)
