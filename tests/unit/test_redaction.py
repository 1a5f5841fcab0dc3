"""``legacy_adapters.redaction``: configured and obtained secrets are replaced by value, wherever
they sit in a text; secret-shaped parts by shape; ordinary words are left alone."""

from __future__ import annotations

import contextlib
import string

from hypothesis import assume, given
from hypothesis import strategies as st

from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.redaction import REDACTED, SecretRegistry, redact_text, redact_value

_TOKEN_CHARS = string.ascii_letters + string.digits + "-_.~+/="


@given(
    secret=st.text(_TOKEN_CHARS, min_size=8, max_size=80),
    before=st.text(max_size=60),
    after=st.text(max_size=60),
    repeats=st.integers(1, 3),
)
def test_a_registered_secret_never_survives_whatever_surrounds_it(
    secret: str, before: str, after: str, repeats: int
) -> None:
    assume(secret not in before + after and secret not in "[redacted-jwt]")
    registry = SecretRegistry()
    registry.register(secret)
    registry.register(secret[:-1] + "x")  # a second, overlapping secret must not break the first
    text = (before + secret + after) * repeats
    redacted = registry.redact(text)
    assert secret not in redacted
    assert REDACTED in redacted


@given(words=st.text(string.ascii_letters + " ,.:;()'-", max_size=200))
def test_ordinary_words_are_left_alone(words: str) -> None:
    registry = SecretRegistry()
    registry.register("9f8e7d6c5b4a39281706")
    assume("bearer" not in words.casefold() and "password" not in words.casefold())
    assert registry.redact(words) == words


def test_short_configured_values_are_not_replaced_by_value() -> None:
    registry = SecretRegistry()
    registry.register("abc")  # would blank out "abc" in every message
    assert registry.redact("abcdef") == "abcdef"


def test_secret_shapes_are_replaced_without_being_registered() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = (
        f"401 for Bearer abc.def-ghi, token {jwt}; shop said shpat_0123456789abcdef; "
        "DRIVER={ODBC};PWD=hunter2;UID=sa; https://user:pa55@db.example/x; "
        'form client_secret=s3cr3t&grant_type=refresh; {"refresh_token": "r-123"}; '
        "Authorization: Basic dXNlcjpwYXNz"
    )
    out = redact_text(text)
    for leaked in ("abc.def-ghi", jwt, "0123456789abcdef", "hunter2", "pa55", "s3cr3t", "r-123", "dXNlcjpwYXNz"):
        assert leaked not in out
    assert "https://user:[redacted]@db.example/x" in out  # where it went stays readable


def test_json_like_values_mask_secret_keys_and_scrub_their_text() -> None:
    value = {"access_token": "x", "errors": [{"message": "bad Bearer tok123"}], "snapshot_pass": 3, "bypass": "y"}
    assert redact_value(value) == {
        "access_token": REDACTED,
        "errors": [{"message": f"bad Bearer {REDACTED}"}],
        "snapshot_pass": 3,
        "bypass": "y",
    }


def test_secrets_in_a_mapping_are_registered_as_it_loads() -> None:
    text = """
database:
  url: "mssql+pyodbc://sa:${DB_PASS}@legacy/erp?driver=ODBC+Driver+18+for+SQL+Server"
auth:
  hs256_secret: ${JWT_KEY}
versions:
  v1: {resources: {}}
sync:
  destinations:
    shop: {kind: shopify, shop: demo.myshopify.com, access_token: "${SHOP_CREDENTIAL}"}
"""
    environ = {"DB_PASS": "db-pass-7a6b5c4d", "JWT_KEY": "jwt-key-1f2e3d4c5b6a7980",
               "SHOP_CREDENTIAL": "literal-shop-9z8y7x"}  # fmt: skip
    with contextlib.suppress(MappingError):  # an incomplete mapping: its secrets register before it is checked
        parse_mapping(text, environ=environ)
    said = "driver said: login failed for db-pass-7a6b5c4d with jwt-key-1f2e3d4c5b6a7980 / literal-shop-9z8y7x"
    assert redact_text(said) == f"driver said: login failed for {REDACTED} with {REDACTED} / {REDACTED}"
    assert redact_text("demo.myshopify.com answered") == "demo.myshopify.com answered"  # not a secret


