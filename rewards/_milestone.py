"""The milestone PRM: a tool step earns its grade by progress, and a minefield ends the reward.

For an agent on real tools the honest step grade is progress, in the manner of Apple's ToolSandbox
(milestones and minefields), but over the MCP servers' own state as the episode recorded it:

- A task's **milestones** (``Task.milestones``; when it declares none, one per ideal call and one per
  ``expected_state`` check) are what a right episode reaches: an ideal call matched (the BFCL
  checker, :func:`rewards._bfcl.check_call`, against the tool's schema, and, where the ideal call
  lists a ``result``, the call's recorded result holding it: :func:`rewards._bfcl.check_result`),
  a fact (text, compared casefolded) appearing in a tool result, or a state check
  (:mod:`rewards._state`) holding of the state recorded after the step (``Step.state``). Only a
  call that did not fail can reach one.
- A step earns 1.0 when it reaches at least one milestone not reached by an earlier step, else 0.0.
  A repeated step (the same call again, or any step after the milestone it meets was reached) earns
  nothing, so a loop is paid once. An answer step earns 1.0 when every milestone was reached before
  it (the work was done before it was reported), else nothing; whether the answer is right is the
  outcome's to pay.
- A **minefield** (``Task.minefields``: a forbidden call, matched like an ideal call, or a
  forbidden state seen in any step's snapshot) sets every step's grade to 0.0, and the process
  reward built on this PRM to its minimum (see :meth:`MilestonePRM.minefield`).

So under ``process`` (sum of step grades plus the outcome) a clean episode earns one per milestone
plus one for answering after them and its outcome, a looping one the milestones it reached before
looping, a guess without tools only its outcome, and one that steps on a minefield 0.
Attributes (:meth:`evaluate`) are the rule PRM's.

:class:`ToolAwarePRM` is the default step grader of ``process`` and ``process_mean``: the milestone
PRM for tool tasks (a task with servers and milestones, ideal calls or state checks), the rule PRM
for the others (math, no-tool questions).
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards._bfcl import check_call, step_produces, tool_schema
from rewards._budget import check_time
from rewards._prm import ProcessRewardModel, RulePRM, grade_all, prm_label
from rewards._state import check_state, describe_check
from sandbox.records import Attributes, IdealCall, Milestone, Minefield, Step, Task, ToolSpec, Trace

REACHED_GRADE = 1.0
NO_PROGRESS_GRADE = 0.0


def task_milestones(task: Task) -> list[Milestone]:
    """The task's milestones: as declared, or one per ideal call and per expected state check."""
    if task.milestones:
        return list(task.milestones)
    return [Milestone(call=call) for call in task.ideal_calls] + [
        Milestone(state=check) for check in task.expected_state
    ]


def is_tool_task(task: Task) -> bool:
    """Whether ``task`` is graded by progress: it has servers and milestones, ideal calls or state checks."""
    return bool(task.servers) and bool(task.milestones or task.ideal_calls or task.expected_state)


