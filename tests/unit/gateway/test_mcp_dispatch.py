"""Tool arguments of any JSON shape become a REST request or a plain 400, never another error."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.principal import Principal
from gateway.exceptions import BadRequest
from gateway.mcp.dispatch import rest_call
from gateway.mcp.tools import ToolSpec, tools_for
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.resource import bind_version

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["filters", "sort", "fields", "embed", "limit", "cursor", "key", "group_by", "sum", "having", "row", "changes",
     "etag", "params", "idempotency_key", "min", "count_distinct"]
)  # fmt: skip


@pytest.fixture(scope="module")
def tools(demo_mapping: Mapping) -> list[ToolSpec]:
    class _Ctx:  # what tools_for reads of the GatewayContext
        mapping = demo_mapping
        versions = {v: bind_version(demo_mapping, v) for v in demo_mapping.versions}

    return [t for t in tools_for(_Ctx(), Principal("admin", frozenset({"admin"}))).values() if t.resource]  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_arguments_become_a_request_or_a_bad_request(tools: list[ToolSpec], data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(tools))
    arguments: dict[str, Any] = data.draw(st.dictionaries(_keys, _json, max_size=5))
    try:
        call = rest_call(spec, arguments)
    except BadRequest as exc:
        assert exc.detail and exc.status_code == 400
        return
    assert call.method in ("GET", "POST", "PATCH")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in call.query)
    assert call.path.startswith(f"/{spec.resource.version}/{spec.resource.name}")  # type: ignore[union-attr]


def test_composite_keys_are_escaped_into_one_path_segment(tools: list[ToolSpec]) -> None:
    get = next(t for t in tools if t.tool.name == "operations_get")
    call = rest_call(get, {"key": {"job_number": "J/1,2\\", "sequence": 20}})
    segment = call.path.rsplit("/", 1)[1]
    assert "/" not in segment and unquote(segment) == "J/1\\,2\\\\,20"
    listed = rest_call(
        next(t for t in tools if t.tool.name == "jobs_list"), {"filters": {"customer_id": {"in": ["A,B", "C"]}}}
    )
    assert listed.query == [("customer_id[in]", "A\\,B,C")]
