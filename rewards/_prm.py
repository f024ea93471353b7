"""Process reward models: one protocol, and the rule PRM that needs no model.

A PRM grades a step given the steps before it (:meth:`ProcessRewardModel.grade_step`, in [0, 1]) and
rates a whole trace on the five HelpSteer attributes (:meth:`ProcessRewardModel.evaluate`). The CoT
and process rewards take any PRM, so a model-backed one plugs in beside :class:`RulePRM`.

Grading every step of a trace goes through :func:`grade_all`: a PRM that has a ``grade_steps(task,
steps)`` method grades the whole trace in one pass (the rule PRM does, in linear time); any other is
asked step by step, each time with a view of the steps before it (no copy), so the loop itself stays
linear in the number of steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Protocol, overload, runtime_checkable

from rewards._budget import check_depth, check_time
from rewards._outcome import judge_answer
from rewards._words import tokens
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


class StepsBefore(Sequence[Step]):
    """The first ``count`` steps of a list, as a read-only sequence that copies nothing."""

    def __init__(self, steps: Sequence[Step], count: int) -> None:
        self._steps = steps
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Step]: ...
    def __getitem__(self, index: int | slice) -> Step | Sequence[Step]:
        if isinstance(index, slice):
            return [self._steps[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        return self._steps[index % self._count]

    def __iter__(self) -> Iterator[Step]:
        for index in range(self._count):
            yield self._steps[index]


def grade_all(prm: ProcessRewardModel, task: Task, steps: Sequence[Step]) -> list[float]:
    """The PRM's grade of every step, each given the steps before it (see module doc)."""
    whole = getattr(prm, "grade_steps", None)
    if callable(whole):
        return list(whole(task, steps))
    grades = []
    for index, step in enumerate(steps):
        check_time(f"grading step {index}")
        grades.append(prm.grade_step(task, StepsBefore(steps, index), step))
    return grades


# Step grades.
BROKEN_CALL_GRADE = 0.0
REPEATED_STEP_GRADE = 0.0  # a loop earns nothing: no reward may pay for length
MODEL_ERROR_GRADE = 0.3
INFRASTRUCTURE_ERROR_GRADE = 0.5
GOOD_STEP_GRADE = 1.0
EMPTY_ANSWER_GRADE = 0.0
# Failures of the server or transport, not of the call the model wrote ("not_recorded": a live
# replay asked for a call that the recording lacks).
INFRASTRUCTURE_ERRORS = frozenset({"timeout", "server_crashed", "protocol_error", "not_recorded"})
NGRAM = 6  # tokens in the sequences that repetition is measured with
RESTATED_SHARE = 0.8  # a thought whose sequences occurred before at least this often restates them

# Attributes.
ANSWERED_WEIGHT = 0.5  # helpfulness: half for the answer, half for using the ideal tools
COMPLEXITY_SCALE = 2.0  # complexity passes 0.5 when an episode takes over twice the ideal steps
WORDS_PER_EXPECTED_WORD = 30  # answer budget: a one-word expected answer allows 30 words
DEFAULT_ANSWER_BUDGET_WORDS = 100  # answer budget when the task has no expected answer
THOUGHT_WORDS_PER_IDEAL_STEP = 100  # thought budget, per ideal step (ideal calls + the answer)
VERBOSITY_SCALE = 2.0  # the length term passes 0.5 when the text overruns its budget
CHARS_PER_WORD = 6  # text without spaces still counts: one word per this many characters


