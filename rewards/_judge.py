"""The judge PRM: a local GGUF model rates steps and traces, G-Eval style.

Every score is an expected value, never a sampled number. The prompt ends where the judge writes its
score ("Score: "); one forward pass gives the next-token logits there; a softmax restricted to the
option tokens ("0".."4" for the five HelpSteer attributes, "0"/"1" for a step) gives each option's
probability, and the score is sum(p_i * value_i) with value_i = i / 4 (HelpSteer's 0-4 scale mapped
to [0, 1]) or i for a step. Deterministic: no sampling anywhere.

Prompts are versioned constants (:data:`PROMPT_VERSION`); the judge's ``version`` joins the prompt
version with the model's name and the start of its file's sha256, so every reward built on it names
exactly what scored.

Cost: the five attribute questions share the transcript. The judge keeps the tokens in the KV cache
and, for each new prompt, evaluates only what follows the longest prefix it shares with the previous
one (rolled back with ``llama_memory_seq_rm``); step grades of one trace likewise reuse the steps
before. llama-cpp-python's high-level API is not used: its logprobs need ``logits_all`` (n_ctx x
vocab floats) and it would sample. ``llama_cpp`` is imported only when a judge is made, so importing
``rewards`` stays light.

Given a ``llama_cpp.Llama`` it does not own, the judge assumes nothing about the cache between calls
(another user may have decoded) and marks the Llama's own cache as unknown after each call. It takes
no lock: the caller must not run the same Llama from two threads at once.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewards._cot import make_cot_reward
from rewards._process import make_process_reward
from rewards._types import RewardFn
from sandbox.models._decode import common_prefix, decode
from sandbox.records._errors import ModelFileError, SandboxError
from sandbox.records._records import Attributes, Step, Task, Trace, dumps

PROMPT_VERSION = "judge-1"
ATTRIBUTE_OPTIONS = ("0", "1", "2", "3", "4")
STEP_OPTIONS = ("0", "1")
HASH_PREFIX = 12
MAX_RESULT_CHARS = 400  # a tool result shown to the judge is cut to this many characters

SYSTEM_PROMPT = (
    "You are a strict grader of an assistant's work. You read a task and the assistant's steps, "
    "then answer one question with a single digit."
)
ATTRIBUTE_QUESTIONS = {
    "helpfulness": "How helpful is the response to the task overall?",
    "correctness": "How correct is the response: does it include all pertinent facts without errors?",
    "coherence": "How coherent is the response: is it consistent and clearly expressed?",
    "complexity": (
        "How complex is the response: how much intellectual depth did writing it need, from basic "
        "language competency (0) to deep domain expertise (4)?"
    ),
    "verbosity": "How verbose is the response: how much detail does it include, relative to what was asked?",
}
ATTRIBUTE_SCALE = "Answer with one digit from 0 (not at all) to 4 (completely)."
STEP_QUESTION = (
    "Is step {number} correct, given the task and the steps before it? Check every calculation. "
    "Answer 1 if it is correct, 0 if it contains an error."
)
SCORE_PREFIX = "Score: "


class JudgeError(SandboxError):
    """A judge model that cannot be used as asked (its score options are not single tokens)."""


@dataclass(frozen=True)
class OptionScore:
    """One question's answer: the expected value, each option's probability, and the options' mass.

    ``mass`` is the probability the whole vocabulary gives the options; a small mass means the judge
    was not about to write a score there, so the expected value says little.
    """

    value: float
    probabilities: tuple[float, ...]
    mass: float


def expected_score(logits: np.ndarray, option_ids: Sequence[int], values: Sequence[float]) -> OptionScore:
    """Softmax over the option tokens' logits only, then the probability-weighted value."""
    row = np.asarray(logits, dtype=np.float64)
    chosen = row[list(option_ids)]
    peak = chosen.max()
    weights = np.exp(chosen - peak)
    probabilities = weights / weights.sum()
    value = float(np.dot(probabilities, np.asarray(values, dtype=np.float64)))
    full_peak = row.max()
    log_total = full_peak + math.log(float(np.exp(row - full_peak).sum()))
    mass = float(np.exp(chosen - log_total).sum())
    return OptionScore(min(1.0, max(0.0, value)), tuple(float(p) for p in probabilities), mass)


