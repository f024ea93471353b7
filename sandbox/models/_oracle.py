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

Thoughts come in two styles (``thoughts``), each one short stated template:

- ``"reference"`` (the gauntlet's): ``"Reference call {i} of {n}: {tool}."`` before a call, ``"The
  reference answer, after {n} call(s)."`` before the answer (``"The reference answer, with no tool
  call."`` when there is none). They say where the turn sits in the plan, nothing a model should learn.
- ``"demo"`` (demonstrations to train on, ``sandbox demos``): what a model should think, built from
  what it can see. Before a call: ``"I need the {tool} tool: {the first sentence of its description}
  I call it with {argument}={value}, ..."`` (``"I call the {tool} tool again, now with ..."`` when
  it was used before, so the thought does not restate the earlier one). Before the answer: ``"The
  {tool} result gives {answer}. It says: {an excerpt of at most 80 characters}"`` (``"The {tool}
  call is done."`` for a task judged on the servers' state), the answer before the excerpt so that a
  thought cut short never loses it, the excerpt taken around the answer's mention in the last result
  that shares most words with the question (its first mention, else the result's start); with no
  call: ``"This needs no tool: I can answer it directly."``. Under a token limit each thought fits
  the thought budget of a constrained turn (:func:`sandbox.turns.turn_bounds`): the reason, then the
  arguments, then the excerpt are left out until it does, so a demonstration never thinks what the
  constrained decoder would cut off.

A prompt that no task has, a prompt two tasks share with different plans, or an ideal call whose
required arguments are open raises :class:`OracleError` (a task file to fix, one line). The episode
loop gives the oracle's turns the same treatment as any model's, so its trace goes through the real
servers; the gauntlet (``sandbox.runs``) builds its attacks from that trace.

``turn_format`` (a :class:`~sandbox.turns.Format`, default the tag format) is the format the turns
are written in: a native one writes each call in its family's syntax (``Format.render_call``) and
the answer as plain text, the thought in ``<think>`` tags where the format has thoughts, and no
thought where it has none (what its constrained grammar lets a model write).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.models._base import ModelRequest, ModelResponse, SyncModel
from sandbox.records import JSONObject, ModelInfo, SandboxError, Task, ToolCall, ToolSpec, Usage
from sandbox.turns import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    Format,
    fit_text,
    render_call,
    text_width,
    turn_bounds,
)

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


ThoughtStyle = Literal["reference", "demo"]
THOUGHT_STYLES: tuple[ThoughtStyle, ...] = ("reference", "demo")
EXCERPT_CHARS = 80  # the most of a tool result a demo's answer thought quotes
NO_TOOL_THOUGHT = "This needs no tool: I can answer it directly."
NO_TOOL_SHORT = "No tool needed."
MIN_EXCERPT_CHARS = 24  # a shorter excerpt says too little to quote: the thought keeps the conclusion only


def call_thought(index: int, total: int, name: str) -> str:
    return f"Reference call {index + 1} of {total}: {name}."


def answer_thought(calls: int) -> str:
    if calls == 0:
        return "The reference answer, with no tool call."
    return f"The reference answer, after {calls} call(s)."


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    sentence = text if end < 0 else text[: end + 1]
    return sentence if sentence.endswith((".", "!", "?")) or not sentence else sentence + "."


def _argument_text(arguments: JSONObject) -> str:
    if not arguments:
        return "no arguments"
    return ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in arguments.items())


def _fitted(candidates: Sequence[str], width: int | None) -> str:
    """The first of ``candidates`` (longest first) that fits ``width`` (None: the first), else the
    last one cut to fit: a demonstration thinks only what the constrained turn lets a model write."""
    if width is None:
        return candidates[0]
    for text in candidates:
        if fit_text(text, width) == text:
            return text
    return fit_text(candidates[-1], width)


def demo_call_thought(
    call: PlannedCall, tools: Sequence[ToolSpec], earlier: Sequence[str], width: int | None = None
) -> str:
    """A demonstration's thought before ``call``: which tool and why (from its description), and the
    arguments; ``earlier`` names the tools already called in the episode. With ``width`` (the
    thought budget of a constrained turn, :func:`sandbox.turns.turn_bounds`), the reason, then the
    arguments, are left out until it fits."""
    arguments = _argument_text(call.arguments)
    if call.name in earlier:
        return _fitted(
            [
                f"I call the {call.name} tool again, now with {arguments}.",
                f"I call the {call.name} tool again.",
            ],
            width,
        )
    spec = next((tool for tool in tools if tool.name == call.name), None)
    why = _first_sentence(spec.description) if spec is not None and spec.description.strip() else ""
    why = why[0].lower() + why[1:] if why else "it does what this question needs."
    return _fitted(
        [
            f"I need the {call.name} tool: {why} I call it with {arguments}.",
            f"I need the {call.name} tool. I call it with {arguments}.",
            f"I need the {call.name} tool.",
        ],
        width,
    )


_RESPONSE_RE = re.compile(r"^\s*<tool_response[^>]*>\s*(.*?)\s*(?:</tool_response>)?\s*$", re.S)
_CLOCK_RE = re.compile(r"\b(\d{1,2})\s*(am|pm)\b", re.I)


def _words(text: str) -> set[str]:
    """Lower-case words of ``text``, with "8pm" also read as the clock time "20:00"."""
    words = set(re.findall(r"[a-z0-9:]+", text.lower()))
    for hour, half in _CLOCK_RE.findall(text):
        words.add(f"{int(hour) % 12 + (12 if half.lower() == 'pm' else 0):02d}:00")
    return words


