"""Re-quantize a GGUF model with llama.cpp's own quantizer (``llama_model_quantize``).

The weight type decides how well a model batches on a CPU: ggml's CPU backend repacks some types
(Q4_0, IQ4_NL, ...) into interleaved blocks for matrix kernels that take several rows at once, and
not others (Q4_1, the embedded model's type). On this project's 2-core x86 machine, 8 sequences of
1,000 tokens of context decode at 1.36–1.44× the rate of one in Q4_1 and 1.60–2.10× in Q4_0 (README,
Benchmarks). Quantizing a file that is already quantized loses accuracy: measure the cost with
``sandbox loss`` on your own traces before a long generation run (on the README's first 1,024 tokens:
Q4_1 4.22 nats, Q8_0 4.21, IQ4_NL 4.37, Q4_0 4.46).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from sandbox.models._files import check_model_file, default_model_path, default_threads, file_sha256
from sandbox.records import ModelFileError, SandboxError

# The types offered, by their llama.cpp names; each maps to a LLAMA_FTYPE_MOSTLY_* constant.
TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "f16")


@dataclass(frozen=True)
class Quantized:
    path: Path
    type: str
    size: int
    sha256: str
    source_size: int


def quantize(
    source: str | Path | None,
    out: str | Path,
    type_name: str,
    *,
    overwrite: bool = False,
    threads: int | None = None,
) -> Quantized:
    """Write ``source`` (default: the embedded model) quantized to ``type_name`` at ``out``.

    The new file is written beside ``out`` under a temporary name and renamed when llama.cpp is done,
    so a failed or interrupted run leaves nothing at ``out`` and no partial file behind.
    """
    import llama_cpp

    if type_name not in TYPES:
        raise SandboxError(f"unknown quantization type {type_name!r}; choose one of {', '.join(TYPES)}")
    source = check_model_file(source if source is not None else default_model_path())
    out = Path(out)
    if out.exists() and not overwrite:
        raise SandboxError(f"{out} exists; pass --overwrite to replace it")
    if out.resolve() == source.resolve():
        raise SandboxError("the output must be another file than the model it is made from")
    if not out.parent.is_dir():
        raise SandboxError(f"no such folder: {out.parent}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{type_name.upper()}")
    params.allow_requantize = True
    params.nthread = threads or default_threads()
    # llama.cpp creates this file itself, with the permissions of any new file.
    temporary = str(out.with_name(f".{out.name}.{os.getpid()}.part"))
    # llama.cpp reports through llama-cpp-python's log callback, which writes to sys.stderr: a line per
    # tensor. Kept, and only its failure line is shown, in the error.
    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log):
            status = llama_cpp.llama_model_quantize(str(source).encode(), temporary.encode(), params)
        if status != 0:
            failure = [line for line in log.getvalue().splitlines() if "fail" in line]
            reason = failure[0].split(": ", 1)[-1] if failure else f"status {status}"
            raise ModelFileError(f"llama.cpp could not quantize {source} to {type_name}: {reason}")
        check_model_file(temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return Quantized(out, type_name, out.stat().st_size, file_sha256(out), source.stat().st_size)
