"""The secrets the suite hands out (tokens, client secrets, keys), which no log line may carry.

A module of its own so there is one set: pytest imports tests/conftest.py as ``conftest`` and
test modules import it again as ``tests.conftest``, and a set defined there would be two sets,
the tests adding to one and the end-of-run log check reading the other.
"""

from __future__ import annotations

MINTED_TOKENS: set[str] = set()
