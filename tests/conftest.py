"""Fixtures shared by test modules: the state backend a state test runs against."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pg_server import PostgresServer, ServerUnavailable
from state_backends import BACKENDS, SQLITE, StateBackend, postgres_backend

from newsletter.config.state import ENV_STATE_URL

# The tests choose their state themselves; a state URL of the shell must not reach them
# (nor the commands they start).
os.environ.pop(ENV_STATE_URL, None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; missing, it fails the tests in CI, else skips them."""
    try:
        server = PostgresServer.start()
    except ServerUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is needed in CI: {err}")
        pytest.skip(f"PostgreSQL is not available: {err}")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest) -> StateBackend:
    """Each state backend in turn: SQLite, and PostgreSQL on the session's server."""
    if request.param == "postgresql":
        return postgres_backend(request.getfixturevalue("postgres"))
    return SQLITE
