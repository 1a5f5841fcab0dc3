"""Shared fixtures: one demo database per session, the real app over ASGI, real signed tokens."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from hypothesis import settings
from litestar.testing import TestClient

from gateway import create_app
from gateway.cli import mint_token
from gateway.logging import LOG_COPY_ENV, configure_logging
from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database
from legacy_adapters.mapping import Mapping, load_mapping
from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from sync.state.sync_store import SyncStore
from tests.guards.stats import STATS as GUARD_STATS
from tests.guards.stats import WORKER_OUTPUT_KEY as GUARD_OUTPUT_KEY
from tests.minted_secrets import MINTED_TOKENS

# Under pytest-xdist (``make test`` runs ``-n auto``) every worker gets database names of its own on the
# servers: the suffix of the checkout (BRIDGEHEAD_TEST_DB_SUFFIX) plus the worker's id, set here, before
# tests/db reads it. (Idempotent: test modules import this file a second time as ``tests.conftest``.)
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and not os.environ.get("BRIDGEHEAD_TEST_DB_SUFFIX", "").endswith(f"_{_WORKER}"):
    os.environ["BRIDGEHEAD_TEST_DB_SUFFIX"] = f"{os.environ.get('BRIDGEHEAD_TEST_DB_SUFFIX', '')}_{_WORKER}"

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"
DEMO_ROWS = 2000
# The top of every hand-written test mapping: database, HS256 auth and state store from the environment.
MAPPING_PREAMBLE = """\
database:
  url: ${BRIDGEHEAD_DB_URL}
auth:
  issuer: bridgehead
  audience: bridgehead
  hs256_secret: ${BRIDGEHEAD_JWT_SECRET}
state:
  url: ${BRIDGEHEAD_STATE_URL}
