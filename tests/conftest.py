"""Shared fixtures: the anyio backend, the repository root, the CLI, and one real model."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_openai_stub() -> None:
    """Load tests/fixtures/openai_stub.py once as the module ``openai_stub`` (the scripted
    OpenAI-compatible server), so test files share one copy with ``import openai_stub``."""
    spec = importlib.util.spec_from_file_location(
        "openai_stub", ROOT / "tests" / "fixtures" / "openai_stub.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["openai_stub"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)


_load_openai_stub()


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


def _default_model_path() -> Path:
    from sandbox.models import default_model_path

    return default_model_path()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` with the embedded model on a free loopback port."""
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(_default_model_path()),
        "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--verbose", "False",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as client:
            for _ in range(600):
                if process.poll() is not None:
                    pytest.fail(
                        f"llama_cpp.server exited {process.returncode}: {process.stderr.read()[-2000:]}"
                    )
                try:
                    if client.get(f"{url}/v1/models", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                threading.Event().wait(0.2)
            else:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
