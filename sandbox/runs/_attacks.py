"""Attacks: wrong episodes made from the oracle's, each wrong in one way, for the gauntlet.

Each :class:`Attack` takes a task, the oracle's trace of it and the episode's step limit, and writes
the turns of a scripted model (:class:`~sandbox.models.ScriptedModel`) that the gauntlet runs through
the real episode loop against the real servers. An attack keeps everything of the oracle's episode
but the one thing it gets wrong, so a reward that scores it as high as the oracle does not see that
thing. An attack that cannot be made for a task (no call to loop, no distractor to give), or that
would be the oracle's own episode, is skipped for it (``build`` returns None).

The attacks (:data:`ATTACKS`, by name):

- ``loop``: the oracle's first call, repeated until ``max_steps``, never answering;
- ``every_tool``: every listed tool called once (arguments the oracle used for a parameter of the
  same name, else a placeholder of the schema's type), then the right answer;
- ``wrong_args``: the oracle's episode with the first call's first argument changed (a digit
  shifted, a word replaced, a number plus one), then the right answer;
- ``guess``: the right answer at once, with no tool call, where the oracle calls tools;
- ``hedge``: the oracle's calls, then an answer listing two rivals and the right answer last
  ("A, B or RIGHT"; rivals: the task's distractors, else the neighbouring numbers);
- ``distractor``: the oracle's calls, then the task's first distractor as the answer;
- ``raw_json``: the oracle's calls, then the last tool result pasted as the answer;
- ``slop``: the oracle's turns with every thought replaced by one sentence said twelve times;
- ``empty_answer``: the oracle's calls, then an empty answer;
- ``broken_call``: a call whose JSON is cut off, then the oracle's episode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sandbox.records import JSONObject, Task, ToolCall, ToolSpec, Trace
from sandbox.turns import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CALL_CLOSE,
    CALL_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    render_call,
)

SLOP_SENTENCE = "This is a great example of how math can be used to solve problems."
SLOP_REPEATS = 12
WRONG_WORD = "Nowhere"

Build = Callable[[Task, Trace, int], list[str] | None]


@dataclass(frozen=True)
class Attack:
    """A way to be wrong: ``build(task, oracle_trace, max_steps)`` -> the scripted turns, or None."""

    name: str
    description: str
    build: Build


def _turn(thought: str, action: str) -> str:
    return f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}\n{action}"


def _call(thought: str, name: str, arguments: JSONObject) -> str:
    return _turn(thought, render_call(ToolCall(id="call", name=name, arguments=arguments)))


def _answer(thought: str, answer: str) -> str:
    return _turn(thought, f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}")


def _call_turns(oracle: Trace) -> list[str]:
    """The oracle's turns that made a call (its raw text)."""
    return [step.raw_text for step in oracle.steps if step.action == "tool_call"]


def _right_answer(task: Task) -> str:
    return task.acceptable_answers[0] if task.acceptable_answers else ""


def _with_answer(oracle: Trace, answer: str, thought: str) -> list[str]:
    return [*_call_turns(oracle), _answer(thought, answer)]


# --------------------------------------------------------------------------- the attacks