class RulePRM:
    """A PRM made of stated rules; no model, deterministic, linear in the trace's length.

    Step grades, first rule that applies:

    - broken call (action ``broken_call``, or no call recorded): 0.0
    - repeated step: 0.0. A step repeats when its call has the same tool and arguments as an earlier
      call whose result was not an infrastructure error (retrying after a timeout is not a loop), or
      when its thought restates earlier thoughts: it has at least one sequence of :data:`NGRAM` (6)
      tokens (the tokens of :mod:`rewards._words`), and at least :data:`RESTATED_SHARE` (80 %) of its
      6-token sequences occur in the thoughts of earlier steps
    - call whose result is an error the model caused (tool error, unknown tool): 0.3
    - call whose result is an infrastructure error (timeout, crashed server, protocol): 0.5, since
      it says nothing about the call
    - any other call (no error result; arguments were checked by the server): 1.0
    - answer: 1.0 if it has non-blank text, else 0.0

    Attributes, each clamped to [0, 1]:

    - helpfulness: 0.5 x (the final answer's worth) + 0.5 x (share of the ideal calls whose tool was
      called; 1.0 when no tool is needed). A non-blank answer is worth 1.0 up to its word budget (30
      words per word of the longest expected answer, 100 without one), falling to 0.0 at twice the
      budget: an answer buried in words helps nobody.
    - correctness: 1.0 / 0.0 by the outcome reward's verdict where it has one, else (no expected
      answer) the mean step grade, 0.0 for an episode with no steps
    - coherence: share of steps that are neither broken calls nor repeated steps (0.0 with no steps)
    - complexity: steps beyond the ideal number (ideal calls + 1 answer), over twice the ideal
      number: above 0.5 once an episode takes more than twice the ideal steps
    - verbosity: measured on every step's thought and the final answer together; the larger of two
      terms, each above 0.5 exactly when its budget is overrun:

      - length: their words over twice the budget, which is 100 words per ideal step plus the
        answer's budget (above). "10,000 words for 2 + 2" is 1.0; a one-sentence answer is near 0.
      - repetition: the share of their tokens that lie inside a sequence of 6 tokens that already
        occurred earlier in the text. A thought that repeats itself is slop however short:
        "This is a great example of how math can be used to solve problems", said ten times, covers
        90 % of its tokens. The threshold (over half) was chosen on the even rows of
        ProcessBench's solutions (real chain-of-thought, where formulas repeat naturally: 99 % are
        below 0.48); on the odd rows 1 solution of 150 is above it.

    Version 4 (was 3): correctness follows outcome version 4 (markup does not hide a negation or a
    rival alternative). Version 3 (was 2): repeated steps include restated thoughts and rank before
    error results, verbosity reads the thoughts too and counts repetition.
    """

    name = "rule-prm"
    version = "4"

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """Grade one step by the rules in the class docstring."""
        history = _History()
        for earlier in steps_so_far:
            history.add(earlier)
        return _grade(step, history)

    def grade_steps(self, task: Task, steps: Sequence[Step]) -> list[float]:
        """Every step's grade, each given the steps before it, in one pass."""
        return [grade for grade, _ in _walk(steps)]

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """Rate the trace by the rules in the class docstring."""
        walked = _walk(trace.steps)
        return Attributes(
            helpfulness=_helpfulness(trace, task),
            correctness=_correctness(trace, task, [grade for grade, _ in walked]),
            coherence=_coherence(trace.steps, [astray for _, astray in walked]),
            complexity=_complexity(trace.steps, task),
            verbosity=verbosity(trace, task),
        )


# --------------------------------------------------------------------------- steps


class _History:
    """What the steps so far did: the calls that count as made, and the token sequences thought."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str]] = set()
        self.sequences: set[tuple[str, ...]] = set()

    def add(self, step: Step) -> None:
        if step.action == "tool_call" and step.call is not None and not _infrastructure_failure(step):
            self.calls.add(_call_key(step.call, step.index))
        self.sequences.update(_sequences(tokens(step.thought)))

    def repeats(self, step: Step) -> bool:
        if (
            step.action == "tool_call"
            and step.call is not None
            and _call_key(step.call, step.index) in self.calls
        ):
            return True
        own = _sequences(tokens(step.thought))
        if not own:
            return False
        return sum(sequence in self.sequences for sequence in own) >= RESTATED_SHARE * len(own)


def _walk(steps: Sequence[Step]) -> list[tuple[float, bool]]:
    """Each step's grade, and whether it went astray (broken or repeated), in one pass."""
    history = _History()
    walked = []
    for step in steps:
        check_time(f"grading step {step.index}")
        grade = _grade(step, history)
        walked.append((grade, _is_broken(step) or history.repeats(step)))
        history.add(step)
    return walked


