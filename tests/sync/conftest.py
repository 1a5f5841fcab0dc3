"""Sync fixtures: fake Shopify and Xero over MockTransport, a state store, the engine on a writable demo DB.

``sync_config`` is the demo's Shopify syncs (the suites written for the shop); ``xero_config`` its
Xero syncs. ``make_engine(config=...)`` takes either; both fakes answer on one transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import stamina

from legacy_adapters.database import Database
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping
from sync.config import SyncConfig, load_sync_config
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.connectors.xero.fake import FakeXero
from sync.engine import SyncEngine
from sync.sandbox import Sandboxes
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ, sync_store_on


@pytest.fixture(autouse=True)
def _stamina_testing() -> Iterator[None]:
    # No real waits; keep the configured attempt counts so retries really happen.
    stamina.set_testing(True, attempts=10, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture
def fake() -> FakeShopify:
    # A large bucket so functional tests are not paced; throttling has its own tests.
    return FakeShopify(bucket=CostBucket(maximum=1_000_000, restore_rate=1_000_000))


@pytest.fixture
def sync_mapping(writable_db: Path) -> Mapping:
    return load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db))


@pytest.fixture
def xero() -> FakeXero:
    return FakeXero()


def only_kind(config: SyncConfig, kind: str) -> SyncConfig:
    """The config with the syncs (and destinations) of one destination kind."""
    destinations = {n: d for n, d in config.destinations.items() if d.kind == kind}
    syncs = {n: s for n, s in config.syncs.items() if s.destination in destinations}
    return msgspec.structs.replace(config, destinations=destinations, syncs=syncs)


@pytest.fixture
def full_config(sync_mapping: Mapping) -> SyncConfig:
    return load_sync_config(sync_mapping.sync)


@pytest.fixture
def sync_config(full_config: SyncConfig) -> SyncConfig:
    return only_kind(full_config, "shopify")


@pytest.fixture
def xero_config(full_config: SyncConfig) -> SyncConfig:
    return only_kind(full_config, "xero")


@pytest.fixture
def store(tmp_path: Path) -> SyncStore:
    return SyncStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncStore]:
    """A state store several workers share: a SQLite file, then PostgreSQL (a private schema)."""
    with sync_store_on(request.param, tmp_path, "shared-state.db") as store:
        yield store


EngineFactory = Callable[..., SyncEngine]


@pytest.fixture
def make_engine(
    sync_mapping: Mapping, sync_config: SyncConfig, store: SyncStore, fake: FakeShopify, xero: FakeXero
) -> Iterator[EngineFactory]:
    databases: list[Database] = []

    def make(config: SyncConfig | None = None, **kwargs: object) -> SyncEngine:
        database = Database(sync_mapping.database)
        databases.append(database)
        http = httpx.Client(transport=httpx.MockTransport(Sandboxes(fake, xero).handler))
        return SyncEngine(config or sync_config, sync_mapping, database, store, http, **kwargs)  # type: ignore[arg-type]

    yield make
    for database in databases:
        database.dispose()
