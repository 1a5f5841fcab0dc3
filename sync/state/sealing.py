"""Secrets at rest in the state store (OAuth tokens), sealed with Fernet keys from the environment.

``BRIDGEHEAD_TOKEN_KEYS`` holds one or more Fernet keys separated by commas or spaces, the newest
first. Every write seals with the first key; every read tries each key in turn
(``cryptography``'s ``MultiFernet``), so a key rotation loses nothing: put the new key in front,
keep the old ones until every row was written again (each refresh rewrites its row, and
``bridgehead xero rekey`` rewrites them all at once), then drop the old key.

The key never comes from the mapping file: a leaked file or state-store backup alone opens nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sync.exceptions import Fatal

__all__ = ("KEYS_ENV", "Sealer", "SealingError", "generate_key")

KEYS_ENV = "BRIDGEHEAD_TOKEN_KEYS"


class SealingError(Fatal):
    """The keys are missing or malformed, or no key opens a stored secret: a configuration fault."""


def generate_key() -> str:
    """A new Fernet key (urlsafe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


class Sealer:
    """Seals with the newest key, opens with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SealingError(f"{KEYS_ENV} is not set: give it a key from `bridgehead xero keygen`")
        fernets = []
        for n, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # Never echo the value: a half-pasted key is still most of a key.
                raise SealingError(f"{KEYS_ENV}: key {n} of {len(keys)} is not a Fernet key "
                                   "(32 bytes, urlsafe base64)") from None  # fmt: skip
        self._keys = MultiFernet(fernets)
        self._newest = fernets[0]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Sealer:
        return cls([k for k in re.split(r"[\s,]+", environ.get(KEYS_ENV, "")) if k])

    def seal(self, secret: str) -> str:
        return self._keys.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._keys.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealingError(
                f"a stored token was sealed with a key that is not in {KEYS_ENV} (was an old key dropped too early?)"
            ) from None

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` was made with the newest key (else a rewrite moves it onto that key)."""
        try:
            self._newest.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True
