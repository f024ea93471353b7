"""Shared fixtures: the anyio backend, the repository root, and one real model for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def llama_model() -> Iterator[object]:
    """The embedded SmolLM2-135M model, loaded once (about 100 MB, CPU)."""
    from sandbox._models import LlamaModel

    model = LlamaModel(n_ctx=4096)
    yield model
    model.close()
