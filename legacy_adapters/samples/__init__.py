"""Sample legacy schemas unlike the demo, for tests and for trying ``bridgehead introspect``.

``distributor``: an AS/400 / JD Edwards style wholesale distributor (NUMERIC dates
in CYYMMDD, YYYYDDD, CYYDDD and YYMMDD, HHMM times, 'T'/'F' flags, '??' status
codes, keyless tables, names with spaces and reserved words).
"""

from __future__ import annotations

from legacy_adapters.samples.distributor import DISTRIBUTOR_TABLES, create_distributor, distributor_rows

__all__ = ("DISTRIBUTOR_TABLES", "create_distributor", "distributor_rows")
