"""Process reward models: one protocol, and the rule PRM that needs no model.

A PRM grades a step given the steps before it (:meth:`ProcessRewardModel.grade_step`, in [0, 1]) and
rates a whole trace on the five HelpSteer attributes (:meth:`ProcessRewardModel.evaluate`). The CoT
and process rewards take any PRM, so a model-backed one plugs in beside :class:`RulePRM`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rewards._outcome import judge_answer
from sandbox.records import Attributes, Step, Task, ToolCall, Trace


@runtime_checkable
class ProcessRewardModel(Protocol):
    """Grades steps and rates traces. ``name`` and ``version`` go into the version of every reward
    built on it, so a changed grader never passes for the old one."""

    name: str
    version: str

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """How good ``step`` is, given the steps before it: 0.0 (wrong) to 1.0 (right)."""
        ...

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The trace's helpfulness, correctness, coherence, complexity and verbosity, each in [0, 1]."""
        ...


def prm_label(prm: ProcessRewardModel) -> str:
    """``name@version``, for the versions of rewards built on a PRM."""
    return f"{prm.name}@{prm.version}"


# Step grades.
BROKEN_CALL_GRADE = 0.0
MODEL_ERROR_GRADE = 0.3
REPEATED_CALL_GRADE = 0.0  # a loop earns nothing: the process total must not pay for length
INFRASTRUCTURE_ERROR_GRADE = 0.5
GOOD_STEP_GRADE = 1.0
EMPTY_ANSWER_GRADE = 0.0
# Failures of the server or transport, not of the call the model wrote ("not_recorded": a live
# replay asked for a call that the recording lacks).
INFRASTRUCTURE_ERRORS = frozenset({"timeout", "server_crashed", "protocol_error", "not_recorded"})

# Attributes.
ANSWERED_WEIGHT = 0.5  # helpfulness: half for the answer, half for using the ideal tools
COMPLEXITY_SCALE = 2.0  # complexity passes 0.5 when an episode takes over twice the ideal steps
WORDS_PER_EXPECTED_WORD = 30  # verbosity budget: a one-word expected answer allows 30 words
DEFAULT_ANSWER_BUDGET_WORDS = 100  # verbosity budget when the task has no expected answer
VERBOSITY_SCALE = 2.0  # verbosity passes 0.5 when the answer overruns its budget
CHARS_PER_WORD = 6  # text without spaces still counts: one word per this many characters


class RulePRM:
    """A PRM made of stated rules; no model, deterministic.

    Step grades, first rule that applies:

    - broken call (action ``broken_call``, or no call recorded): 0.0
    - call whose result is an error the model caused (tool error, unknown tool): 0.3
    - call whose result is an infrastructure error (timeout, crashed server, protocol): 0.5, since
      it says nothing about the call
    - call repeating an earlier call with the same tool and arguments (a loop): 0.0
    - any other call (no error result; arguments were checked by the server): 1.0
    - answer: 1.0 if it has non-blank text, else 0.0

    Attributes, each clamped to [0, 1]:

    - helpfulness: 0.5 x (the final answer's worth) + 0.5 x (share of the ideal calls whose tool was
      called; 1.0 when no tool is needed). A non-blank answer is worth 1.0 up to its word budget (see
      verbosity), falling to 0.0 at twice the budget: an answer buried in words helps nobody. So a
      right answer in 10,000 words to "2 + 2?" is no more than half helpful.
    - correctness: 1.0 / 0.0 by the outcome reward's verdict where it has one, else (no expected
      answer) the mean step grade, 0.0 for an episode with no steps
    - coherence: share of steps that are neither broken calls nor repeated calls (0.0 with no steps)
    - complexity: steps beyond the ideal number (ideal calls + 1 answer), over twice the ideal
      number: above 0.5 once an episode takes more than twice the ideal steps
    - verbosity: words of the final answer over twice its budget (30 words per word of the longest
      expected answer, 100 without one): above 0.5 once the answer overruns its budget. Thoughts
      are not counted.
    """

    name = "rule-prm"
    version = "2"  # 2: a repeated identical call grades 0.0 (it was 0.5)

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """Grade one step by the rules in the class docstring."""
        if step.action == "answer":
            return GOOD_STEP_GRADE if (step.answer or "").strip() else EMPTY_ANSWER_GRADE
        if step.action == "broken_call" or step.call is None:
            return BROKEN_CALL_GRADE
        if step.result is not None and step.result.is_error:
            return _error_grade(step.result.error_kind)
        if _repeats(step.call, steps_so_far):
            return REPEATED_CALL_GRADE
        return GOOD_STEP_GRADE

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """Rate the trace by the rules in the class docstring."""
        return Attributes(
            helpfulness=_helpfulness(trace, task),
            correctness=self._correctness(trace, task),
            coherence=_coherence(trace.steps),
            complexity=_complexity(trace.steps, task),
            verbosity=_verbosity(trace.final_answer, task),
        )

    def _correctness(self, trace: Trace, task: Task) -> float:
        correct, _ = judge_answer(trace, task)
        if correct is not None:
            return float(correct)
        grades = [self.grade_step(task, trace.steps[:index], step) for index, step in enumerate(trace.steps)]
        return _clamp(sum(grades) / len(grades)) if grades else 0.0


