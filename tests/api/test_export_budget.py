"""Slow export clients cannot take the gateway down: exports have their own slots, and a stalled one is cut.

A real uvicorn server in a thread on 127.0.0.1 (so sockets, kernel buffers and
flow control are real) serves the demo with two request connections and two
export slots. Twenty clients ask for an NDJSON export over raw sockets with a
tiny receive buffer and then stop reading. Every other route must keep
answering while they hang there; the two that got a slot are cut after the
idle timeout, their cursors closed and connections returned.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from gateway import create_app
from legacy_adapters.demo import create_demo_database
from legacy_adapters.mapping import Mapping
from tests.live_server import LiveServer, live_server

IDLE_S = 3.0
EXPORTERS = 20
SLOTS = 2


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80k operations (~12 MB of NDJSON): more than loopback socket buffers absorb, so a stalled client stalls."""
    path = tmp_path_factory.mktemp("budget") / "demo.db"
    create_demo_database(path, rows=20_000)
    return path


@pytest.fixture
def served(demo_mapping: Mapping, big_db: Path, tmp_path: Path) -> Iterator[LiveServer]:
    mapping = msgspec.structs.replace(
        demo_mapping,
        database=msgspec.structs.replace(
            demo_mapping.database, url=f"sqlite:///{big_db}", pool_size=2, export_pool_size=SLOTS
        ),
        api=msgspec.structs.replace(demo_mapping.api, export_idle_timeout_s=IDLE_S),
        state=msgspec.structs.replace(demo_mapping.state, url=f"sqlite:///{tmp_path / 'state.db'}"),
    )
    with live_server(create_app(mapping)) as server:
        yield server


