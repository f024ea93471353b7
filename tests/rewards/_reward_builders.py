"""Builders for the records the reward tests score: tasks, steps and traces, made directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandbox.records import IdealCall, ModelInfo, Step, Task, ToolCall, ToolResult, ToolSpec, Trace

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
    "required": ["city"],
    "additionalProperties": False,
}
ADD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}
BROKEN_SCHEMA: dict[str, Any] = {"type": "no-such-type"}
REMOTE_REF_SCHEMA: dict[str, Any] = {"$ref": "https://example.com/schema.json"}

TOOLS = [
    ToolSpec(name="get_weather", input_schema=WEATHER_SCHEMA),
    ToolSpec(name="add", input_schema=ADD_SCHEMA),
    ToolSpec(name="bad_schema", input_schema=BROKEN_SCHEMA),
    ToolSpec(name="remote_ref", input_schema=REMOTE_REF_SCHEMA),
]


def task(
    *,
    expected: str | list[str] | None = None,
    match: str = "exact",
    ideal: Sequence[IdealCall] = (),
    task_id: str = "t1",
) -> Task:
    return Task.model_validate(
        {
            "id": task_id,
            "prompt": "?",
            "expected_answer": expected,
            "answer_match": match,
            "ideal_calls": list(ideal),
        }
    )


def ideal(name: str, **arguments: list[Any]) -> IdealCall:
    return IdealCall(name=name, arguments=arguments)


def call(
    index: int,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    result: str = "ok",
    error_kind: str | None = None,
) -> Step:
    """A parsed tool call and its result (an error result when ``error_kind`` is given)."""
    tool_result = ToolResult.model_validate(
        {"text": result, "is_error": error_kind is not None, "error_kind": error_kind}
    )
    return Step(
        index=index,
        raw_text=f"call {name}",
        action="tool_call",
        call=ToolCall(id=f"c{index}", name=name, arguments=arguments or {}),
        result=tool_result,
    )


def broken(index: int, name: str | None = None, arguments: dict[str, Any] | None = None) -> Step:
    """A call that did not parse; ``name`` is the tool name recovered from it, if any."""
    recovered = None if name is None else ToolCall(id=f"c{index}", name=name, arguments=arguments or {})
    return Step(
        index=index, raw_text="<call>{oops", action="broken_call", call=recovered, parse_error="bad JSON"
    )


def answer(index: int, text: str) -> Step:
    return Step(index=index, raw_text=text, action="answer", answer=text)


def trace(
    the_task: Task,
    steps: Sequence[Step] = (),
    *,
    final_answer: str | None = None,
    tools: Sequence[ToolSpec] = TOOLS,
    trace_id: str = "trace-1",
) -> Trace:
    """A trace of ``steps``; its final answer is the last answer step's unless given."""
    if final_answer is None:
        answers = [step.answer for step in steps if step.action == "answer"]
        final_answer = answers[-1] if answers else None
    return Trace(
        id=trace_id,
        task_id=the_task.id,
        task=the_task,
        model=ModelInfo(name="test-model"),
        tools=list(tools),
        steps=list(steps),
        final_answer=final_answer,
        stop_reason="answer" if final_answer is not None else "max_steps",
    )
