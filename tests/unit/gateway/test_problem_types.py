"""Litestar's own HTTP errors are answered with our problem type for their status, not internal-error.

Middleware (authentication, body limits) raises Litestar's exceptions before any handler runs;
a client must still be told which problem it hit, and the OpenAPI documents promise that type.
"""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.testing import TestClient

from gateway.problems import PROBLEM_TYPES, exception_handlers


@pytest.mark.parametrize(
    ("raised", "status", "slug"),
    [
        (ValidationException("bad query"), 400, "invalid-parameter"),
        (NotAuthorizedException("no token"), 401, "invalid-token"),
        (PermissionDeniedException("no scope"), 403, "insufficient-scope"),
        (ClientException("too big", status_code=413), 413, "payload-too-large"),
        (HTTPException("not json", status_code=415), 415, "unsupported-media-type"),
        (ServiceUnavailableException(), 503, "database-unavailable"),
    ],
)
def test_litestar_errors_get_the_problem_type_of_their_status(raised: HTTPException, status: int, slug: str) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise raised

    with TestClient(Litestar([boom], exception_handlers=exception_handlers)) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"/problems/{slug}" and slug in PROBLEM_TYPES
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer ")
