"""Forms and query strings of the web pages: one declaration per form, used to validate.

Every failure is an InvalidRequestError (422 invalid_request) naming the field, with a
message in the user's language. Nothing reaches a service unvalidated.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from torreya.errors import InvalidRequestError
from torreya.settings import LOCAL

# Short text (names, titles) may not carry markup: the one rule, forms and API bodies
# alike (api/schema.py uses it too).
MARKUP = re.compile(r"[<>]")


@dataclass(frozen=True, kw_only=True)
class Field:
    name: str
    type: type = str
    required: bool = True
    nullable: bool = False
    max_length: int = 200
    min_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    choices: Sequence[str] | None = None
    # Short text (names, titles) may not carry markup; long text is escaped where shown.
    allow_markup: bool = False


def _invalid(field: str, message: str, **params: Any) -> InvalidRequestError:
    return InvalidRequestError(message, field=field, name=field, **params)


def clean_text(field: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid(field.name, "Field %(name)s must be text.")
    # Browsers send textarea line breaks as CRLF; keep them as plain newlines.
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise _invalid(field.name, "Field %(name)s contains control characters.")
    if len(value) < max(field.min_length, 1 if field.required else 0):
        raise _invalid(field.name, "Field %(name)s is required.")
    if len(value) > field.max_length:
        raise _invalid(field.name, "Field %(name)s is too long (at most %(max)s characters).",
                       max=field.max_length)
    if not field.allow_markup and MARKUP.search(value):
        raise _invalid(field.name, "Field %(name)s may not contain < or >.")
    if field.choices is not None and value not in field.choices:
        raise _invalid(field.name, "Field %(name)s must be one of: %(choices)s.",
                       choices=", ".join(field.choices))
    return value


def clean_int(field: Field, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
            value = int(value.strip())
        else:
            raise _invalid(field.name, "Field %(name)s must be a whole number.")
    if not INT_MIN <= value <= INT_MAX:
        raise _invalid(field.name, "Field %(name)s is out of range.")
    if field.minimum is not None and value < field.minimum:
        raise _invalid(field.name, "Field %(name)s must be at least %(min)s.", min=field.minimum)
    if field.maximum is not None and value > field.maximum:
        raise _invalid(field.name, "Field %(name)s must be at most %(max)s.", max=field.maximum)
    return value


# What a village's events, campaigns and rewards may be dated: anything else is a typo.
YEARS = (2000, 2100)


def clean_datetime(field: Field, value: Any) -> datetime:
    if not isinstance(value, str):
        raise _invalid(field.name, "Field %(name)s must be a date and time.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(field.name, "Field %(name)s must be a date and time.") from None
    if not YEARS[0] <= moment.year <= YEARS[1]:
        # the year 1 or 9999 overflows on the way to UTC (it was a 500)
        raise _invalid(field.name, "Field %(name)s is out of range.")
    if moment.tzinfo is None:  # form inputs (datetime-local) are local time
        moment = moment.replace(tzinfo=LOCAL)
    return moment


def clean_bool(field: Field, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "1", 1):
        return True
    if value in ("", "off", "false", "0", 0, None):
        return False
    raise _invalid(field.name, "Field %(name)s must be true or false.")


_CLEANERS = {str: clean_text, int: clean_int, datetime: clean_datetime, bool: clean_bool}


def validate(data: Mapping[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    """The cleaned fields of a form or query, or 422 naming the first bad one. A form sends
    everything as text, so "12" is read as a number here (API bodies are JSON, validated by
    their models: `torreya.api.schema`)."""
    out: dict[str, Any] = {}
    for field in fields:
        value = data.get(field.name)
        if field.type is bool and value is None:
            out[field.name] = False
            continue
        if value is None or (value == "" and field.type is not str and field.type is not bool):
            if field.required and not field.nullable:
                raise _invalid(field.name, "Field %(name)s is required.")
            out[field.name] = "" if field.type is str and not field.nullable else None
            continue
        if value == "" and field.type is str and not field.required:
            out[field.name] = None if field.nullable else ""
            continue
        out[field.name] = _CLEANERS[field.type](field, value)
    return out


# Whole numbers in a body fit the database's 64-bit integers, or they are refused by name.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 32


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def parse_json(body: bytes) -> Any:
    """JSON as a client may send it, or 422 `invalid_request`: not UTF-8, malformed, NaN or
    Infinity, numbers of thousands of digits, or nested deeper than any of our bodies."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError and Python's limit on digits in an integer.
        raise InvalidRequestError("The body is not valid JSON.", field="body") from None
    if _depth(data) > _MAX_DEPTH:
        raise InvalidRequestError("The body is nested too deeply.", field="body")
    return data


async def read_json(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object body of a request, as sent, for its model to validate (the API's are
    in `torreya.api.schema`); `optional`: no body at all is an empty object."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body and optional:
        return {}
    if content_type != "application/json":
        raise InvalidRequestError("Send the body as JSON (Content-Type: application/json).",
                                  field="body")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidRequestError("The body must be a JSON object.", field="body")
    return data


def coordinate(text: str | None, bound: float) -> float | None:
    """A latitude (bound 90) or longitude (bound 180) from a form, or None when absent/bad."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and -bound <= value <= bound else None
