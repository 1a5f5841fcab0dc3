"""Bearer token verification with pyjwt: HS256 from a shared secret, RS256/ES256 from a JWKS.

The algorithm list is fixed by configuration, never taken from the token: a
token saying ``alg: none``, or ``HS256`` when only a JWKS is trusted (the
classic "sign with the public key" confusion), is refused before any key is used.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import jwt

from gateway.auth.jwks import JwksCache, JwksUnavailable
from gateway.auth.principal import Principal
from gateway.exceptions import Unauthorized

if TYPE_CHECKING:
    import httpx
    from jwt.types import Options

    from legacy_adapters.mapping.model import AuthConfig

__all__ = ("TokenVerifier",)

_ASYMMETRIC = {"RS256": "RSA", "ES256": "EC"}
_CACHE_SIZE = 4096
# Header values reach the WWW-Authenticate challenge: only a short plain name is echoed back, since a
# quote would break the quoted-string and a non-Latin-1 character could not be sent at all (a 500).
_SHOWABLE_ALG = re.compile(r"[A-Za-z0-9_-]{1,16}")
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidIssuerError, "the token was issued by an untrusted issuer"),
    (jwt.InvalidAudienceError, "the token is not meant for this API"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token signature does not verify"),
    (jwt.DecodeError, "the token is malformed"),
)


class TokenVerifier:
    def __init__(self, config: AuthConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.jwks: JwksCache | None = None
        if config.jwks_url:
            if client is None:
                raise ValueError("a JWKS URL needs an HTTP client")
            self.jwks = JwksCache(
                config.jwks_url, client, ttl_s=config.jwks_cache_s, min_refetch_s=config.jwks_min_refetch_s
            )
        self.algorithms = (["HS256"] if config.hs256_secret else []) + (list(_ASYMMETRIC) if self.jwks else [])
        # Verified tokens, until they expire: a client sends the same token on every request,
        # and checking its signature again cost a quarter of a keyed read. Bounded, and a
        # hit still re-checks the time claims, so nothing stays valid longer than it says.
        self._verified: dict[str, tuple[Principal, float, float, jwt.PyJWK | None]] = {}

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before and still in time; ``None`` means "verify it".

        Never does I/O (no JWKS fetch), so the event loop may call it on every request.
        """
        cached = self._verified.get(token)
        if cached is None:
            return None
        principal, not_before, expires, jwk = cached
        now = time.time()
        in_time = not_before - self.config.leeway_s <= now < expires + self.config.leeway_s
        # A key the issuer has since withdrawn from its JWKS, or replaced under the same kid, no
        # longer vouches for the token; a stale key set (holds() is None) sends the token through a
        # full check that refetches it.
        key_current = jwk is None or (self.jwks is not None and self.jwks.holds(jwk) is True)
        if in_time and key_current:
            return principal
        self._verified.pop(token, None)
        return None

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for; ``Unauthorized`` with a reason otherwise.

        May fetch the JWKS (blocking): call it from a worker thread, never the event loop.
        """
        principal = self.cached(token)
        if principal is not None:
            return principal
        principal, claims, jwk = self._verify(token)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()  # crude but bounded; a busy gateway refills it in one round of clients
        self._verified[token] = (principal, float(claims.get("nbf", 0)), float(claims["exp"]), jwk)
        return principal

    def _verify(self, token: str) -> tuple[Principal, dict[str, Any], jwt.PyJWK | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            shown = repr(alg) if isinstance(alg, str) and _SHOWABLE_ALG.fullmatch(alg) else "in its header"
            raise Unauthorized(f"the token algorithm {shown} is not accepted")
        jwk = self._jwk(alg, header)
        key: Any = self.config.hs256_secret if jwk is None else jwk.key
        options: Options = {"require": ["exp"], "verify_aud": self.config.audience is not None}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options=options,
            )
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "the token is not valid")
            raise Unauthorized(reason) from None
        return Principal.from_claims(claims), claims, jwk

    def _jwk(self, alg: str, header: dict[str, Any]) -> jwt.PyJWK | None:
        """The JWKS key that must have signed the token; None for HS256 (the configured secret)."""
        if alg == "HS256":
            return None
        kid = header.get("kid")
        if not isinstance(kid, str) or self.jwks is None:
            raise Unauthorized("the token names no key id (kid)")
        try:
            jwk = self.jwks.get(kid)
        except JwksUnavailable:
            raise Unauthorized("the signing keys are unavailable; try again shortly") from None
        if jwk is None:
            raise Unauthorized("the token is signed by an unknown key")
        if jwk.key_type != _ASYMMETRIC[alg]:
            raise Unauthorized(f"the token algorithm {alg!r} does not match its key")
        return jwk
