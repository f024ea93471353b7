"""LoRA adapters (llama.cpp's GGUF adapter files) on a loaded llama.cpp model.

llama.cpp loads an adapter against a model (``llama_adapter_lora_init``) and applies it per context
(``llama_set_adapters_lora``), so one adapter serves every context made from that model. It refuses
an adapter of another architecture or shape, but says why only in its log; and llama-cpp-python
0.3.36's ``Llama(lora_path=...)`` takes the NULL pointer it returns for a loaded adapter (a NULL
ctypes pointer is not ``None``), so the model would run without it. Here the log line becomes the
error: one line naming the adapter, the model and llama.cpp's reason.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.records import ModelFileError

# ggml.h's enum ggml_log_level (llama-cpp-python's _logger.py lists an older order).
GGML_LOG_LEVEL_ERROR = 4
GGML_LOG_LEVEL_CONT = 5


@contextlib.contextmanager
def llama_errors() -> Iterator[list[str]]:
    """The error lines llama.cpp logs inside the block (its other log lines are dropped)."""
    import llama_cpp
    from llama_cpp import _logger

    lines: list[str] = []
    last = [0]

    @llama_cpp.llama_log_callback
    def capture(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        level = last[0] if level == GGML_LOG_LEVEL_CONT else level
        last[0] = level
        if level == GGML_LOG_LEVEL_ERROR:
            lines.append(text.decode("utf-8", "replace").strip())

    llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def load_lora(llm: Any, path: str | Path) -> Any:
    """Load the adapter at ``path`` for ``llm``'s model and set it on ``llm``'s context; llama.cpp frees
    it with the model. Raises :class:`ModelFileError` when the file is missing or does not fit."""
    import llama_cpp

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"LoRA adapter not found: {path}")
    with llama_errors() as errors:
        adapter = llama_cpp.llama_adapter_lora_init(llm._model.model, str(path).encode("utf-8"))
    if not adapter:  # a NULL pointer
        reason = errors[-1].split(": ", 1)[-1] if errors else "llama.cpp refused it"
        raise ModelFileError(f"LoRA adapter {path} does not fit the model {llm.model_path}: {reason}")
    set_lora(llm._ctx.ctx, adapter)
    return adapter


def set_lora(ctx: Any, adapter: Any, scale: float = 1.0) -> None:
    """Apply a loaded adapter to one llama.cpp context."""
    import llama_cpp

    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(scale)
    if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales):
        raise ModelFileError("llama.cpp could not apply the LoRA adapter to its context")
