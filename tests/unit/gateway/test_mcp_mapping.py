"""The mapping's ``mcp:`` options are checked with a path, and the demo prints how to connect a client."""

from __future__ import annotations

import json
import re

import pytest

from gateway.cli import mcp_client_setup
from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping import parse_mapping

MAPPING = """
database: {url: "sqlite:///x.db"}
auth: {issuer: https://login.example.com/, hs256_secret: "test-secret-that-is-long-enough-for-hs256!"}
%(top)s
versions:
  v1:
    resources:
      jobs:
        table: JOBMAST
        key: job_number
        %(writable)s
        fields:
          job_number: {column: JOBNO}
        actions:
          release: {sql: "UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = :j", params: {j: job_number}}
        mcp: %(mcp)s
"""


def parse(mcp: str, *, top: str = "", writable: str = "writable: true") -> None:
    parse_mapping(MAPPING % {"mcp": mcp, "top": top, "writable": writable})


@pytest.mark.parametrize(
    ("mcp", "top", "writable", "path", "message"),
    [
        ("{actions: [ship]}", "", "writable: true", "versions.v1.resources.jobs.mcp.actions", "unknown action 'ship'"),
        ("{create: true}", "", "", "versions.v1.resources.jobs.mcp.create", "create needs a writable resource"),
        ("{update: true}", "", "", "versions.v1.resources.jobs.mcp.update", "update needs a writable resource"),
        ("{}", "mcp: {version: v9}", "", "mcp.version", "unknown version 'v9' (versions: v1)"),
    ],
)
def test_mcp_options_are_checked(mcp: str, top: str, writable: str, path: str, message: str) -> None:
    with pytest.raises(MappingError, match=re.escape(message)) as caught:
        parse(mcp, top=top, writable=writable)
    assert caught.value.path == path


def test_a_typo_in_the_mcp_options_is_an_error() -> None:
    with pytest.raises(MappingError, match="writes"):
        parse("{writes: true}")


def test_valid_options() -> None:
    parse("{update: true, create: true, actions: [release]}", top="mcp: {version: v1, instructions: Job data.}")


def test_the_demo_says_how_to_add_its_endpoint_to_a_client() -> None:
    text = mcp_client_setup("http://127.0.0.1:8000", "TOKEN.PART.SIG", "C0042")
    assert "claude mcp add --transport http bridgehead-demo http://127.0.0.1:8000/mcp" in text
    assert 'Authorization: Bearer $PORTAL"' in text and "C0042" in text
    config = json.loads(text[text.index("{") : text.rindex("}") + 1])
    server = config["mcpServers"]["bridgehead-demo"]
    assert server == {
        "type": "http",
        "url": "http://127.0.0.1:8000/mcp",
        "headers": {"Authorization": "Bearer TOKEN.PART.SIG"},
    }
    assert "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp" in text
