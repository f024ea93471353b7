"""`sandbox quantize` on the real embedded model: a new GGUF that loads and writes, and bad input that
leaves nothing behind."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.models import LlamaModel, ModelRequest, default_model_path, file_sha256
from sandbox.records import Message, Sampling

pytestmark = pytest.mark.model

Done = subprocess.CompletedProcess[str]


def _error_line(done: Done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_requantized_model_loads_and_writes(sandbox_cli: Callable[..., Done], tmp_path: Path) -> None:
    out = tmp_path / "smol-q4_0.gguf"
    done = sandbox_cli("quantize", "--type", "q4_0", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"GGUF"
    assert 0 < out.stat().st_size < default_model_path().stat().st_size  # Q4_0 packs tighter than Q4_1
    assert file_sha256(out) in done.stdout and "q4_0" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smol-q4_0.gguf"]  # no temporary file left
    model = LlamaModel(out, n_ctx=512)
    try:
        reply = model.complete(
            ModelRequest([Message(role="user", content="Say hi.")], Sampling(temperature=0.0, max_tokens=8))
        )
        assert reply.usage.completion_tokens > 0 and reply.text.strip()
        assert model.info.sha256 == file_sha256(out)
    finally:
        model.close()
    again = sandbox_cli("quantize", "--type", "q8_0", "-o", str(out))
    assert again.returncode == 2 and "--overwrite" in _error_line(again)
    assert file_sha256(out) in done.stdout  # the existing file is untouched


def test_bad_input_gets_one_line_and_leaves_nothing(sandbox_cli: Callable[..., Done], tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    missing = tmp_path / "nope.gguf"
    done = sandbox_cli("quantize", "--type", "q4_0", "--model", str(missing), "-o", str(out))
    assert done.returncode == 2 and _error_line(done) == f"error: model file not found: {missing}"
    done = sandbox_cli("quantize", "--type", "q3_z", "-o", str(out))
    assert done.returncode == 2 and "unknown quantization type 'q3_z'" in _error_line(done)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)  # the right magic, then nothing a model is made of
    done = sandbox_cli("quantize", "--type", "q4_0", "--model", str(broken), "-o", str(out))
    assert done.returncode == 2 and "could not quantize" in _error_line(done) and "header" in done.stderr
    done = sandbox_cli("quantize", "--type", "q4_0", "-o", str(tmp_path / "no-such-folder" / "x.gguf"))
    assert done.returncode == 2 and "no such folder" in _error_line(done)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.gguf"]
