"""Monte Carlo step values, in the manner of Math-Shepherd (Wang et al. 2024, arXiv 2312.08935).

A step's value is its potential to reach the right answer: from the solution up to and including the
step, the policy model writes ``k`` short continuations, and the share of them whose answer matches
the task's expected answer (``answer_match: math``, the outcome reward's math-verify comparison) is
the step's grade, Math-Shepherd's *soft estimation*; a continuation's answer is its last
``\\boxed{}``, else its last number. A step that already states a ``\\boxed{}``
answer needs no continuation: its grade is 1.0 when that answer is right, else 0.0. A task without
an expected answer cannot be estimated: every step gets the neutral 0.5.

The model is passed in (:class:`Rollouts`): ``sandbox.models.PolicyRollouts`` runs the continuations
through ``BatchedLlamaModel``, so the ``k`` continuations of a step, and the steps of one solution,
share their prompt's KV cache. :meth:`MonteCarloPRM.grade_steps` asks for every step's continuations
at once. The five attributes are the rule PRM's: this PRM only grades steps.

Cost per solution: (steps without a boxed answer) x ``k`` continuations of at most the rollouts'
``max_tokens``. What it estimates is a value ("can the policy still get there?"), not whether the
step is correct: a right step the policy cannot finish from grades low, and a weak policy grades
every step low.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from rewards._budget import check_time
from rewards._math import _last_boxed
from rewards._outcome import answers_match
from rewards._prm import RulePRM
from sandbox.records import Attributes, Step, Task, Trace

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
NO_ESTIMATE = 0.5  # the grade of a step whose task has no expected answer


class Rollouts(Protocol):
    """What the Monte Carlo PRM needs from a policy model: ``k`` continuations of each partial
    solution (the problem, then the step texts so far), as text. ``version`` names the model and
    how it samples."""

    version: str

    def continuations(self, problem: str, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]: ...


class MonteCarloPRM:
    """Step grades from the policy's own continuations; see the module docstring."""

    name = "mc-prm"

    def __init__(self, rollouts: Rollouts, *, k: int = 4) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self.rollouts = rollouts
        self.k = k
        self.version = f"1+k{k}+{rollouts.version}"
        self._rules = RulePRM()

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """The share of ``k`` continuations after ``step`` that reach the expected answer."""
        return self.grade_steps(task, [*steps_so_far, step])[-1]

    def grade_steps(self, task: Task, steps: Sequence[Step]) -> list[float]:
        """Every step's value; all continuations are asked for in one call, so they batch together."""
        expected = task.acceptable_answers
        if not expected:
            return [NO_ESTIMATE for _ in steps]
        texts = [step_text(step) for step in steps]
        grades: list[float | None] = []
        for text in texts:
            stated = _last_boxed(text)
            grades.append(None if stated is None else float(self._right(stated, expected)))
        open_steps = [index for index, grade in enumerate(grades) if grade is None]
        if open_steps:
            prefixes = [texts[: index + 1] for index in open_steps]
            samples = self.rollouts.continuations(task.prompt, prefixes, self.k)
            for index, continuations in zip(open_steps, samples, strict=True):
                check_time(f"grading step {index}")
                grades[index] = sum(self._right(text, expected) for text in continuations) / self.k
        return [grade if grade is not None else NO_ESTIMATE for grade in grades]

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The rule PRM's attributes (this PRM grades steps only)."""
        return self._rules.evaluate(trace, task)

    @staticmethod
    def _right(text: str, expected: Sequence[str]) -> bool:
        candidate = final_answer(text)
        return candidate is not None and answers_match(candidate, expected, "math")


def final_answer(text: str) -> str | None:
    """The answer a continuation reaches: its last ``\\boxed{}``, else its last number (a small policy
    seldom boxes), else None."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def step_text(step: Step) -> str:
    """What a step wrote: its thought and its answer (a written solution's step is its answer)."""
    return "\n".join(part for part in (step.thought.strip(), (step.answer or "").strip()) if part)
