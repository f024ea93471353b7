"""The verifier PRM: a step's equations checked exactly, and a repeated step worth nothing.

A step's text (its thought, its answer, and the string arguments of its call) is read for equations by
:func:`rewards._equations.check_equations` (exact rational arithmetic; its docstring lists every form
read and every one skipped). Grades, first rule that applies:

- a step that repeats an earlier one: :data:`REPEATED_STEP_GRADE` (0.0). The process reward sums the
  step grades, so a loop must add nothing to it, not even the neutral grade of a step without
  equations. A step repeats an earlier one when
  - its call (tool name and arguments, compared as canonical JSON) is an earlier step's call whose
    result was not an infrastructure failure (retrying after a timeout is not a loop), or
  - its thought restates an earlier thought: the normalized texts (lower case, every run of other
    characters than letters and digits one space) are equal, or the thought has at least
    :data:`MIN_RESTATED_TRIGRAMS` distinct word 3-grams and at least :data:`RESTATED_SHARE` of them
    occur in the earlier thoughts. An empty thought restates nothing;
- a false equation: 0.0;
- only true equations: 1.0;
- no checkable equation: :data:`NO_EQUATION_GRADE` (0.5), neutral: no evidence either way, and a
  step-error threshold of 0.5 (``grade < 0.5`` is an error) reads it as not wrong.

Attributes come from :class:`RulePRM`, with correctness capped by the share of equation-bearing steps
whose equations all hold.

Cost is linear in the steps: :meth:`VerifierPRM.grade_step` keeps an index of the steps before the one
it grades (their calls, thoughts and 3-grams) and extends it when the next call passes a longer prefix
of the same step objects, as the process reward does; any other call rebuilds it from ``steps_so_far``.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from rewards._budget import declare
from rewards._cot import COT_CATCHES, COT_MAXIMUM, make_cot_reward
from rewards._equations import Equation, check_equations
from rewards._prm import INFRASTRUCTURE_ERRORS, RulePRM
from rewards._process import make_process_reward
from sandbox.records import Attributes, Step, Task, ToolCall, Trace

NO_EQUATION_GRADE = 0.5
FALSE_EQUATION_GRADE = 0.0
TRUE_EQUATIONS_GRADE = 1.0
REPEATED_STEP_GRADE = 0.0
RESTATED_SHARE = 0.9
MIN_RESTATED_TRIGRAMS = 5

_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def step_text(step: Step) -> str:
    """The text of a step the verifier reads: thought, answer, and its call's string arguments."""
    parts = [step.thought, step.answer or ""]
    if step.call is not None:
        parts += [value for value in _strings(step.call.arguments)]
    if not step.thought and step.answer is None and step.call is None:
        parts.append(step.raw_text)
    return "\n".join(part for part in parts if part)


def step_grade(equations: Sequence[Equation]) -> float:
    """0.0 with a false equation, 1.0 with only true ones, 0.5 with none."""
    if not equations:
        return NO_EQUATION_GRADE
    return TRUE_EQUATIONS_GRADE if all(eq.holds for eq in equations) else FALSE_EQUATION_GRADE


class VerifierPRM:
    """A PRM that checks a step's arithmetic and gives repeats nothing; see the module docstring."""

    name = "verifier-prm"
    # 3: LaTeX, labels, per-units, unit definitions, percent labels, ordinals; repeated steps grade 0.0
    version = "3"

    def __init__(self) -> None:
        self._rules = RulePRM()
        self._local = threading.local()  # one step index per thread

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """0.0 for a repeated step or a false equation, 1.0 with only true ones, 0.5 with none."""
        return _grade(step, self._history(steps_so_far))

    def grade_steps(self, task: Task, steps: Sequence[Step]) -> list[float]:
        """Every step's grade, each given the steps before it, in one pass."""
        history, grades = _History(), []
        for step in steps:
            grades.append(_grade(step, history))
            history.add(step)
        return grades

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The rule PRM's attributes, correctness capped by the share of steps with sound arithmetic."""
        attributes = self._rules.evaluate(trace, task)
        checked = [check_equations(step_text(step)) for step in trace.steps]
        bearing = [equations for equations in checked if equations]
        if not bearing:
            return attributes
        sound = sum(all(eq.holds for eq in equations) for equations in bearing) / len(bearing)
        return attributes.model_copy(update={"correctness": min(attributes.correctness, sound)})

    def _history(self, steps_so_far: Sequence[Step]) -> _History:
        history: _History | None = getattr(self._local, "history", None)
        if history is None or not history.is_prefix_of(steps_so_far):
            history = self._local.history = _History()
        history.extend(steps_so_far)
        return history


