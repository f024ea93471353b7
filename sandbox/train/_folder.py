"""A training run folder, written so that a kill or a full disk loses nothing already there.

    OUT/config.json          written first: options, base model and data (with sha256), stack versions
    OUT/data.jsonl           the rows trained on, when they were made from a run folder
    OUT/checkpoints/step-N/  adapter.gguf (llama.cpp) and adapter/ (peft), every --save-steps and on Ctrl-C
    OUT/adapter.gguf         the final adapter; OUT/adapter/ the same for transformers/peft
    OUT/model-f16.gguf       with --merge f16 (or model-q8_0.gguf)
    OUT/metrics.jsonl        one line per step: loss, tokens, tokens/s
    OUT/result.json          what the run did

Every file is written under a temporary name and renamed into place when complete, and a checkpoint
folder likewise; older checkpoints are removed only after a newer one is complete. A write that
fails (a full disk) removes its temporary file and raises :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.records import lock_folder
from sandbox.train._errors import CheckpointError

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
RESULT = "result.json"
METRICS = "metrics.jsonl"


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` then rename it to ``path``; on failure ``path`` is as it was."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)
    except OSError as exc:
        _remove(temporary)
        raise CheckpointError(
            f"could not write {path}: {exc.strerror or exc}; what was there is intact"
        ) from exc


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _fsync(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _fsync(child)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass
class TrainFolder:
    """The run folder of one training run, held by this process (a file lock) while it trains."""

    path: Path
    keep: int = 2  # checkpoints kept
    checkpoints: list[Path] = field(default_factory=list)
    _lock_fd: int | None = None

    def open(self, *, overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"--out {self.path} is a file; a training run is a folder")
        existing = self.path.exists() and any(self.path.iterdir())
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        if existing and not overwrite:
            self.close()
            raise CheckpointError(
                f"training run folder {self.path} is not empty; pass --overwrite to train again, "
                "or pick another --out"
            )
        if existing:
            for child in self.path.iterdir():
                _remove(child)

    def _lock(self) -> None:
        self._lock_fd = lock_folder(self.path)
        if self._lock_fd is None:
            raise CheckpointError(
                f"another sandbox train is writing to {self.path}; wait for it or stop it"
            ) from None

    def save_checkpoint(self, step: int, write: Callable[[Path], None]) -> Path:
        """A complete ``checkpoints/step-N`` folder (``write`` fills it), then the oldest beyond ``keep``
        are removed."""
        folder = self.path / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        final = folder / f"step-{step}"

        def fill(temporary: Path) -> None:
            _remove(temporary)
            temporary.mkdir()
            write(temporary)

        if final.exists():  # the same step saved again (Ctrl-C right on a save step)
            return final
        write_atomically(final, fill)
        self.checkpoints.append(final)
        while len(self.checkpoints) > self.keep:
            _remove(self.checkpoints.pop(0))
        return final

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
