"""The oracle: a backend that plays each task's reference solution, the best episode a task has.

:class:`OracleModel` is made from the tasks it may be asked about. At each turn it finds the task by
the transcript's user prompt, counts the assistant turns already written, and writes the next turn
of that task's plan in this project's turn format (``<think>..</think>`` then a ``<tool_call>`` or
an ``<answer>``):

- the plan is ``task.solution`` (concrete arguments), one call per turn, then the answer;
- a task with no solution plays its ``ideal_calls`` when each argument has a concrete value: the
  first acceptable value of each parameter (BFCL's ``""``, "may be left out", is left out); an
  ideal call with no listed arguments is played with none, unless the tool on offer requires some;
- a task with neither answers at once;
- the answer is the first of the task's acceptable answers; a task with none (one judged on the
  servers' state) gets :data:`DONE_ANSWER`, a report that the work is done.

Thoughts follow one short template, so they never restate each other:
``"Reference call {i} of {n}: {tool}."`` before a call, ``"The reference answer, after {n} call(s)."``
before the answer (``"The reference answer, with no tool call."`` when there is none).

A prompt that no task has, a prompt two tasks share with different plans, or an ideal call whose
required arguments are open raises :class:`OracleError` (a task file to fix, one line). The episode
loop gives the oracle's turns the same treatment as any model's, so its trace goes through the real
servers; the gauntlet (``sandbox.runs``) builds its attacks from that trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.models._base import ModelRequest, ModelResponse, SyncModel
from sandbox.records import JSONObject, ModelInfo, SandboxError, Task, ToolCall, ToolSpec, Usage
from sandbox.turns import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, render_call

OPTIONAL_ARGUMENT = ""  # BFCL's mark: the argument may be left out


class OracleError(SandboxError):
    """The oracle cannot play a task (unknown prompt, ambiguous plan, open arguments)."""


@dataclass(frozen=True)
class PlannedCall:
    """One call of the oracle's plan; ``from_open_ideal`` when it comes from an ideal call that
    lists no arguments (checked against the tool's schema when the call is played)."""

    name: str
    arguments: JSONObject
    from_open_ideal: bool = False


def oracle_plan(task: Task) -> list[PlannedCall]:
    """The calls the oracle makes for ``task``, in order (see module doc)."""
    if task.solution:
        return [PlannedCall(call.name, dict(call.arguments)) for call in task.solution]
    plan = []
    for ideal in task.ideal_calls:
        arguments: JSONObject = {}
        for name, acceptable in ideal.arguments.items():
            concrete = [value for value in acceptable if value != OPTIONAL_ARGUMENT]
            if concrete:
                arguments[name] = concrete[0]
        plan.append(PlannedCall(ideal.name, arguments, from_open_ideal=not ideal.arguments))
    return plan


DONE_ANSWER = "Done."


def oracle_answer(task: Task) -> str:
    """The answer the oracle gives: the first acceptable answer, else :data:`DONE_ANSWER`."""
    answers = task.acceptable_answers
    return answers[0] if answers else DONE_ANSWER


def call_thought(index: int, total: int, name: str) -> str:
    return f"Reference call {index + 1} of {total}: {name}."


def answer_thought(calls: int) -> str:
    if calls == 0:
        return "The reference answer, with no tool call."
    return f"The reference answer, after {calls} call(s)."


def turn_text(thought: str, action: str) -> str:
    """A turn in this project's format: the thought in think tags, then the action's text."""
    return f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}\n{action}"


def call_turn(thought: str, name: str, arguments: JSONObject, call_id: str = "call") -> str:
    return turn_text(thought, render_call(ToolCall(id=call_id, name=name, arguments=arguments)))


def answer_turn(thought: str, answer: str) -> str:
    return turn_text(thought, f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}")


def oracle_turns(task: Task) -> list[str]:
    """Every turn the oracle writes for ``task``, in order (the last is the answer)."""
    plan = oracle_plan(task)
    turns = [
        call_turn(call_thought(i, len(plan), call.name), call.name, call.arguments)
        for i, call in enumerate(plan)
    ]
    turns.append(answer_turn(answer_thought(len(plan)), oracle_answer(task)))
    return turns


class OracleModel(SyncModel):
    """Plays the reference solution of whichever of ``tasks`` the transcript's prompt belongs to."""

    def __init__(self, tasks: Sequence[Task], *, name: str = "oracle") -> None:
        self._by_prompt: dict[str, Task] = {}
        for task in tasks:
            known = self._by_prompt.get(task.prompt)
            if known is not None and oracle_turns(known) != oracle_turns(task):
                raise OracleError(
                    f"tasks {known.id!r} and {task.id!r} share a prompt but not a reference solution"
                )
            self._by_prompt.setdefault(task.prompt, task)
        self.info = ModelInfo(name=name, backend="oracle")

    def task_for(self, request: ModelRequest) -> Task:
        """The task whose prompt is the transcript's first user message."""
        prompt = next((m.content for m in request.messages if m.role == "user"), None)
        task = self._by_prompt.get(prompt) if prompt is not None else None
        if task is None:
            shown = repr(prompt[:60]) if prompt is not None else "none"
            raise OracleError(f"the oracle knows no task with the prompt {shown}")
        return task

    def complete(self, request: ModelRequest) -> ModelResponse:
        task = self.task_for(request)
        written = sum(1 for message in request.messages if message.role == "assistant")
        plan = oracle_plan(task)
        if written < len(plan):
            call = plan[written]
            if call.from_open_ideal:
                _check_open_arguments(task, call, request.tools)
            text = call_turn(call_thought(written, len(plan), call.name), call.name, call.arguments)
        else:
            text = answer_turn(answer_thought(len(plan)), oracle_answer(task))
        return ModelResponse(text, "stop", Usage(completion_tokens=max(1, len(text) // 4)), 0.0)


def _check_open_arguments(task: Task, call: PlannedCall, tools: Sequence[ToolSpec]) -> None:
    spec = next((tool for tool in tools if tool.name == call.name), None)
    required: Any = spec.input_schema.get("required", []) if spec is not None else []
    if required:
        raise OracleError(
            f"task {task.id!r}: ideal call {call.name} leaves its required argument(s) {list(required)} "
            "open and the task has no solution; add a 'solution' with concrete arguments"
        )
