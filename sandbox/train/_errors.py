"""What ``sandbox train`` tells a person to fix, each a :class:`~sandbox.SandboxError` (one line, exit 2).

SandboxError
├── TrainingStackMissing    the ``train`` extra (torch, transformers, peft, trl, ...) is not installed
├── TrainDataError          a dataset of the wrong shape, or rows the chat template cannot render
├── CheckpointError         a checkpoint or adapter could not be written (a full disk); the
│                           earlier ones are intact
└── ResumeRefused           ``--resume`` of a run folder that holds no run, or with options that
                            change what is trained
"""

from __future__ import annotations

from sandbox.records import SandboxError

INSTALL_HINT = "pip install 'agent-sandbox[train]'"


class TrainingStackMissing(SandboxError):
    """The optional training stack is not importable."""


class TrainDataError(SandboxError):
    """Training data that cannot be trained on as given; the message names the file and row."""


class CheckpointError(SandboxError):
    """A file of the training run could not be written; nothing written before it was touched."""


class ResumeRefused(SandboxError):
    """A ``--resume`` that cannot continue the run in its folder; the message names what differs."""
