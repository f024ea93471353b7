"""A local GGUF model as a judge's backend: log-probabilities of single-token options as the next token.

The judge (``rewards.JudgePRM``) asks a question and reads how likely the model is to answer each
option ("0".."4") as its next token: one forward pass per question, no sampling. This backend renders
the question through the GGUF's chat template, evaluates it with llama.cpp's C API (``llama_decode``,
logits only at the last position; no ``logits_all``) and returns each option token's log-probability
under the full vocabulary.

Cost: questions about one trace share everything up to the question. The KV cache keeps the tokens
of the previous question and each new one evaluates only what follows the longest shared prefix
(rolled back with ``llama_memory_seq_rm``).

Given a ``llama_cpp.Llama`` it does not own, the scorer assumes nothing about the cache between calls
(another user may have decoded) and marks the Llama's own cache as unknown after each call. It takes
no lock: the caller must not run the same Llama from two threads at once. No flash attention: with
it, a prefix from the cache and the same prefix evaluated anew sum slightly differently, and a grade
must not depend on what was graded before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.models._decode import common_prefix, decode
from sandbox.models._files import chat_formatter, context_tokens, file_sha256, load_llama
from sandbox.records import JudgeError, JudgePrompt

# Stands for the user message while the template renders, so the template's own text can be cut out.
_SLOT = "\x00judge-content\x00"


class LlamaScorer:
    """Next-token option log-probabilities from a GGUF model run by llama.cpp (see the module doc)."""

    def __init__(self, model: str | Path | Any, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        self._owned = isinstance(model, str | Path)
        self._llm: Any = (
            load_llama(model, n_ctx=n_ctx, n_threads=n_threads, flash_attn=False, what="judge model")
            if isinstance(model, str | Path)
            else model
        )
        path = Path(self._llm.model_path)
        self.name = str(self._llm.metadata.get("general.name", path.stem))
        self.sha256 = file_sha256(path)
        self._formatter = chat_formatter(self._llm)
        self._cached: list[int] = []
        self._last_row: np.ndarray | None = None  # the logits after ``_cached``, all of it
        self._option_ids: dict[tuple[str, ...], list[int]] = {}

    def option_logprobs(self, prompts: Sequence[JudgePrompt], options: Sequence[str]) -> list[list[float]]:
        """For each prompt, each option's log-probability as the next token (full-vocabulary softmax)."""
        ids = self.option_ids(options)
        rows = self._run([self.prompt_tokens(prompt) for prompt in prompts])
        return [_log_softmax_at(row, ids) for row in rows]

    def next_token_logits(self, prompt: JudgePrompt) -> np.ndarray:
        """The logits after ``prompt`` (a copy), by the same cached forward pass the scores use."""
        return self._run([self.prompt_tokens(prompt)])[0]

    def option_ids(self, options: Sequence[str]) -> list[int]:
        """The token of each option; an option that is not one token cannot be scored this way."""
        key = tuple(options)
        if key not in self._option_ids:
            self._option_ids[key] = [self._single_token(option) for option in options]
        return self._option_ids[key]

    def segments(self, prompt: JudgePrompt) -> tuple[str, str, str]:
        """The prompt as (template before, the question's content, template after, with the reply's start).

        The middle part came from a model, a tool or a task file: it is tokenized as plain text, so a
        literal ``<|im_end|>`` in a trace cannot become the model's control token.
        """
        if self._formatter is None:
            return f"{prompt.system}\n\n", prompt.user, f"\n\n{prompt.reply_prefix}"
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": _SLOT}]
        head, _, tail = (self._formatter(messages=messages).prompt + prompt.reply_prefix).partition(_SLOT)
        return head, prompt.user, tail

    def prompt_text(self, prompt: JudgePrompt) -> str:
        """The full text the model reads for one question, ending where it writes its answer."""
        return "".join(self.segments(prompt))

    def prompt_tokens(self, prompt: JudgePrompt) -> list[int]:
        head, content, tail = self.segments(prompt)
        return (
            context_tokens(self._llm, head)
            + self._llm.tokenize(content.encode("utf-8"), add_bos=False, special=False)
            + self._llm.tokenize(tail.encode("utf-8"), add_bos=False, special=True)
        )

    def close(self) -> None:
        """Free the model if the scorer loaded it."""
        if self._owned:
            self._llm.close()

    # -- internals -------------------------------------------------------------------------

    def _single_token(self, option: str) -> int:
        tokens = self._llm.tokenize(option.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) != 1:
            raise JudgeError(
                f"score option {option!r} is {len(tokens)} tokens for {self.name}, not one; the judge "
                "reads one token's probability per option, so use a model whose tokenizer has "
                "single-digit tokens"
            )
        return tokens[0]

    def _run(self, sequences: Sequence[list[int]]) -> list[np.ndarray]:
        """The last position's logits of each token sequence, each after one (cached) forward pass."""
        if not self._owned:
            self._cached, self._last_row = [], None  # someone else may have used the cache since
        try:
            return [self._last_logits(tokens) for tokens in sequences]
        finally:
            if not self._owned:
                self._llm.n_tokens = 0  # the Llama's own notion of its cache is now wrong

    def _last_logits(self, tokens: list[int]) -> np.ndarray:
        if len(tokens) > self._llm.n_ctx():
            raise JudgeError(
                f"judge prompt of {len(tokens)} tokens exceeds the judge's context of {self._llm.n_ctx()}; "
                "load the judge with a larger n_ctx"
            )
        if tokens == self._cached and self._last_row is not None:
            return self._last_row.copy()  # the same question again: the same logits, not a re-run
        keep = min(common_prefix(self._cached, tokens), len(tokens) - 1)
        last: list[np.ndarray] = []
        try:
            decode(self._llm, tokens, keep, {len(tokens) - 1}, lambda _, row: last.append(row.copy()))
        except BaseException:
            self._cached, self._last_row = [], None  # the cache holds an unknown part of this sequence
            raise
        self._cached, self._last_row = list(tokens), last[0].copy()
        return last[0]


def _log_softmax_at(logits: np.ndarray, ids: Sequence[int]) -> list[float]:
    row = np.asarray(logits, dtype=np.float64)
    peak = row.max()
    log_total = peak + math.log(float(np.exp(row - peak).sum()))
    return [float(row[i] - log_total) for i in ids]