"""

TokenFactory = Callable[..., str]


# Every log line of the session, from this process and from every server it starts (they inherit
# the variable), goes through the real pipeline, redaction included, into one file that
# pytest_sessionfinish greps for the secrets the suite used.
# (setdefault: test modules import this file a second time as ``tests.conftest``.)
SESSION_LOG = Path(
    os.environ.setdefault(LOG_COPY_ENV, str(Path(tempfile.mkdtemp(prefix="bridgehead-test-logs-")) / "session.log"))
)
_JWT_SHAPE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


_QUIET = open(os.devnull, "wb")  # noqa: SIM115 (the session's stand-in for stderr)

REPO = Path(__file__).resolve().parents[1]
_STATE_FILES = pytest.StashKey[dict[Path, int]]()


def _default_state_files() -> dict[Path, int]:
    """The state stores a mapping without BRIDGEHEAD_STATE_URL would open: ``make demo``'s, the package's."""
    candidates = [
        *(REPO / ".bridgehead").glob("state.db*"),
        *(REPO / "legacy_adapters").rglob(".bridgehead/state.db*"),
    ]
    return {path: path.stat().st_mtime_ns for path in candidates if path.exists()}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATE_FILES] = _default_state_files()


def _check_default_state_stores(session: pytest.Session) -> None:
    """Fail the run if a test wrote to a default state store (it would share it with ``make demo``).

    Every test gets its state store from ``demo_environ`` (BRIDGEHEAD_STATE_URL in a tmp folder), a
    mapping file in a tmp folder (relative state paths resolve beside it), or ``create_app(state=...)``.
    """
    before = session.config.stash.get(_STATE_FILES, {})
    touched = sorted(str(p) for p, mtime in _default_state_files().items() if before.get(p) != mtime)
    if touched:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"tests wrote to default state stores (set BRIDGEHEAD_STATE_URL): {touched}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _real_logging() -> Iterator[None]:
    configure_logging("debug", log_format="json", stream=_QUIET)
    yield
    configure_logging("debug", log_format="json", stream=_QUIET)  # flushes this test's lines


def _worker_output(config: pytest.Config) -> dict[str, Any] | None:
    """What a pytest-xdist worker sends the controller at its end (``None``: not a worker)."""
    return getattr(config, "workeroutput", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = _worker_output(session.config)
    if workeroutput is not None:
        # A worker: its last lines go to the session log now (not at exit, after the controller read it),
        # and the tokens it minted go to the controller, which checks every worker's lines once all are done.
        configure_logging("debug", log_format="json", stream=_QUIET)
        workeroutput["minted_tokens"] = sorted(MINTED_TOKENS)
        return
    _check_default_state_stores(session)
    _check_logs_for_secrets(session)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller, as each worker ends: collect its minted tokens and its guard counters."""
    output = getattr(node, "workeroutput", {})
    MINTED_TOKENS.update(output.get("minted_tokens", ()))
    GUARD_STATS.merge(output.get(GUARD_OUTPUT_KEY, {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    GUARD_STATS.write_summary(terminalreporter)


def _check_logs_for_secrets(session: pytest.Session) -> None:
    """Fail the run when a secret the suite used appears in any log line it wrote."""
    if not SESSION_LOG.exists():
        return
    secrets = {JWT_SECRET.encode(), *(t.encode() for t in MINTED_TOKENS)}
    leaks = []
    with SESSION_LOG.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if any(secret in line for secret in secrets) or _JWT_SHAPE.search(line):
                leaks.append(f"  line {number}: {line[:300]!r}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if reporter is not None:
            reporter.write_line(f"SECRET IN LOGS: {len(leaks)} line(s) of {SESSION_LOG} carry a secret:", red=True)
            for leak in leaks[:20]:
                reporter.write_line(leak.replace(JWT_SECRET, "<the test JWT secret>"))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        size = SESSION_LOG.stat().st_size
        reporter.write_line(f"log secret check: {size:,} bytes of log lines, no secret of the suite in them")


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2,000-job demo database shared read-only by the session (copy it before writing)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    create_demo_database(path, rows=DEMO_ROWS)
    return path


def demo_environ(db_path: Path) -> dict[str, str]:
    """The demo mapping's variables for a database file; its state store sits beside it."""
    return {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db_path}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{db_path.with_name(db_path.stem + '-state.db')}",
    }


@pytest.fixture(scope="session")
def demo_mapping(demo_db_path: Path) -> Mapping:
    return load_mapping(DEMO_MAPPING_PATH, demo_environ(demo_db_path))


@pytest.fixture(scope="session")
def client(demo_mapping: Mapping) -> Iterator[TestClient[Any]]:
    """The real app over ASGI against the session's demo database."""
    with TestClient(create_app(demo_mapping)) as test_client:
        yield test_client


@pytest.fixture
def writable_db(demo_db_path: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database for tests that change rows."""
    copy = tmp_path / "demo.db"
    shutil.copyfile(demo_db_path, copy)
    return copy


@pytest.fixture(scope="session")
def token(demo_mapping: Mapping) -> TokenFactory:
    """Mint a real HS256 token the demo gateway accepts: ``token("jobs:read", customer_id="C0042")``."""
    auth = demo_mapping.auth
    assert auth is not None and auth.hs256_secret is not None

    def make(*scopes: str, sub: str = "tester", ttl_s: int = 600, **claims: Any) -> str:
        minted = mint_token(
            auth.hs256_secret,  # type: ignore[arg-type]
            subject=sub,
            scopes=list(scopes),
            claims=claims,
            ttl_s=ttl_s,
            issuer=auth.issuer,
            audience=auth.audience,
        )
        MINTED_TOKENS.add(minted)
        return minted

    return make


@pytest.fixture(scope="session")
def admin(token: TokenFactory) -> dict[str, str]:
    """Headers of an admin token: sees every row and field."""
    # Session-wide: it must outlive a slow run (tests/db takes over 10 minutes on a busy 2-core machine).
    return {"Authorization": f"Bearer {token('admin', sub='admin', ttl_s=4 * 3600)}"}


def service_unavailable(reason: str) -> NoReturn:
    """Skip a test whose service is missing locally; in CI (CI=true) that is a failure, never a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the service must be running)", pytrace=False)
    pytest.skip(reason)


PG_STATE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def private_pg_schema() -> Iterator[str]:
    """A PostgreSQL URL whose tables land in a schema of their own, dropped afterwards.

    Sessions and CI runs share the ``test`` database; a private schema keeps their
    state tables from seeing, or dropping, each other's.
    """
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_STATE_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        yield f"{PG_STATE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def sync_store_on(kind: str, tmp_path: Path, name: str = "state.db") -> Iterator[SyncStore]:
    """A SyncStore on a SQLite file ``name`` in ``tmp_path`` or in a private PostgreSQL schema, disposed afterwards."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / name}" if kind == "sqlite" else stack.enter_context(private_pg_schema())
        store = SyncStore.from_url(url)
        try:
            yield store
        finally:
            store.db.dispose()


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Every StateStore implementation (STYLE C5): a SQLite file, in memory, PostgreSQL (a private schema per test)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with sync_store_on(request.param, tmp_path) as store:
        yield store
