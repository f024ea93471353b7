"""The turn format: how a model's text becomes free thoughts plus exactly one action.

A turn the model writes looks like this::

    <think>
    The user goes out at 8pm, so I need the hourly forecast.
    </think>
    <tool_call>
    {"name": "get_hourly_forecast", "arguments": {"location": "Denver", "date": "today"}}
    </tool_call>

or ends with ``<answer>...</answer>`` instead of the call. The tags are the Hermes/Qwen convention,
which many small models have seen in training.

Two modes:

* **constrained** -- :func:`build_grammar` turns the tools' input schemas into a llama.cpp GBNF
  grammar, so the model can only write a schema-valid call to an existing tool or an answer.
  Every string has a bounded length, so a looping model reaches the end of the grammar; given the
  turn's token limit, every text the grammar accepts fits in it.
* **free** -- the model writes what it likes and :func:`parse_turn` reads it leniently: the tags
  above, a bare JSON object, a fenced ``json`` block, OpenAI-style ``{"function": {...}}``,
  arguments given as a JSON string. Text that tries to call a tool but cannot be read is a
  *broken call*: kept in the trace with the reason, scored, never an exception. Text with no call
  in it is the final answer.

In both modes a call is read within :func:`~sandbox.records.loads_bounded`'s bounds: nested at most
64 levels, at most 8,000,000 characters, no ``NaN`` or ``Infinity``; past one, the call is broken
and its error names the bound.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, Literal

from sandbox.records import (
    MAX_JSON_DEPTH,
    JSONBoundError,
    ToolCall,
    ToolSpec,
    decode_at_bounded,
    dumps,
    loads_bounded,
    raw_decode_bounded,
    value_problem,
)

# Bounds that make every grammar path finite (a looping model stops at the bound).
MAX_THOUGHT_CHARS = 400
# Integer ranges of multiples up to this size become an enum; other bounded integers a digit grammar.
MAX_INTEGER_ENUM = 1000
MAX_ANSWER_CHARS = 1200
MAX_STRING_CHARS = 200
MAX_ARRAY_ITEMS = 16

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

NL = "\n"

# Free mode stops at the end of an action; the closing tag is put back by :func:`complete_turn`.
# ``<tool_response`` stops a model that goes on to write a tool's result itself (after a bare call,
# which no stop string can end; backends that see each token stop there with :func:`action_end`).
STOP_STRINGS = [CALL_CLOSE, ANSWER_CLOSE, "<tool_response"]

_ARGUMENTS = "tool call arguments"
# A call's text may nest its arguments (at most MAX_JSON_DEPTH) inside a call object, a list of
# calls and OpenAI's {"function": ...}; the arguments themselves are checked exactly once read.
_CALL_DEPTH = MAX_JSON_DEPTH + 3


@dataclass(frozen=True)
class ParsedTurn:
    """A turn read from model text: thoughts and one action, or why the action could not be read."""

    action: Literal["tool_call", "answer", "broken_call"]
    thought: str
    call: ToolCall | None = None
    answer: str | None = None
    error: str | None = None
    # Where the action ends in the text read (None: the whole text is the action, a plain answer).
    end: int | None = None


# --------------------------------------------------------------------------- system prompt


def system_prompt(tools: list[ToolSpec], task_system: str | None = None) -> str:
    """The instructions a model gets: the turn format and the tools it may call."""
    parts = []
    if task_system:
        parts.append(task_system.strip())
    parts.append(
        "You are a helpful assistant. Each reply has two parts. First think step by step inside "
        f"{THINK_OPEN} {THINK_CLOSE}. Then do exactly one thing: call one tool, or give the final answer."
    )
    if tools:
        listing = "\n".join(dumps(_tool_card(tool)) for tool in tools)
        parts.append(
            "You can call these tools:\n"
            f"{listing}\n"
            "To call a tool, write:\n"
            f'{CALL_OPEN}\n{{"name": "TOOL_NAME", "arguments": {{...}}}}\n{CALL_CLOSE}\n'
            "The tool's result comes back in the next message. Use tools to look things up "
            "instead of guessing."
        )
    parts.append(f"To answer, write:\n{ANSWER_OPEN}your final answer{ANSWER_CLOSE}")
    return "\n\n".join(parts)


def _tool_card(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": card_schema(tool.input_schema)}


# Schema keywords that say nothing a caller needs: generated titles ("LocationArguments"), the
# dialect, and a closed object (the grammar and the server enforce it; the card lists every key).
_CARD_DROPPED = frozenset({"title", "$schema", "additionalProperties"})
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONES = ("items", "not", "if", "then", "else", "contains")


def card_schema(schema: Any) -> Any:
    """``schema`` as a tool card shows it: the same constraints without the keywords in
    :data:`_CARD_DROPPED` (``additionalProperties`` stays where it is itself a schema) and without
    bounds no call reaches (:func:`_unreachable`). Property names are kept whatever they are, a
    property called ``title`` included."""
    if not isinstance(schema, dict):
        return schema
    card: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            card[key] = {name: card_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            card[key] = [card_schema(sub) for sub in value]
        elif key in _SCHEMA_ONES or (key == "additionalProperties" and isinstance(value, dict)):
            card[key] = card_schema(value)
        elif key not in _CARD_DROPPED and not _unreachable(key, value):
            card[key] = value
    return card


# Bounds no call comes near are implementation limits (an int64 maximum, a megabyte of text): the
# grammar and the server still hold them, the card leaves them out.
_HUGE_COUNT = 1000
_HUGE_NUMBER = 2**31


def _unreachable(key: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if key in ("maxLength", "maxItems", "maxProperties"):
        return value >= _HUGE_COUNT
    if key in ("maximum", "exclusiveMaximum"):
        return value >= _HUGE_NUMBER
    if key in ("minimum", "exclusiveMinimum"):
        return value <= -_HUGE_NUMBER
    return False


# --------------------------------------------------------------------------- parsing (free mode)

_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_CALL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)
_FENCE_RE = re.compile(r"```(?:json|tool_call|tool)?\s*\n?(.*?)(?:```|$)", re.S | re.I)
_ANSWER_PREFIX_RE = re.compile(r"^\s*(?:final answer|answer)\s*[:\-]\s*", re.I)
# Signs that text was meant as a call even though it cannot be read as one (checked on the text
# left once every readable JSON value is taken out: JSON that reads but is no call is just text).
_CALL_HINT_RE = re.compile(r"<tool_call>|\"(?:name|tool|function)\"\s*:|\"arguments\"\s*:", re.I)
_NAME_KEYS = ("name", "tool", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args")


def parse_turn(text: str, call_id: str = "call_0", tool_names: Collection[str] | None = None) -> ParsedTurn:
    """Read one assistant turn. Never raises: unreadable calls come back as ``broken_call``.

    The first action wins: a ``<tool_call>`` block, an ``<answer>`` block, or a bare JSON object
    of the call's shape, whichever starts first (a model that goes on after a bare call to invent
    the tool's result or an answer does not get to answer). ``ParsedTurn.end`` says where that
    action ends in ``text``. Outside the tags only an object of the call's shape is a call (a name
    and arguments; a name alone only when it is one of ``tool_names``): other JSON, such as an
    entity the model lists in its answer, is text.
    """
    thought, rest, cut, removed = _split_thought(text)
    first = _first_action(rest, thought, call_id, tool_names)
    if first is not None:
        parsed, end, _ = first
        return replace(parsed, end=end if end <= cut else end + removed)
    refused = _refused_object(rest, thought)
    if refused is not None:
        return refused  # an object past a bound: its reason beats a guess
    if _CALL_HINT_RE.search(_without_json(rest)):
        return ParsedTurn(
            "broken_call", thought, error="text looks like a tool call but no call could be read"
        )
    answer = _ANSWER_PREFIX_RE.sub("", rest).strip()
    if not answer:
        return ParsedTurn("broken_call", thought, error="empty turn: neither a tool call nor an answer")
    return ParsedTurn("answer", thought, answer=answer)


def action_end(text: str, tool_names: Collection[str] | None = None) -> int | None:
    """Where the first complete action of a turn being written ends, or None while there is none.

    A backend that sees its text token by token stops there, so a model never writes a tool's
    result (or an answer) after its own bare call. A tag still open is not complete.
    """
    if "}" not in text and ">" not in text:
        return None
    _, rest, cut, removed = _split_thought(text)
    if THINK_OPEN in text and THINK_CLOSE not in text:
        return None  # still thinking
    first = _first_action(rest, "", "call_0", tool_names)
    if first is None or not first[2]:
        return None
    end = first[1]
    return end if end <= cut else end + removed


def _first_action(
    text: str, thought: str, call_id: str, tool_names: Collection[str] | None
) -> tuple[ParsedTurn, int, bool] | None:
    """The action that starts first in ``text``: the parsed turn, where it ends, whether it is closed."""
    found: list[tuple[int, ParsedTurn, int, bool]] = []
    call_match = _CALL_RE.search(text)
    if call_match:
        body, end, closed = _call_body(text, call_match)
        found.append((call_match.start(), _parse_call(body, thought, call_id), end, closed))
    answer_match = _ANSWER_RE.search(text)
    if answer_match:
        answer = ParsedTurn("answer", thought, answer=answer_match.group(1).strip())
        closed = answer_match.group(0).endswith(ANSWER_CLOSE)
        found.append((answer_match.start(), answer, answer_match.end(), closed))
    for start, end, value in _json_objects(text):
        if _is_call_shaped(value, tool_names):
            found.append((start, _call_from_object(value, thought, call_id), end, True))
            break
    if not found:
        return None
    _, parsed, end, closed = min(found, key=lambda item: item[0])
    return parsed, end, closed


def _call_body(text: str, match: re.Match[str]) -> tuple[str, int, bool]:
    """The body of a ``<tool_call>`` block, where the block ends and whether it is closed. A JSON
    object that opens the block is read whole, so a string argument holding ``</tool_call>`` does
    not end the block early."""
    start = match.start(1)
    brace = start + len(text[start:]) - len(text[start:].lstrip())
    if brace < len(text) and text[brace] == "{":
        try:
            _, end = decode_at_bounded(text, brace, what="tool call", max_depth=_CALL_DEPTH)
        except (json.JSONDecodeError, JSONBoundError):
            pass
        else:
            tail = text[end:]
            after = len(text) - len(tail.lstrip())
            if text.startswith(CALL_CLOSE, after):
                return text[start:end], after + len(CALL_CLOSE), True
            if not tail.strip():
                return text[start:end], len(text), False
    return match.group(1), match.end(), match.group(0).endswith(CALL_CLOSE)


def _split_thought(text: str) -> tuple[str, str, int, int]:
    """The thought, the text without it, where the thought was cut out, and how long it was."""
    match = _THINK_RE.search(text)
    if match:
        return (
            match.group(1).strip(),
            text[: match.start()] + text[match.end() :],
            match.start(),
            match.end() - match.start(),
        )
    if THINK_CLOSE in text:  # an opening tag the template or the model left out
        head, _, tail = text.partition(THINK_CLOSE)
        return head.strip(), tail, 0, len(head) + len(THINK_CLOSE)
    return "", text, 0, 0


def _json_objects(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON object in ``text`` that reads within the call bounds: start, end and
    value, in order (an object past a bound is skipped; :func:`_refused_object` names it)."""
    found = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decode_at_bounded(text, index, what="tool call", max_depth=_CALL_DEPTH)
        except (json.JSONDecodeError, JSONBoundError):
            index = text.find("{", index + 1)
            continue
        found.append((index, end, value))
        index = text.find("{", end)
    return found