def _grade(step: Step, history: _History) -> float:
    if _is_broken(step):
        return BROKEN_CALL_GRADE
    if history.repeats(step):
        return REPEATED_STEP_GRADE
    if step.action == "answer":
        return GOOD_STEP_GRADE if (step.answer or "").strip() else EMPTY_ANSWER_GRADE
    if step.result is not None and step.result.is_error:
        return _error_grade(step.result.error_kind)
    return GOOD_STEP_GRADE


def _is_broken(step: Step) -> bool:
    return step.action == "broken_call" or (step.action == "tool_call" and step.call is None)


def _infrastructure_failure(step: Step) -> bool:
    return (
        step.result is not None and step.result.is_error and step.result.error_kind in INFRASTRUCTURE_ERRORS
    )


def _call_key(call: ToolCall, index: int) -> tuple[str, str]:
    """The call as a hashable key: its tool and its arguments' canonical JSON."""
    check_depth(call.arguments, f"the arguments of step {index}")
    return call.name, json.dumps(call.arguments, sort_keys=True, default=repr)


def _sequences(words: Sequence[str]) -> list[tuple[str, ...]]:
    return [tuple(words[start : start + NGRAM]) for start in range(len(words) - NGRAM + 1)]


def _error_grade(kind: str | None) -> float:
    return INFRASTRUCTURE_ERROR_GRADE if kind in INFRASTRUCTURE_ERRORS else MODEL_ERROR_GRADE


# --------------------------------------------------------------------------- attributes


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
    called: dict[str, int] = {}
    for step in trace.steps:
        if step.action == "tool_call" and step.call is not None:
            called[step.call.name] = called.get(step.call.name, 0) + 1
    covered = 0
    for ideal in task.ideal_calls:
        if called.get(ideal.name, 0) > 0:
            called[ideal.name] -= 1
            covered += 1
    return covered / len(task.ideal_calls)


def _correctness(trace: Trace, task: Task, grades: Sequence[float]) -> float:
    correct, _ = judge_answer(trace, task)
    if correct is not None:
        return float(correct)
    return _clamp(sum(grades) / len(grades)) if grades else 0.0


def _coherence(steps: Sequence[Step], astray: Sequence[bool]) -> float:
    if not steps:
        return 0.0
    return 1.0 - sum(astray) / len(steps)


def _complexity(steps: Sequence[Step], task: Task) -> float:
    ideal_steps = len(task.ideal_calls) + 1
    excess = max(0, len(steps) - ideal_steps)
    return _clamp(excess / (COMPLEXITY_SCALE * ideal_steps))


def verbosity(trace: Trace, task: Task) -> float:
    """The rule PRM's verbosity of a trace: the larger of its length and repetition terms (class doc)."""
    texts = [step.thought for step in trace.steps if step.thought] + [trace.final_answer or ""]
    words = sum(_word_count(text) for text in texts)
    length = words / (VERBOSITY_SCALE * (_thought_budget(task) + _answer_budget(task)))
    return _clamp(max(length, repeated_share([token for text in texts for token in tokens(text)])))


def repeated_share(words: Sequence[str]) -> float:
    """The share of ``words`` inside a sequence of :data:`NGRAM` words that occurred earlier in them."""
    seen: set[tuple[str, ...]] = set()
    covered_until = 0  # positions before this are covered by a repeated sequence
    covered = 0
    for start in range(len(words) - NGRAM + 1):
        sequence = tuple(words[start : start + NGRAM])
        if sequence in seen:
            end = start + NGRAM
            covered += end - max(start, covered_until)
            covered_until = end
        else:
            seen.add(sequence)
    return covered / len(words) if words else 0.0


def _thought_budget(task: Task) -> int:
    return THOUGHT_WORDS_PER_IDEAL_STEP * (len(task.ideal_calls) + 1)


def _answer_budget(task: Task) -> int:
    expected = task.acceptable_answers
    if not expected:
        return DEFAULT_ANSWER_BUDGET_WORDS
    return WORDS_PER_EXPECTED_WORD * max(1, max(len(answer.split()) for answer in expected))


def _word_count(text: str) -> int:
    return max(len(text.split()), len(text) // CHARS_PER_WORD)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