class MilestonePRM:
    """Grades tool steps by milestones reached for the first time; a minefield zeroes them (module doc)."""

    name = "milestone-prm"
    version = "2"  # 2: an answer after every milestone earns 1.0

    def __init__(self) -> None:
        self._rules = RulePRM()

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """Grade one step given the steps before it (the whole prefix is walked: linear per step)."""
        return self.grade_steps(task, [*steps_so_far, step])[-1]

    def grade_steps(self, task: Task, steps: Sequence[Step], tools: Sequence[ToolSpec] = ()) -> list[float]:
        """Every step's grade in one pass. ``tools``: the offered tools, whose schemas the call
        matching checks (without them each call is checked against its own arguments' names)."""
        if self.minefield(task, steps, tools) is not None:
            return [NO_PROGRESS_GRADE] * len(steps)
        milestones = task_milestones(task)
        reached: set[int] = set()
        grades = []
        for step in steps:
            check_time(f"grading step {step.index}")
            new = {
                number
                for number, milestone in enumerate(milestones)
                if number not in reached and _reaches(milestone, step, tools)
            }
            reached |= new
            finished = step.action == "answer" and len(reached) == len(milestones) > 0
            grades.append(REACHED_GRADE if new or finished else NO_PROGRESS_GRADE)
        return grades

    def grade_trace(self, trace: Trace, task: Task) -> list[float]:
        """Every step's grade, the calls matched against the trace's own tool schemas."""
        return self.grade_steps(task, trace.steps, trace.tools)

    def minefield(self, task: Task, steps: Sequence[Step], tools: Sequence[ToolSpec] = ()) -> str | None:
        """The first minefield a step stepped on, in words, or None."""
        for step in steps:
            for mine in task.minefields:
                if _trips(mine, step, tools):
                    return f"step {step.index} {_describe_mine(mine)}"
        return None

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The rule PRM's attributes (see :class:`rewards.RulePRM`)."""
        return self._rules.evaluate(trace, task)


class ToolAwarePRM:
    """The default step grader: :class:`MilestonePRM` for tool tasks, :class:`RulePRM` otherwise."""

    name = "tool-aware-prm"

    def __init__(self, tools: MilestonePRM | None = None, other: ProcessRewardModel | None = None) -> None:
        self.tools = tools or MilestonePRM()
        self.other = other or RulePRM()
        self.version = f"1({prm_label(self.tools)},{prm_label(self.other)})"

    def _for(self, task: Task) -> ProcessRewardModel:
        return self.tools if is_tool_task(task) else self.other

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        return self._for(task).grade_step(task, steps_so_far, step)

    def grade_steps(self, task: Task, steps: Sequence[Step]) -> list[float]:
        return grade_all(self._for(task), task, steps)

    def grade_trace(self, trace: Trace, task: Task) -> list[float]:
        if is_tool_task(task):
            return self.tools.grade_trace(trace, task)
        return self.grade_steps(task, trace.steps)

    def minefield(self, task: Task, steps: Sequence[Step], tools: Sequence[ToolSpec] = ()) -> str | None:
        return self.tools.minefield(task, steps, tools) if is_tool_task(task) else None

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        return self._for(task).evaluate(trace, task)


# --------------------------------------------------------------------------- matching


def _succeeded(step: Step) -> bool:
    called = step.action == "tool_call" and step.call is not None
    return called and step.result is not None and not step.is_error


def _reaches(milestone: Milestone, step: Step, tools: Sequence[ToolSpec]) -> bool:
    if not _succeeded(step):
        return False
    if milestone.call is not None:  # an ideal call with a ``result`` is reached only by producing it
        return step_produces(milestone.call, step, tools)
    if milestone.fact is not None:
        return step.result is not None and milestone.fact.casefold() in step.result.text.casefold()
    return milestone.state is not None and check_state(milestone.state, step.state).holds


def _trips(mine: Minefield, step: Step, tools: Sequence[ToolSpec]) -> bool:
    if mine.call is not None:
        # A forbidden call counts when made at all, even when the server refused it.
        return step.action == "tool_call" and step.call is not None and _matches(mine.call, step, tools)
    return mine.state is not None and step.state is not None and check_state(mine.state, step.state).holds


def _matches(ideal: IdealCall, step: Step, tools: Sequence[ToolSpec]) -> bool:
    call = step.call
    if call is None:
        return False
    return check_call(call.name, call.arguments, ideal, tool_schema(call.name, call.arguments, tools)).ok


def _describe_mine(mine: Minefield) -> str:
    label = f"{mine.name!r}: " if mine.name else ""
    if mine.call is not None:
        return f"made the forbidden call {label}{mine.call.name}"
    assert mine.state is not None
    return f"reached the forbidden state {label}{mine.state.server} {describe_check(mine.state)}"
