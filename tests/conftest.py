"""Fixtures shared by test modules: the state backend a state test runs against."""

from __future__ import annotations

import pytest
from state_backends import BACKENDS, StateBackend


@pytest.fixture(params=BACKENDS, ids=str)
def state(request: pytest.FixtureRequest) -> StateBackend:
    """Each state backend in turn (only SQLite so far)."""
    backend: StateBackend = request.param
    return backend
