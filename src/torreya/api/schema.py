"""The API's types: pydantic models of every request and response (issue 16).

One declaration per endpoint (`registry.endpoint`) names its body, query and response
models; they validate what comes in and write the OpenAPI document, so the document says
exactly what is refused. The types here carry the real limits:

- whole numbers are JSON integers (never text that looks like one), bounded by the column
  they go to;
- text is bounded in code points, as sent; short text (names, titles) may not hold `<` or
  `>`, and no text may hold control characters (a line break and a tab are fine);
- dates and times carry their offset and fall in 2000–2100;
- choices are enums, lists have their item types.

A refusal is 422 `invalid_request` naming the field (`scans[3].nonce`), in the caller's
language, like every other error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from torreya.errors import InvalidRequestError
from torreya.settings import LOCAL
from torreya.validation import MARKUP, YEARS

# PostgreSQL's INTEGER keys (most tables) and BIGINT ones (redemptions, reports, deliveries).
ID_MAX = 2**31 - 1
BIGID_MAX = 2**63 - 1

# What no text may hold (code points, so JSON Schema and Python agree): the C0 and C1
# control characters but tab, line feed and carriage return (a textarea's line breaks).
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL_RE = re.compile(f"[{_CONTROL}]")
# Lone surrogates (category Cs): JSON can carry them, UTF-8 cannot.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# ECMA-262 patterns for the document (\u escapes, which both dialects read alike).
_NO_CONTROL = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
_NO_MARKUP = _NO_CONTROL.replace("^[^", "^[^" + MARKUP.pattern.strip("[]"), 1)  # the same rule


def _not_valid(message: str, **params: Any) -> PydanticCustomError:
    """A refusal of our own validators: the msgid (no {braces}, so pydantic leaves it as it
    is) and its parameters travel to the 422."""
    return PydanticCustomError("torreya", message, params)


def _clean(markup: bool, required: bool):
    def clean(value: str) -> str:
        # Checked as sent (what the document's pattern says), then normalised: NFC would
        # turn "<" + U+0338 into "≮", and a check after it would let a "<" through.
        if _CONTROL_RE.search(value) or _SURROGATE_RE.search(value):
            raise _not_valid("Field %(name)s contains control characters.")
        if not markup and MARKUP.search(value):
            raise _not_valid("Field %(name)s may not contain < or >.")
        value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
        value = value.strip()
        if required and not value:
            raise _not_valid("Field %(name)s is required.")
        return value

    return clean


def Text(max_length: int, *, markup: bool = False, required: bool = True,
         min_length: int | None = None, description: str = "") -> Any:
    """Text of at most `max_length` code points as sent, trimmed. `required`: something
    besides spaces. Long text (`markup`) may hold < and >; it is escaped where shown."""
    minimum = min_length if min_length is not None else (1 if required else 0)
    return Annotated[str, Field(min_length=minimum, max_length=max_length,
                                pattern=_NO_CONTROL if markup else _NO_MARKUP,
                                description=description or None),
                     AfterValidator(_clean(markup, required))]


def Maybe(kind: Any, default: Any) -> Any:
    """An optional field that also takes null, meaning "not given" (as the API always has):
    the field then holds `default`. The document says `T or null`."""
    return Annotated[kind | None, AfterValidator(lambda v: default if v is None else v)]


def Int(minimum: int, maximum: int, *, description: str = "") -> Any:
    """A JSON integer (not "12", not 12.0, not true) in [minimum, maximum]."""
    return Annotated[StrictInt, Field(ge=minimum, le=maximum, description=description or None)]


_DIGITS = re.compile(r"-?[0-9]{1,19}")


def _query_int(value: Any) -> int:
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise _not_valid("Field %(name)s must be a whole number.")


def QueryInt(minimum: int, maximum: int) -> Any:
    """A whole number in a query string (`?limit=20`): digits only; an empty value is wrong,
    not absent. (The bounds come before the validator, so the document says them in JSON
    Schema's `minimum`/`maximum`, not pydantic's own `ge`/`le`.)"""
    return Annotated[int, Field(ge=minimum, le=maximum), BeforeValidator(_query_int)]


def _cursor(value: str) -> int:
    if int(value) > BIGID_MAX:
        raise _not_valid("Field %(name)s is not valid.")
    return int(value)


# A page's cursor: the `next_cursor` of the page before, as it came (opaque text of
# digits); the handler receives it as a number.
Cursor = Annotated[str, Field(pattern="^[0-9]{1,19}$",
                              description="The next_cursor of the page before"),
                   AfterValidator(_cursor)]


def OneOf(values: Iterable[str]) -> Any:
    """A choice among `values` (an enum in the document, so a generated client gets one)."""
    return Literal[tuple(str(v) for v in values)]


Id = Int(1, ID_MAX)
BigId = Int(1, BIGID_MAX)
Bool = StrictBool


def _moment(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _not_valid("Field %(name)s must be a date and time with its offset.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _not_valid("Field %(name)s must be a date and time with its offset.") from None
    if moment.tzinfo is None:
        raise _not_valid("Field %(name)s must be a date and time with its offset.")
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise _not_valid("Field %(name)s is out of range.")
    return moment


Moment = Annotated[datetime, BeforeValidator(_moment), WithJsonSchema(
    {"type": "string", "format": "date-time",
     "description": "RFC 3339 with its offset, 2000–2100"})]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day_or_moment(next_day: bool):
    def read(value: Any) -> datetime:
        if not isinstance(value, str):
            raise _not_valid("Field %(name)s must be a date, or a date and time with its "
                             "offset.")
        text = value.strip()
        if _DAY.fullmatch(text):
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise _not_valid("Field %(name)s must be a date, or a date and time with "
                                 "its offset.") from None
            if not YEARS[0] <= day.year <= YEARS[1]:
                raise _not_valid("Field %(name)s is out of range.")
            moment = datetime.combine(day, time(), LOCAL)
            return moment + timedelta(days=1) if next_day else moment
        # An unencoded "+08:00" arrives as " 08:00": read it as the client meant it.
        return _moment(re.sub(r" ([0-9]{2}:?[0-9]{2})$", r"+\1", text))

    return read


def _day(value: Any) -> date:
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        raise _not_valid("Field %(name)s must be a date (YYYY-MM-DD).")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise _not_valid("Field %(name)s must be a date (YYYY-MM-DD).") from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise _not_valid("Field %(name)s is out of range.")
    return day


Day = Annotated[date, BeforeValidator(_day), WithJsonSchema(
    {"type": "string", "format": "date", "description": "A date, village time (YYYY-MM-DD)"})]

_DAY_OR_MOMENT = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}",
                  "description": "A date (village time), or a date and time with its offset "
                                 "(RFC 3339, the + encoded as %2B)",
                  "examples": ["2026-12-01", "2026-12-01T08:00:00+08:00"]}
# A range's ends in a query: `from` a date means from its first moment, `to` a date up to
# the end of that day (both village time).
QueryFrom = Annotated[datetime, BeforeValidator(_day_or_moment(False)),
                      WithJsonSchema(_DAY_OR_MOMENT)]
QueryTo = Annotated[datetime, BeforeValidator(_day_or_moment(True)),
                    WithJsonSchema(_DAY_OR_MOMENT)]

# Response-side types: what the server sends (documented, not validated at runtime).
# A moment, answered in RFC 3339 on both databases ("2026-12-06T00:30:18.080640+00:00").
Time = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str),
                 WithJsonSchema({"type": "string", "format": "date-time"})]


class Body(BaseModel):
    """A request body: unknown fields are ignored (a newer client may send more).

    A body whose fields are all optional may be left out, unless `required` says a body
    must come (one of several sets of fields, as a login's)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    required: ClassVar[bool] = False


def body_required(model: type[BaseModel]) -> bool:
    """Whether a request must carry this body (what the document says)."""
    return bool(getattr(model, "required", False)) or any(
        f.is_required() for f in model.model_fields.values())


class Query(BaseModel):
    """Query parameters, read from text: `?limit=20`. An empty value is a wrong one."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Out(BaseModel):
    """A response body, for the document; every field is always present."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


def N_(message: str) -> str:  # noqa: N802 (the gettext convention): marks for extraction
    return message


# How pydantic's refusals read in the caller's language (msgids in torreya's catalog).
_MESSAGES = {
    "missing": N_("Field %(name)s is required."),
    "int_type": N_("Field %(name)s must be a whole number."),
    "int_parsing": N_("Field %(name)s must be a whole number."),
    "int_from_float": N_("Field %(name)s must be a whole number."),
    "bool_type": N_("Field %(name)s must be true or false."),
    "bool_parsing": N_("Field %(name)s must be true or false."),
    "string_type": N_("Field %(name)s must be text."),
    "string_too_short": N_("Field %(name)s is required."),
    "string_too_long": N_("Field %(name)s is too long (at most %(max)s characters)."),
    "string_pattern_mismatch": N_("Field %(name)s may not contain < or >."),
    "greater_than_equal": N_("Field %(name)s must be at least %(min)s."),
    "less_than_equal": N_("Field %(name)s must be at most %(max)s."),
    "literal_error": N_("Field %(name)s must be one of: %(choices)s."),
    "enum": N_("Field %(name)s must be one of: %(choices)s."),
    "list_type": N_("Field %(name)s must be a list."),
    "too_long": N_("Field %(name)s has too many items (at most %(max)s)."),
    "too_short": N_("Field %(name)s needs at least %(min)s items."),
    "model_type": N_("The body must be a JSON object."),
    "dict_type": N_("The body must be a JSON object."),
    "model_attributes_type": N_("The body must be a JSON object."),
}


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def refusal(error: ValidationError) -> InvalidRequestError:
    """The first of pydantic's refusals as our 422, naming the field."""
    first = error.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith(
        ("function-", "constrained-"))))
    field = _where(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str)), field)
    ctx = first.get("ctx") or {}
    if first["type"] == "torreya":
        return InvalidRequestError(first["msg"], field=field, name=name, **ctx)
    message = _MESSAGES.get(first["type"], N_("Field %(name)s is not valid."))
    params: dict[str, Any] = {}
    if "max_length" in ctx:
        params["max"] = ctx["max_length"]
    if "min_length" in ctx:
        params["min"] = ctx["min_length"]
    if "ge" in ctx:
        params["min"] = ctx["ge"]
    if "le" in ctx:
        params["max"] = ctx["le"]
    if "expected" in ctx:
        params["choices"] = ctx["expected"].replace("'", "").replace(" or ", ", ")
    if first["type"] == "string_pattern_mismatch" and _CONTROL_RE.search(
            str(first.get("input", ""))):
        message = N_("Field %(name)s contains control characters.")
    if first["type"] == "string_too_short" and ctx.get("min_length", 1) > 1:
        message = N_("Field %(name)s needs at least %(min)s characters.")
    if first["type"] == "missing" and not loc:
        message = N_("The body must be a JSON object.")
    return InvalidRequestError(message, field=field, name=name, **params)


