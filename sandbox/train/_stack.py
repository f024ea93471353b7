"""The training stack, imported only when training starts: the rest of the sandbox runs without it."""

from __future__ import annotations

import importlib
import os
from importlib import metadata

from sandbox.train._errors import INSTALL_HINT, TrainingStackMissing

STACK = ("torch", "transformers", "peft", "trl", "accelerate", "gguf")


def require_stack() -> None:
    """Import the training stack, or fail with one line saying what to install."""
    # Weights come from a local GGUF: never wait on a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in STACK:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise TrainingStackMissing(
                f"sandbox train needs the training stack ({', '.join(STACK)}); {name} is missing "
                f"({exc}). Install it with: {INSTALL_HINT}"
            ) from exc


def stack_versions() -> dict[str, str]:
    """The installed version of each package of the stack, for a training run's config."""
    return {name: metadata.version(name) for name in STACK}
