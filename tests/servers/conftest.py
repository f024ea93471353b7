"""Fixtures shared by the server tests."""

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run the async tests on asyncio only (session-scoped so Hypothesis tests may use it)."""
    return "asyncio"
