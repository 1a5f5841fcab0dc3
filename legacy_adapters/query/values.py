"""Parse API-form text (query strings, URL keys, token claims) into typed values.

The field's API ``type`` decides: ``2026-12-01`` is a date, ``true`` a boolean,
``12.50`` a Decimal. The codec then turns the typed value into legacy form.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ("coerce_json", "parse_value")

_BOOLEANS = {"true": True, "false": False}


def parse_value(field_type: str, text: str) -> Any:
    """Parse ``text`` as a value of the API type ``field_type``.

    Raises:
        ValueError: with a sentence naming the expected form.
    """
    try:
        match field_type:
            case "string":
                return text
            case "integer":
                return int(text)
            case "decimal" | "number":
                value = Decimal(text)
                if not value.is_finite():
                    raise ValueError
                return value
            case "date":
                return dt.date.fromisoformat(text)
            case "time":
                return dt.time.fromisoformat(text)
            case "datetime":
                moment = dt.datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    raise ValueError
                return moment
            case "boolean":
                return _BOOLEANS[text.lower()]
    except (ValueError, KeyError, InvalidOperation):
        pass
    raise ValueError(f"expected {_EXPECTED[field_type]}, got {text!r}")


_EXPECTED = {
    "string": "text",
    "integer": "a whole number",
    "decimal": "a decimal number such as 12.50",
    "number": "a number",
    "date": "an ISO 8601 date such as 2026-12-01",
    "time": "an ISO 8601 time such as 14:30:00",
    "datetime": "an ISO 8601 date-time with offset such as 2026-12-01T14:30:00Z",
    "boolean": "true or false",
}


def coerce_json(field_type: str, value: Any) -> Any:
    """A value decoded from a JSON body (numbers as Decimal) as the field's API type.

    Raises:
        ValueError: with a sentence naming the expected JSON form.
    """
    match field_type:
        case "string":
            if isinstance(value, str):
                return value
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, Decimal) and value == value.to_integral_value():
                return int(value)
        case "decimal" | "number":
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                return Decimal(value)
        case "boolean":
            if isinstance(value, bool):
                return value
        case "date" | "time" | "datetime":
            if isinstance(value, str):
                return parse_value(field_type, value)
    raise ValueError(f"expected {_JSON_FORMS[field_type]}, got {type(value).__name__} {value!r}")


_JSON_FORMS = {
    "string": "a string",
    "integer": "a whole number",
    "decimal": "a number",
    "number": "a number",
    "boolean": "true or false",
    "date": 'an ISO 8601 date string such as "2026-12-01"',
    "time": 'an ISO 8601 time string such as "14:30:00"',
    "datetime": "an ISO 8601 date-time string with offset",
}
