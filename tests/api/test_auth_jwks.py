"""RS256 / ES256 tokens verified through a JWKS, served from an ``httpx.MockTransport``.

The keys are generated per module; the key set the identity provider serves is
a mutable list, so a test can rotate keys and count how often the gateway asks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from litestar.testing import TestClient

from gateway import create_app
from gateway.auth.jwks import JwksCache, JwksUnavailable
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping.load import parse_mapping

if TYPE_CHECKING:
    from pathlib import Path

JWKS_URL = "https://idp.test/jwks.json"
ISSUER = "https://idp.test/"
AUDIENCE = "bridgehead-api"


# -- an identity provider ---------------------------------------------------------------------


class KeyPair:
    def __init__(self, kid: str, private: Any, alg: str) -> None:
        self.kid, self.private, self.alg = kid, private, alg

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        data: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header})


def rsa_pair(kid: str) -> KeyPair:
    return KeyPair(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def ec_pair(kid: str) -> KeyPair:
    return KeyPair(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


@pytest.fixture(scope="module")
def rsa_key() -> KeyPair:
    return rsa_pair("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> KeyPair:
    return ec_pair("ec-1")


class IdentityProvider:
    """Serves ``keys`` at the JWKS URL and counts the requests; ``status``/``body`` simulate outages."""

    def __init__(self, keys: list[KeyPair]) -> None:
        self.keys = keys
        self.calls = 0
        self.status = 200
        self.body: bytes | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.calls += 1
        if self.body is not None:
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json={"keys": [k.jwk() for k in self.keys]})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "svc-reporting",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "scp": ["jobs:read", "jobs:read:all"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def jwks_mapping_text(min_refetch_s: float = 5.0, cache_s: float | None = None) -> str:
    """The demo mapping with its HS256 auth section replaced by a JWKS one."""
    demo = DEMO_MAPPING_PATH.read_text(encoding="utf-8")
    auth = (
        "auth:\n"
        f"  issuer: {ISSUER}\n"
        f"  audience: {AUDIENCE}\n"
        f"  jwks_url: {JWKS_URL}\n"
        "  leeway_s: 10\n"
        f"  jwks_min_refetch_s: {min_refetch_s}\n"
        + (f"  jwks_cache_s: {cache_s}\n" if cache_s is not None else "")
        + "\n"
    )
    replaced, count = re.subn(r"^auth:\n(?:  .*\n)+\n", auth, demo, flags=re.M)
    assert count == 1
    return replaced


@pytest.fixture
def idp(rsa_key: KeyPair, ec_key: KeyPair) -> IdentityProvider:
    return IdentityProvider([rsa_key, ec_key])


def gateway(
    demo_db_path: Path, idp: IdentityProvider, min_refetch_s: float = 5.0, cache_s: float | None = None
) -> TestClient[Any]:
    environ = {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{demo_db_path.with_name('jwks-state.db')}",
    }
    mapping = parse_mapping(jwks_mapping_text(min_refetch_s, cache_s), environ=environ)
    assert mapping.auth is not None and mapping.auth.hs256_secret is None
    app = create_app(mapping, http_client=httpx.Client(transport=httpx.MockTransport(idp)))
    return TestClient(app)


@pytest.fixture
def client(demo_db_path: Path, idp: IdentityProvider) -> Iterator[TestClient[Any]]:
    """A fresh gateway (so a fresh key cache) trusting only the JWKS."""
    with gateway(demo_db_path, idp) as test_client:
        yield test_client


def jwks_cache(client: TestClient[Any]) -> JwksCache:
    cache = client.app.state["ctx"].verifier.jwks
    assert isinstance(cache, JwksCache)
    return cache


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_401(response: Any, detail_contains: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert detail_contains in detail
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and f'error_description="{detail}"' in challenge


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_a_valid_token_from_the_jwks_is_accepted(
    client: TestClient[Any], idp: IdentityProvider, request: pytest.FixtureRequest, key_name: str
) -> None:
    key: KeyPair = request.getfixturevalue(key_name)
    response = client.get("/v1/jobs?limit=3", headers=bearer(key.sign(claims())))
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3
    # Cached: a second request does not fetch the key set again.
    assert client.get("/v1/jobs?limit=1", headers=bearer(key.sign(claims()))).status_code == 200
    assert idp.calls == 1 and jwks_cache(client).fetches == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -60}, "expired"),
        ({"nbf": 60}, "not valid yet"),
        ({"iss": "https://other-idp.test/"}, "untrusted issuer"),
        ({"aud": "someone-else"}, "not meant for this API"),
        ({"exp": None}, "lacks a required claim"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-exp"],
)
@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_claims_are_checked_for_asymmetric_tokens(
    client: TestClient[Any], request: pytest.FixtureRequest, key_name: str, changes: dict[str, Any], reason: str
) -> None:
    key: KeyPair = request.getfixturevalue(key_name)
    now = int(time.time())
    timed = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in changes.items()}
    assert_401(client.get("/v1/jobs", headers=bearer(key.sign(claims(**timed)))), reason)


def test_the_leeway_comes_from_the_mapping(client: TestClient[Any], rsa_key: KeyPair) -> None:
    now = int(time.time())
    within = rsa_key.sign(claims(exp=now - 5))  # leeway_s: 10 in this mapping
    beyond = rsa_key.sign(claims(exp=now - 20))
    assert client.get("/v1/jobs?limit=1", headers=bearer(within)).status_code == 200
    assert_401(client.get("/v1/jobs", headers=bearer(beyond)), "expired")


@pytest.mark.parametrize("make", [rsa_pair, ec_pair], ids=["rsa", "ec"])
def test_a_token_signed_by_another_key_with_a_known_kid_is_401(
    client: TestClient[Any], rsa_key: KeyPair, ec_key: KeyPair, make: Any
) -> None:
    impostor = make(rsa_key.kid if make is rsa_pair else ec_key.kid)
    assert_401(client.get("/v1/jobs", headers=bearer(impostor.sign(claims()))), "signature does not verify")


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_a_tampered_payload_is_401(client: TestClient[Any], request: pytest.FixtureRequest, key_name: str) -> None:
    key: KeyPair = request.getfixturevalue(key_name)
    header, _, signature = key.sign(claims(scp=["jobs:read"], customer_id="C0001")).split(".")
    forged = f"{header}.{b64(json.dumps(claims(scp=['admin'])).encode())}.{signature}"
    assert_401(client.get("/v1/jobs", headers=bearer(forged)), "signature does not verify")


def test_hs256_signed_with_the_rsa_public_key_is_401(client: TestClient[Any], rsa_key: KeyPair) -> None:
    """The classic confusion: the public key used as an HMAC secret. pyjwt will not make one; we do."""
    for secret in (rsa_key.public_pem(), json.dumps(rsa_key.jwk()).encode()):
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}).encode())
        payload = b64(json.dumps(claims(scp=["admin"])).encode())
        signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        response = client.get("/v1/jobs", headers=bearer(f"{header}.{payload}.{signature}"))
        assert_401(response, "algorithm 'HS256' is not accepted")


@pytest.mark.parametrize("alg", ["none", "None"])
def test_alg_none_is_401(client: TestClient[Any], rsa_key: KeyPair, alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": rsa_key.kid}).encode())
    payload = b64(json.dumps(claims(scp=["admin"])).encode())
    assert_401(client.get("/v1/jobs", headers=bearer(f"{header}.{payload}.")), "algorithm")


def test_an_algorithm_that_does_not_fit_the_key_is_401(
    client: TestClient[Any], rsa_key: KeyPair, ec_key: KeyPair
) -> None:
    # ES256 header naming the RSA key, and the reverse: refused before any signature check.
    ec_claiming_rsa = jwt.encode(claims(), ec_key.private, algorithm="ES256", headers={"kid": rsa_key.kid})
    rsa_claiming_ec = jwt.encode(claims(), rsa_key.private, algorithm="RS256", headers={"kid": ec_key.kid})
    assert_401(client.get("/v1/jobs", headers=bearer(ec_claiming_rsa)), "does not match its key")
    assert_401(client.get("/v1/jobs", headers=bearer(rsa_claiming_ec)), "does not match its key")


@pytest.mark.parametrize("kid", [None, 7, ["rsa-1"], ""], ids=["absent", "number", "list", "empty"])
def test_a_token_without_a_usable_kid_is_401(client: TestClient[Any], rsa_key: KeyPair, kid: Any) -> None:
    header = {"alg": "RS256", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}".encode()
    signature = rsa_key.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    response = client.get("/v1/jobs", headers=bearer(f"{signing_input.decode()}.{b64(signature)}"))
    assert response.status_code == 401, response.text
    assert re.search("key id|malformed|unknown key", response.json()["detail"])


def test_scopes_and_row_filters_apply_to_jwks_tokens(client: TestClient[Any], rsa_key: KeyPair) -> None:
    portal = bearer(rsa_key.sign(claims(scp=None, scope="jobs:read", customer_id="C0001")))
    body = client.get("/v1/jobs?limit=500", headers=portal).json()
    assert body["data"] and {row["customer_id"] for row in body["data"]} == {"C0001"}
    response = client.get("/v1/stock", headers=portal)
    assert response.status_code == 403
    assert 'scope="stock:read"' in response.headers["www-authenticate"]


# -- the key set: unknown kids, rotation, rate limit ------------------------------------------


def test_an_unknown_kid_is_401(client: TestClient[Any], idp: IdentityProvider) -> None:
    stranger = rsa_pair("who-knows")
    assert_401(client.get("/v1/jobs", headers=bearer(stranger.sign(claims()))), "unknown key")
    assert idp.calls == 1


def test_a_new_kid_in_the_jwks_is_picked_up(demo_db_path: Path, idp: IdentityProvider, rsa_key: KeyPair) -> None:
    """Key rotation reaches the gateway without a restart: an unknown kid refetches the set once."""
    rotated = rsa_pair("rsa-2")
    with gateway(demo_db_path, idp, min_refetch_s=0.2) as client:
        assert client.get("/v1/jobs?limit=1", headers=bearer(rsa_key.sign(claims()))).status_code == 200
        assert idp.calls == 1
        idp.keys = [rotated]  # the provider rotates: rsa-1 retired, rsa-2 published
        time.sleep(0.25)
        assert client.get("/v1/jobs?limit=1", headers=bearer(rotated.sign(claims()))).status_code == 200
        assert idp.calls == 2 and jwks_cache(client).fetches == 2
        # The refetched set replaced the old one: the retired key no longer verifies anything.
        assert_401(client.get("/v1/jobs", headers=bearer(rsa_key.sign(claims()))), "unknown key")
        assert client.get("/v1/jobs?limit=1", headers=bearer(rotated.sign(claims()))).status_code == 200


def test_a_key_replaced_under_the_same_kid_vouches_for_none_of_the_tokens_the_old_one_signed(
    demo_db_path: Path, idp: IdentityProvider, rsa_key: KeyPair, ec_key: KeyPair
) -> None:
    """An issuer that rotates a leaked key but keeps its kid: every token the old key signed is refused
    once the gateway has the new set, including those verified before and not used meanwhile."""
    first, second = rsa_key.sign(claims(sub="first")), rsa_key.sign(claims(sub="second"))
    with gateway(demo_db_path, idp, min_refetch_s=0.2, cache_s=0.3) as client:
        for token in (first, second):
            assert client.get("/v1/jobs?limit=1", headers=bearer(token)).status_code == 200
        time.sleep(0.35)  # an unchanged set fetched again: the verified tokens stay good
        for token in (first, second):
            assert client.get("/v1/jobs?limit=1", headers=bearer(token)).status_code == 200
        assert idp.calls == 2
        replacement = KeyPair(rsa_key.kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
        idp.keys = [replacement, ec_key]
        time.sleep(0.35)
        # The first request after the set went stale fetches it again, and its token no longer verifies;
        # the second token, answered from the cache until now, is refused too.
        assert_401(client.get("/v1/jobs", headers=bearer(first)), "signature does not verify")
        assert idp.calls == 3
        assert_401(client.get("/v1/jobs", headers=bearer(second)), "signature does not verify")
        assert client.get("/v1/jobs?limit=1", headers=bearer(replacement.sign(claims()))).status_code == 200


def test_a_flood_of_unknown_kids_does_not_hammer_the_issuer(
    client: TestClient[Any], idp: IdentityProvider, rsa_key: KeyPair
) -> None:
    for n in range(30):
        bogus = KeyPair(f"bogus-{n}", rsa_key.private, "RS256")
        assert client.get("/v1/jobs", headers=bearer(bogus.sign(claims()))).status_code == 401
    # The first token fetched the set; the other 29 fell inside jwks_min_refetch_s (5 s).
    assert idp.calls == 1 and jwks_cache(client).fetches == 1
    assert client.get("/v1/jobs?limit=1", headers=bearer(rsa_key.sign(claims()))).status_code == 200
    assert idp.calls == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b"down"), (200, b"<html>not json</html>"), (200, b"[]"), (200, b'{"keys": [1, "x"]}'), (200, b"{}")],
    ids=["503", "not-json", "list", "odd-entries", "no-keys"],
)
def test_an_unusable_jwks_is_a_401_not_a_500(
    client: TestClient[Any], idp: IdentityProvider, rsa_key: KeyPair, status: int, body: bytes
) -> None:
    idp.status, idp.body = status, body
    response = client.get("/v1/jobs", headers=bearer(rsa_key.sign(claims())))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "www-authenticate" in response.headers


def test_the_gateway_recovers_when_the_issuer_comes_back(
    demo_db_path: Path, idp: IdentityProvider, rsa_key: KeyPair
) -> None:
    idp.status, idp.body = 503, b"down"
    with gateway(demo_db_path, idp, min_refetch_s=0.2) as client:
        assert_401(client.get("/v1/jobs", headers=bearer(rsa_key.sign(claims()))), "unavailable")
        idp.status, idp.body = 200, None
        time.sleep(0.25)
        assert client.get("/v1/jobs?limit=1", headers=bearer(rsa_key.sign(claims()))).status_code == 200


def test_a_jwks_only_gateway_refuses_hs256_tokens_whatever_the_secret(client: TestClient[Any]) -> None:
    token = jwt.encode(claims(), "a-secret-that-is-long-enough-to-be-used-here", algorithm="HS256")
    assert_401(client.get("/v1/jobs", headers=bearer(token)), "algorithm 'HS256' is not accepted")


# -- the cache on its own, with a clock the test controls -------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_for(idp: IdentityProvider, clock: Clock) -> JwksCache:
    client = httpx.Client(transport=httpx.MockTransport(idp))
    return JwksCache(JWKS_URL, client, ttl_s=300, min_refetch_s=5, clock=clock)


def test_cache_refetches_an_unknown_kid_at_most_once_per_interval(idp: IdentityProvider, rsa_key: KeyPair) -> None:
    clock = Clock()
    cache = cache_for(idp, clock)
    assert cache.get(rsa_key.kid) is not None
    for _ in range(10):
        clock.now += 0.4
        assert cache.get("unknown") is None
    assert idp.calls == 1  # 4 s later: still inside the 5 s interval
    clock.now += 1.1
    idp.keys = [*idp.keys, rsa_pair("unknown")]
    assert cache.get("unknown") is not None
    assert idp.calls == 2 and cache.fetches == 2
    assert cache.get("another") is None and idp.calls == 2


def test_cache_refreshes_after_its_ttl(idp: IdentityProvider, rsa_key: KeyPair, ec_key: KeyPair) -> None:
    clock = Clock()
    cache = cache_for(idp, clock)
    assert cache.get(rsa_key.kid) is not None
    idp.keys = [ec_key]
    clock.now += 299
    assert cache.get(rsa_key.kid) is not None and idp.calls == 1  # still cached
    clock.now += 2
    assert cache.get(rsa_key.kid) is None and idp.calls == 2  # stale: refetched, rsa-1 is gone
    assert cache.get(ec_key.kid) is not None


def test_cache_keeps_its_keys_when_a_refresh_fails(idp: IdentityProvider, rsa_key: KeyPair) -> None:
    clock = Clock()
    cache = cache_for(idp, clock)
    assert cache.get(rsa_key.kid) is not None
    idp.status, idp.body = 500, b"oops"
    clock.now += 301
    assert cache.get(rsa_key.kid) is not None and idp.calls == 2
    clock.now += 1
    assert cache.get(rsa_key.kid) is not None and idp.calls == 2  # no retry storm after a failure


def test_cache_without_keys_says_the_issuer_is_unavailable(idp: IdentityProvider) -> None:
    idp.status, idp.body = 503, b"down"
    cache = cache_for(idp, Clock())
    with pytest.raises(JwksUnavailable):
        cache.get("rsa-1")


# -- a slow identity provider stalls only the tokens that need it -----------------------------


class StalledProvider(IdentityProvider):
    """An identity provider that hangs (until released) once ``stall`` is set."""

    def __init__(self, keys: list[KeyPair]) -> None:
        super().__init__(keys)
        self.stall = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.stall:
            self.entered.set()
            self.release.wait(timeout=30)
        return super().__call__(request)


def test_a_hanging_jwks_fetch_blocks_neither_other_tokens_nor_the_database_pool(
    demo_db_path: Path, tmp_path: Path, rsa_key: KeyPair
) -> None:
    idp = StalledProvider([rsa_key])
    text = jwks_mapping_text(min_refetch_s=0).replace(
        "  statement_timeout_s: 5\n", "  statement_timeout_s: 5\n  pool_size: 1\n"
    )
    environ = {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp_path / 's.db'}",
    }
    app = create_app(parse_mapping(text, environ=environ), http_client=httpx.Client(transport=httpx.MockTransport(idp)))
    with TestClient(app) as client:
        assert client.get("/v1/jobs?limit=1", headers=bearer(rsa_key.sign(claims()))).status_code == 200
        idp.stall = True
        answers: dict[str, Any] = {}
        stranger = rsa_pair("rotated-in")  # an unknown kid: its request refetches the set and hangs there
        hung = threading.Thread(
            target=lambda: answers.update(hung=client.get("/v1/jobs", headers=bearer(stranger.sign(claims()))))
        )
        hung.start()
        assert idp.entered.wait(timeout=10)

        def others() -> None:
            # A token never seen before, signed by a key already known, and an anonymous read through the
            # only database worker: neither needs the identity provider's answer.
            answers["known"] = client.get("/v1/jobs?limit=1", headers=bearer(rsa_key.sign(claims(sub="another"))))
            answers["anonymous"] = client.get("/v1/items?limit=1")

        other = threading.Thread(target=others)
        other.start()
        other.join(timeout=5)
        still_hung, others_done = hung.is_alive(), not other.is_alive()
        idp.release.set()
        hung.join(timeout=10)
        other.join(timeout=10)
    assert others_done, "requests that need no JWKS fetch waited for a stalled one"
    assert still_hung, "the stalled fetch was still running while the other requests were answered"
    assert answers["known"].status_code == 200 and answers["anonymous"].status_code == 200
    assert answers["hung"].status_code == 401  # the refetched set does not hold the stranger's kid
