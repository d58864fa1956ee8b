"""Java's date-time patterns and named formats (java.time.format.DateTimeFormatter), in Python.

Kestra's ``date``, ``dateAdd``, ``now`` and ``timestamp*`` take Java patterns
(``yyyy-MM-dd'T'HH:mm:ss.SSSXXX``) and Kestra's named formats (``iso``, ``sql``, ``iso_date``...).
This module formats and parses them with the English locale. Python's datetime carries
microseconds: a tenth-of-microsecond digit (``SSSSSSS``) always prints 0. Week-based fields
(``Y``, ``w``) follow ISO-8601 weeks.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import functools
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import EvaluationError

UTC = ZoneInfo("UTC")
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_LETTERS = set("GuyDMLdQqYwWEeFaBhKkHmsSAnNVvzOXxZc")
_OFFSET_RE = re.compile(r"^(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")

# Kestra's named formats (AbstractDate.FORMATTERS) that are plain patterns.
NAMED_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
}
# FormatStyle presets, as the JDK's CLDR data writes them in English.
STYLE_PATTERNS = {
    "short": "M/d/yy, h:mm a",
    "medium": "MMM d, y, h:mm:ss a",
    "long": "MMMM d, y 'at' h:mm:ss a z",
    "full": "EEEE, MMMM d, y 'at' h:mm:ss a zzzz",
}


def zone(name: Any) -> _dt.tzinfo:
    """``ZoneId.of``: a region (``Europe/Paris``), ``UTC``/``GMT``/``Z``, or an offset (``+02:00``)."""
    if name is None:
        return UTC
    if not isinstance(name, str) or not name.strip():
        raise EvaluationError(f"Invalid time zone: {name!r}")
    text = name.strip()
    if text in ("Z", "UTC", "GMT", "UT", "Etc/UTC"):
        return UTC if text != "Z" else _dt.UTC
    match = _OFFSET_RE.match(text)
    if match:
        sign, hours, minutes, seconds = match.groups()
        delta = _dt.timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
        if delta > _dt.timedelta(hours=18):
            raise EvaluationError(f"Invalid time zone offset: {text}")
        return _dt.timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise EvaluationError(f"Unknown time zone: {text}") from None


def zone_id(tz: _dt.tzinfo) -> str:
    if isinstance(tz, ZoneInfo):
        return tz.key
    offset = tz.utcoffset(None) or _dt.timedelta(0)
    return offset_text(int(offset.total_seconds()), "X", 5)


# -- formatting -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple:
    """Split a Java pattern into ('L', letter, count), ('T', literal text), ('[',) and (']',)."""
    tokens: list[tuple] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "'":
            end = i + 1
            text = []
            while end < n:
                if pattern[end] == "'":
                    if end + 1 < n and pattern[end + 1] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(pattern[end])
                end += 1
            else:
                raise EvaluationError(f"Pattern ends with an incomplete string literal: {pattern}")
            tokens.append(("T", "".join(text) if end > i + 1 else "'"))
            i = end + 1
        elif ("a" <= char <= "z") or ("A" <= char <= "Z"):
            end = i
            while end < n and pattern[end] == char:
                end += 1
            if char not in _LETTERS:
                raise EvaluationError(f"Unknown pattern letter: {char}")
            tokens.append(("L", char, end - i))
            i = end
        elif char in "[]":
            tokens.append((char,))
            i += 1
        elif char in "{}#":
            raise EvaluationError(f"Pattern includes reserved character: '{char}'")
        else:
            tokens.append(("T", char))
            i += 1
    return tuple(tokens)


def offset_text(seconds: int, letter: str, count: int) -> str:
    sign = "-" if seconds < 0 else "+"
    total = abs(seconds)
    hours, minutes, secs = total // 3600, (total // 60) % 60, total % 60
    if letter in ("O",) or (letter == "Z" and count == 4):
        if total == 0:
            return "GMT"
        if letter == "O" and count == 1:
            short = f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes or secs else "")
            return short + (f":{secs:02d}" if secs else "")
        return f"GMT{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
    if total == 0 and (letter == "X" or (letter == "Z" and count == 5)):
        return "Z"
    if letter == "Z":
        return f"{sign}{hours:02d}{minutes:02d}" if count <= 3 else f"{sign}{hours:02d}:{minutes:02d}"
    colon = ":" if count in (3, 5) else ""
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    text = f"{sign}{hours:02d}{colon}{minutes:02d}"
    if count >= 4 and secs:
        text += f"{colon}{secs:02d}"
    return text


def _pad(value: int, count: int) -> str:
    return str(value) if count == 1 else str(value).zfill(count)


def _text(value: str, count: int) -> str:
    if count <= 3:
        return value[:3]
    return value if count == 4 else value[0]


def _field(dt: _dt.datetime, letter: str, count: int) -> str:
    if letter in "yu":
        year = dt.year
        return str(year % 100).zfill(2) if count == 2 else _pad(year, count)
    if letter == "Y":
        year = dt.isocalendar().year
        return str(year % 100).zfill(2) if count == 2 else _pad(year, count)
    if letter in "ML":
        return _pad(dt.month, count) if count <= 2 else _text(MONTHS[dt.month - 1], count)
    if letter == "d":
        return _pad(dt.day, count)
    if letter == "D":
        return _pad(dt.timetuple().tm_yday, count)
    if letter in "Qq":
        quarter = (dt.month - 1) // 3 + 1
        if count <= 2:
            return _pad(quarter, count)
        if count == 3:
            return f"Q{quarter}"
        return f"{quarter}{['st', 'nd', 'rd', 'th'][quarter - 1]} quarter" if count == 4 else str(quarter)
    if letter == "E":
        return _text(DAYS[dt.weekday()], count)
    if letter in "ec":
        if count <= 2:
            return _pad((dt.weekday() + 1) % 7 + 1, count)  # en_US weeks start on Sunday
        return _text(DAYS[dt.weekday()], count)
    if letter == "w":
        return _pad(dt.isocalendar().week, count)
    if letter == "W":
        first_weekday = (dt.replace(day=1).weekday() + 1) % 7
        return _pad((dt.day - 1 + first_weekday) // 7 + 1, count)
    if letter == "F":
        return _pad((dt.day - 1) // 7 + 1, count)
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "B":
        return "in the morning" if 6 <= dt.hour < 12 else "in the afternoon" if 12 <= dt.hour < 18 \
            else "in the evening" if 18 <= dt.hour < 21 else "at night"
    if letter == "G":
        return "AD" if count <= 3 else ("Anno Domini" if count == 4 else "A")
    if letter == "H":
        return _pad(dt.hour, count)
    if letter == "k":
        return _pad(dt.hour or 24, count)
    if letter == "K":
        return _pad(dt.hour % 12, count)
    if letter == "h":
        return _pad(dt.hour % 12 or 12, count)
    if letter == "m":
        return _pad(dt.minute, count)
    if letter == "s":
        return _pad(dt.second, count)
    if letter == "S":
        if count > 9:
            raise EvaluationError("Too many pattern letters: S")
        return f"{dt.microsecond * 1000:09d}"[:count]
    if letter == "n":
        return _pad(dt.microsecond * 1000, count)
    if letter == "A":
        return _pad(((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + dt.microsecond // 1000, count)
    if letter == "N":
        return _pad((((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1_000_000 + dt.microsecond) * 1000, count)
    offset = int((dt.utcoffset() or _dt.timedelta(0)).total_seconds())
    if letter in "XxZO":
        return offset_text(offset, letter, count)
    if letter == "V":
        if count != 2:
            raise EvaluationError("Pattern letter count must be 2: V")
        return zone_id(dt.tzinfo)
    if letter in "zv":
        name = dt.tzname() or zone_id(dt.tzinfo)
        if count == 4 and name == "UTC":
            return "Coordinated Universal Time"
        return name
    raise EvaluationError(f"Unknown pattern letter: {letter}")


def format_pattern(dt: _dt.datetime, pattern: str) -> str:
    out = []
    for token in compile_pattern(pattern):
        if token[0] == "L":
            out.append(_field(dt, token[1], token[2]))
        elif token[0] == "T":
            out.append(token[1])
    return "".join(out)


def _fraction(dt: _dt.datetime, groups_of_three: bool) -> str:
    if not dt.microsecond:
        return ""
    digits = f"{dt.microsecond:06d}"
    if groups_of_three:
        return "." + (digits[:3] if digits[3:] == "000" else digits)
    return "." + digits.rstrip("0")


def _iso_local_time(dt: _dt.datetime) -> str:
    return dt.strftime("%H:%M:%S") + _fraction(dt, False)


def _iso_offset(dt: _dt.datetime) -> str:
    return offset_text(int((dt.utcoffset() or _dt.timedelta(0)).total_seconds()), "X", 5)


def _zone_suffix(dt: _dt.datetime) -> str:
    tz = dt.tzinfo
    return f"[{tz.key}]" if isinstance(tz, ZoneInfo) and tz.key != "UTC" else ""


def _year(dt: _dt.datetime) -> str:
    return f"{dt.year:04d}"


_NAMED_FORMATTERS = {
    "iso_local_date": lambda dt: f"{_year(dt)}-{dt.month:02d}-{dt.day:02d}",
    "iso_date": lambda dt: f"{_year(dt)}-{dt.month:02d}-{dt.day:02d}{_iso_offset(dt)}",
    "iso_local_time": _iso_local_time,
    "iso_time": lambda dt: _iso_local_time(dt) + _iso_offset(dt),
    "iso_offset_time": lambda dt: _iso_local_time(dt) + _iso_offset(dt),
    "iso_local_date_time": lambda dt: f"{_year(dt)}-{dt.month:02d}-{dt.day:02d}T{_iso_local_time(dt)}",
    "iso_date_time": lambda dt: f"{_year(dt)}-{dt.month:02d}-{dt.day:02d}T{_iso_local_time(dt)}"
                                f"{_iso_offset(dt)}{_zone_suffix(dt)}",
    "iso_zoned_date_time": lambda dt: f"{_year(dt)}-{dt.month:02d}-{dt.day:02d}T{_iso_local_time(dt)}"
                                      f"{_iso_offset(dt)}{_zone_suffix(dt)}",
    "iso_instant": lambda dt: dt.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
                              + _fraction(dt, True) + "Z",
    "iso_ordinal_date": lambda dt: f"{_year(dt)}-{dt.timetuple().tm_yday:03d}{_iso_offset(dt)}",
    "iso_week_date": lambda dt: f"{dt.isocalendar().year:04d}-W{dt.isocalendar().week:02d}-"
                                f"{dt.isocalendar().weekday}{_iso_offset(dt)}",
    "rfc_1123_date_time": lambda dt: f"{DAYS[dt.weekday()][:3]}, {dt.day} {MONTHS[dt.month - 1][:3]} "
                                     f"{dt.year} {dt.strftime('%H:%M:%S')} "
                                     + ("GMT" if not dt.utcoffset() else offset_text(
                                         int(dt.utcoffset().total_seconds()), "Z", 1)),
}


def format_datetime(dt: _dt.datetime, fmt: Any, tz: _dt.tzinfo) -> str:
    """Format as Kestra's AbstractDate.format: named format, style or Java pattern, in ``tz``."""
    if fmt is None:
        fmt = "iso"
    if not isinstance(fmt, str):
        raise EvaluationError(f"The date format must be a string, not {fmt!r}")
    local = dt.astimezone(tz)
    named = _NAMED_FORMATTERS.get(fmt)
    if named is not None:
        return named(local)
    pattern = NAMED_PATTERNS.get(fmt) or STYLE_PATTERNS.get(fmt) or fmt
    return format_pattern(local, pattern)


