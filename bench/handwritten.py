"""The hand-written pieces the floor and the ceiling share, without a web framework.

The HS256 bearer check (iss, aud, exp, scope) and the legacy clean-up of JOBMAST's and
JOBOPS's fields (trim, status letters, YYYYMMDD and date+time pairs, implied decimals,
Y/N and 1/0 flags, sentinels), written out by hand. Rows are indexed by position in
the floor's column order, so SQLAlchemy rows and bare DB-API rows both fit.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import msgspec

__all__ = ("STATUS_CODE", "bearer_error", "encoder", "job", "operation")

log = logging.getLogger("floor")

_LONDON = ZoneInfo("Europe/London")
_STATUS = {"R": "released", "H": "on_hold", "C": "complete", "P": "planned"}
STATUS_CODE = {v: k for k, v in _STATUS.items()}
_OPSTATUS = {"Q": "queued", "S": "started", "F": "finished"}
encoder = msgspec.json.Encoder(decimal_format="number")


def bearer_error(header: str, secret: str, issuer: str, audience: str) -> str | None:
    """Why the ``Authorization`` header ``header`` is refused, or None when it grants reading jobs."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return "a bearer token is required"
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=audience, issuer=issuer,
            leeway=30, options={"require": ["exp"]},
        )  # fmt: skip
    except jwt.PyJWTError:
        return "invalid token"
    scopes = set(str(claims.get("scope", "")).split())
    if not scopes & {"admin", "jobs:read", "jobs:read:all"}:
        return "insufficient scope"
    return None


def _date(raw: Any) -> dt.date | None:
    if raw == 0 or raw == 99999999:
        return None
    try:
        return dt.date(raw // 10000, raw // 100 % 100, raw % 100)
    except (ValueError, TypeError):
        log.warning("bad date %r", raw)
        return None


def _stamp(day: Any, time: Any) -> dt.datetime | None:
    try:
        return dt.datetime(
            day // 10000, day // 100 % 100, day % 100, time // 10000, time // 100 % 100, time % 100, tzinfo=_LONDON
        )
    except (ValueError, TypeError):
        log.warning("bad timestamp %r %r", day, time)
        return None


def _flag(raw: Any, true: Any, false: Any) -> bool | None:
    if raw == true:
        return True
    if raw == false:
        return False
    log.warning("bad flag %r", raw)
    return None


def job(r: Any) -> dict[str, Any]:
    """A JOBMAST row (JOBNO, CUSTNO, ITEMNO, JSTAT, ORDDT, ORDTM, DUEDT, RUSHFL, QTY, PRIO, NOTES) as the API shows it."""
    status = _STATUS.get(r[3].rstrip(" "))
    if status is None:
        log.warning("bad status %r", r[3])
    notes = r[10]
    return {
        "job_number": r[0].rstrip(" "),
        "customer_id": r[1].rstrip(" "),
        "item_number": r[2].rstrip(" "),
        "status": status,
        "ordered_at": _stamp(r[4], r[5]),
        "due_date": _date(r[6]),
        "rush": _flag(r[7], "Y", "N"),
        "quantity": Decimal(r[8]).scaleb(-2),
        "priority": _flag(r[9], 1, 0),
        "notes": None if notes is None or notes.rstrip(" ") == "" else notes.rstrip(" "),
    }


def operation(r: Any) -> dict[str, Any]:
    """A JOBOPS row as the API shows it."""
    status = _OPSTATUS.get(r[5].rstrip(" "))
    if status is None:
        log.warning("bad operation status %r", r[5])
    return {
        "job_number": r[0].rstrip(" "),
        "sequence": r[1],
        "work_center": r[2].rstrip(" "),
        "description": r[3].rstrip(" "),
        "standard_hours": Decimal(r[4]).scaleb(-2),
        "status": status,
        "started_at": None if r[6] == 0 else _stamp(r[6], r[7]),
        "done": _flag(r[8], "Y", "N"),
    }