def _stalled_export(port: int, token: str) -> socket.socket:
    """Ask for every operation as NDJSON, read the status line, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: a tiny window
    sock.connect(("127.0.0.1", port))
    request = (
        "GET /v1/operations HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    sock.settimeout(10)
    return sock


def _status_of(sock: socket.socket) -> tuple[int, bytes]:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, "the server closed the connection before answering"
        head += chunk
    return int(head.split(b" ", 2)[1]), head


def _drain(sock: socket.socket) -> bytes:
    """Everything left until the server closes (or resets) the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_stalled_exporters_do_not_stall_other_routes_and_are_cut(
    served: LiveServer, token: Any, admin: dict[str, str], big_db: Path
) -> None:
    admin_token = admin["Authorization"].removeprefix("Bearer ")
    sockets = [_stalled_export(served.port, admin_token) for _ in range(EXPORTERS)]
    try:
        statuses = []
        heads = []
        for sock in sockets:
            status, head = _status_of(sock)
            statuses.append(status)
            heads.append(head)
        # Two exports run (and stall); the others are refused at once instead of queueing.
        assert statuses.count(200) == SLOTS, statuses
        refused = [h for s, h in zip(statuses, heads, strict=True) if s == 503]
        assert len(refused) == EXPORTERS - SLOTS
        assert all(b"application/problem+json" in h and b"retry-after:" in h.lower() for h in refused)
        assert served.ctx.exports.running == SLOTS

        # Every other route answers while both exports are stalled on their clients.
        portal = {"Authorization": f"Bearer {token('jobs:read', customer_id='C0042')}"}
        with httpx.Client(base_url=served.base, timeout=IDLE_S) as client:
            for path, headers in (
                ("/v1/jobs?limit=5", admin),
                ("/v1/jobs/J000005", admin),
                ("/v1/jobs?limit=5", portal),
                ("/v1/items?limit=5", {}),  # anonymous
                ("/health/ready", {}),
                ("/v1/customers?count=exact", admin),
            ):
                for _ in range(3):
                    response = client.get(path, headers=headers)
                    assert response.status_code == 200, (path, response.text)
        assert served.ctx.exports.running == SLOTS, "the stalled exports ended before the routes were tried"

        # The idle timeout cuts both: slots free, cursors closed, connections back in the export pool.
        export_pool = served.ctx.reader.database.export_engine.pool
        deadline = time.monotonic() + IDLE_S + 5
        while (served.ctx.exports.running or export_pool.checkedout()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served.ctx.exports.running == 0
        assert export_pool.checkedout() == 0
        # The clients were disconnected: their responses end without the last chunk.
        for sock, status in zip(sockets, statuses, strict=True):
            if status == 200:
                assert not _drain(sock).endswith(b"0\r\n\r\n")
    finally:
        for sock in sockets:
            sock.close()

    # A client that reads gets the whole export afterwards.
    with sqlite3.connect(big_db) as conn:
        (expected,) = conn.execute("SELECT COUNT(*) FROM JOBOPS").fetchone()
    with httpx.stream(
        "GET", f"{served.base}/v1/operations", headers={**admin, "Accept": "application/x-ndjson"}, timeout=30
    ) as response:
        assert response.status_code == 200
        assert sum(1 for line in response.iter_lines() if line) == expected


def test_a_client_that_goes_away_gives_its_slot_back(served: LiveServer, admin: dict[str, str]) -> None:
    sock = _stalled_export(served.port, admin["Authorization"].removeprefix("Bearer "))
    assert _status_of(sock)[0] == 200
    assert served.ctx.exports.running == 1
    sock.close()
    deadline = time.monotonic() + IDLE_S  # well before the idle cut
    while served.ctx.exports.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.ctx.exports.running == 0
    assert served.ctx.reader.database.export_engine.pool.checkedout() == 0


def test_readiness_answers_while_every_request_connection_is_taken(served: LiveServer) -> None:
    engine = served.ctx.reader.database.engine
    held = [engine.connect() for _ in range(engine.pool.size())]  # the whole request pool, busy
    try:
        assert engine.pool.checkedout() == engine.pool.size()
        response = httpx.get(f"{served.base}/health/ready", timeout=10)
        assert response.status_code == 200, response.text
    finally:
        for conn in held:
            conn.close()


def test_one_caller_gets_429_past_its_export_cap_and_others_still_export(
    demo_mapping: Mapping, big_db: Path, tmp_path: Path, token: Any
) -> None:
    mapping = msgspec.structs.replace(
        demo_mapping,
        database=msgspec.structs.replace(demo_mapping.database, url=f"sqlite:///{big_db}", export_pool_size=3),
        api=msgspec.structs.replace(demo_mapping.api, export_idle_timeout_s=IDLE_S, exports_per_subject=1),
        state=msgspec.structs.replace(demo_mapping.state, url=f"sqlite:///{tmp_path / 'state.db'}"),
    )
    alice, bob = token("admin", sub="alice"), token("admin", sub="bob")
    with live_server(create_app(mapping)) as server:
        held = _stalled_export(server.port, alice)
        assert _status_of(held)[0] == 200
        second = httpx.get(
            f"{server.base}/v1/operations?limit=1",
            headers={"Authorization": f"Bearer {alice}", "Accept": "application/x-ndjson"},
        )
        assert second.status_code == 429 and second.headers["content-type"] == "application/problem+json"
        assert second.json()["type"].endswith("too-many-exports-per-subject") and int(second.headers["retry-after"]) > 0
        other = httpx.get(
            f"{server.base}/v1/jobs?customer_id=C0001",
            headers={"Authorization": f"Bearer {bob}", "Accept": "application/x-ndjson"},
        )
        assert other.status_code == 200 and other.text  # bob is not alice
        held.close()  # alice's export ends: her next one is served
        deadline = time.monotonic() + IDLE_S + 5
        while time.monotonic() < deadline:
            again = httpx.get(
                f"{server.base}/v1/jobs?customer_id=C0001",
                headers={"Authorization": f"Bearer {alice}", "Accept": "application/x-ndjson"},
            )
            if again.status_code == 200:
                break
            time.sleep(0.2)
        assert again.status_code == 200