# -- parsing --------------------------------------------------------------------------------

def _fix_fraction(text: str) -> str:
    return re.sub(r"(\.\d{6})\d+", r"\1", text)


def parse_iso(text: str, tz: _dt.tzinfo) -> _dt.datetime:
    """``ZonedDateTime.parse``, then ``LocalDateTime.parse``, then ``LocalDate.parse`` (start of day)."""
    value = text.strip()
    region = None
    bracket = re.match(r"^(.*)\[([^\]]+)\]$", value)
    if bracket:
        value, region = bracket.group(1), zone(bracket.group(2))
    try:
        parsed = _dt.datetime.fromisoformat(_fix_fraction(value))
    except ValueError:
        raise EvaluationError(f"Text '{text}' could not be parsed as an ISO-8601 date") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=region or tz)
    return parsed.astimezone(region) if region else parsed


@functools.lru_cache(maxsize=128)
def _compile_parser(pattern: str) -> tuple[re.Pattern, list[tuple[str, int]]]:
    parts, fields = [], []
    tokens = compile_pattern(pattern)
    for index, token in enumerate(tokens):
        if token[0] == "T":
            parts.append(re.escape(token[1]))
        elif token[0] == "[":
            parts.append("(?:")
        elif token[0] == "]":
            parts.append(")?")
        else:
            letter, count = token[1], token[2]
            adjacent = index + 1 < len(tokens) and tokens[index + 1][0] == "L"
            parts.append(_field_regex(letter, count, adjacent))
            fields.append((letter, count))
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE), fields


