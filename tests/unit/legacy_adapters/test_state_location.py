"""Where a mapping's state store lives: beside the mapping file, whatever folder the process starts in."""

from __future__ import annotations

from pathlib import Path

import pytest

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from legacy_adapters.mapping.load import anchor_sqlite_url
from sync.cli import _load

SECRET = {"BRIDGEHEAD_JWT_SECRET": "x" * 40, "BRIDGEHEAD_DB_URL": "sqlite:///legacy.db"}


def _mapping_file(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "bridgehead.yaml"
    path.write_text(DEMO_MAPPING_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_a_relative_state_path_is_beside_the_mapping_not_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _mapping_file(tmp_path / "site")
    urls = set()
    for start in ("a", "b"):
        (tmp_path / start).mkdir()
        monkeypatch.chdir(tmp_path / start)
        urls.add(load_mapping(path, SECRET).state.url)
    assert urls == {f"sqlite:///{tmp_path / 'site' / '.bridgehead' / 'state.db'}"}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/bridgehead/state.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://bridgehead@db/state",
        "sqlite:///file:state?mode=memory&uri=true",
    ],
)
def test_absolute_memory_and_server_urls_are_left_alone(url: str) -> None:
    assert anchor_sqlite_url(url, Path("/elsewhere")) == url


def test_sync_shares_the_gateways_store_unless_told_otherwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _mapping_file(tmp_path / "site")
    monkeypatch.chdir(tmp_path)
    for name, value in SECRET.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BRIDGEHEAD_STATE_URL", "sqlite:///state/shared.db")
    mapping, sync_config = _load(str(path))
    assert sync_config.state_url == mapping.state.url == f"sqlite:///{tmp_path / 'site' / 'state' / 'shared.db'}"
