"""``like`` and ``ilike`` give the same rows on every backend for the same Unicode data.

SQLite's own LIKE folds A-Z only, MariaDB's default collation ignores case and accents,
PostgreSQL's ILIKE follows the database locale: the API's rule must not depend on any of
them. Each backend's answer is compared with a reference written here with Python's
``re`` (not with our pattern code), and T-SQL is compiled with its explicit collation.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import JWT_SECRET
from litestar.testing import TestClient
from scratch_db import SCRATCH_BACKENDS, scratch_url
from sqlalchemy.dialects import mssql

from gateway import create_app
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.query.like import PatternMatch, parse_like
from sync.state import StateDatabase

NAMES = [
    "Café", "CAFÉ", "cafe", "Cafeteria", "café au lait", "Müller", "MÜLLER", "müller", "Mueller",
    "Straße", "STRASSE", "STRAẞE", "ΣΊΣΥΦΟΣ", "σίσυφος", "Kelvin \u212a", "kelvin k",
    "50% off", "50 off", "a_b", "axb", "a*b", "a\\b", "[x]", "x", "line\nbreak", "İstanbul",
    "istanbul", "SMITH, J.", "ZETA",
]  # fmt: skip

PATTERNS = [
    "Caf*", "caf*", "CAF*", "café*", "müller*", "MÜLLER", "*ß*", "*SS*", "\u03c3*", "*\u03c2", "*kelvin k*", "*K",
    "50%*", "a_b", "a\\*b", "a\\\\b", "[x]", "*x]", "line*", "*\nbreak", "*", "",
]  # fmt: skip

MAPPING = """
database: {url: "${URL}"}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "${SECRET}"}
versions:
  v1:
    resources:
      names:
        table: BH_LIKE
        key: id
        fields:
          id: {column: ID, type: integer}
          name: {column: NAME, type: string}
          padded: {column: PADDED, type: string, transform: trim, length: 20}
