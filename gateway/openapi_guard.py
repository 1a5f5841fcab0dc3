"""The CI contract guard: committed OpenAPI documents against released copies and the merge base.

A version is *released* once ``openapi/released/<version>.json`` exists (in the tree, or at the
merge base): from then on its clients are owed that contract. For each released version the
guard fails on a breaking change (``gateway.openapi_diff``) between

- the released copy and the committed document (what was promised vs what is served),
- the committed document at the merge base and now (a field added after the release and then
  removed again breaks the clients that started using it),
- the released copy at the merge base and now (editing the promise to fit a break is a break),

and when a released document or its copy is deleted. An unreleased version's breaking changes
against the merge base are listed as notices only: it is a draft nobody depends on yet.

The merge base is ``git merge-base HEAD BASE``. In a clean clone of main it is HEAD itself, so
the comparison is with the last commit (uncommitted edits are what it catches) and the released
copies do the rest.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.openapi_diff import Change, diff_documents

__all__ = ("GuardReport", "resolve_base", "run_guard")

AUTO_BASES = ("origin/main", "main", "HEAD")
"""``--base auto`` tries these in order: the first that names a commit is the base."""


class GuardError(Exception):
    """The guard cannot run as asked (not a repository, no merge base): exit 2, not a verdict."""


@dataclass
class GuardReport:
    compared: list[str] = field(default_factory=list)
    """One line per comparison made: ``old -> new: N breaking change(s)``."""
    failures: list[str] = field(default_factory=list)
    """Breaking changes to released versions, and deleted released documents: the build fails."""
    notices: list[str] = field(default_factory=list)
    """Breaking changes to unreleased versions, and skipped comparisons: printed, not failing."""


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, check=False)


def _toplevel(folder: Path) -> Path | None:
    shown = _git(folder, "rev-parse", "--show-toplevel")
    return Path(shown.stdout.decode().strip()) if shown.returncode == 0 else None


def resolve_base(folder: Path, base: str) -> str | None:
    """The merge-base commit for ``base`` (``auto``: the first of AUTO_BASES that exists).

    Returns None for ``auto`` outside a git repository; raises GuardError when an explicit base
    cannot be resolved.
    """
    if _toplevel(folder) is None:
        if base == "auto":
            return None
        raise GuardError(f"--base {base}: {folder} is not inside a git repository")
    candidates = AUTO_BASES if base == "auto" else (base,)
    for candidate in candidates:
        if _git(folder, "rev-parse", "--verify", "-q", f"{candidate}^{{commit}}").returncode != 0:
            continue
        merged = _git(folder, "merge-base", "HEAD", candidate)
        if merged.returncode == 0:
            return merged.stdout.decode().strip()
        if base != "auto":
            raise GuardError(f"--base {base}: no merge base with HEAD ({merged.stderr.decode().strip()})")
    raise GuardError(f"--base {base}: no such commit" + (f" (tried {', '.join(candidates)})" if base == "auto" else ""))


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise GuardError(f"{path}: not a readable JSON document ({exc})") from None
    if not isinstance(document, dict) or "paths" not in document:
        raise GuardError(f"{path}: not an OpenAPI document (no 'paths')")
    return document


def _at(folder: Path, rev: str, path: Path) -> dict[str, Any] | None:
    """``path`` as committed at ``rev``; None when it did not exist there."""
    top = _toplevel(folder)
    assert top is not None
    relative = path.resolve().relative_to(top.resolve()).as_posix()
    shown = _git(top, "show", f"{rev}:{relative}")
    if shown.returncode != 0:
        return None
    try:
        document = json.loads(shown.stdout)
    except ValueError:
        return None  # not a document at the base: nothing was promised by it
    return document if isinstance(document, dict) else None


def run_guard(folder: Path, base_rev: str | None) -> GuardReport:
    """Compare ``folder``'s documents as the module docstring says; ``base_rev`` None: released copies only."""
    report = GuardReport()
    released_dir = folder / "released"
    current = {p.stem: p for p in folder.glob("*.json")}
    released = {p.stem: p for p in released_dir.glob("*.json")}
    released_at_base: dict[str, dict[str, Any]] = {}
    if base_rev is not None:
        # --full-tree: from a subfolder, ls-tree would list only what lies under it.
        tree = f"{base_rev}:{_relative(folder, released_dir)}"
        listing = _git(folder, "ls-tree", "--full-tree", "--name-only", tree)
        for name in listing.stdout.decode().split() if listing.returncode == 0 else ():
            old_copy = _at(folder, base_rev, released_dir / name) if name.endswith(".json") else None
            if old_copy is not None:
                released_at_base[name.removesuffix(".json")] = old_copy
    short = base_rev[:12] if base_rev else ""

    def compare(old: dict[str, Any], new: dict[str, Any], label: str, promised: bool) -> None:
        breaking = [c for c in diff_documents(old, new) if c.breaking]
        report.compared.append(f"{label}: {len(breaking)} breaking change(s)")
        for change in breaking:
            (report.failures if promised else report.notices).append(_line(label, change, promised))

    for version in sorted(set(current) | set(released) | set(released_at_base)):
        is_released = version in released or version in released_at_base
        doc_path = folder / f"{version}.json"
        if version not in current:
            if is_released:
                report.failures.append(f"{doc_path}: released version {version} has no committed document any more")
            continue
        now = _load(current[version])
        if version in released:
            compare(_load(released[version]), now, f"{released[version]} -> {doc_path}", True)
        elif version in released_at_base:
            report.failures.append(f"{released_dir / f'{version}.json'}: the released copy of {version} was deleted")
        if version in released_at_base and version in released:
            compare(
                released_at_base[version],
                _load(released[version]),
                f"{released[version]}@{short} -> {released[version]}",
                True,
            )
        if base_rev is not None:
            before = _at(folder, base_rev, doc_path)
            if before is not None:
                compare(before, now, f"{doc_path}@{short} -> {doc_path}", is_released)
        if not is_released:
            report.notices.append(f"{doc_path}: {version} is not released (no {released_dir / (version + '.json')})")
    return report


def _relative(folder: Path, path: Path) -> str:
    top = _toplevel(folder)
    assert top is not None
    return path.resolve().relative_to(top.resolve()).as_posix()


def _line(label: str, change: Change, promised: bool) -> str:
    return f"{label}: {change}" + ("" if promised else " (unreleased: not failing)")
