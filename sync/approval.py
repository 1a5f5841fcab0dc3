"""Risky runs wait for a human: the gate between planning a run and sending it.

After planning, ``assess`` looks at what the run is about to do and says why it
should wait, or None. A run waits (state ``awaiting_approval``, its planned diff
stored) when it would delete, archive or change more than ``max_change_share`` of
the remote records the sync keeps, when a full pass read a number of source rows
far from recent runs (a view that suddenly returns half the rows), or, with
``after_mapping_change``, when it is the first run since the sync's definition
changed. ``bridgehead sync approve RUN`` sends it; ``reject RUN`` cancels it and
drops its plan, so the next run plans again from the source (and asks again if
the source still looks wrong).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from sync.config import SyncSpec

__all__ = ("Assessment", "assess", "spec_hash")


@dataclass(frozen=True, slots=True)
class Assessment:
    reason: str | None
    """Why the run must wait for approval; None when it may go on."""


def spec_hash(spec: SyncSpec) -> str:
    """A fingerprint of the sync's definition: its mapping changed when this changes."""
    return hashlib.blake2b(msgspec.json.encode(spec), digest_size=12).hexdigest()


def assess(
    spec: SyncSpec,
    *,
    planned: Mapping[str, int],
    remote_records: int,
    source_rows: int | None,
    recent_rows: Sequence[int],
    last_spec_hash: str | None,
) -> Assessment:
    """Whether a planned run may be sent without a human looking at it first."""
    rules = spec.approval
    reasons = []
    touching = planned.get("delete", 0) + planned.get("update", 0)
    share = rules.max_change_share
    if share is not None and remote_records >= rules.min_remote_records and touching > share * remote_records:
        verb = "archive" if spec.on_delete == "archive" else "delete"
        reasons.append(
            f"would change or {verb} {touching} of {remote_records} remote records "
            f"({touching / remote_records:.0%} > {share:.0%}): "
            f"{planned.get('update', 0)} updates, {planned.get('delete', 0)} {verb}s"
        )
    deviation = rules.max_count_deviation
    if deviation is not None and source_rows is not None and len(recent_rows) >= 3:
        usual = statistics.median(recent_rows)
        if usual and abs(source_rows - usual) / usual > deviation:
            reasons.append(f"read {source_rows} source rows where recent runs read about {usual:g}")
    changed_mapping = last_spec_hash is not None and last_spec_hash != spec_hash(spec)
    if rules.after_mapping_change and changed_mapping:
        reasons.append("first run since the sync's definition changed")
    return Assessment("; ".join(reasons) or None)
