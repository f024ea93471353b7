"""``sandbox loss``: score a trace file's next-token loss, optionally keeping the low-perplexity traces."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from sandbox._errors import ConfigError
from sandbox._loss import TraceLoss, TraceScorer
from sandbox._models import LlamaModel
from sandbox._records import iter_traces, write_trace


def run_loss(
    traces: Path,
    model_path: Path | None,
    out: Path | None,
    max_perplexity: float | None,
    keep: Path | None,
    *,
    n_ctx: int = 4096,
    n_gpu_layers: int = -1,
    lora: Path | None = None,
) -> list[TraceLoss]:
    """Stream the traces through the scorer, writing losses (and kept traces) as they are computed."""
    for target in (out, keep):
        if target is not None and target.resolve() == traces.resolve():
            raise ConfigError(f"{target} is the input file; write the results somewhere else")
    if next(iter_traces(traces), None) is None:  # a bad or empty file fails here, before the model loads
        raise ConfigError(f"{traces}: no traces in file")
    model = LlamaModel(model_path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, lora_path=lora)
    results: list[TraceLoss] = []
    with contextlib.ExitStack() as stack:
        losses = stack.enter_context(out.open("w", encoding="utf-8")) if out else None
        kept = stack.enter_context(keep.open("w", encoding="utf-8")) if keep else None
        scorer = stack.enter_context(TraceScorer(model).session())
        for trace in iter_traces(traces):
            result = scorer.score(trace)
            results.append(result)
            if losses is not None:
                losses.write(json.dumps(dataclasses.asdict(result)) + "\n")
            passes = (
                result.perplexity is not None
                and max_perplexity is not None
                and result.perplexity <= max_perplexity
            )
            if kept is not None and passes:
                write_trace(kept, trace)
    model.close()
    return results
