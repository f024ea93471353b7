"""The training run folder loses nothing: a write that fails (a full disk, a file-size limit) leaves what
was there, and checkpoints appear whole or not at all (a first Ctrl-C and a full disk mid-training:
``test_resume.py``)."""

from __future__ import annotations

import errno
import resource
import signal
from pathlib import Path

import numpy as np
import pytest

from sandbox.train import CheckpointError
from sandbox.train._folder import TrainFolder, write_atomically, write_text
from sandbox.train._gguf import BaseModelShape, LoraPair, write_adapter

SHAPE = BaseModelShape("llama", 9, 3, 30, "test")


def _pairs(rank: int = 16) -> dict[str, LoraPair]:
    rng = np.random.default_rng(0)
    return {
        f"blk.{i}.ffn_up.weight": LoraPair(
            rng.normal(size=(rank, 576)).astype(np.float32), rng.normal(size=(1536, rank)).astype(np.float32)
        )
        for i in range(30)
    }


def _half_written(temporary: Path) -> None:
    temporary.write_text("sec")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_rewrite_keeps_the_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    write_text(target, "first\n")
    with pytest.raises(CheckpointError, match="No space left on device") as caught:
        write_atomically(target, _half_written)
    assert "\n" not in str(caught.value)
    assert target.read_text() == "first\n" and list(tmp_path.iterdir()) == [target]


def test_a_checkpoint_that_cannot_be_written_loses_no_earlier_one(tmp_path: Path) -> None:
    folder = TrainFolder(tmp_path, keep=2)
    first = folder.save_checkpoint(
        10, lambda path: write_adapter(path / "adapter.gguf", _pairs(), SHAPE, 32.0)
    )
    before = (first / "adapter.gguf").read_bytes()
    # A real write of the real GGUF writer that the kernel stops (a file-size limit: EFBIG, as ENOSPC would).
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(CheckpointError, match="could not write") as caught:
            folder.save_checkpoint(
                20, lambda path: write_adapter(path / "adapter.gguf", _pairs(), SHAPE, 32.0)
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert "\n" not in str(caught.value) and "intact" in str(caught.value)
    assert (first / "adapter.gguf").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-10"]
    assert folder.checkpoints == [first]


def test_only_the_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    folder = TrainFolder(tmp_path, keep=2)
    for step in (1, 2, 3):
        folder.save_checkpoint(step, lambda path: (path / "x").write_text("x"))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2", "step-3"]
