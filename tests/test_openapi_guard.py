"""The CI contract guard in real git repositories: a released version's break fails, a draft's does not.

Each test builds a throwaway repository with ``git`` itself and runs ``bridgehead openapi guard``
in it as CI and ``make test`` do (the command in this process, git for real); the last one runs
it on this repository.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.unit.gateway.test_openapi_diff import _base, _job, _list

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def guard(*args: str, cwd: Path) -> Outcome:
    """``bridgehead openapi guard`` in ``cwd``, in this process (a subprocess per call costs seconds)."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["openapi", "guard", *args])
    finally:
        os.chdir(previous)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


def write(repo: Path, name: str, document: dict[str, Any]) -> None:
    path = repo / "openapi" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def v2_of(document: dict[str, Any]) -> dict[str, Any]:
    draft = copy.deepcopy(document)
    draft["info"]["version"] = "v2"
    return draft


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: v1 committed and released (openapi/released/v1.json), v2 committed as a draft."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.invalid")
    git(root, "config", "user.name", "ci")
    git(root, "config", "commit.gpgsign", "false")
    write(root, "v1.json", _base())
    write(root, "released/v1.json", _base())
    write(root, "v2.json", v2_of(_base()))
    git(root, "add", ".")
    git(root, "commit", "-qm", "v1 released, v2 drafted")
    return root


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def test_a_compatible_change_passes(repo: Path) -> None:
    git(repo, "checkout", "-qb", "compatible")
    widened = _base()
    _job(widened)["properties"]["rush"] = {"type": "boolean"}
    write(repo, "v1.json", widened)
    commit(repo, "add a field")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "openapi guard: ok" in result.stdout


def test_a_deliberately_broken_commit_fails(repo: Path) -> None:
    git(repo, "checkout", "-qb", "broken")
    broken = _base()
    _job(broken)["properties"]["status"]["enum"] = ["released", "complete"]
    write(repo, "v1.json", broken)
    commit(repo, "drop on_hold")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    failures = [line for line in result.stdout.splitlines() if line.startswith("BREAKING: ")]
    # Caught twice: against the released copy and against the merge base.
    assert any("openapi/released/v1.json -> openapi/v1.json" in f and "['on_hold']" in f for f in failures)
    assert any("openapi/v1.json@" in f and "enum value(s) removed: ['on_hold']" in f for f in failures)


def test_editing_the_released_copy_to_fit_a_break_fails(repo: Path) -> None:
    git(repo, "checkout", "-qb", "sneaky")
    broken = _base()
    _list(broken)["responses"].pop("400")
    write(repo, "v1.json", broken)
    write(repo, "released/v1.json", broken)
    commit(repo, "drop 400 from v1 and from its promise")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 1
    assert "openapi/released/v1.json@" in result.stdout and "status code removed" in result.stdout


@pytest.mark.parametrize("deleted", ["v1.json", "released/v1.json"])
def test_deleting_a_released_document_or_its_copy_fails(repo: Path, deleted: str) -> None:
    git(repo, "checkout", "-qb", "gone")
    (repo / "openapi" / deleted).unlink()
    commit(repo, f"remove {deleted}")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 1, result.stdout
    assert "BREAKING: " in result.stdout and (
        "no committed document" in result.stdout or "was deleted" in result.stdout
    )


def test_a_draft_may_break_until_it_is_released(repo: Path) -> None:
    git(repo, "checkout", "-qb", "draft")
    draft = v2_of(_base())
    _job(draft)["properties"].pop("quantity")
    write(repo, "v2.json", draft)
    commit(repo, "v2 drops quantity")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 0, result.stdout
    assert "field removed (or renamed) (unreleased: not failing)" in result.stdout
    # Released now: the same break, made after the release, fails.
    write(repo, "released/v2.json", draft)
    commit(repo, "release v2")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "draft")
    git(repo, "checkout", "-qb", "after-release")
    again = copy.deepcopy(draft)
    _job(again)["properties"].pop("status")
    write(repo, "v2.json", again)
    commit(repo, "v2 drops status")
    assert guard("--base", "main", cwd=repo).returncode == 1


def test_a_field_added_after_the_release_is_owed_too(repo: Path) -> None:
    """Released copy says nothing about `rush`, but main served it: removing it breaks its users."""
    widened = _base()
    _job(widened)["properties"]["rush"] = {"type": "boolean"}
    write(repo, "v1.json", widened)
    commit(repo, "v1 gains rush")
    git(repo, "checkout", "-qb", "remove-rush")
    write(repo, "v1.json", _base())
    commit(repo, "v1 loses rush again")
    result = guard("--base", "main", cwd=repo)
    assert result.returncode == 1
    assert "openapi/released/v1.json -> openapi/v1.json: 0 breaking" in result.stdout
    assert ".rush: field removed" in result.stdout


def test_a_clean_clone_whose_merge_base_is_head(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "config", "user.email", "ci@example.invalid")
    git(clone, "config", "user.name", "ci")
    git(clone, "config", "commit.gpgsign", "false")
    assert guard("--base", "auto", cwd=clone).returncode == 0  # origin/main == HEAD
    # A break committed straight onto main: the merge base is that commit, the released copy is not.
    broken = _base()
    _list(broken)["parameters"].pop(0)
    write(clone, "v1.json", broken)
    commit(clone, "break v1 on main")
    git(clone, "fetch", "-q")
    git(clone, "update-ref", "refs/remotes/origin/main", "HEAD")
    result = guard("--base", "auto", cwd=clone)
    assert result.returncode == 1 and "parameter removed" in result.stdout
    # Uncommitted edits are compared with HEAD itself.
    write(clone, "v1.json", _base())
    commit(clone, "repair")
    git(clone, "update-ref", "refs/remotes/origin/main", "HEAD")
    edited = _base()
    _job(edited)["properties"].pop("due_date")
    write(clone, "v1.json", edited)
    assert guard("--base", "auto", cwd=clone).returncode == 1


def test_guard_refusals_are_exit_2_with_a_reason(repo: Path, tmp_path: Path) -> None:
    result = guard("--base", "no-such-branch", cwd=repo)
    assert result.returncode == 2 and "no-such-branch" in result.stderr and "Traceback" not in result.stderr
    outside = tmp_path / "plain"
    (outside / "openapi").mkdir(parents=True)
    (outside / "openapi" / "v1.json").write_text("{not json")
    assert guard("--base", "main", cwd=outside).returncode == 2
    bad = guard(cwd=outside)
    assert bad.returncode == 2 and "v1.json" in bad.stderr and "Traceback" not in bad.stderr


def test_this_repository_keeps_its_released_contracts() -> None:
    """What ``make test`` runs: v1 is released (openapi/released/v1.json), so v1 may only grow."""
    assert (ROOT / "openapi" / "released" / "v1.json").exists()
    result = guard("--base", "auto", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "openapi/released/v1.json -> openapi/v1.json: 0 breaking change(s)" in result.stdout
