"""CORS per deployment and rate limits per client address and token identity, shared by workers."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping import Mapping
from legacy_adapters.mapping.load import parse_mapping
from legacy_adapters.mapping.model import CorsConfig, RateLimitConfig
from tests.conftest import JWT_SECRET, service_unavailable
from tests.ops.servers import demo_mapping_with, serving


def _with_api(mapping: Mapping, **changes: Any) -> Mapping:
    return msgspec.structs.replace(mapping, api=msgspec.structs.replace(mapping.api, **changes))


def test_cors_answers_allowed_origins_only(demo_mapping: Mapping) -> None:
    from gateway import create_app

    mapping = _with_api(mapping=demo_mapping, cors=CorsConfig(allow_origins=["https://portal.example.com"]))
    with TestClient(create_app(mapping)) as client:
        preflight = client.options(
            "/v1/items",
            headers={"Origin": "https://portal.example.com", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"},
        )  # fmt: skip
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        simple = client.get("/v1/items?limit=1", headers={"Origin": "https://portal.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert "etag" in simple.headers["access-control-expose-headers"].lower()
        other = client.get("/v1/items?limit=1", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(demo_mapping)) as plain:  # no cors: same-origin only, no CORS headers at all
        answer = plain.get("/v1/items?limit=1", headers={"Origin": "https://portal.example.com"})
        assert "access-control-allow-origin" not in answer.headers


def test_a_bad_rate_is_a_mapping_error_naming_the_key() -> None:
    text = DEMO_MAPPING_PATH.read_text().replace("\napi:\n", "\napi:\n  rate_limit: {per_ip: 10 per minute}\n", 1)
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, source="bridgehead.yaml", environ={"BRIDGEHEAD_JWT_SECRET": JWT_SECRET})
    assert "api.rate_limit" in str(caught.value) and "10 per minute" in str(caught.value)


def test_with_its_counters_unreachable_a_limit_lets_requests_through_and_says_so(demo_mapping: Mapping) -> None:
    """Redis down is no reason to refuse every caller: requests are answered, uncounted, with one warning."""
    from structlog.testing import capture_logs

    from gateway import create_app

    with socket.socket() as refusing, socket.socket() as silent:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepted by the kernel, never answered: a black-holed Redis
        for sock in (refusing, silent):
            port = sock.getsockname()[1]
            limits = RateLimitConfig(per_ip="2/minute", redis_url=f"redis://:hunter2-secret@127.0.0.1:{port}/0")
            app = create_app(_with_api(demo_mapping, rate_limit=limits))
            with TestClient(app) as client, capture_logs() as logs:
                began = time.monotonic()
                answers = [client.get("/v1/items?limit=1") for _ in range(6)]
                took = time.monotonic() - began
            assert [a.status_code for a in answers] == [200] * 6
            assert all("ratelimit-limit" not in a.headers for a in answers)
            assert took < 3  # one wait for the store's timeout, then requests go uncounted for a while
            warned = [e for e in logs if e.get("event", "").startswith("rate-limit counters unreachable")]
            assert len(warned) == 1 and warned[0]["limit"] == "per client address"
            assert "hunter2" not in repr(logs) and str(port) not in repr(warned)


def test_limit_per_address_is_a_429_problem_and_recovers(demo_mapping: Mapping) -> None:
    from gateway import create_app

    mapping = _with_api(demo_mapping, rate_limit=RateLimitConfig(per_ip="3/second"))
    with TestClient(create_app(mapping)) as client:
        time.sleep(1 - time.time() % 1 + 0.05)  # start at the beginning of a one-second window
        answers = [client.get("/v1/items?limit=1") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        refused = answers[3]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("rate-limited") and refused.json()["status"] == 429
        assert int(refused.headers["retry-after"]) >= 1 and refused.headers["ratelimit-limit"] == "3"
        assert client.get("/health/ready").status_code == 200  # probes are never limited
        time.sleep(int(refused.headers["retry-after"]) + 0.1)
        assert client.get("/v1/items?limit=1").status_code == 200  # recovered


def test_with_a_rate_limit_every_limited_operation_documents_its_429(demo_mapping: Mapping) -> None:
    from gateway import create_app

    mapping = _with_api(demo_mapping, rate_limit=RateLimitConfig(per_ip="1/second"))
    with TestClient(create_app(mapping)) as client:
        document = client.get("/openapi/v1.json").json()
        time.sleep(1 - time.time() % 1 + 0.05)
        answers = [client.get("/v1/items?limit=1") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    operations = [(path, op) for path, ops in document["paths"].items() for op in ops.values()]
    assert len(operations) > 10
    for path, operation in operations:
        limited = operation["responses"].get("429")
        assert limited is not None, path
        documented = {ref["$ref"].rsplit("/", 1)[1].lower() for ref in limited["headers"].values()}
        assert documented <= set(answers[1].headers)  # every header it promises, the refusal carries
        assert {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= documented
    assert all(name in document["components"]["headers"] for name in ("RateLimit-Limit", "RateLimit-Reset"))
    with TestClient(create_app(demo_mapping)) as client:  # without one, only a list's export cap is a 429
        plain = client.get("/openapi/v1.json").json()
    assert "429" in plain["paths"]["/v1/items"]["get"]["responses"]
    assert "429" not in plain["paths"]["/v1/items/{key}"]["get"]["responses"]
    assert "RateLimit-Limit" not in plain["components"]["headers"]


@pytest.mark.parametrize("store", ["files", "redis"])
def test_processes_share_one_budget(store: str, tmp_path: Path, demo_db_path: Path) -> None:
    """Two processes answering in turn (as workers do) draw on one budget, not one each."""
    shared: dict[str, str] = {}
    if store == "redis":
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        except OSError:
            service_unavailable("Redis is not listening on 127.0.0.1:6379")
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=15).flushdb()
        mapping = demo_mapping_with(
            tmp_path, "  rate_limit: {per_ip: 12/minute, redis_url: 'redis://127.0.0.1:6379/15'}\n"
        )
    else:
        (tmp_path / "limits").mkdir()
        shared = {"BRIDGEHEAD_RATE_LIMIT_DIR": str(tmp_path / "limits")}
        mapping = demo_mapping_with(tmp_path, "  rate_limit: {per_ip: 12/minute}\n")
    state = tmp_path / "state.db"
    with (
        serving(mapping, demo_db_path, state, env=shared) as (a, _),
        serving(mapping, demo_db_path, state, env=shared) as (b, _),
    ):
        statuses = [httpx.get(f"{(a, b)[i % 2]}/v1/items?limit=1").status_code for i in range(20)]
    assert statuses == [200] * 12 + [429] * 8


def test_a_limit_hit_across_two_processes_recovers_in_both(tmp_path: Path, demo_db_path: Path) -> None:
    """Two processes sharing the limit files: the shared budget runs out, then refills for both."""
    (tmp_path / "limits").mkdir()
    shared = {"BRIDGEHEAD_RATE_LIMIT_DIR": str(tmp_path / "limits")}
    mapping = demo_mapping_with(tmp_path, "  rate_limit: {per_ip: 4/second}\n")
    with (
        serving(mapping, demo_db_path, tmp_path / "state.db", env=shared) as (a, _),
        serving(mapping, demo_db_path, tmp_path / "state.db", env=shared) as (b, _),
    ):
        for _attempt in range(3):  # six requests inside one window; a loaded machine may need another go
            time.sleep(1 - time.time() % 1 + 0.05)  # the start of a one-second window
            window = int(time.time())
            answers = [httpx.get(f"{(a, b)[i % 2]}/v1/items?limit=1") for i in range(6)]
            if int(time.time()) == window:
                break
            time.sleep(1.1)  # the window those requests spilled into refills before the next go
        assert [r.status_code for r in answers] == [200] * 4 + [429] * 2
        refused = answers[-1]
        assert (
            refused.headers["content-type"] == "application/problem+json" and int(refused.headers["retry-after"]) >= 1
        )
        time.sleep(int(refused.headers["retry-after"]) + 0.1)
        assert [httpx.get(f"{base}/v1/items?limit=1").status_code for base in (a, b)] == [200, 200]
