"""The idempotency key lifecycle as a state machine: any interleaving of claims, seals, answers,
releases and passing time by several gateway processes never lets two of them commit one key.

Each "process" is its own ``IdempotencyStore`` on one shared SQLite file, with a clock the test
moves (leases run out when hypothesis decides, not when the machine is slow).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sync.state import StateDatabase
from sync.state.idempotency import IDEMPOTENCY, IdempotencyStore, LeaseLost, StoredResponse

OWNER, KEY, FINGERPRINT = "owner", "key", "f" * 64
LEASE_S = 10.0


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


_FOLDER = tempfile.TemporaryDirectory()
_SHARED: list[StateDatabase] = []


def _store_file() -> StateDatabase:
    """One migrated store for every example (migrating per example would dominate the run)."""
    if not _SHARED:
        db = StateDatabase(f"sqlite:///{Path(_FOLDER.name) / 'state.db'}")
        db.migrate()
        _SHARED.append(db)
    with _SHARED[0].engine.begin() as conn:
        conn.execute(IDEMPOTENCY.delete())
    return _SHARED[0]


class KeyLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = _store_file()
        self.clock = Clock()
        self.processes = [IdempotencyStore(self.db, 86_400, LEASE_S, clock=self.clock) for _ in range(3)]
        # (token, process) of every claim won, in order: tests draw an index, never a random token.
        self.holders: list[tuple[str, int]] = []
        self.sealed: list[str] = []  # tokens whose seal succeeded: the write "committed"
        self.answered: StoredResponse | None = None

    @rule(process=st.integers(0, 2), same_request=st.booleans())
    def claim(self, process: int, same_request: bool) -> None:
        fingerprint = FINGERPRINT if same_request else "0" * 64
        claim = self.processes[process].claim(OWNER, KEY, fingerprint)
        if claim.outcome == "claimed":
            assert not self.sealed, "a key was handed out again after a write committed under it"
            assert claim.token is not None
            self.holders.append((claim.token, process))
        elif claim.outcome == "replay":
            assert claim.response == self.answered is not None
        elif claim.outcome == "unknown":
            assert self.sealed and self.answered is None

    @precondition(lambda self: bool(self.holders))
    @rule(data=st.data())
    def seal(self, data: st.DataObject) -> None:
        token, process = self.holders[data.draw(st.integers(0, len(self.holders) - 1))]
        try:
            self.processes[process].seal(OWNER, KEY, token)
        except LeaseLost:
            return
        if token not in self.sealed:
            self.sealed.append(token)

    @precondition(lambda self: bool(self.sealed))
    @rule()
    def answer(self) -> None:
        token = self.sealed[0]
        process = dict(self.holders)[token]
        response = StoredResponse(200, {"content-type": "application/json"}, b'{"n": 1}')
        assert self.processes[process].complete(OWNER, KEY, token, FINGERPRINT, response)
        self.answered = response

    @precondition(lambda self: bool(self.holders))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        token, process = self.holders[data.draw(st.integers(0, len(self.holders) - 1))]
        self.processes[process].release(OWNER, KEY, token)  # a no-op once sealed

    @rule(seconds=st.sampled_from([0.5, LEASE_S / 2, LEASE_S + 0.1, 3 * LEASE_S]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def at_most_one_commit(self) -> None:
        assert len(self.sealed) <= 1, f"two holders committed one key: {self.sealed}"


TestKeyLifecycle = KeyLifecycle.TestCase
TestKeyLifecycle.settings = settings(max_examples=40, stateful_step_count=20, deadline=None, derandomize=True)
