"""The one OpenAI codec: this project's records <-> OpenAI chat shapes.

Used by the HTTP backend (requests to and replies from an OpenAI-compatible server), by the dataset
exports (rows that TRL and OpenAI's fine-tuning read) and by the TRL reward adapters (completions
read back into traces). One rule for each direction, so a call written by one reads back the same
in the others:

* a tool is an OpenAI function spec (:func:`openai_tool`);
* a transcript becomes chat dicts (:func:`openai_messages`). As written (``native=False``): every
  message's text exactly as the model read and wrote it (a dataset row also gives the calls in
  ``tool_calls``).
  Native: an assistant turn with a call carries its thoughts as content and the call only in
  ``tool_calls``; a tool result goes without this project's ``<tool_response>`` wrapper (the chat
  template adds its own), with errors marked as the model saw them;
* a reply (``{"content", "tool_calls", "reasoning_content"}``) becomes this project's turn text
  (:func:`reply_turn_text`), which :func:`~sandbox.turns.parse_turn` reads like any other turn;
* a ``tool_calls`` entry, nested (``{"function": {...}}``) or flat, reads back as a name and
  arguments (:func:`call_parts`, :func:`openai_call`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sandbox.records import JSONBoundError, Message, ToolCall, ToolSpec, dumps, loads_bounded
from sandbox.turns._turn import CALL_CLOSE, CALL_OPEN, THINK_CLOSE, THINK_OPEN, parse_turn

Arguments = Literal["dict", "json"]

_TOOL_RESPONSE_RE = re.compile(r"\A<tool_response name=\"(?:[^\"\\]|\\.)*\">\n(.*)\n</tool_response>\Z", re.S)


def openai_tool(tool: ToolSpec) -> dict[str, Any]:
    """A tool as an OpenAI function spec, the shape servers, chat templates and TRL read."""
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema},
    }


def openai_messages(
    messages: Sequence[Message],
    *,
    native: bool,
    arguments: Arguments = "json",
    tool_names: bool = False,
    system: str | None = None,
    calls_too: bool = True,
) -> list[dict[str, Any]]:
    """The transcript as OpenAI chat dicts (see the module doc for ``native``).

    As written, ``calls_too`` also gives each call in ``tool_calls`` (a dataset row); without it the
    messages are exactly the text the model read and wrote (a text-mode request to a server).
    ``arguments``: a call's arguments as a JSON string (OpenAI) or a dict (TRL). ``tool_names`` adds
    ``name`` to tool messages (TRL reads it; OpenAI's API refuses it). ``system``, when given,
    replaces the system message's content (a native export drops the tool list from it, since
    ``tools`` carries the tools).
    """
    wire = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "system" and system is not None:
            item["content"] = system
        elif message.role == "assistant" and message.tool_calls and (native or calls_too):
            if native:
                item["content"] = parse_turn(message.content).thought
            item["tool_calls"] = [_wire_call(call, arguments) for call in message.tool_calls]
        elif message.role == "tool":
            if native:
                item["content"] = unwrap_result(message.content)
            if tool_names:
                item["name"] = message.name
            if message.tool_call_id:
                item["tool_call_id"] = message.tool_call_id
        wire.append(item)
    return wire


def _wire_call(call: ToolCall, arguments: Arguments) -> dict[str, Any]:
    value: Any = call.arguments if arguments == "dict" else json.dumps(call.arguments)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": value}}


def unwrap_result(content: str) -> str:
    """A tool message's text without this project's ``<tool_response>`` wrapper."""
    unwrapped = _TOOL_RESPONSE_RE.match(content)
    return unwrapped.group(1) if unwrapped else content


def reply_turn_text(message: Mapping[str, Any]) -> str:
    """A reply message as this project's turn text.

    ``reasoning_content`` (or ``reasoning``) becomes a ``<think>`` block. With ``tool_calls``, the
    content is thoughts (wrapped in ``<think>`` unless it has the tags) and every call follows as a
    ``<tool_call>`` block; the first is the one that runs. Without them the content comes as it is,
    so a server that leaves calls in the text still has them read by the lenient parser.
    """
    reasoning = _text(message.get("reasoning_content") or message.get("reasoning")).strip()
    content = _text(message.get("content"))
    calls = message.get("tool_calls") or []
    parts = [f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}"] if reasoning else []
    if not isinstance(calls, list) or not calls:
        return "\n".join([*parts, content]) if content else "\n".join(parts)
    thought = content.strip()
    if thought:
        parts.append(thought if THINK_CLOSE in thought else f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}")
    for call in calls:
        name, arguments = call_parts(call)
        parts.append(f"{CALL_OPEN}\n{dumps({'name': name, 'arguments': arguments})}\n{CALL_CLOSE}")
    return "\n".join(parts)


def call_parts(entry: Any) -> tuple[Any, Any]:
    """A ``tool_calls`` entry's name and arguments. Arguments given as a JSON string are decoded
    within :func:`~sandbox.records.loads_bounded`'s bounds; a string that is not JSON, or past a
    bound, is returned as it is (the parser then reports a broken call with the reason)."""
    function: Any = entry.get("function") if isinstance(entry, Mapping) else None
    if not isinstance(function, Mapping):
        function = entry if isinstance(entry, Mapping) else {}
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        with contextlib.suppress(json.JSONDecodeError, JSONBoundError):
            arguments = loads_bounded(arguments, what="tool call arguments") if arguments.strip() else {}
    return function.get("name"), arguments


def openai_call(entry: Any, call_id: str) -> ToolCall | None:
    """A ``tool_calls`` entry as a :class:`ToolCall`, or None when it has no usable name or its
    arguments are not an object."""
    name, arguments = call_parts(entry)
    if not isinstance(name, str) or not name.strip() or not isinstance(arguments, dict):
        return None
    own_id = entry.get("id") if isinstance(entry, Mapping) else None
    return ToolCall(id=str(own_id or call_id), name=name.strip(), arguments=arguments)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
