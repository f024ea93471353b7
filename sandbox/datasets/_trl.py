"""The rewards as TRL reward functions, for ``GRPOTrainer(reward_funcs=...)``, without TRL installed.

TRL's documented convention ("Using a custom reward function", docs/source/grpo_trainer.md of
huggingface/trl): the trainer calls each reward function with keyword arguments only:
``prompts``, ``completions``, the completions' token ids (``completion_ids`` in the trainer's code,
``completions_ids`` in its docs), ``trainer_state``, and every dataset column but ``prompt`` as a
list aligned with the completions. Prompts and completions are strings (standard format) or lists
of message dicts (conversational format). The function returns one float per completion, or None
for a sample it does not apply to (the trainer reads None as NaN and leaves that function out for
that sample). The trainer logs each function under its ``__name__``.

This adapter lives in the CLI layer, not in ``rewards/``, because it turns a completion into a
:class:`Trace` with the turn parser (``sandbox.turns._turn``), which the rewards room may not import.

A completion becomes a trace as an episode would record it: a string is one assistant turn, read
by :func:`parse_turn`; a list of messages is one step per assistant message (its first
``tool_calls`` entry is the call, else its content is parsed), with each ``tool`` message as the
result of the call before it. The task comes from the dataset columns: ``task`` (a :class:`Task`
as a dict or JSON), else ``expected_answer`` / ``answer_match`` / ``ideal_calls`` (and ``task_id``)
with the prompt; the tools the model was offered from ``tools`` (:class:`ToolSpec` dicts or
OpenAI-style ``{"type": "function", "function": {...}}``, as a list or JSON). A row with none of
these columns gets None: there is nothing to score it against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewards import RewardFn, score_trace
from sandbox.records import ConfigError, Message, ModelInfo, Step, Task, ToolResult, ToolSpec, Trace
from sandbox.runs import select_rewards
from sandbox.turns import openai_call, parse_turn

TRLRewardFunction = Callable[..., list[float | None]]
"""``f(prompts=..., completions=..., **columns) -> list[float | None]``, as GRPOTrainer calls it."""

TASK_COLUMNS = ("task", "expected_answer", "answer_match", "ideal_calls", "task_id", "tools")
MODEL = ModelInfo(name="trl-completion", backend="trl")


def trl_reward_functions(names: str | Sequence[str] = "all") -> list[TRLRewardFunction]:
    """One TRL reward function per named reward ("all", comma-separated names, or a list of them)."""
    spec = names if isinstance(names, str) else ",".join(names)
    return [trl_reward_function(name, reward) for name, reward in select_rewards(spec).items()]


def trl_reward_function(name: str, reward: RewardFn) -> TRLRewardFunction:
    """``reward`` as a TRL reward function named ``name`` (see module doc)."""

    def reward_function(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        if completions is None:
            raise ConfigError(f"TRL reward {name!r}: called without completions")
        columns = _aligned_columns(kwargs, len(completions))
        values: list[float | None] = []
        for index, completion in enumerate(completions):
            prompt = prompts[index] if prompts is not None else ""
            row = {column: values_[index] for column, values_ in columns.items()}
            values.append(_score(name, reward, index, prompt, completion, row))
        return values

    reward_function.__name__ = reward_function.__qualname__ = name
    reward_function.__doc__ = f"The {name!r} reward as a TRL reward function."
    return reward_function


def _aligned_columns(kwargs: Mapping[str, Any], count: int) -> dict[str, Sequence[Any]]:
    """The task columns among the keyword arguments, each checked to hold one value per completion."""
    columns = {name: kwargs[name] for name in TASK_COLUMNS if kwargs.get(name) is not None}
    for name, values in columns.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) != count:
            raise ConfigError(f"TRL column {name!r} must be a list with one value per completion ({count})")
    return columns


def _score(
    name: str, reward: RewardFn, index: int, prompt: Any, completion: Any, row: Mapping[str, Any]
) -> float | None:
    task = _task(row, _prompt_text(prompt), index)
    if task is None:
        return None
    trace = completion_trace(task, completion, _tools(row.get("tools"), index), trace_id=f"trl:{index}")
    return score_trace(trace, task, {name: reward}).rewards[name].value


# --------------------------------------------------------------------------- the task of a row


def _task(row: Mapping[str, Any], prompt: str, index: int) -> Task | None:
    try:
        if row.get("task") is not None:
            value = row["task"]
            return Task.model_validate_json(value) if isinstance(value, str) else Task.model_validate(value)
        if not any(row.get(column) is not None for column in ("expected_answer", "ideal_calls")):
            return None
        fields = {
            "id": str(row.get("task_id") or f"trl-{index}"),
            "prompt": prompt,
            "expected_answer": row.get("expected_answer"),
            "answer_match": row.get("answer_match") or "exact",
            "ideal_calls": _json_value(row.get("ideal_calls")) or [],
        }
        return Task.model_validate(fields)
    except ValueError as exc:  # pydantic's ValidationError and a JSON error are ValueErrors
        raise ConfigError(
            f"TRL row {index}: the task columns do not make a task: {_first_line(exc)}"
        ) from exc


def _tools(value: Any, index: int) -> list[ToolSpec]:
    value = _json_value(value)
    if value is None:
        return []
    try:
        return [ToolSpec.model_validate(_tool_spec_fields(tool)) for tool in value]
    except (ValueError, TypeError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(
            f"TRL row {index}: column 'tools' is not a list of tools: {_first_line(exc)}"
        ) from exc


def _tool_spec_fields(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ToolSpec's fields, from a ToolSpec dict or an OpenAI-style function tool."""
    if isinstance(tool.get("function"), Mapping):
        function = tool["function"]
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        return {
            "name": function["name"],
            "description": function.get("description", ""),
            "input_schema": schema,
        }
    return tool


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _prompt_text(prompt: Any) -> str:
    """A standard prompt, or the last user message of a conversational one."""
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt or () if isinstance(m, Mapping) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


