"""Pick the response media type from ``Accept``: JSON pages, or an NDJSON/CSV export."""

from __future__ import annotations

from gateway.exceptions import NotAcceptable
from gateway.export import CSV, NDJSON

__all__ = ("JSON", "choose_media_type")

JSON = "application/json"
_OFFERED = (JSON, NDJSON, CSV)


def choose_media_type(accept: str | None, offered: tuple[str, ...] = _OFFERED) -> str:
    """The best of ``offered`` for ``accept`` by q-value, JSON when absent or a wildcard wins."""
    if not accept:
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "application/*"):
            return JSON
        if media == "text/*" and CSV in offered:
            return CSV
        if media in offered:
            return media
    raise NotAcceptable(f"cannot produce {accept[:200]!r}; offered: {', '.join(offered)}")
