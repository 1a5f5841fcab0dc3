"""Exports reach the driver in a form it streams: on sqliteodbc, a statement without parameters.

sqliteodbc materialises a whole result before the first row when a statement
has even one bound value, so a filtered export (``?status=…``) would hold every
matching row in memory. The statement it receives must carry its values inline,
correctly quoted, and give the same rows as the native backend.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar.testing import TestClient

NDJSON = {"Accept": "application/x-ndjson"}
QUERY = "/v1/jobs?status[in]=on_hold,released&customer_id[like]=C00*&notes[isnull]=false&fields=job_number,notes"


def test_filtered_export_sends_no_parameters_and_matches_native(
    backend_url: str, db_client: TestClient[Any], client: TestClient[Any], admin: dict[str, str]
) -> None:
    engine = db_client.app.state["ctx"].reader.database.export_engine
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        exported = db_client.get(QUERY, headers={**admin, **NDJSON})
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    native = client.get(QUERY, headers={**admin, **NDJSON})
    assert exported.status_code == native.status_code == 200
    assert exported.text == native.text and exported.text.count("\n") > 5
    selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    assert selects, "the export ran no SELECT"
    if sa.make_url(backend_url).get_backend_name() == "sqlite" and "pyodbc" in backend_url:
        assert all(not p for _, p in selects), "sqliteodbc would buffer a parameterised statement"
        assert all("'H'" in s and "'R'" in s for s, _ in selects)  # the values, quoted inline
