"""The base model for training, read from its GGUF by transformers.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=name)``), dequantizing every
tensor to float32: training starts from the quantized model's values (the embedded model's Q4_1),
which are exactly the weights llama.cpp serves the adapter on. It also marks such a model as
GGUF-quantized (``hf_quantizer``, ``is_quantized``, ``config.quantization_config``), and with that
mark ``save_pretrained`` and TRL's trainers refuse it as a quantized model; the weights are plain
tensors by then, so the mark is cleared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "bf16", "fp32"]


@dataclass(frozen=True)
class Placement:
    device: Literal["cpu", "cuda"]
    precision: Literal["bf16", "fp32"]


def placement(device: Device, precision: Precision) -> Placement:
    """CUDA when torch sees a GPU (or when asked), else the CPU; bf16 where the hardware has it."""
    import torch

    chosen: Literal["cpu", "cuda"] = (
        "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    if precision != "auto":
        return Placement(chosen, precision)
    if chosen == "cuda":
        return Placement(chosen, "bf16" if torch.cuda.is_bf16_supported() else "fp32")
    return Placement(chosen, "bf16" if _cpu_has_bf16() else "fp32")


def _cpu_has_bf16() -> bool:
    """bf16 pays on a CPU with native bf16 dot products (AVX512-BF16, AMX); elsewhere it is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def load_base(path: Path) -> tuple[Any, Any]:
    """The model (float32, GGUF mark cleared) and its tokenizer, both from the GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    clear_gguf_mark(model)
    return model, tokenizer


def clear_gguf_mark(model: Any) -> None:
    """Make a dequantized GGUF model an ordinary float model for savers and trainers."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
