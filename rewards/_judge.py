"""The judge PRM: a model rates steps and traces, G-Eval style.

Every score is an expected value, never a sampled number. A question's prompt ends where the judge
writes its score ("Score: "); the judge's backend gives the log-probability of each option token
("0".."4" for the five HelpSteer attributes, "0"/"1" for a step) as the next token; a softmax
restricted to the options gives each option's probability, and the score is sum(p_i * value_i)
with value_i = i / 4 (HelpSteer's 0-4 scale mapped to [0, 1]) or i for a step. Deterministic: no
sampling anywhere.

The model is passed in (:class:`JudgeBackend`): ``sandbox.models.LlamaScorer`` runs a local GGUF
file with llama.cpp, and any backend that answers ``option_logprobs`` plugs in the same way. So
importing ``rewards`` loads no model library.

Prompts are versioned constants (:data:`PROMPT_VERSION`); the judge's ``version`` joins the prompt
version with the backend's model name and the start of its sha256, so every reward built on it names
exactly what scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rewards._cot import make_cot_reward
from rewards._process import make_process_reward
from rewards._types import RewardFn
from sandbox.records import Attributes, JudgePrompt, Step, Task, Trace, dumps

PROMPT_VERSION = "judge-2"  # 2: a written solution's steps are shown as numbered text
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


class JudgeBackend(Protocol):
    """What the judge needs from a model: the log-probability of each option as the next token after
    each prompt (a full-vocabulary log-softmax), plus the model's name and sha256 for versions."""

    name: str
    sha256: str

    def option_logprobs(
        self, prompts: Sequence[JudgePrompt], options: Sequence[str]
    ) -> list[list[float]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OptionScore:
    """One question's answer: the expected value, each option's probability, and the options' mass.

    ``mass`` is the probability the whole vocabulary gives the options; a small mass means the judge
    was not about to write a score there, so the expected value says little.
    """

    value: float
    probabilities: tuple[float, ...]
    mass: float


def expected_score(logprobs: Sequence[float], values: Sequence[float]) -> OptionScore:
    """A softmax over the options' log-probabilities only, then the probability-weighted value."""
    peak = max(logprobs)
    if peak == -math.inf:
        return OptionScore(0.0, tuple(1.0 / len(logprobs) for _ in logprobs), 0.0)
    weights = [math.exp(lp - peak) for lp in logprobs]
    total = math.fsum(weights)
    probabilities = tuple(w / total for w in weights)
    value = math.fsum(p * v for p, v in zip(probabilities, values, strict=True))
    mass = math.fsum(math.exp(lp) for lp in logprobs)
    return OptionScore(min(1.0, max(0.0, value)), probabilities, mass)


class JudgePRM:
    """A PRM whose grades are a model's expected scores; see the module docstring."""

    name = "judge-prm"

    def __init__(self, backend: JudgeBackend) -> None:
        self.backend = backend
        self.model_name = backend.name
        self.model_sha256 = backend.sha256
        self.version = f"{PROMPT_VERSION}+{self.model_name}@{self.model_sha256[:HASH_PREFIX]}"

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
        return self._ask([self.prompt(task, steps, question)], STEP_OPTIONS, (0.0, 1.0))[0]

    def attribute_scores(self, trace: Trace, task: Task) -> dict[str, OptionScore]:
        prompts = [
            self.prompt(task, trace.steps, f"{question} {ATTRIBUTE_SCALE}")
            for question in ATTRIBUTE_QUESTIONS.values()
        ]
        values = tuple(index / (len(ATTRIBUTE_OPTIONS) - 1) for index in range(len(ATTRIBUTE_OPTIONS)))
        scores = self._ask(prompts, ATTRIBUTE_OPTIONS, values)
        return dict(zip(ATTRIBUTE_QUESTIONS, scores, strict=True))

    def prompt(self, task: Task, steps: Sequence[Step], question: str) -> JudgePrompt:
        """The question the judge reads about ``steps`` of ``task``."""
        user = f"Task: {task.prompt}\n\n{_transcript(steps)}\n\n{question}"
        return JudgePrompt(system=SYSTEM_PROMPT, user=user, reply_prefix=SCORE_PREFIX)

    def close(self) -> None:
        """Close the backend (a backend that does not own its model leaves the model open)."""
        self.backend.close()

    def _ask(
        self, prompts: Sequence[JudgePrompt], options: Sequence[str], values: Sequence[float]
    ) -> list[OptionScore]:
        rows = self.backend.option_logprobs(prompts, options)
        return [expected_score(row, values) for row in rows]


def make_judge_rewards(backend: JudgeBackend) -> dict[str, RewardFn]:
    """``cot_judge`` and ``process_judge``: the CoT and process rewards with a judge on ``backend``."""
    judge = JudgePRM(backend)
    return {"cot_judge": make_cot_reward(judge), "process_judge": make_process_reward(judge)}


def _transcript(steps: Sequence[Step]) -> str:
    """The steps, numbered from 1, one paragraph each.

    A written solution (every step an answer, as ProcessBench's steps are) shows each step as its own
    text; in a transcript with tool calls, or on a step that also has a thought, an answer is
    labelled ``Answer:`` so the judge tells the final answer from the work before it.
    """
    with_calls = any(step.action != "answer" for step in steps)
    return "\n\n".join(
        f"Step {number}: {_step_text(step, label_answer=with_calls)}"
        for number, step in enumerate(steps, start=1)
    )


def _step_text(step: Step, *, label_answer: bool) -> str:
    thought = step.thought.strip()
    parts = [thought] if thought else []
    if step.action == "answer":
        answer = (step.answer or "").strip()
        parts.append(f"Answer: {answer}" if label_answer or thought else answer)
    elif step.call is not None:
        parts.append(f"Call {step.call.name} {dumps(step.call.arguments)}")
        if step.result is not None:
            parts.append(f"Result: {step.result.text[:MAX_RESULT_CHARS]}")
    else:
        parts.append(f"Broken call: {step.raw_text[:MAX_RESULT_CHARS]}")
    return " ".join(parts)
