"""Shared fixtures: the anyio backend, the repository root, the CLI, and one real model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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
    from sandbox.models import LlamaModel

    model = LlamaModel(n_ctx=4096)
    yield model
    model.close()


@pytest.fixture(scope="session")
def sandbox_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs ``python -m sandbox ARGS`` from the repository root, as a user would."""

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        return subprocess.run(
            [sys.executable, "-m", "sandbox", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
