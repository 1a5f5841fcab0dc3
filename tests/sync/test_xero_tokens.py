"""The token-source seam: static and environment sources never leak the token and stop after a refusal."""

from __future__ import annotations

import pytest

from sync.connectors.xero.tokens import (
    ACCESS_TOKEN_ENV,
    TENANT_ID_ENV,
    EnvTokenSource,
    StaticTokenSource,
    XeroTokenSource,
)
from sync.exceptions import Fatal


def test_static_source_serves_its_token_until_refused() -> None:
    source = StaticTokenSource("secret-token-value", tenant="t-1")
    assert isinstance(source, XeroTokenSource)
    assert source.access_token() == "secret-token-value" and source.tenant_id() == "t-1"
    assert "secret-token-value" not in repr(source)
    source.invalidate()
    with pytest.raises(Fatal, match="reconnect") as refused:
        source.access_token()
    assert "secret-token-value" not in str(refused.value)
    with pytest.raises(Fatal):
        StaticTokenSource("")


def test_env_source_reads_each_call_and_picks_up_a_rotated_token() -> None:
    environ: dict[str, str] = {}
    source = EnvTokenSource(environ)
    assert isinstance(source, XeroTokenSource)
    with pytest.raises(Fatal, match=ACCESS_TOKEN_ENV):
        source.access_token()
    environ[ACCESS_TOKEN_ENV] = "first"
    assert source.access_token() == "first" and source.tenant_id() is None
    source.invalidate()
    with pytest.raises(Fatal, match="refused"):
        source.access_token()
    environ.update({ACCESS_TOKEN_ENV: "second", TENANT_ID_ENV: "t-2"})
    assert source.access_token() == "second" and source.tenant_id() == "t-2"
    assert "second" not in repr(source)


def test_a_xero_destination_never_prints_its_client_secret() -> None:
    from sync.connectors.xero.config import XeroDestination

    config = XeroDestination(client_id="app", client_secret="very-secret-value")
    assert "very-secret-value" not in repr(config) and "very-secret-value" not in str(config)
