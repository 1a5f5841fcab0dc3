"""The snapshot pass's bulk comparison against a model, on every store (``StateStore.snapshot_pass``).

Keys are what ``encode_key`` makes of legacy key values, drawn so that they collide
often: duplicates within a batch and across batches, keys that differ only in case,
trailing spaces or Unicode normalisation, NULs, NULL key values, numbers. Between
batches, deliveries store fingerprints, as other workers do while a pass runs. A key
must compare exactly as Python compares it, on every backend, and the deletes must be
exactly the fingerprinted keys the pass did not see.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.changes.base import encode_key
from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from tests.conftest import sync_store_on

_TEXT = st.lists(st.sampled_from(["a", "b", " ", "\x00", "é", "ß", "_", "%", '"', "\\"]), max_size=4).map("".join)
_VALUE = st.one_of(st.none(), _TEXT, st.integers(-3, 3))


def _variants(values: list[object]) -> list[str]:
    """The key and the keys a careless comparison would take for it: other case, trailing space, NFD."""
    out = [encode_key(values)]
    for change in (str.upper, lambda t: t + " ", lambda t: unicodedata.normalize("NFD", t)):
        out.append(encode_key([change(v) if isinstance(v, str) else v for v in values]))
    return out


POOL = st.lists(st.lists(_VALUE, min_size=1, max_size=2), min_size=1, max_size=4).map(
    lambda bases: sorted({k for values in bases for k in _variants(values)})
)
PRINTS = st.sampled_from(["f1", "f2", "F1", "f1 "])


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sync_store_on(request.param, Path(tmp_path_factory.mktemp("pass"))) as sql:
        yield sql


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=POOL, data=st.data())
def test_see_and_unseen_match_the_model(store: StateStore, pool: list[str], data: st.DataObject) -> None:
    keys = st.sampled_from(pool)
    stored = data.draw(st.dictionaries(keys, PRINTS), label="stored")
    batches = data.draw(st.lists(st.lists(st.tuples(keys, PRINTS), max_size=12), max_size=5), label="batches")
    deliveries = data.draw(st.lists(st.dictionaries(keys, PRINTS, max_size=4), max_size=5), label="deliveries")
    sync = f"p{uuid.uuid4().hex[:12]}"  # every example its own sync: no clean-up between them
    store.accept(sync, stored)
    store.accept("neighbour", {k: "other" for k in stored})  # another sync's fingerprints stay out of it
    model = dict(stored)
    seen: set[str] = set()
    with store.snapshot_pass(sync) as scratch:
        for n, batch in enumerate(batches):
            expected = [i for i, (key, fp) in enumerate(batch) if model.get(key) != fp]
            assert scratch.see(batch) == expected
            seen.update(key for key, _ in batch)
            if n < len(deliveries):
                store.accept(sync, deliveries[n])
                model.update(deliveries[n])
        gone = [key for part in scratch.unseen(batch_size=3) for key in part]
    assert sorted(gone) == sorted(set(model) - seen) and len(gone) == len(set(gone))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_closed_pass_gives_its_connection_back_as_it_found_it(kind: str, tmp_path: Path) -> None:
    """Pooled, not discarded: no seen set left on it, and (PostgreSQL) synchronous_commit back to the default."""
    with sync_store_on(kind, tmp_path) as store:
        store.accept("s", {'["a"]': "1", '["b"]': "2"})
        with store.engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() if kind == "postgresql" else None
        with store.snapshot_pass("s") as scratch:
            assert scratch.see([('["a"]', "1")]) == []
            assert [k for part in scratch.unseen() for k in part] == ['["b"]']
        with store.engine.connect() as conn:
            if kind == "postgresql":
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                assert pid == before, "the pass's connection was discarded"
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
                assert conn.exec_driver_sql("SELECT to_regclass('pg_temp.sync_pass_seen')").scalar() is None
            else:
                assert not conn.exec_driver_sql("SELECT name FROM temp.sqlite_master").all()
