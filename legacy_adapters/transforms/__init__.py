"""Two-way value transforms between legacy columns and API fields.

A field's transforms are named in the mapping file (``transform: yyyymmdd``) and resolved
through ``TRANSFORMS``; its ``map``, ``scale`` and ``null_if`` options add links without a name.
``build_codec`` chains them all into the ``FieldCodec`` the query and row code use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from ..mapping.model import FieldSpec
from . import booleans, dates, text
from .base import Transform, Undecodable, Unencodable
from .chain import FieldCodec, build_codec

__all__ = (
    "TRANSFORMS",
    "FieldCodec",
    "Transform",
    "TransformFactory",
    "Undecodable",
    "Unencodable",
    "UnknownTransform",
    "build_codec",
    "get_transform",
)

TransformFactory: TypeAlias = Callable[[FieldSpec], Transform]
"""Builds a transform from the field's options; raises ``ValueError`` when one is missing."""


class UnknownTransform(ValueError):
    """A mapping names a transform that is not registered."""


def _fixed(transform: Transform) -> TransformFactory:
    # Transforms without options are immutable, so every field can share one instance.
    return lambda spec: transform


TRANSFORMS: dict[str, TransformFactory] = {
    "active_inactive": booleans.active_inactive,
    "boolean": booleans.boolean,
    # Date and time transforms from before ``date:``/``time:``; aliases of those codecs.
    "cyymmdd": _fixed(dates.date_codec("cyymmdd")),
    "date_time": dates.date_time,
    "hhmmss": _fixed(dates.time_codec("hhmmss")),
    "julian": _fixed(dates.date_codec("cyyddd")),
    "mm/dd/yyyy": _fixed(dates.date_codec("mm/dd/yyyy")),
    "one_zero": booleans.one_zero,
    "strip": text.strip,
    "trim": text.trim,
    "yes_no": booleans.yes_no,
    "yyyymmdd": _fixed(dates.date_codec("yyyymmdd")),
    "zero_padded": text.zero_padded,
}
"""Transform name, as written in the mapping file -> factory."""


def get_transform(name: str) -> TransformFactory:
    """Look up a transform factory by name.

    Raises:
        UnknownTransform: no transform has that name; the message lists the known ones.
    """
    try:
        return TRANSFORMS[name]
    except KeyError:
        known = ", ".join(sorted(TRANSFORMS))
        if name in dates.DATE_CODECS or name in dates.TIME_CODECS:
            key = "date" if name in dates.DATE_CODECS else "time"
            raise UnknownTransform(f"{name!r} is a {key} codec: write '{key}: {name}' instead of 'transform'") from None
        raise UnknownTransform(f"unknown transform {name!r} (known: {known})") from None