def _field_regex(letter: str, count: int, adjacent: bool) -> str:
    if letter in "ML" and count >= 3:
        names = MONTHS if count == 4 else [m[:3] for m in MONTHS]
        return "(" + "|".join(names) + ")"
    if letter in "Eec" and (letter == "E" or count >= 3):
        return "(" + "|".join(DAYS + [d[:3] for d in DAYS]) + ")"
    if letter == "a":
        return "(AM|PM)"
    if letter in "XxZO":
        return r"(Z|GMT(?:[+-]\d{1,2}(?::?\d{2})?)?|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)"
    if letter in "zVv":
        return r"([A-Za-z][A-Za-z_+\-0-9]*(?:/[A-Za-z_+\-0-9]+)*|[+-]\d{2}:?\d{2})"
    if letter == "G":
        return "(AD|BC|Anno Domini|A|B)"
    if letter in "yuY":  # 'yy' is two digits; 'yyyy' four or more unless a number follows directly
        if count == 2 or (count > 2 and adjacent):
            return rf"(\d{{{count}}})"
        return rf"([+-]?\d{{{max(count, 1)},9}})" if count > 2 else r"([+-]?\d{1,9})"
    if count >= 2 or letter == "S":  # Java's fixed-width fields
        return rf"(\d{{{count}}})"
    width = {"D": 3, "n": 9, "A": 8, "N": 14}.get(letter, 2)
    return rf"(\d{{1,{width}}})"


