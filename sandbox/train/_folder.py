"""A training run folder, written so that a kill or a full disk loses nothing already there.

    OUT/config.json          written first: options, base model and data (with sha256), stack versions
    OUT/data.jsonl           the rows trained on, when they were made from a run folder
    OUT/checkpoints/step-N/  every --save-steps, at the last step and on Ctrl-C: the Trainer's own checkpoint
                             (the peft adapter, optimizer, scheduler, RNG and trainer state, which
                             ``--resume`` continues from), adapter.gguf for llama.cpp and metrics.jsonl
    OUT/adapter.gguf         the final adapter; OUT/adapter/ the same for transformers/peft
    OUT/model-f16.gguf       with --merge f16 (or model-q8_0.gguf)
    OUT/metrics.jsonl        one line per step: loss, tokens, tokens/s
    OUT/result.json          what the run did

Every file is written under a temporary name and renamed into place when complete, and a checkpoint
folder likewise (the Trainer writes its part into ``OUT/.trainer/``, and the whole folder is moved
into ``checkpoints/`` when complete); older checkpoints are removed only after a newer one is complete.
A write that fails (a full disk) removes its temporary file and raises :class:`CheckpointError`.
Opened to resume, the folder keeps what it holds and drops what a kill left half-written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.records import lock_folder
from sandbox.train._errors import CheckpointError, ResumeRefused

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
STAGING = ".trainer"  # where the Trainer writes a checkpoint before it is moved into checkpoints/
TRAINER_STATE = "trainer_state.json"  # in a checkpoint the Trainer can resume from
STEP_PREFIX = "step-"
RESULT = "result.json"
METRICS = "metrics.jsonl"


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` then rename it to ``path``; on failure ``path`` is as it was. A folder
    already at ``path`` is renamed aside first (a rename cannot replace a full folder) and removed
    once the new one is in place; a resume puts it back if a kill came in between."""
    temporary = path.with_name(f".{path.name}.tmp")
    old = path.with_name(f".{path.name}.old")
    try:
        write(temporary)
        _fsync(temporary)
        if temporary.is_dir() and path.is_dir():  # a folder cannot be renamed over a full one
            _remove(old)
            os.replace(path, old)
        os.replace(temporary, path)
        _fsync(path.parent)
        _remove(old)
    except OSError as exc:
        _remove(temporary)
        if old.exists() and not path.exists():
            os.replace(old, path)
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

    def open(self, *, overwrite: bool, resume: bool = False) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"--out {self.path} is a file; a training run is a folder")
        if resume:
            self._open_to_resume()
            return
        existing = self.path.exists() and any(self.path.iterdir())
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        if existing and not overwrite:
            self.close()
            raise CheckpointError(
                f"training run folder {self.path} is not empty; pass --resume to continue it, "
                "--overwrite to train again, or pick another --out"
            )
        if existing:
            for child in self.path.iterdir():
                _remove(child)

    def _open_to_resume(self) -> None:
        if not (self.path / CONFIG).is_file():
            raise ResumeRefused(
                f"nothing to resume in {self.path}: no {CONFIG} of a training run; train without --resume"
            )
        self._lock()
        # What a kill left half-written: the Trainer's staging folder and temporary files.
        _remove(self.path / STAGING)
        for folder in (self.path, self.path / CHECKPOINTS):
            for child in folder.iterdir() if folder.is_dir() else ():
                if child.name.startswith(".") and child.name.endswith(".tmp"):
                    _remove(child)
                elif child.name.startswith(".") and child.name.endswith(".old"):
                    kept = child.with_name(child.name[1 : -len(".old")])
                    _remove(child) if kept.exists() else os.replace(child, kept)
        self.checkpoints = self.found_checkpoints()

    def found_checkpoints(self) -> list[Path]:
        """The complete checkpoints in the folder, oldest first (a checkpoint folder is complete once
        it has its name)."""
        folder = self.path / CHECKPOINTS
        if not folder.is_dir():
            return []
        steps = [
            (int(child.name[len(STEP_PREFIX) :]), child)
            for child in folder.iterdir()
            if child.is_dir()
            and child.name.startswith(STEP_PREFIX)
            and child.name[len(STEP_PREFIX) :].isdigit()
        ]
        return [path for _, path in sorted(steps)]

    def resume_point(self) -> Path | None:
        """The newest checkpoint the Trainer can continue from (one with its trainer state)."""
        resumable = [path for path in self.checkpoints if (path / TRAINER_STATE).is_file()]
        return resumable[-1] if resumable else None

    @staticmethod
    def step_of(checkpoint: Path) -> int:
        return int(checkpoint.name[len(STEP_PREFIX) :])

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
        final = folder / f"{STEP_PREFIX}{step}"

        def fill(temporary: Path) -> None:
            _remove(temporary)
            temporary.mkdir()
            write(temporary)

        if final.exists():  # the same step saved again: the complete one stays
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