class _History:
    """What the steps seen so far said and called, for the repeat rules."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.calls: set[str] = set()
        self.thoughts: set[str] = set()
        self.trigrams: set[tuple[str, ...]] = set()

    def is_prefix_of(self, steps: Sequence[Step]) -> bool:
        """Whether ``steps`` starts with the steps indexed here (checked at both ends of the index)."""
        seen = len(self.steps)
        if seen == 0 or len(steps) < seen:
            return seen == 0
        return steps[0] is self.steps[0] and steps[seen - 1] is self.steps[-1]

    def extend(self, steps: Sequence[Step]) -> None:
        """Index the steps past the ones already indexed."""
        for index in range(len(self.steps), len(steps)):
            self.add(steps[index])

    def add(self, step: Step) -> None:
        self.steps.append(step)
        if step.call is not None and not _infrastructure_failure(step):
            self.calls.add(_call_key(step.call))
        words = _words(step.thought)
        if words:
            self.thoughts.add(" ".join(words))
            self.trigrams |= _trigrams(words)

    def repeats(self, step: Step) -> bool:
        """The repeat rules of the module docstring."""
        if step.call is not None and _call_key(step.call) in self.calls:
            return True
        words = _words(step.thought)
        if not words:
            return False
        if " ".join(words) in self.thoughts:
            return True
        trigrams = _trigrams(words)
        restated = len(trigrams & self.trigrams)
        return len(trigrams) >= MIN_RESTATED_TRIGRAMS and restated >= RESTATED_SHARE * len(trigrams)


def _grade(step: Step, history: _History) -> float:
    if history.repeats(step):
        return REPEATED_STEP_GRADE
    return step_grade(check_equations(step_text(step)))


def _infrastructure_failure(step: Step) -> bool:
    result = step.result
    return result is not None and result.is_error and result.error_kind in INFRASTRUCTURE_ERRORS


def _call_key(call: ToolCall) -> str:
    arguments = json.dumps(call.arguments, sort_keys=True, separators=(",", ":"), default=str)
    return f"{call.name}\n{arguments}"


def _words(text: str) -> list[str]:
    return _NOT_ALPHANUMERIC.sub(" ", text.lower()).split()


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[index : index + 3]) for index in range(len(words) - 2)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


cot_verifier = make_cot_reward(VerifierPRM())
process_verifier = make_process_reward(VerifierPRM())


def _verifier_maximum(trace: Trace, task: Task) -> float:
    """The most the verifier's process reward pays a trace: 1.0 for each step with an equation to
    check, the neutral 0.5 for each without one, and 1.0 for the right answer."""
    checked = [bool(check_equations(step_text(step))) for step in trace.steps]
    steps = math.fsum(TRUE_EQUATIONS_GRADE if has else NO_EQUATION_GRADE for has in checked)
    return steps + 1.0


# What ``sandbox gauntlet`` checks: the attacks each catches, and its maximum.
declare(cot_verifier, catches=COT_CATCHES, maximum=lambda trace, task: COT_MAXIMUM)
declare(
    process_verifier,
    catches=frozenset({"loop", "guess", "hedge", "distractor", "empty_answer"}),
    maximum=_verifier_maximum,
)
