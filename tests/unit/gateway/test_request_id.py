"""Request ids: a sane client id is kept, new ones are 128 random bits, and a forked worker draws its own."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from typing import Any

import structlog

from gateway.logging import configure_logging
from gateway.request_id import RequestIdMiddleware, request_id


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


def test_a_well_formed_client_id_is_kept_and_a_bad_one_replaced() -> None:
    assert request_id(_scope((b"x-request-id", b"edge-42:a.b"))) == "edge-42:a.b"
    replaced = request_id(_scope((b"x-request-id", b"has spaces\nand a line break")))
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_new_ids_are_32_hex_digits_and_distinct() -> None:
    ids = {request_id(_scope()) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_the_id_is_made_once_per_request() -> None:
    scope = _scope()
    assert request_id(scope) == request_id(scope)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    # A worker forked from a parent that already made ids starts from the same generator state
    # unless it is reseeded: both would then name different requests with the same ids.
    request_id(_scope())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent, then out without running the test session's exit
        os.close(read)
        os.write(write, " ".join(request_id(_scope()) for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {request_id(_scope()) for _ in range(5)}
    assert len(child) == 5
    assert not child & parent


def test_lines_logged_during_a_request_carry_its_id_and_none_after_it() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        structlog.get_logger().warning("inside")

    out = io.BytesIO()
    configure_logging("info", log_format="json", stream=out)
    scope = {"type": "http", "headers": [(b"x-request-id", b"given-1")], "method": "GET", "path": "/"}
    asyncio.run(RequestIdMiddleware(app)(scope, None, None))  # type: ignore[arg-type]
    structlog.get_logger().warning("after")
    configure_logging("info", log_format="json", stream=io.BytesIO())  # closing the sink flushes it
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert [(line["event"], line.get("request_id")) for line in lines] == [("inside", "given-1"), ("after", None)]
