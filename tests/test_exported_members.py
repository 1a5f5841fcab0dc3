"""Every module says what it exports, and every exported name exists (STYLE C10)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("gateway", "legacy_adapters", "sync")
SKIP = {"gateway.__main__"}  # running it starts the CLI


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if info.name not in SKIP:
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_module_declares_existing_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