"""

BACKENDS = SCRATCH_BACKENDS


def reference(pattern: str, text: str, *, insensitive: bool) -> bool:
    """The documented rule, written with ``re``: ``*`` any run, ``\\`` escapes the next character."""
    regex = "".join(
        ".*" if piece == "*" else re.escape(piece[-1])
        for piece in re.findall(r"\\.|\*|[^\\*]", pattern, flags=re.DOTALL)
    )
    flags = re.DOTALL | (re.IGNORECASE if insensitive else 0)
    return re.fullmatch(regex, text, flags) is not None


@pytest.fixture(scope="module", params=BACKENDS)
def names_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    tmp = tmp_path_factory.mktemp(f"like-{request.param}")
    url = scratch_url(request.param, tmp)
    engine = sa.create_engine(url)
    table = sa.Table(
        "BH_LIKE",
        sa.MetaData(),
        sa.Column("ID", sa.Integer, primary_key=True, autoincrement=False, quote=True),
        sa.Column("NAME", sa.Unicode(40), nullable=False, quote=True),
        sa.Column("PADDED", sa.CHAR(20), nullable=False, quote=True),
        quote=True,
        mysql_charset="utf8mb4",
    )
    try:
        with engine.begin() as conn:
            table.drop(conn, checkfirst=True)
            table.create(conn)
            conn.execute(table.insert(), [{"ID": i, "NAME": n, "PADDED": n[:20]} for i, n in enumerate(NAMES)])
    finally:
        engine.dispose()
    mapping = parse_mapping(MAPPING, environ={"URL": url, "SECRET": JWT_SECRET})
    # A state store of its own: never the default ./.bridgehead one `make demo` uses.
    state = StateDatabase(f"sqlite:///{Path(tempfile.mkdtemp(prefix='bh-like-')) / 'state.db'}")
    with TestClient(create_app(mapping, state=state)) as client:
        yield client


def _names(client: TestClient[Any], headers: dict[str, str], **query: str) -> list[str]:
    response = client.get("/v1/names", params={**query, "limit": "500", "sort": "id"}, headers=headers)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()["data"]]


@pytest.mark.parametrize("op", ["like", "ilike"])
def test_every_backend_matches_the_documented_rule(
    names_client: TestClient[Any], admin: dict[str, str], op: str
) -> None:
    for pattern in PATTERNS:
        expected = [n for n in NAMES if reference(pattern, n, insensitive=op == "ilike")]
        assert _names(names_client, admin, **{f"name[{op}]": pattern}) == expected, (op, pattern)


def test_the_rule_on_the_cases_users_report(names_client: TestClient[Any], admin: dict[str, str]) -> None:
    assert _names(names_client, admin, **{"name[ilike]": "caf*"}) == [
        "Café",
        "CAFÉ",
        "cafe",
        "Cafeteria",
        "café au lait",
    ]
    assert _names(names_client, admin, **{"name[like]": "caf*"}) == ["cafe", "café au lait"]
    assert _names(names_client, admin, **{"name[ilike]": "müller*"}) == ["Müller", "MÜLLER", "müller"]
    # One character for one: ß matches ẞ, never 'ss'.
    assert _names(names_client, admin, **{"name[ilike]": "straße"}) == ["Straße", "STRAẞE"]
    # İ has no simple case folding (only a Turkic one): it is not an 'i' (Python's re says it is).
    assert _names(names_client, admin, **{"name[ilike]": "i*"}) == ["istanbul"]


def test_in_takes_escaped_commas(names_client: TestClient[Any], admin: dict[str, str]) -> None:
    assert _names(names_client, admin, **{"name[in]": "SMITH\\, J.,ZETA,a\\\\b"}) == ["a\\b", "SMITH, J.", "ZETA"]


def test_char_padding_is_not_part_of_the_value(names_client: TestClient[Any], admin: dict[str, str]) -> None:
    response = names_client.get("/v1/names", params={"padded[ilike]": "CAFÉ", "sort": "id"}, headers=admin)
    assert [r["name"] for r in response.json()["data"]] == ["Café", "CAFÉ"]


def test_a_lone_trailing_backslash_is_a_clear_400(names_client: TestClient[Any], admin: dict[str, str]) -> None:
    response = names_client.get("/v1/names", params={"name[like]": "abc\\"}, headers=admin)
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "name[like]"
    assert "backslash" in response.json()["errors"][0]["detail"]


def test_tsql_compiles_with_an_explicit_binary_collation_and_classes() -> None:
    column = sa.column("NAME")
    sensitive = PatternMatch(column, parse_like("50%_[x]*", insensitive=False)).compile(dialect=mssql.dialect())
    assert str(sensitive) == "[NAME] COLLATE Latin1_General_100_BIN2_UTF8 LIKE :param_1 ESCAPE '\\'"
    assert sensitive.params == {"param_1": "50\\%\\_\\[x]%"}
    folded = PatternMatch(column, parse_like("müller*", insensitive=True)).compile(dialect=mssql.dialect())
    assert folded.params == {"param_1": "[Mm][Üü][Ll][Ll][Ee][Rr]%"}


def test_tsql_before_2019_uses_the_binary_collation_it_has() -> None:
    dialect = mssql.dialect()
    dialect.server_version_info = (13, 0, 5026)  # SQL Server 2016: no _UTF8 collations
    compiled = PatternMatch(sa.column("NAME"), parse_like("A*", insensitive=False)).compile(dialect=dialect)
    assert str(compiled) == "[NAME] COLLATE Latin1_General_100_BIN2 LIKE :param_1 ESCAPE '\\'"


def test_unknown_engines_fall_back_to_lower(tmp_path: Path) -> None:
    del tmp_path
    compiled = PatternMatch(sa.column("NAME"), parse_like("Ab*", insensitive=True)).compile()
    assert str(compiled) == "lower(\"NAME\") LIKE :param_1 ESCAPE '\\'" and compiled.params == {"param_1": "ab%"}
