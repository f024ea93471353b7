"""LoRA weights as llama.cpp files, written with the ``gguf`` package's writer and tensor-name map.

An adapter GGUF, as llama.cpp's ``llama_adapter_lora_init`` reads it (the conventions of llama.cpp's
``convert_lora_to_gguf.py``): ``general.type = "adapter"``, ``adapter.type = "lora"``,
``adapter.lora.alpha``, ``general.architecture`` the base model's, and per adapted weight ``W`` of
the base, ``<gguf name of W>.lora_a`` (rank x in) and ``.lora_b`` (out x rank) in F32, so that
llama.cpp adds ``alpha / rank * B @ A`` to ``W`` as peft does.

llama.cpp's ``llama`` architecture stores ``attn_q`` and ``attn_k`` with the rows of each head
permuted (its converter permutes Hugging Face's rotary halves into interleaved pairs), and
transformers undoes that permutation when it reads such a GGUF. A LoRA trained on the model as
transformers sees it changes rows in Hugging Face's order, so ``B`` of ``q_proj``/``k_proj`` gets
llama.cpp's permutation again before it is written (``A`` acts on the input and is unchanged).

``merge`` writes a full model: the base GGUF's metadata and tensors, each adapted weight replaced by
``W + alpha / rank * B @ A`` from the dequantized base, stored as F16 or Q8_0 (the other tensors keep
their stored bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

MergeType = Literal["f16", "q8_0"]
# Architectures whose q/k rows transformers un-permutes when reading a GGUF (its LlamaTensorProcessor).
PERMUTED_ARCHITECTURES = ("llama",)
PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class BaseModelShape:
    """What the adapter file needs to know of its base GGUF."""

    architecture: str
    n_head: int
    n_head_kv: int
    n_layers: int
    name: str


@dataclass(frozen=True)
class LoraPair:
    a: np.ndarray  # (rank, in)
    b: np.ndarray  # (out, rank), rows in llama.cpp's order


def base_model_shape(path: Path) -> BaseModelShape:
    import gguf

    fields = gguf.GGUFReader(path).fields
    arch = str(fields["general.architecture"].contents())

    def number(key: str, default: int = 0) -> int:
        return int(fields[key].contents()) if key in fields else default

    n_head = number(f"{arch}.attention.head_count")
    name = str(fields["general.name"].contents()) if "general.name" in fields else path.stem
    return BaseModelShape(
        arch, n_head, number(f"{arch}.attention.head_count_kv", n_head), number(f"{arch}.block_count"), name
    )


def permute_rows(weight: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's q/k row order: within each head, the two rotary halves interleaved."""
    heads = n_head_kv if n_head_kv != n_head else n_head
    half = weight.shape[0] // heads // 2
    return weight.reshape(heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def lora_pairs(state: Mapping[str, Any], shape: BaseModelShape) -> dict[str, LoraPair]:
    """peft's LoRA state dict (``get_peft_model_state_dict``) by the base GGUF's tensor names."""
    import gguf

    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == shape.architecture)
    names = gguf.get_tensor_name_map(arch, shape.n_layers)
    pairs: dict[str, LoraPair] = {}
    for key, tensor in state.items():
        if ".lora_A." not in key:
            continue
        hf_name = key.removeprefix(PEFT_PREFIX).replace(".lora_A.weight", ".weight")
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        if name is None:
            raise ValueError(f"no {shape.architecture} GGUF tensor for {hf_name}")
        a = _array(tensor)
        b = _array(state[key.replace(".lora_A.", ".lora_B.")])
        if shape.architecture in PERMUTED_ARCHITECTURES and ".attn_q." in name:
            b = permute_rows(b, shape.n_head, shape.n_head)
        elif shape.architecture in PERMUTED_ARCHITECTURES and ".attn_k." in name:
            b = permute_rows(b, shape.n_head, shape.n_head_kv)
        pairs[name] = LoraPair(np.ascontiguousarray(a), np.ascontiguousarray(b))
    return pairs


def _array(tensor: Any) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor.astype(np.float32)
    return tensor.detach().to("cpu").float().numpy()


def write_adapter(path: Path, pairs: Mapping[str, LoraPair], shape: BaseModelShape, alpha: float) -> None:
    """An adapter GGUF for llama.cpp (see the module doc), written to ``path``."""
    import gguf

    writer = gguf.GGUFWriter(path, shape.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(f"{shape.name} LoRA")
    for name, pair in sorted(pairs.items()):
        writer.add_tensor(f"{name}.lora_a", pair.a)
        writer.add_tensor(f"{name}.lora_b", pair.b)
    _finish(writer)


def merge(base: Path, pairs: Mapping[str, LoraPair], alpha: float, out: Path, kind: MergeType) -> None:
    """The base GGUF with every adapted weight merged, stored as ``kind`` (see the module doc)."""
    import gguf

    reader = gguf.GGUFReader(base)
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(out, arch)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if kind == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(int(file_type))
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    for tensor in reader.tensors:
        pair = pairs.get(tensor.name)
        if pair is None:
            writer.add_tensor(
                tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type
            )
            continue
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        weight += (alpha / pair.a.shape[0]) * (pair.b @ pair.a)
        stored, qtype = _store(weight, kind)
        writer.add_tensor(tensor.name, stored, raw_shape=stored.shape, raw_dtype=qtype)
    _finish(writer)


def _store(weight: np.ndarray, kind: MergeType) -> tuple[np.ndarray, Any]:
    import gguf

    if kind == "f16":
        return weight.astype(np.float16), gguf.GGMLQuantizationType.F16
    return gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0


def _finish(writer: Any) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