def _refused_object(text: str, thought: str) -> ParsedTurn | None:
    """A broken call for the first object in ``text`` that reads as JSON but breaks a bound (too
    deep, too long, a ``NaN``) and has a call's keys; None when there is none."""
    index = text.find("{")
    while index != -1:
        try:
            decode_at_bounded(text, index, what="tool call", max_depth=_CALL_DEPTH)
        except JSONBoundError as exc:
            if _CALL_HINT_RE.search(text[index : index + 400]):
                return ParsedTurn("broken_call", thought, error=_bound_reason(exc))
        except json.JSONDecodeError:
            pass
        index = text.find("{", index + 1)
    return None


def _without_json(text: str) -> str:
    pieces, last = [], 0
    for start, end, _ in _json_objects(text):
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _is_call_shaped(value: Any, tool_names: Collection[str] | None) -> bool:
    """A name plus arguments and nothing else (OpenAI's ``{"type": "function", "function": {...}}``
    and an ``id`` allowed); a name alone only when it names one of ``tool_names``."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        if set(value) - {"function", "type", "id"} or value.get("type", "function") != "function":
            return False
        value = value["function"]
    names = [key for key in _NAME_KEYS if isinstance(value.get(key), str)]
    arguments = [key for key in _ARGUMENT_KEYS if key in value]
    extra = set(value) - {names[0] if names else "", *arguments, "id", "type"}
    if len(names) != 1 or len(arguments) > 1 or extra or value.get("type", "function") != "function":
        return False
    if arguments:
        return isinstance(value[arguments[0]], dict | str) or value[arguments[0]] is None
    return tool_names is not None and value[names[0]].strip() in tool_names


def _parse_call(body: str, thought: str, call_id: str) -> ParsedTurn:
    body = body.strip()
    fenced = _FENCE_RE.search(body)
    if fenced and fenced.group(1).strip():
        body = fenced.group(1).strip()
    if not body:
        return ParsedTurn("broken_call", thought, error="empty tool call")
    try:
        value = loads_bounded(body, what="tool call", max_depth=_CALL_DEPTH)
    except JSONBoundError as exc:
        return ParsedTurn("broken_call", thought, error=_bound_reason(exc))
    except json.JSONDecodeError as exc:
        try:
            value = _loads_prefix(body)
        except JSONBoundError as bound:
            return ParsedTurn("broken_call", thought, error=_bound_reason(bound))
        if value is None:
            return ParsedTurn(
                "broken_call",
                thought,
                error=f"tool call is not valid JSON: {exc.msg} (character {exc.pos + 1})",
            )
    if isinstance(value, list):
        if not value:
            return ParsedTurn("broken_call", thought, error="tool call is an empty list")
        value = value[0]  # one action per turn: the first call is the one that runs
    return _call_from_object(value, thought, call_id)


def _bound_reason(exc: JSONBoundError) -> str:
    """The reason for a call refused by a bound; the call's depth is its arguments' depth plus the
    wrappers around them, so past the bound it is the arguments that are too deep."""
    if "nested deeper" in str(exc):
        return f"{_ARGUMENTS}: nested deeper than {MAX_JSON_DEPTH} levels"
    return str(exc)


def _loads_prefix(body: str) -> Any:
    """The first JSON value in ``body`` when trailing text follows it; None if there is none."""
    try:
        return raw_decode_bounded(body, what="tool call", max_depth=_CALL_DEPTH)
    except json.JSONDecodeError:
        return None


def _call_from_object(value: Any, thought: str, call_id: str) -> ParsedTurn:
    if not isinstance(value, dict):
        return ParsedTurn(
            "broken_call", thought, error=f"tool call must be a JSON object, got {type(value).__name__}"
        )
    if isinstance(value.get("function"), dict):  # OpenAI's {"type": "function", "function": {...}}
        value = value["function"]
    name = value.get("name", value.get("tool", value.get("function")))
    if not isinstance(name, str) or not name.strip():
        return ParsedTurn("broken_call", thought, error="tool call has no tool name")
    arguments = value.get("arguments", value.get("parameters", value.get("args", {})))
    if isinstance(arguments, str):
        try:
            arguments = loads_bounded(arguments, what=_ARGUMENTS) if arguments.strip() else {}
        except JSONBoundError as exc:
            empty = ToolCall(id=call_id, name=name.strip(), arguments={})
            return ParsedTurn("broken_call", thought, call=empty, error=str(exc))
        except json.JSONDecodeError:
            return ParsedTurn(
                "broken_call",
                thought,
                call=ToolCall(id=call_id, name=name.strip(), arguments={}),
                error="tool call arguments are a string that is not JSON",
            )
    if arguments is None:
        arguments = {}
    problem = value_problem(arguments, what=_ARGUMENTS) if isinstance(arguments, dict) else None
    if problem is not None:
        return ParsedTurn(
            "broken_call", thought, call=ToolCall(id=call_id, name=name.strip(), arguments={}), error=problem
        )
    if not isinstance(arguments, dict):
        return ParsedTurn(
            "broken_call",
            thought,
            call=ToolCall(id=call_id, name=name.strip(), arguments={}),
            error=f"tool call arguments must be an object, got {type(arguments).__name__}",
        )
    return ParsedTurn("tool_call", thought, call=ToolCall(id=call_id, name=name.strip(), arguments=arguments))


def complete_turn(text: str) -> str:
    """Put back the closing tag that a free-mode stop string removed."""
    for opening, closing in ((CALL_OPEN, CALL_CLOSE), (ANSWER_OPEN, ANSWER_CLOSE)):
        last_open = text.rfind(opening)
        if last_open != -1 and text.find(closing, last_open) == -1:
            return text.rstrip() + "\n" + closing if opening == CALL_OPEN else text + closing
    return text


def render_call(call: ToolCall) -> str:
    """The canonical text of a call, as a constrained turn writes it."""
    return f"{CALL_OPEN}\n{dumps({'name': call.name, 'arguments': call.arguments})}\n{CALL_CLOSE}"


def compact_result(text: str) -> str:
    """A result that is one JSON document, as compact JSON (servers often indent theirs: the model
    pays a token for every indent); any other text as it is. The step keeps the server's text."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return text
    try:
        value = json.loads(stripped, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # not JSON, a repeated key, NaN, or nested past the stack
        return text
    compact = dumps(value)
    return compact if len(compact) < len(text) else text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a repeated key")  # re-dumping would drop one of them
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def render_result(name: str, text: str) -> str:
    """A tool result as the model reads it in the next message."""
    return f"<tool_response name={json.dumps(name)}>\n{text}\n</tool_response>"


# --------------------------------------------------------------------------- grammar (constrained mode)


def bounded_schema(
    schema: dict[str, Any], string_cap: int = MAX_STRING_CHARS, array_cap: int = MAX_ARRAY_ITEMS
) -> dict[str, Any]:
    """A copy of an input schema with every string and array bounded and no undeclared keys.

    Bounds keep each grammar path finite; ``additionalProperties: false`` keeps the model from
    inventing parameters, which the servers would reject. A string's ``maxLength`` becomes at most
    ``string_cap`` (the grammar reads it as bytes: see :mod:`sandbox.turns._schema_grammar`), an
    array's ``maxItems`` at most ``array_cap`` (never below its ``minItems``).
    """
    schema = copy.deepcopy(schema)
    _bound(schema, string_cap, array_cap)
    return schema


def _bound(node: Any, string_cap: int, array_cap: int) -> None:
    if isinstance(node, list):
        for item in node:
            _bound(item, string_cap, array_cap)
        return
    if not isinstance(node, dict):
        return
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "string" in kinds and "enum" not in node and "const" not in node and "pattern" not in node:
        node["maxLength"] = max(
            min(int(node.get("maxLength", string_cap)), string_cap), int(node.get("minLength", 0))
        )
    if kinds == ["integer"] and "enum" not in node and "const" not in node:
        _integer_range_as_enum(node)
    if "array" in kinds:
        cap = min(int(node.get("maxItems", array_cap)), array_cap)
        node["maxItems"] = max(cap, int(node.get("minItems", 0)))
    if "object" in kinds and "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for value in node.values():
        _bound(value, string_cap, array_cap)


def _integer_range_as_enum(node: dict[str, Any]) -> None:
    """A small range of multiples becomes an enum (wider ranges and plain ones get a digit grammar)."""
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(node.get("exclusiveMinimum"), int | float):
        low = math.floor(node["exclusiveMinimum"]) + 1
    if isinstance(node.get("exclusiveMaximum"), int | float):
        high = math.ceil(node["exclusiveMaximum"]) - 1
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return
    low, high = math.ceil(low), math.floor(high)
    step = node.get("multipleOf", 1)
    if isinstance(step, int) and step > 0 and 0 <= high - low < MAX_INTEGER_ENUM:
        values = [v for v in range(low, high + 1) if v % step == 0]
        if values:
            node["enum"] = values


# Thought and answer text by encoded width: tab, newline, CR and printable ASCII but "<"; any wider
# character counted as 4 bytes (one alternative less per byte keeps llama.cpp's stacks few).
_TEXT_CLASSES = {
    1: r"[\x09\x0A\x0D\x20-\x3B\x3D-\x7E]",
    4: r"[\u0080-\U0010FFFF]",
}
_TEXT_BYTES = "textbytes"
# A string cap a tool's arrays give items up for: the most items that leave strings this long.
_STRING_TARGET = 64


def text_width(text: str) -> int:
    """The bytes a thought or answer takes of its grammar's budget: one per ASCII character, four
    per other character (the grammar's widest class), whatever its UTF-8 length."""
    return sum(1 if ord(char) < 0x80 else 4 for char in text)


def fit_text(text: str, width: int) -> str:
    """``text`` as the grammar's thought rule can write it: no ``<`` (the rule has none, so a thought
    cannot open a tag), and at most ``width`` (:func:`text_width`), cut after the last whole word."""
    text = text.replace("<", "(")
    if text_width(text) <= width:
        return text
    used, end = 0, 0
    for index, char in enumerate(text):
        used += 1 if ord(char) < 0x80 else 4
        if used > width:
            break
        end = index + 1
    cut = text[:end]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,:;")


def turn_bounds(max_tokens: int | None) -> tuple[int, int]:
    """(thought bytes, answer bytes) of a turn's grammar under a token limit (None: no limit)."""
    if max_tokens is None:
        return MAX_THOUGHT_CHARS, MAX_ANSWER_CHARS
    thought = min(MAX_THOUGHT_CHARS, max(0, max_tokens - 128) // 3)
    fixed = len(THINK_OPEN + NL + NL + THINK_CLOSE + NL + ANSWER_OPEN + ANSWER_CLOSE)
    return thought, max(1, min(MAX_ANSWER_CHARS, max_tokens - fixed - thought))


def build_grammar(tools: list[ToolSpec], allow_answer: bool = True, max_tokens: int | None = None) -> str:
    """A GBNF grammar for one turn: thoughts, then a call of one of ``tools`` or an answer.

    With ``max_tokens``, every text the grammar accepts is at most ``max_tokens`` UTF-8 bytes, so at
    most that many tokens (a token is at least one byte): a turn always closes within the turn's
    limit. The thought gets a quarter of it (at most :data:`MAX_THOUGHT_CHARS`), the answer the rest;
    each tool gets the largest string and array caps (at most :data:`MAX_STRING_CHARS` bytes and
    :data:`MAX_ARRAY_ITEMS` items, scaled together) whose longest call fits, and a tool whose
    smallest call does not fit is left out of the grammar. Without ``max_tokens`` the caps are those
    maxima and only each path's finiteness is guaranteed.
    """
    from sandbox.turns._gbnf import byte_chain_rules, chain_ref, max_bytes
    from sandbox.turns._schema_grammar import BoundedConverter  # llama_cpp is heavy: import on use

    thought_bytes, answer_bytes = turn_bounds(max_tokens)
    head = len((THINK_OPEN + NL + NL + THINK_CLOSE + NL).encode()) + thought_bytes
    converter = BoundedConverter()
    alternatives = []
    for index, tool in enumerate(tools):
        name_literal = _gbnf_literal(f'{{"name": {json.dumps(tool.name)}, "arguments": ')
        caps = (MAX_STRING_CHARS, MAX_ARRAY_ITEMS)
        if max_tokens is not None:
            frame = len((CALL_OPEN + NL + NL + CALL_CLOSE + "}").encode()) + len(
                json.loads(name_literal).encode()
            )
            fitting = tool_caps(tool, max_tokens - head - frame)
            if fitting is None:
                continue  # even its smallest call does not fit the turn
            caps = fitting
        converter.string_cap, converter.array_cap = caps
        schema = converter.resolve_refs(bounded_schema(tool.input_schema, *caps), f"tool{index}")
        args_rule = converter.visit(schema, f"tool{index}-args")
        alternatives.append(f"{name_literal} {args_rule} {_gbnf_literal('}')}")
    schema_rules = _json_safe_chars(converter.format_grammar()) if alternatives else ""
    actions = []
    lines = [
        f"root ::= {_gbnf_literal(THINK_OPEN + NL)} thought {_gbnf_literal(NL + THINK_CLOSE + NL)} action",
        f"thought ::= {chain_ref(_TEXT_BYTES, thought_bytes) or _gbnf_literal('')}",
    ]
    if alternatives:
        actions.append("call")
        lines.append(
            f"call ::= {_gbnf_literal(CALL_OPEN + NL)} ( {' | '.join(alternatives)} ) "
            f"{_gbnf_literal(NL + CALL_CLOSE)}"
        )
    if allow_answer or not alternatives:
        actions.append("answer")
        first = " | ".join(
            f"{body} {chain_ref(_TEXT_BYTES, answer_bytes - width)}".strip()
            for width, body in _TEXT_CLASSES.items()
            if width <= answer_bytes
        )
        lines.append(f"answer ::= {_gbnf_literal(ANSWER_OPEN)} ( {first} ) {_gbnf_literal(ANSWER_CLOSE)}")
    lines.append(f"action ::= {' | '.join(actions)}")
    text_rules = byte_chain_rules(_TEXT_BYTES, _TEXT_CLASSES, max(thought_bytes, answer_bytes))
    lines += [f"{name} ::= {body}" for name, body in text_rules.items()]
    grammar = "\n".join(lines) + "\n" + schema_rules
    if max_tokens is not None and max_bytes(grammar) > max(max_tokens, _smallest_turn()):
        raise AssertionError(f"constrained grammar exceeds {max_tokens} tokens")  # a bug in the sizing
    return grammar


def _smallest_turn() -> int:
    return len((THINK_OPEN + NL + NL + THINK_CLOSE + NL + ANSWER_OPEN + ANSWER_CLOSE).encode()) + 1


def args_max_bytes(tool: ToolSpec, string_cap: int, array_cap: int) -> float:
    """The most bytes the arguments of a call to ``tool`` take under these caps."""
    from sandbox.turns._gbnf import max_bytes
    from sandbox.turns._schema_grammar import BoundedConverter

    converter = BoundedConverter()
    converter.string_cap, converter.array_cap = string_cap, array_cap
    schema = converter.resolve_refs(bounded_schema(tool.input_schema, string_cap, array_cap), "tool")
    rule = converter.visit(schema, "tool-args")
    return max_bytes(converter.format_grammar(), rule)


def tool_caps(
    tool: ToolSpec, room: int, measure: Callable[[ToolSpec, int, int], float] | None = None
) -> tuple[int, int] | None:
    """The string cap (bytes) and array cap (items) under which every call's arguments fit in ``room``
    bytes, or None when even empty strings and arrays do not fit. ``measure(tool, string_cap,
    array_cap)`` is the arguments' most bytes (default: :func:`args_max_bytes`, their JSON).

    Strings come first: arrays get the most items (at most :data:`MAX_ARRAY_ITEMS`) that still leave
    strings :data:`_STRING_TARGET` bytes (or as long as one item leaves them), and strings then the
    most bytes (at most :data:`MAX_STRING_CHARS`) that fit with that many items.
    """
    size = measure or args_max_bytes
    if room < 2 or size(tool, 0, 0) > room:
        return None

    @functools.cache
    def longest_string(items: int) -> int:  # -1: not even empty strings fit
        if size(tool, 0, items) > room:
            return -1
        low, high = 0, MAX_STRING_CHARS
        while low < high:
            middle = (low + high + 1) // 2
            if size(tool, middle, items) <= room:
                low = middle
            else:
                high = middle - 1
        return low

    target = min(_STRING_TARGET, longest_string(1))
    if target < 0:
        return longest_string(0), 0
    if longest_string(MAX_ARRAY_ITEMS) >= target:
        return longest_string(MAX_ARRAY_ITEMS), MAX_ARRAY_ITEMS
    low, high = 1, MAX_ARRAY_ITEMS - 1  # longest_string(low) >= target
    while low < high:
        middle = (low + high + 1) // 2
        if longest_string(middle) >= target:
            low = middle
        else:
            high = middle - 1
    return longest_string(low), low


# llama-cpp-python's schema converter lets a JSON string hold raw control characters (a newline, a
# tab), which JSON forbids: a grammar-valid call would then fail to parse. JSON's own rule, instead.
_LOOSE_CHAR_RULE = 'char ::= [^"\\\\] |'
_JSON_CHAR_RULE = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _json_safe_chars(rules: str) -> str:
    return rules.replace(_LOOSE_CHAR_RULE, _JSON_CHAR_RULE)


def _gbnf_literal(text: str) -> str:
    return json.dumps(text)
