"""Evaluating a token sequence through llama.cpp's C API, with logits only where they are wanted.

Ground floor, like the records: it imports nothing of the engine, so the loss scorer and the
rewards' judge model both use it. llama-cpp-python's high-level ``eval`` keeps logits of every
position only with ``logits_all`` (n_ctx x vocab floats); here each batch marks just the positions
whose next-token distribution the caller reads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def decode(
    llm: Any,
    tokens: Sequence[int],
    start: int,
    wanted: Collection[int],
    on_logits: Callable[[int, np.ndarray], None],
) -> None:
    """Evaluate ``tokens[start:]`` on sequence 0 of a ``llama_cpp.Llama`` after its cached ``tokens[:start]``.

    The KV cache past ``start`` is dropped first. For each position in ``wanted`` (all >= ``start``),
    ``on_logits(position, row)`` gets the logits predicting the token after it; ``row`` is a view
    into llama.cpp's buffer, valid only during the call.
    """
    import llama_cpp  # heavy: imported on use

    ctx = llm._ctx.ctx
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), 0, start, -1)
    n_vocab = llm.n_vocab()
    batch_size = llm.n_batch
    batch = llama_cpp.llama_batch_init(batch_size, 0, 1)
    try:
        for first in range(start, len(tokens), batch_size):
            chunk = range(first, min(first + batch_size, len(tokens)))
            for slot, position in enumerate(chunk):
                batch.token[slot] = tokens[position]
                batch.pos[slot] = position
                batch.n_seq_id[slot] = 1
                batch.seq_id[slot][0] = 0
                batch.logits[slot] = position in wanted
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode failed with status {status}")
            for slot, position in enumerate(chunk):
                if position in wanted:
                    on_logits(
                        position, np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, slot), (n_vocab,))
                    )
    finally:
        llama_cpp.llama_batch_free(batch)
