"""Verified tokens are remembered only until their own expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth.tokens import TokenVerifier
from gateway.exceptions import Unauthorized
from legacy_adapters.mapping.model import AuthConfig

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def _token(**claims: object) -> str:
    return jwt.encode({"sub": "s", "scope": "jobs:read", **claims}, SECRET, algorithm="HS256")


def test_a_cached_token_still_expires() -> None:
    verifier = TokenVerifier(AuthConfig(hs256_secret=SECRET, leeway_s=0))
    # A whole-second exp (as issuers write it), 3 s ahead: the two checks before it pass on a loaded machine.
    exp = int(time.time()) + 3
    token = _token(exp=exp)
    assert verifier.verify(token).scopes == {"jobs:read"}
    assert verifier.verify(token).subject == "s"  # served from the cache
    time.sleep(max(0.0, exp - time.time()) + 0.1)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_a_cached_token_is_not_valid_before_nbf() -> None:
    verifier = TokenVerifier(AuthConfig(hs256_secret=SECRET, leeway_s=0))
    token = _token(exp=time.time() + 60, nbf=time.time() + 30)
    with pytest.raises(Unauthorized, match="not valid yet"):
        verifier.verify(token)
    with pytest.raises(Unauthorized, match="not valid yet"):
        verifier.verify(token)  # a refusal is never cached as a success


def test_a_tampered_copy_of_a_cached_token_is_checked_afresh() -> None:
    verifier = TokenVerifier(AuthConfig(hs256_secret=SECRET))
    token = _token(exp=time.time() + 60)
    verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"
    with pytest.raises(Unauthorized):
        verifier.verify(forged)
