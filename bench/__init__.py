"""Benchmarks: Bridgehead against a hand-written floor endpoint and sandman2, same data, same driver.

``python -m bench`` (``make bench``) prepares the 1M-job database once (cached in
``bench/.cache/``), starts every server with the same worker count, drives each
scenario with ``wrk`` in interleaved rounds and writes ``bench/results/latest.md``.
See bench/README.md.
"""