class JudgePRM:
    """A PRM whose grades are a local model's expected scores; see the module docstring."""

    name = "judge-prm"

    def __init__(self, model: str | Path | Any, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        self._llm, self._owned = _load(model, n_ctx, n_threads)
        path = Path(self._llm.model_path)
        self.model_name = str(self._llm.metadata.get("general.name", path.stem))
        self.model_sha256 = _sha256(path)
        self.version = f"{PROMPT_VERSION}+{self.model_name}@{self.model_sha256[:HASH_PREFIX]}"
        self._attribute_ids = self._option_ids(ATTRIBUTE_OPTIONS)
        self._step_ids = self._option_ids(STEP_OPTIONS)
        self._cached: list[int] = []
        template = self._llm.metadata.get("tokenizer.chat_template")
        self._formatter = _formatter(self._llm, template) if template else None

    # -- the protocol ----------------------------------------------------------------------

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """P(correct) of ``step``: the expected value over "0" (wrong) and "1" (right)."""
        return self.step_score(task, steps_so_far, step).value

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The five attributes, each the expected 0-4 score divided by 4."""
        return Attributes(**{name: score.value for name, score in self.attribute_scores(trace, task).items()})

    # -- scores with their distributions ---------------------------------------------------

    def step_score(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> OptionScore:
        steps = [*steps_so_far, step]
        question = STEP_QUESTION.format(number=len(steps))
        return self._ask([self._segments(task, steps, question)], self._step_ids, (0.0, 1.0))[0]

    def attribute_scores(self, trace: Trace, task: Task) -> dict[str, OptionScore]:
        prompts = [
            self._segments(task, trace.steps, f"{question} {ATTRIBUTE_SCALE}")
            for question in ATTRIBUTE_QUESTIONS.values()
        ]
        values = tuple(index / (len(ATTRIBUTE_OPTIONS) - 1) for index in range(len(ATTRIBUTE_OPTIONS)))
        scores = self._ask(prompts, self._attribute_ids, values)
        return dict(zip(ATTRIBUTE_QUESTIONS, scores, strict=True))

    def next_token_logits(self, prompt: str) -> np.ndarray:
        """The logits after ``prompt`` (a copy), by the same cached forward pass the scores use."""
        return self._run([self._tokens(prompt)])[0]

    def prompt_text(self, task: Task, steps: Sequence[Step], question: str) -> str:
        """The full text the judge reads for one question, ending where it writes its score."""
        return self._prompt(task, steps, question)

    @property
    def attribute_option_ids(self) -> tuple[int, ...]:
        return tuple(self._attribute_ids)

    def close(self) -> None:
        """Free the model if the judge loaded it."""
        if self._owned:
            self._llm.close()

    # -- internals -------------------------------------------------------------------------

    def _option_ids(self, options: Sequence[str]) -> list[int]:
        ids = []
        for option in options:
            tokens = self._llm.tokenize(option.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) != 1:
                raise JudgeError(
                    f"score option {option!r} is {len(tokens)} tokens for {self.model_name}, not one; "
                    "the judge reads one token's probability per option, so use a model whose tokenizer "
                    "has single-digit tokens"
                )
            ids.append(tokens[0])
        return ids

    def _prompt(self, task: Task, steps: Sequence[Step], question: str) -> str:
        return "".join(self._segments(task, steps, question))

    def _segments(self, task: Task, steps: Sequence[Step], question: str) -> tuple[str, str, str]:
        """The prompt as (template before, the task and transcript, template after).

        The middle part came from a model, a tool or a task file: it is tokenized as plain text, so
        a literal ``<|im_end|>`` in a trace cannot become the model's control token.
        """
        user = f"Task: {task.prompt}\n\n{_transcript(steps)}\n\n{question}"
        if self._formatter is None:
            return f"{SYSTEM_PROMPT}\n\n", user, f"\n\n{SCORE_PREFIX}"
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": _SLOT}]
        head, _, tail = (self._formatter(messages=messages).prompt + SCORE_PREFIX).partition(_SLOT)
        return head, user, tail

    def _tokens(self, prompt: str) -> list[int]:
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def _segment_tokens(self, segments: tuple[str, str, str]) -> list[int]:
        head, content, tail = segments
        return (
            self._llm.tokenize(head.encode("utf-8"), add_bos=True, special=True)
            + self._llm.tokenize(content.encode("utf-8"), add_bos=False, special=False)
            + self._llm.tokenize(tail.encode("utf-8"), add_bos=False, special=True)
        )

    def _ask(
        self, prompts: Sequence[tuple[str, str, str]], option_ids: Sequence[int], values: Sequence[float]
    ) -> list[OptionScore]:
        rows = self._run([self._segment_tokens(prompt) for prompt in prompts])
        return [expected_score(row, option_ids, values) for row in rows]

    def _run(self, sequences: Sequence[list[int]]) -> list[np.ndarray]:
        """The last position's logits of each token sequence, each after one (cached) forward pass."""
        if not self._owned:
            self._cached = []  # someone else may have used the cache since our last call
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
        keep = min(common_prefix(self._cached, tokens), len(tokens) - 1)
        last: list[np.ndarray] = []
        try:
            decode(self._llm, tokens, keep, {len(tokens) - 1}, lambda _, row: last.append(row.copy()))
        except BaseException:
            self._cached = []  # the cache holds an unknown part of this sequence
            raise
        self._cached = list(tokens)
        return last[0]


def make_judge_rewards(model_path: str | Path) -> dict[str, RewardFn]:
    """``cot_judge`` and ``process_judge``: the CoT and process rewards with a judge on ``model_path``."""
    judge = JudgePRM(model_path)
    return {"cot_judge": make_cot_reward(judge), "process_judge": make_process_reward(judge)}


def _transcript(steps: Sequence[Step]) -> str:
    return "\n".join(f"Step {number}: {_step_text(step)}" for number, step in enumerate(steps, start=1))


def _step_text(step: Step) -> str:
    parts = [step.thought.strip()] if step.thought.strip() else []
    if step.action == "answer":
        parts.append(f"Answer: {step.answer or ''}")
    elif step.call is not None:
        parts.append(f"Call {step.call.name} {dumps(step.call.arguments)}")
        if step.result is not None:
            parts.append(f"Result: {step.result.text[:MAX_RESULT_CHARS]}")
    else:
        parts.append(f"Broken call: {step.raw_text[:MAX_RESULT_CHARS]}")
    return " ".join(parts)


def _load(model: str | Path | Any, n_ctx: int, n_threads: int | None) -> tuple[Any, bool]:
    if not isinstance(model, str | Path):
        return model, False
    from llama_cpp import Llama  # heavy: imported only when a judge is made

    path = Path(model)
    if not path.is_file():
        raise ModelFileError(f"judge model file not found: {path}")
    try:
        # Every core, as the engine. No flash attention: with it, a prefix taken from the KV cache and
        # the same prefix evaluated anew give slightly different sums, and a grade must not depend on
        # what the judge graded before.
        threads = n_threads or len(os.sched_getaffinity(0))
        llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=False,
            n_gpu_layers=-1,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"llama.cpp could not load the judge model {path}: {exc}") from exc
    return llm, True


def _formatter(llm: Any, template: str) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
    bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


# Stands for the user message while the template renders, so the template's own text can be cut out.
_SLOT = "\x00judge-content\x00"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
