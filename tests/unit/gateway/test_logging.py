"""Request logs stay on and cheap: JSON lines for collectors, written in blocks, secrets redacted."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.logging import LogSink, configure_logging
from gateway.server import server_stack


class CountingStream(io.BytesIO):
    """A byte stream that counts how often it was flushed (each flush is a write to the terminal or pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1

    def isatty(self) -> bool:
        return False


class Terminal(CountingStream):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_structlog() -> Any:
    yield
    structlog.reset_defaults()


def _lines(stream: io.BytesIO) -> list[str]:
    return stream.getvalue().decode().splitlines()


def test_json_lines_for_a_pipe_one_object_per_request_and_redacted() -> None:
    out = CountingStream()
    configure_logging("info", log_format="auto", stream=out)
    log = structlog.get_logger("bridgehead.access")
    log.info("request", method="GET", path="/v1/jobs", status=200, authorization="Bearer abc.def.ghi")
    log.debug("not written at info")
    structlog.get_logger().info("db", url="mssql+pyodbc://sa:hunter2@db/x")
    configure_logging("info", stream=io.BytesIO())  # closing the sink flushes what it held
    lines = [json.loads(line) for line in _lines(out)]
    assert [line["event"] for line in lines] == ["request", "db"]
    assert lines[0]["status"] == 200 and lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert "abc.def" not in out.getvalue().decode() and "hunter2" not in out.getvalue().decode()


def test_readable_lines_on_a_terminal() -> None:
    out = Terminal()
    configure_logging("info", log_format="auto", stream=out)
    structlog.get_logger().info("request", status=404)
    configure_logging("info", stream=io.BytesIO())
    (line,) = _lines(out)
    assert "request" in line and "status=404" in line and not line.startswith("{")


def test_lines_are_written_in_blocks_not_one_flush_each() -> None:
    out = CountingStream()
    sink = LogSink(out, limit=4096, interval_s=60)
    threads = [threading.Thread(target=lambda: [sink.write(b"x" * 99 + b"\n") for _ in range(500)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert out.getvalue().count(b"\n") == 2000  # nothing lost across threads
    assert out.flushes <= 2000 * 100 // 4096 + 2  # one write per ~4 KB block, not per line


def test_a_quiet_server_still_shows_its_lines_within_the_interval() -> None:
    out = CountingStream()
    sink = LogSink(out, limit=1 << 20, interval_s=0.05)
    sink.write(b"one line\n")
    deadline = threading.Event()
    for _ in range(40):
        if out.getvalue():
            break
        deadline.wait(0.05)
    sink.close()
    assert out.getvalue() == b"one line\n"


def test_the_default_install_serves_on_uvloop_and_httptools() -> None:
    # Both are dependencies: an install without them would halve throughput silently.
    stack: dict[str, Any] = server_stack()
    assert stack == {"loop": "uvloop", "http": "httptools"}


def _request_line(**extra: Any) -> dict[str, Any]:
    return {"request_id": "r1", "method": "GET", "path": "/v1/jobs", "status": 200, "ms": 1.5, "subject": "s"} | extra


def test_the_cheap_request_line_is_the_line_the_pipeline_writes() -> None:
    from gateway.logging import log_request

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    with structlog.contextvars.bound_contextvars(request_id="r1", tenant="t"):
        log_request(**_request_line())
        structlog.get_logger("bridgehead.access").info("request", **_request_line())
    configure_logging("info", stream=io.BytesIO())
    fast, slow = (json.loads(line) for line in _lines(out))
    assert fast.pop("timestamp") and slow.pop("timestamp")
    assert list(fast.items()) == list(slow.items())  # same keys, same order, same values
    assert fast["tenant"] == "t" and fast["event"] == "request"


@pytest.mark.parametrize(
    "secret",
    ["/v1/jobs?password=hunter2", "/v1/x/Bearer abc.def", "/v1/eyJhbGciOi.eyJzdWIi.sig", "/x?u=db://sa:hunter2@h"],
)
def test_the_cheap_request_line_is_redacted_too(secret: str) -> None:
    from gateway.logging import log_request

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    log_request(**_request_line(path=secret, authorization="Bearer abc.def"))
    configure_logging("info", stream=io.BytesIO())
    text = out.getvalue().decode()
    assert "hunter2" not in text and "abc.def" not in text and "eyJzdWIi" not in text
    assert json.loads(text)["authorization"] == "[redacted]"


def test_no_request_line_above_info_and_captured_logs_still_see_it() -> None:
    from gateway.logging import log_request

    out = CountingStream()
    configure_logging("warning", log_format="json", stream=out)
    log_request(**_request_line())
    configure_logging("info", log_format="json", stream=io.BytesIO())
    assert out.getvalue() == b""
    with structlog.testing.capture_logs() as captured:
        log_request(**_request_line())
    assert [c["event"] for c in captured] == ["request"] and captured[0]["status"] == 200


def test_blocks_for_a_pipe_end_at_line_ends_and_fit_pipe_buf() -> None:
    from gateway.logging import _blocks

    lines = [b"x" * n + b"\n" for n in (10, 4000, 90, 5000, 1, 4095, 300)]
    data = b"".join(lines)
    blocks = list(_blocks(data, 4096))
    assert b"".join(blocks) == data
    for block in blocks:
        assert block.endswith(b"\n")
        assert len(block) <= 4096 or block.count(b"\n") == 1  # only a line longer than a block is alone past it
    assert list(_blocks(data, 0)) == [data]  # a regular file: one write


@pytest.mark.parametrize(
    "text",
    ["Bearer abc", "bEaReR\tabc", "x eyJa.b.c", "pwd=x", "PassWord=x", "pa\u017f\u017fword=x", "db://u:p@h"],
)
def test_the_cheap_secret_look_sees_whatever_the_redaction_would_change(text: str) -> None:
    from gateway.logging import _maybe_secret
    from legacy_adapters.redaction import redact_text

    assert redact_text(text) != text  # the sample is one the redaction rewrites
    assert _maybe_secret(text)
    assert not _maybe_secret("/v1/jobs/J000123 GET /v1/jobs/{key} bench 0123456789abcdef")


def test_timestamps_are_iso_utc_with_microseconds() -> None:
    import datetime as dt
    import re

    from gateway.logging import utc_stamp

    before = dt.datetime.now(dt.UTC)
    stamp = utc_stamp()
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert before - dt.timedelta(microseconds=1) <= dt.datetime.fromisoformat(stamp) <= after


def _access_fields(**extra: Any) -> dict[str, Any]:
    fields = {"request_id": "r1", "method": "GET", "path": "/v1/jobs/J1", "route": "/v1/jobs/{key}", "status": 200,
              "ms": 1.5, "subject": "s", "rows": 1}  # fmt: skip
    return fields | extra


@pytest.mark.parametrize(
    ("bound", "interrupted", "path"),
    [
        ({}, False, "/v1/jobs/J1"),
        ({"request_id": "r1"}, False, "/v1/jobs/J1"),
        ({"request_id": "r1", "tenant": "t", "path": "bound"}, False, "/v1/jobs/J1"),
        ({"request_id": "r1"}, True, "/v1/jobs/J1"),
        ({"request_id": "r1"}, False, "/v1/jobs/x?password=hunter2"),
        ({"request_id": "r1", "api_key": "k"}, False, "/v1/jobs/Bearer abc.def"),
    ],
)
def test_the_access_line_writer_writes_the_line_the_pipeline_writes(
    bound: dict[str, Any], interrupted: bool, path: str
) -> None:
    from gateway.logging import access_line

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    fields = _access_fields(path=path) | ({"interrupted": True} if interrupted else {})
    with structlog.contextvars.bound_contextvars(**bound):
        write = access_line()
        assert write is not None
        write("r1", "GET", path, "/v1/jobs/{key}", 200, 1.5, "s", 1, interrupted)
        structlog.get_logger("bridgehead.access").info("request", **fields)
    configure_logging("info", stream=io.BytesIO())
    fast, slow = (json.loads(line) for line in _lines(out))
    assert fast.pop("timestamp") and slow.pop("timestamp")
    assert list(fast.items()) == list(slow.items())  # same keys, same order, same values, same redaction
    assert "hunter2" not in out.getvalue().decode() and "abc.def" not in out.getvalue().decode()


def test_no_access_line_writer_above_info_and_the_pipeline_one_under_a_capture() -> None:
    from gateway.logging import access_line

    configure_logging("warning", log_format="json", stream=io.BytesIO())
    assert access_line() is None  # nothing to gather per request
    configure_logging("info", log_format="json", stream=io.BytesIO())
    with structlog.testing.capture_logs() as captured:
        write = access_line()
        assert write is not None
        write("r1", "GET", "/v1/jobs", "/v1/jobs", 200, 1.5, None, 5, True)
    assert captured == [
        {"request_id": "r1", "method": "GET", "path": "/v1/jobs", "route": "/v1/jobs", "status": 200, "ms": 1.5,
         "subject": None, "rows": 5, "interrupted": True, "event": "request", "log_level": "info"}
    ]  # fmt: skip


def test_the_sink_wakes_its_thread_once_per_block() -> None:
    out = CountingStream()
    sink = LogSink(out, limit=100, interval_s=60)
    woken = []
    sink._wake.set = lambda: woken.append(1)  # type: ignore[method-assign]
    for _ in range(30):
        sink.write(b"x" * 9 + b"\n")  # past the limit after 10 lines; the thread never runs here
    assert woken == [1]
    sink.flush()
    for _ in range(10):
        sink.write(b"x" * 9 + b"\n")
    assert woken == [1, 1]  # a new block, a new call
    sink.close()
    assert out.getvalue().count(b"\n") == 40


def test_log_lines_redact_what_the_stored_errors_do_known_secrets_included() -> None:
    """One redaction (``legacy_adapters.redaction``) for log lines and stored text: a secret the process
    was configured with or obtained is replaced by value, and every secret shape is replaced, in a
    field, in a message and in a traceback."""
    from legacy_adapters.redaction import register_secret

    register_secret("opaque-refresh-7c1d9e2f4a")  # as a Xero refresh or a Shopify token registers
    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    log = structlog.get_logger("bridgehead.sync")
    said = "shop said: opaque-refresh-7c1d9e2f4a refused; shpat_0123456789abcdef; client_secret=s3cr3t-v4lue"
    log.warning("sync paused by a destination quota", reason=said)
    try:
        raise RuntimeError(said)
    except RuntimeError:
        log.exception("sync run failed", sync="customers")
    configure_logging("info", stream=io.BytesIO())
    text = out.getvalue().decode()
    events = [json.loads(line)["event"] for line in _lines(out)]
    assert events == ["sync paused by a destination quota", "sync run failed"]
    for leaked in ("opaque-refresh-7c1d9e2f4a", "0123456789abcdef", "s3cr3t-v4lue"):
        assert leaked not in text
    assert "shop said: [redacted] refused" in text


@pytest.mark.parametrize(
    "key",
    ["password", "db_pass", "passphrase", "client_secret", "private_key", "privateKey", "api-key", "x_token", "pwd"],
)
def test_a_value_under_any_secret_key_is_masked_in_log_lines(key: str) -> None:
    """Every key the shared redaction calls secret is masked in a log line too, and more ("pass" anywhere)."""
    from legacy_adapters.redaction import is_secret_key

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    structlog.get_logger("bridgehead.sync").info("connector configured", **{key: "plain-value-9f3a"})
    configure_logging("info", stream=io.BytesIO())
    assert "plain-value-9f3a" not in out.getvalue().decode()
    assert json.loads(_lines(out)[0])[key] == "[redacted]"
    assert is_secret_key(key) or "pass" in key.lower()  # the case list stays within what the predicates name


_SECRET_WORDS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "authorization", "apikey", "api_key",
                 "api-key", "credential", "private_key", "privatekey", "private-key", "pass")  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.text("abcdefghijklmnopqrstuvwxyz_-", max_size=8),
    st.sampled_from(_SECRET_WORDS),
    st.text("abcdefghijklmnopqrstuvwxyz_-", max_size=8),
    st.booleans(),
)
def test_any_key_holding_a_secret_word_is_masked_in_the_log_pipeline(
    before: str, word: str, after: str, upper: bool
) -> None:
    """The class, not a list: any key that holds a word the shared redaction (or "pass") names, in any
    case and among any other letters, has its value masked by the log pipeline's processor."""
    from gateway.logging import redact_secrets

    key = before + (word.upper() if upper else word) + after
    event = redact_secrets(None, "info", {key: "plain-value-9f3a", "event": "connector configured"})
    assert event[key] == "[redacted]"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("client-req-42", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("eyJhbGciOi.eyJzdWIi.c2ln", False),  # a JWT pasted into the wrong header
        ("shpat_0123456789abcdef", False),
        ("bench-jwt-secret-registered-for-this-test", False),  # a configured secret, by value
    ],
)
def test_a_clients_request_id_that_may_hold_a_secret_is_replaced(given: str, kept: bool) -> None:
    # The request line does not look for secrets in the request id (it is made or vetted here).
    from gateway.request_id import request_id
    from legacy_adapters.redaction import register_secret

    register_secret("bench-jwt-secret-registered-for-this-test")
    scope: dict[str, Any] = {"type": "http", "headers": [(b"x-request-id", given.encode())]}
    rid = request_id(scope)
    assert (rid == given) is kept
    if not kept:
        assert len(rid) == 32 and int(rid, 16) >= 0


def test_a_line_that_cannot_be_encoded_leaves_no_half_line_behind() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this")

    out = CountingStream()
    sink = LogSink(out, interval_s=60)
    sink.write_encoded({"event": "first"})
    with pytest.raises(RuntimeError):
        sink.write_encoded({"event": "broken", "value": Unprintable(), "after": "x" * 100})
    sink.write_encoded({"event": "last"})
    sink.close()
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["first", "last"]


def test_request_lines_encoded_later_keep_their_place_among_the_other_lines() -> None:
    """The request line is queued and encoded with its block (``LogSink.write_later``): a line logged
    after it, by another logger, still comes after it, and one logged before it comes before."""
    from gateway.logging import access_line

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    write = access_line()
    assert write is not None
    log = structlog.get_logger("bridgehead.reader")
    write("r1", "GET", "/v1/jobs/J1", "/v1/jobs/{key}", 200, 1.5, "s", 1, False)
    log.warning("undecodable value served as null", request_id="r2")
    write("r2", "GET", "/v1/jobs/J2", "/v1/jobs/{key}", 200, 2.5, "s", 1, False)
    write("r3", "GET", "/v1/jobs/x?password=hunter2", "/v1/jobs", 200, 0.5, "s", 0, False)
    configure_logging("info", stream=io.BytesIO())
    lines = [json.loads(line) for line in _lines(out)]
    assert [(line["event"], line["request_id"]) for line in lines] == [
        ("request", "r1"), ("undecodable value served as null", "r2"), ("request", "r2"), ("request", "r3")
    ]  # fmt: skip
    assert lines[0]["timestamp"] <= lines[1]["timestamp"] <= lines[2]["timestamp"]  # taken when logged
    assert "hunter2" not in out.getvalue().decode()  # redacted on the sink's thread as before


def test_a_request_line_that_cannot_be_encoded_costs_that_line_not_the_sinks_thread() -> None:
    from gateway.logging import access_line

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this")

    out = CountingStream()
    configure_logging("info", log_format="json", stream=out)
    write = access_line()
    assert write is not None
    write("r1", "GET", "/v1/jobs", "/v1/jobs", 200, 1.5, Unprintable(), 1, False)
    write("r2", "GET", "/v1/jobs", "/v1/jobs", 200, 1.5, "s", 1, False)
    deadline = time.monotonic() + 5  # the sink's thread writes what is queued within its interval (0.5 s)
    while out.getvalue().count(b"\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue().count(b"\n") == 2  # encoded and written by that thread, which goes on
    write("r3", "GET", "/v1/jobs", "/v1/jobs", 200, 1.5, "s", 1, False)
    configure_logging("info", stream=io.BytesIO())
    lines = [json.loads(line) for line in _lines(out)]
    assert [(line["event"], line["request_id"]) for line in lines] == [
        ("request line not written", "r1"), ("request", "r2"), ("request", "r3")
    ]  # fmt: skip
    assert lines[0]["error"] == "RuntimeError" and lines[0]["level"] == "error"


def _encode_tagged(fields: Any, buffer: bytearray) -> None:
    buffer += f"later {fields}\n".encode()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["later", "write", "encoded", "flush"]), max_size=60), st.integers(64, 512))
def test_lines_leave_the_sink_in_the_order_they_were_logged_however_the_calls_interleave(
    calls: list[str], limit: int
) -> None:
    """Queued lines (``write_later``), direct ones and flushes in any order, past the block limit or
    not: every line comes out once, whole, in the order it was logged."""
    out = CountingStream()
    sink = LogSink(out, limit=limit, interval_s=60)
    expected: list[str] = []
    for n, call in enumerate(calls):
        if call == "later":
            sink.write_later(_encode_tagged, n)
            expected.append(f"later {n}")
        elif call == "write":
            sink.write(f"write {n}\n".encode())
            expected.append(f"write {n}")
        elif call == "encoded":
            sink.write_encoded({"n": n})
            expected.append(json.dumps({"n": n}, separators=(",", ":")))
        else:
            sink.flush()
    sink.close()
    assert out.getvalue().decode().splitlines() == expected