def parse_pattern(text: str, fmt: str, tz: _dt.tzinfo) -> _dt.datetime:
    """Parse ``text`` with a Java pattern or Kestra's named format (``existingFormat``)."""
    if fmt in _NAMED_FORMATTERS or fmt == "iso" or fmt == "iso_sec":
        if fmt == "rfc_1123_date_time":
            try:
                return email.utils.parsedate_to_datetime(text.strip())
            except (TypeError, ValueError):
                raise EvaluationError(f"Text '{text}' could not be parsed as an RFC 1123 date") from None
        return parse_iso(text, tz)
    if fmt in STYLE_PATTERNS:
        raise EvaluationError(f"The '{fmt}' style can format dates but not parse them")
    regex, fields = _compile_parser(NAMED_PATTERNS.get(fmt, fmt))
    match = regex.match(text.strip())
    if not match:
        raise EvaluationError(f"Text '{text}' could not be parsed with the pattern '{fmt}'")
    values: dict[str, Any] = {}
    for (letter, count), raw in zip(fields, match.groups(), strict=True):
        if raw is None:
            continue
        if letter in "ML" and count >= 3:
            values["M"] = [m[:3].lower() for m in MONTHS].index(raw[:3].lower()) + 1
        elif letter in "yuY":
            year = int(raw)
            values["y"] = 2000 + year if count == 2 else year
        elif letter in "dHmsDkKh":
            values[letter] = int(raw)
        elif letter in "ML":
            values["M"] = int(raw)
        elif letter == "S":
            values["S"] = int((raw + "000000")[:6])
        elif letter == "n":
            values["S"] = int(raw) // 1000
        elif letter == "a":
            values["a"] = raw.upper()
        elif letter in "XxZO":
            values["tz"] = _dt.UTC if raw.upper() in ("Z", "GMT") else zone(raw)
        elif letter in "zVv":
            values["tz"] = zone(raw)
    if "y" not in values or ("M" not in values and "D" not in values):
        raise EvaluationError(f"Text '{text}' has no complete date for the pattern '{fmt}'")
    hour = values.get("H", values.get("k", 0) % 24)
    if "h" in values or "K" in values:
        hour = values.get("h", values.get("K", 0)) % 12 + (12 if values.get("a") == "PM" else 0)
    try:
        if "M" in values:
            day = _dt.date(values["y"], values["M"], values.get("d", 1))
        else:
            day = _dt.date(values["y"], 1, 1) + _dt.timedelta(days=values["D"] - 1)
        return _dt.datetime(day.year, day.month, day.day, hour, values.get("m", 0), values.get("s", 0),
                            values.get("S", 0), tzinfo=values.get("tz", tz))
    except ValueError as exc:
        raise EvaluationError(f"Text '{text}' is not a valid date: {exc}") from None


def to_datetime(value: Any, tz: _dt.tzinfo, existing_format: Any = None) -> _dt.datetime:
    """Kestra's AbstractDate.convert: dates, epoch seconds, ISO strings or ``existingFormat`` text."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, 12, tzinfo=tz)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _dt.datetime.fromtimestamp(value, tz)
        except (OverflowError, OSError, ValueError):
            raise EvaluationError(f"The timestamp {value} is out of range") from None
    if isinstance(value, str):
        if existing_format is not None:
            if not isinstance(existing_format, str):
                raise EvaluationError("The existingFormat argument must be a string")
            return parse_pattern(value, existing_format, tz)
        return parse_iso(value, tz)
    raise EvaluationError(f"Unable to read a date from a value of type {type(value).__name__}")