def test_quoted_braced_and_spaced_values_are_replaced_whole() -> None:
    """An ODBC value in braces may hold ``;``, a libpq value may be quoted, a JSON string may hold an
    escaped quote: the whole value goes, not its first part."""
    cases = {
        "DRIVER={ODBC Driver 18};UID=sa;PWD={p4ss;w0rd-tail};SERVER=db": ("p4ss", "w0rd-tail"),
        "host=db user=app password='c0rrect horse' dbname=erp": ("c0rrect", "horse"),
        'connect failed: password="quoted-s3cret"': ("quoted-s3cret",),
        "Server=db;Password = sp4ced-s3cret;Database=erp": ("sp4ced-s3cret",),
        '{"client_secret": "esc\\"aped-s3cret", "x": 1}': ("esc", "aped-s3cret"),
        '{"clientSecret": "camel-s3cret-v4lue"}': ("camel-s3cret-v4lue",),
        "401 for url 'https://api.example.com/v2/items?token=url-t0ken-v4lue&page=2'": ("url-t0ken-v4lue",),
    }
    for text, secrets in cases.items():
        out = redact_text(text)
        assert not [s for s in secrets if s in out], (text, out)
        assert REDACTED in out
    # A message cut short (errors are kept to 500 characters) may end inside a quoted value.
    for cut in ("password='cut-short-s3cret", "PWD={cut;short-s3cret", 'password="cut-short-s3cret'):
        assert "s3cret" not in redact_text(f"driver said: {cut}"), cut
    assert redact_text("Server=db;Password = x9;Database=erp") == f"Server=db;Password = {REDACTED};Database=erp"
    assert "page=2" in redact_text("https://api.example.com/v2/items?token=abc&page=2")


def test_useful_words_around_credentials_are_kept() -> None:
    """A sentence about a bearer token is not a bearer token."""
    for text in ("a bearer token is required", "the Authorization header must be 'Bearer <token>'"):
        assert redact_text(text) == text


def test_an_odbc_connection_string_password_is_registered_under_either_keyword() -> None:
    from urllib.parse import quote_plus

    for keyword, password, shown in (("PWD", "{br4ced;p4ss}}word}", "br4ced;p4ss}word"),
                                     ("Password", "plain-p4ssw0rd-9", "plain-p4ssw0rd-9")):  # fmt: skip
        connect = quote_plus(f"DRIVER={{ODBC Driver 18}};SERVER=db;UID=sa;{keyword}={password}")
        text = f"database:\n  url: mssql+pyodbc:///?odbc_connect={connect}\nversions:\n  v1: {{resources: {{}}}}\n"
        with contextlib.suppress(MappingError):
            parse_mapping(text, environ={})
        assert redact_text(f"login failed with {shown} for sa") == f"login failed with {REDACTED} for sa"


def test_rotating_tokens_are_kept_to_the_last_few_and_configured_secrets_for_good() -> None:
    # A sync loop refreshing Xero's tokens every half hour for months must not grow the pattern
    # (and every redaction's cost) without end; configured secrets are never dropped.
    registry = SecretRegistry(rotating_kept=4)
    registry.register("configured-db-password")
    registry.register("configured-twice-seen", rotating=True)
    registry.register("configured-twice-seen")  # a token equal to a configured value: kept for good
    tokens = [f"refreshed-token-{n:04d}" for n in range(100)]
    for token in tokens:
        registry.register(token, rotating=True)
    text = " ".join([*tokens, "configured-db-password", "configured-twice-seen"])
    redacted = registry.redact(text).split(" ")
    assert redacted[-6:] == [REDACTED] * 6  # the newest four tokens and both configured secrets
    assert redacted[:96] == tokens[:96]  # replaced tokens: no longer credentials, no longer searched for


@given(
    secrets=st.lists(st.text(_TOKEN_CHARS, min_size=8, max_size=40), min_size=1, max_size=12, unique=True),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    which=st.integers(0, 11),
)
def test_the_cheap_look_sees_every_registered_secret_however_many_are_registered(
    secrets: list[str], before: str, after: str, which: int
) -> None:
    # Up to a few secrets ``may_hold`` tests each as a substring, past that it searches the pattern:
    # both ways must see a secret wherever it sits, and agree with the redaction on a text without one.
    registry = SecretRegistry()
    for secret in secrets:
        registry.register(secret)
    secret = secrets[which % len(secrets)]
    assert registry.may_hold(before + secret + after)
    plain = before + after
    if registry.redact(plain) != plain:
        assert registry.may_hold(plain)