# --------------------------------------------------------------------------- the trace of a completion


def completion_trace(task: Task, completion: Any, tools: list[ToolSpec], *, trace_id: str = "trl") -> Trace:
    """A completion (a string, or a list of message dicts) as the trace an episode would record."""
    messages = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
    steps: list[Step] = []
    for message in messages:
        role = message.get("role", "assistant")
        if role == "assistant":
            steps.append(_step(len(steps), message))
        elif role == "tool" and steps and steps[-1].call is not None and steps[-1].result is None:
            result = ToolResult(text=str(message.get("content", "")))
            steps[-1] = steps[-1].model_copy(update={"result": result})
    final = steps[-1].answer if steps and steps[-1].action == "answer" else None
    return Trace(
        id=trace_id,
        task_id=task.id,
        task=task,
        model=MODEL,
        tools=tools,
        messages=[Message(role="user", content=task.prompt)] + [_message(step) for step in steps],
        steps=steps,
        final_answer=final,
        stop_reason="answer" if final is not None else "max_steps",
    )


def _step(index: int, message: Mapping[str, Any]) -> Step:
    content = message.get("content") or ""
    text = content if isinstance(content, str) else json.dumps(content)
    call_id = f"call_{index}"
    calls = message.get("tool_calls") or []
    if calls:  # one action per turn: the first call is the one that runs
        call = openai_call(calls[0], call_id)
        parsed = parse_turn(text, call_id=call_id)
        if call is not None:
            return Step(index=index, raw_text=text, thought=parsed.thought, action="tool_call", call=call)
        return Step(
            index=index, raw_text=text, action="broken_call", parse_error="tool call has no readable name"
        )
    parsed = parse_turn(text, call_id=call_id)
    return Step(
        index=index,
        raw_text=text,
        thought=parsed.thought,
        action=parsed.action,
        call=parsed.call,
        parse_error=parsed.error,
        answer=parsed.answer,
    )


def _message(step: Step) -> Message:
    calls = [step.call] if step.action == "tool_call" and step.call is not None else None
    return Message(role="assistant", content=step.raw_text, tool_calls=calls)
