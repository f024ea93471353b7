"""The seed's pre-training loop as a score: the next-token loss of a trace's assistant turns.

For the token sequence of a rendered trace, inputs = tokens[:-1] and labels = tokens[1:]; the loss is
the mean cross-entropy (nats) of the labels that belong to the assistant's own text, read from the
model's logits. Use: filter a dataset by perplexity (how surprising the trace is to a model).

How it is computed, and why not with llama-cpp-python's high-level API:

* One forward pass per trace through the C API (``llama_decode``), asking for logits only at the
  positions that predict an assistant token. ``logits_all=True`` would hold n_ctx x vocab floats
  (805 MB for SmolLM2 at 4096) and ``echo`` logprobs are off by one on models without a BOS token.
* Traces are scored in order and the KV cache keeps the previous trace: the prompt that traces of a
  task share (system prompt, tools, user prompt) is evaluated once, only the differing suffix after.
* The trace is tokenized piece by piece (template text, then each assistant message's content), the
  way the episode loop fed it to the model, so assistant tokens are exactly the content's tokens.
  Only the content is scored, not the template's end-of-turn marker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.models import LlamaModel, common_prefix, decode
from sandbox.records import ConfigError, Message, Trace, iter_traces, write_trace
from sandbox.turns import format_from_label


@dataclass(frozen=True)
class TraceLoss:
    """The next-token loss of one trace; ``loss`` is None when it could not be computed (``reason``)."""

    trace_id: str
    task_id: str
    tokens: int  # assistant tokens scored
    loss: float | None  # mean cross-entropy, nats per token
    perplexity: float | None
    total_tokens: int = 0
    evaluated_tokens: int = 0  # tokens run through the model for this trace (the rest came from the cache)
    reason: str = ""


@dataclass(frozen=True)
class TokenizedTrace:
    tokens: list[int]
    assistant: list[bool]  # per token: part of an assistant message's content


class TemplateError(ValueError):
    """The chat template does not render a transcript as a growing prefix, so turns can't be located."""


def tokenize_trace(
    model: LlamaModel, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None
) -> TokenizedTrace:
    """Tokens of the rendered transcript, and which of them are the assistant's content; ``tools``
    go to the chat template's own ``tools`` argument (a trace of a native turn format)."""
    pieces: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message.role != "assistant":
            continue
        before = model.render(messages[:index], add_generation_prompt=True, tools=tools) if index else ""
        after = model.render(messages[: index + 1], add_generation_prompt=False, tools=tools)
        if not before.startswith(done) or not after.startswith(before + message.content):
            raise TemplateError(f"the chat template does not render message {index} after the ones before it")
        pieces += [(before[len(done) :], False), (message.content, True)]
        done = before + message.content
    full = model.render(messages, add_generation_prompt=False, tools=tools)
    if not full.startswith(done):
        raise TemplateError("the chat template does not render the transcript as a prefix of itself")
    pieces.append((full[len(done) :], False))
    tokens: list[int] = []
    assistant: list[bool] = []
    for text, is_assistant in pieces:
        if not text:
            continue
        ids = model.tokenize(text) if not tokens else model.tokenize_piece(text)
        tokens += ids
        assistant += [is_assistant] * len(ids)
    return TokenizedTrace(tokens, assistant)


class TraceScorer:
    """Next-token losses of traces on one model, reusing the KV cache between consecutive traces.

    It drives llama.cpp directly, so while it scores the model's generation cache is not valid:
    score inside :meth:`session`, which holds the model and leaves its cache empty afterwards.
    """

    def __init__(self, model: LlamaModel) -> None:
        self.model = model
        self._cached: list[int] = []

    @contextlib.contextmanager
    def session(self) -> Iterator[TraceScorer]:
        with self.model.exclusive():
            try:
                yield self
            finally:
                self.model.forget_cache()
                self._cached = []

    def score_all(self, traces: Iterable[Trace]) -> list[TraceLoss]:
        with self.session():
            return [self.score(trace) for trace in traces]

    def score(self, trace: Trace) -> TraceLoss:
        """The loss of one trace; call inside :meth:`session`."""
        try:
            # A native trace was prompted with the tools in the template's own argument: so it is scored.
            tools = format_from_label(trace.format).template_tools(trace.tools)
            tokenized = tokenize_trace(self.model, trace.messages, tools)
        except (TemplateError, ConfigError) as exc:
            return TraceLoss(trace.id, trace.task_id, 0, None, None, reason=str(exc))
        tokens, mask = tokenized.tokens, tokenized.assistant
        targets = [p for p in range(1, len(tokens)) if mask[p]]
        if not targets:
            return TraceLoss(
                trace.id, trace.task_id, 0, None, None, len(tokens), reason="no assistant tokens"
            )
        if len(tokens) > self.model.n_ctx:
            return TraceLoss(
                trace.id,
                trace.task_id,
                len(targets),
                None,
                None,
                len(tokens),
                reason=f"trace of {len(tokens)} tokens exceeds the context of {self.model.n_ctx}",
            )
        logprobs, evaluated = self.token_logprobs(tokens, targets)
        loss = -math.fsum(logprobs) / len(logprobs)
        return TraceLoss(trace.id, trace.task_id, len(targets), loss, math.exp(loss), len(tokens), evaluated)

    def token_logprobs(self, tokens: Sequence[int], targets: Sequence[int]) -> tuple[list[float], int]:
        """log p(tokens[t] | tokens[:t]) for each t in ``targets``, and how many tokens were evaluated."""
        # Keep what the cache shares with this sequence, but never past the first logit we need:
        # logits of cached positions are gone.
        keep = min(common_prefix(self._cached, tokens), targets[0] - 1, len(tokens) - 1)
        wanted = {t - 1: t for t in targets}  # logits at position p predict token p + 1
        found: dict[int, float] = {}

        def read(position: int, row: np.ndarray) -> None:
            found[position] = _logprob(row, tokens[wanted[position]])

        decode(self.model._llm, tokens, keep, wanted, read)
        self._cached = list(tokens)
        return [found[t - 1] for t in targets], len(tokens) - keep


def _logprob(logits: np.ndarray, token: int) -> float:
    row = logits.astype(np.float64)
    peak = row.max()
    return float(row[token] - peak - math.log(np.exp(row - peak).sum()))


def loss_file(
    traces: Path,
    model_path: Path | None,
    out: Path | None,
    max_perplexity: float | None,
    keep: Path | None,
    *,
    n_ctx: int = 4096,
    n_gpu_layers: int = -1,
    lora: Path | None = None,
    threads: int | None = None,
) -> list[TraceLoss]:
    """Stream the traces through the scorer, writing losses (and kept traces) as they are computed;
    the model runs on ``threads`` llama.cpp threads (None: every core)."""
    for target in (out, keep):
        if target is not None and target.resolve() == traces.resolve():
            raise ConfigError(f"{target} is the input file; write the results somewhere else")
    if threads is not None and threads < 1:
        raise ConfigError("--threads must be at least 1")
    if next(iter_traces(traces), None) is None:  # a bad or empty file fails here, before the model loads
        raise ConfigError(f"{traces}: no traces in file")
    model = LlamaModel(model_path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=threads, lora_path=lora)
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
