"""Sample legacy schemas unlike the demo, for tests and for trying ``bridgehead introspect``.

``distributor``: an AS/400 / JD Edwards style wholesale distributor (NUMERIC dates
in CYYMMDD, YYYYDDD, CYYDDD and YYMMDD, HHMM times, 'T'/'F' flags, '??' status
codes, keyless tables, names with spaces and reserved words). Import it by name
(``legacy_adapters.samples.distributor``); this package imports nothing, so
``python -m legacy_adapters.samples.distributor`` runs it cleanly.
"""

__all__: tuple[str, ...] = ()