def result_excerpt(result: str, answer: str, context: str = "", limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``result`` (its ``<tool_response>`` wrapper dropped, whitespace
    folded): a window around a whole-word mention of ``answer``, the one sharing most words with
    ``context`` (the question) and the first of those; else the result's start."""
    match = _RESPONSE_RE.match(result)
    text = " ".join((match.group(1) if match else result).split())
    if len(text) <= limit:
        return text
    mention = re.compile(rf"(?<![\w.]){re.escape(answer)}(?!\w)", re.I)
    starts = [m.start() for m in mention.finditer(text)] if answer else []
    if not starts:
        return text[:limit] + " ..."
    wanted = _words(context)

    def window(at: int) -> int:
        return max(0, min(at - limit // 2, len(text) - limit))

    start = max((window(at) for at in starts), key=lambda w: (len(_words(text[w : w + limit]) & wanted), -w))
    excerpt = text[start : start + limit]
    return ("... " if start > 0 else "") + excerpt + (" ..." if start + limit < len(text) else "")


def demo_answer_thought(
    tool: str | None, result: str | None, answer: str, question: str = "", width: int | None = None
) -> str:
    """A demonstration's thought before the answer: what the last result said, and the answer
    (:data:`DONE_ANSWER`: that the work is done). With ``width`` (as for :func:`demo_call_thought`)
    the excerpt shrinks to fit, down to :data:`MIN_EXCERPT_CHARS`, then goes."""
    if tool is None or result is None:
        return _fitted([NO_TOOL_THOUGHT, NO_TOOL_SHORT], width)
    # The answer comes first and the excerpt after it: a model that learns this order and then
    # writes a longer excerpt than the budget allows loses the end of the excerpt, never the answer.
    lead = f"The {tool} call is done." if answer == DONE_ANSWER else f"The {tool} result gives {answer}."
    head = f"{lead} It says: "
    limits = [EXCERPT_CHARS]
    if width is not None:
        room = width - text_width(head) - 8  # 8: the "... " and " ..." marks
        limits = [limit for limit in (EXCERPT_CHARS, room) if MIN_EXCERPT_CHARS <= limit <= EXCERPT_CHARS]
    candidates = [
        f"{head}{fit_text(result_excerpt(result, answer, question, limit), limit + 8)}" for limit in limits
    ]
    return _fitted([*candidates, lead], width)


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

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        name: str = "oracle",
        thoughts: ThoughtStyle = "reference",
        turn_format: Format | None = None,
    ) -> None:
        self.turn_format = turn_format or Format()
        if thoughts not in THOUGHT_STYLES:
            raise OracleError(f"thoughts must be one of {list(THOUGHT_STYLES)}, not {thoughts!r}")
        self.thoughts = thoughts
        self._by_prompt: dict[str, Task] = {}
        for task in tasks:
            known = self._by_prompt.get(task.prompt)
            if known is not None and oracle_turns(known) != oracle_turns(task):
                raise OracleError(
                    f"tasks {known.id!r} and {task.id!r} share a prompt but not a reference solution"
                )
            self._by_prompt.setdefault(task.prompt, task)
        shown = name if thoughts == "reference" else f"{name}-{thoughts}"
        self.info = ModelInfo(name=shown, backend="oracle")

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
            text = self._call_text(self._call_thought(request, plan, written), call.name, call.arguments)
        else:
            text = self._answer_text(self._answer_thought(request, plan, task), oracle_answer(task))
        return ModelResponse(text, "stop", Usage(completion_tokens=max(1, len(text) // 4)), 0.0)

    def _call_text(self, thought: str, name: str, arguments: JSONObject) -> str:
        fmt = self.turn_format
        if not fmt.native:
            return call_turn(thought, name, arguments)
        call = fmt.render_call(ToolCall(id="call", name=name, arguments=arguments))
        return turn_text(thought, call) if fmt.think else call

    def _answer_text(self, thought: str, answer: str) -> str:
        fmt = self.turn_format
        if not fmt.native:
            return answer_turn(thought, answer)
        return turn_text(thought, answer) if fmt.think else answer

    def _call_thought(self, request: ModelRequest, plan: Sequence[PlannedCall], written: int) -> str:
        call = plan[written]
        if self.thoughts == "reference":
            return call_thought(written, len(plan), call.name)
        earlier = [c.name for c in plan[:written]]
        return demo_call_thought(call, request.tools, earlier, _thought_width(request))

    def _answer_thought(self, request: ModelRequest, plan: Sequence[PlannedCall], task: Task) -> str:
        if self.thoughts == "reference":
            return answer_thought(len(plan))
        results = [m for m in request.messages if m.role == "tool"]
        width = _thought_width(request)
        if not plan or not results:
            return demo_answer_thought(None, None, oracle_answer(task), width=width)
        last = results[-1]
        tool = last.name or plan[-1].name
        return demo_answer_thought(tool, last.content, oracle_answer(task), task.prompt, width)


def _thought_width(request: ModelRequest) -> int | None:
    """The thought budget of a constrained turn under the request's token limit (None: no limit)."""
    return turn_bounds(request.sampling.max_tokens)[0] if request.sampling.max_tokens else None


def _check_open_arguments(task: Task, call: PlannedCall, tools: Sequence[ToolSpec]) -> None:
    spec = next((tool for tool in tools if tool.name == call.name), None)
    required: Any = spec.input_schema.get("required", []) if spec is not None else []
    if required:
        raise OracleError(
            f"task {task.id!r}: ideal call {call.name} leaves its required argument(s) {list(required)} "
            "open and the task has no solution; add a 'solution' with concrete arguments"
        )