def validate_model(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise refusal(error) from None


_FORM_INT = re.compile(r"-?[0-9]{1,19}")


def form_body(model: type[BaseModel], form: Any) -> dict[str, Any]:
    """A page's form as the JSON body `model` takes, so a console form and the API are
    validated by one declaration (the same limits, choices, markup rule and messages). A
    form sends text: a whole number's digits become the number, a ticked checkbox true
    (absent: false), a date and time without an offset (a datetime-local input) village
    time, an optional field left empty is left out (its default), and a list is the
    field's values (ticked boxes) or the lines of its one text box."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    body: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        kinds = prop.get("anyOf", [prop])
        types = {kind.get("type") for kind in kinds}
        value = form.get(name)
        if "array" in types:
            values = [str(v) for v in form.getlist(name)]
            if len(values) == 1:
                values = values[0].splitlines()
            body[name] = [line.strip() for line in values if line.strip()]
            continue
        if "boolean" in types:
            body[name] = value in ("on", "true", "1")
            continue
        if not isinstance(value, str):
            continue
        text = value.strip()
        if not text and name not in required:
            continue
        if "integer" in types and _FORM_INT.fullmatch(text):
            body[name] = int(text)
        elif any(kind.get("format") == "date-time" for kind in kinds):
            body[name] = _village_time(text)
        else:
            body[name] = value
    return body


def _village_time(text: str) -> str:
    """A datetime-local value (no offset) as village time; anything else as it is, for the
    model to judge."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.replace(tzinfo=LOCAL).isoformat() if moment.tzinfo is None else text


def validate_form(model: type[BaseModel], form: Any) -> Any:
    """A page's form validated by the API's model: the model, or 422 naming the field."""
    return validate_model(model, form_body(model, form))