def _error_grade(kind: str | None) -> float:
    return INFRASTRUCTURE_ERROR_GRADE if kind in INFRASTRUCTURE_ERRORS else MODEL_ERROR_GRADE


def _repeats(call: ToolCall, steps_so_far: Sequence[Step]) -> bool:
    return any(_same_call(call, earlier.call) for earlier in steps_so_far if earlier.action == "tool_call")


def _same_call(call: ToolCall, earlier: ToolCall | None) -> bool:
    return earlier is not None and earlier.name == call.name and earlier.arguments == call.arguments


def _helpfulness(trace: Trace, task: Task) -> float:
    answer_worth = _answer_worth(trace.final_answer, task)
    return _clamp(ANSWERED_WEIGHT * answer_worth + (1.0 - ANSWERED_WEIGHT) * _ideal_coverage(trace, task))


def _answer_worth(answer: str | None, task: Task) -> float:
    """1.0 for a non-blank answer within its word budget, falling to 0.0 at twice the budget."""
    if answer is None or not answer.strip():
        return 0.0
    return _clamp(2.0 - _word_count(answer) / _answer_budget(task))


def _ideal_coverage(trace: Trace, task: Task) -> float:
    """Share of the ideal calls whose tool the trace called (each call counts once)."""
    if not task.ideal_calls:
        return 1.0
    called = [step.call.name for step in trace.steps if step.action == "tool_call" and step.call is not None]
    covered = 0
    for ideal in task.ideal_calls:
        if ideal.name in called:
            called.remove(ideal.name)
            covered += 1
    return covered / len(task.ideal_calls)


def _coherence(steps: Sequence[Step]) -> float:
    if not steps:
        return 0.0
    astray = [_is_broken(step) or _is_repeat(steps[:index], step) for index, step in enumerate(steps)]
    return 1.0 - sum(astray) / len(steps)


def _is_broken(step: Step) -> bool:
    return step.action == "broken_call" or (step.action == "tool_call" and step.call is None)


def _is_repeat(steps_so_far: Sequence[Step], step: Step) -> bool:
    return step.action == "tool_call" and step.call is not None and _repeats(step.call, steps_so_far)


def _complexity(steps: Sequence[Step], task: Task) -> float:
    ideal_steps = len(task.ideal_calls) + 1
    excess = max(0, len(steps) - ideal_steps)
    return _clamp(excess / (COMPLEXITY_SCALE * ideal_steps))


def _verbosity(answer: str | None, task: Task) -> float:
    if answer is None:
        return 0.0
    return _clamp(_word_count(answer) / (VERBOSITY_SCALE * _answer_budget(task)))


def _answer_budget(task: Task) -> int:
    expected = task.acceptable_answers
    if not expected:
        return DEFAULT_ANSWER_BUDGET_WORDS
    return WORDS_PER_EXPECTED_WORD * max(1, max(len(answer.split()) for answer in expected))


def _word_count(text: str) -> int:
    return max(len(text.split()), len(text) // CHARS_PER_WORD)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