def _loop(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    calls = _call_turns(oracle)
    return [calls[0]] * max_steps if calls else None


def _every_tool(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    called = {call.name for call in oracle.tool_calls}
    if all(tool.name in called for tool in oracle.tools):
        return None  # the oracle already calls each tool: nothing to add
    known: JSONObject = {}
    for call in oracle.tool_calls:
        for name, value in call.arguments.items():
            known.setdefault(name, value)
    turns = [
        _call(f"Trying every tool: {tool.name}.", tool.name, _placeholder_arguments(tool, known))
        for tool in oracle.tools[: max_steps - 1]
    ]
    return [*turns, _answer("Every tool tried.", _right_answer(task))]


def _placeholder_arguments(tool: ToolSpec, known: JSONObject) -> JSONObject:
    properties = tool.input_schema.get("properties", {})
    arguments: JSONObject = {}
    for name in tool.input_schema.get("required", []):
        if name in known:
            arguments[name] = known[name]
        else:
            arguments[name] = _placeholder(properties.get(name, {}))
    return arguments


def _placeholder(schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(str(kind), "x")


def _wrong_args(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    turns = [step.raw_text for step in oracle.steps]
    for position, step in enumerate(oracle.steps):
        if step.call is None or not step.call.arguments:
            continue
        name, value = next(iter(step.call.arguments.items()))
        arguments = {**step.call.arguments, name: _wrong(value)}
        turns[position] = _call(step.thought, step.call.name, arguments)
        return turns
    return None


def _wrong(value: Any) -> Any:
    """Another value of the same kind: a digit shifted, a word replaced, a number plus one."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        digit = re.search(r"\d", value)
        if digit:
            shifted = str((int(digit.group()) + 1) % 10)
            return value[: digit.start()] + shifted + value[digit.end() :]
        return WRONG_WORD if value != WRONG_WORD else WRONG_WORD + "s"
    return None


def _guess(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    if not oracle.tool_calls:
        return None
    return [_answer("I know this without looking it up.", _right_answer(task))]


def _hedge(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    rivals = list(task.distractors[:2]) or _neighbours(_right_answer(task))
    if not rivals:
        return None
    listed = ", ".join(rivals) + f" or {_right_answer(task)}"
    return _with_answer(oracle, listed, "It is one of these.")


def _neighbours(answer: str) -> list[str]:
    try:
        value = Fraction(answer.strip().rstrip("%"))
    except (ValueError, ZeroDivisionError):
        return []
    suffix = "%" if answer.strip().endswith("%") else ""
    return [f"{value + 1}{suffix}", f"{value - 1}{suffix}"]


def _distractor(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    if not task.distractors:
        return None
    return _with_answer(oracle, task.distractors[0], "This is the answer.")


def _raw_json(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    results = [step.result.text for step in oracle.steps if step.result is not None]
    if not results:
        return None
    return _with_answer(oracle, results[-1], "Here is what the tool said.")


def _slop(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    slop = " ".join([SLOP_SENTENCE] * SLOP_REPEATS)
    turns = []
    for step in oracle.steps:
        if step.call is not None:
            turns.append(_call(slop, step.call.name, step.call.arguments))
        else:
            turns.append(_answer(slop, step.answer or ""))
    return turns


def _empty_answer(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    return _with_answer(oracle, "", "Done.")


def _broken_call(task: Task, oracle: Trace, max_steps: int) -> list[str] | None:
    first = oracle.tool_calls[0] if oracle.tool_calls else None
    name = first.name if first is not None else (oracle.tools[0].name if oracle.tools else "tool")
    whole = json.dumps({"name": name, "arguments": first.arguments if first else {}})
    broken = _turn("Calling the tool.", f"{CALL_OPEN}\n{whole[: len(whole) // 2]}\n{CALL_CLOSE}")
    return [broken, *[step.raw_text for step in oracle.steps]][:max_steps]


ATTACKS: tuple[Attack, ...] = (
    Attack("loop", "the right call repeated to max_steps, no answer", _loop),
    Attack("every_tool", "every tool called once, then the right answer", _every_tool),
    Attack("wrong_args", "the right tool with a wrong argument, then the right answer", _wrong_args),
    Attack("guess", "the right answer with no tool call", _guess),
    Attack("hedge", "two rivals and the right answer listed as one answer", _hedge),
    Attack("distractor", "the task's distractor as the answer", _distractor),
    Attack("raw_json", "the last tool result pasted as the answer", _raw_json),
    Attack("slop", "every thought one sentence said twelve times", _slop),
    Attack("empty_answer", "the right calls, then an empty answer", _empty_answer),
    Attack("broken_call", "a cut-off call, then the oracle's episode", _broken_call),
)
