"""Turn formats: the project's own tags, or the model family's native tool-call syntax.

A :class:`Format` says everything an episode needs about how a model writes a turn: the system
prompt, whether the tools go to the chat template's own ``tools`` argument, how a turn is read
(:meth:`Format.parse`), where a turn being written ends (stop strings, :meth:`Format.action_end`),
the constrained-mode grammar of that syntax, and how a tool result is written into the transcript.

* ``tags`` -- this project's format (``_turn.py``): tools listed in the system prompt,
  ``<think>``, ``<tool_call>`` and ``<answer>`` tags, results wrapped in ``<tool_response>``.
* ``hermes`` -- Hermes / Qwen2.5 / Qwen3: tools through the template, a call is
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, an answer is plain text, results go
  in the ``tool`` role (the template wraps them). ``<think>`` is kept where the template has it.
* ``llama3`` -- Llama 3.x: a call is a JSON object ``{"name": ..., "parameters": {...}}``, perhaps
  after ``<|python_tag|>``; results in the ``tool`` role (the template's ``ipython``).
* ``mistral`` -- Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``.
* ``functiongemma`` -- FunctionGemma: ``<start_function_call>call:NAME{key:<escape>value<escape>}
  <end_function_call>`` (``_gemma.py``); results in the ``tool`` role as ``NAME{value:<escape>...}``,
  which the template wraps in ``<start_function_response>``; the system prompt is the sentence that
  turns FunctionGemma's calling on. A Gemma 3 template has no tools branch: it runs ``tags``.

:func:`detect_format` reads the family from a chat template's text; :func:`choose_format` applies
``--format auto|native|tags|FAMILY`` (auto: native when the template has a tools branch, else tags);
a label (``hermes+think``) names one format exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sandbox.records import ConfigError, JSONBoundError, ToolCall, ToolSpec, decode_at_bounded, dumps
from sandbox.turns import _gemma as gemma
from sandbox.turns._turn import (
    _CALL_DEPTH,
    _TEXT_BYTES,
    _TEXT_CLASSES,
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CALL_CLOSE,
    CALL_OPEN,
    MAX_ANSWER_CHARS,
    MAX_ARRAY_ITEMS,
    MAX_STRING_CHARS,
    STOP_STRINGS,
    THINK_CLOSE,
    THINK_OPEN,
    ParsedTurn,
    _bound_reason,
    _call_from_object,
    _gbnf_literal,
    _json_safe_chars,
    _split_thought,
    action_end,
    args_max_bytes,
    bounded_schema,
    build_grammar,
    card_schema,
    complete_turn,
    parse_turn,
    render_call,
    render_result,
    system_prompt,
    tool_caps,
    turn_bounds,
)

FormatName = Literal["tags", "hermes", "llama3", "mistral", "functiongemma"]
FORMAT_NAMES: tuple[FormatName, ...] = ("tags", "hermes", "llama3", "mistral", "functiongemma")
FormatChoice = Literal["auto", "native", "tags", "hermes", "llama3", "mistral", "functiongemma"]
FORMAT_CHOICES: tuple[str, ...] = ("auto", "native", *FORMAT_NAMES)

PYTHON_TAG = "<|python_tag|>"
MISTRAL_CALLS = "[TOOL_CALLS]"
NATIVE_SYSTEM = "You are a helpful assistant."
NL = "\n"


@dataclass(frozen=True)
class Format:
    """One turn format (see the module doc). ``think``: the model thinks in ``<think>`` first."""

    name: FormatName = "tags"
    think: bool = True

    @property
    def native(self) -> bool:
        """The tools go to the chat template's ``tools`` argument, results in its ``tool`` role."""
        return self.name != "tags"

    @property
    def label(self) -> str:
        """The name recorded in a trace (``hermes+think`` for a Qwen3-style template)."""
        return f"{self.name}+think" if self.native and self.think else self.name

    # -- prompt --------------------------------------------------------------------------

    def system_prompt(self, tools: list[ToolSpec], task_system: str | None = None) -> str:
        if not self.native:
            return system_prompt(tools, task_system)
        task = task_system.strip() if task_system and task_system.strip() else ""
        if self.name == "functiongemma":
            return f"{task}\n\n{gemma.DEVELOPER_PROMPT}" if task else gemma.DEVELOPER_PROMPT
        return task or NATIVE_SYSTEM

    def template_tools(self, tools: Sequence[ToolSpec]) -> list[dict[str, Any]] | None:
        """What the chat template's ``tools`` argument gets (None: the template is not given tools)."""
        if not self.native:
            return None
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": card_schema(t.input_schema),
                },
            }
            for t in tools
        ]

    def render_result(self, name: str, text: str) -> str:
        """A tool result as the ``tool`` message holds it (native: bare, the template wraps it)."""
        if self.name == "functiongemma":
            return gemma.render_response(name, text)
        return text if self.native else render_result(name, text)

    def retry_note(self, reason: str) -> str:
        example = self.render_call(ToolCall(id="x", name="TOOL_NAME", arguments={}))
        if not self.native:
            return (
                f"Your last reply could not be used: {reason}. Reply with one tool call as "
                f'{CALL_OPEN}{{"name": ..., "arguments": {{...}}}}{CALL_CLOSE} '
                f"or with {ANSWER_OPEN}...{ANSWER_CLOSE}."
            )
        return f"Your last reply could not be used: {reason}. Call one tool as {example}, or answer in text."

    # -- writing and reading turns --------------------------------------------------------

    def render_call(self, call: ToolCall) -> str:
        """The canonical text of a call in this format (what a constrained turn writes)."""
        if self.name == "llama3":
            return dumps({"name": call.name, "parameters": call.arguments})
        if self.name == "mistral":
            return MISTRAL_CALLS + dumps([{"name": call.name, "arguments": call.arguments}])
        if self.name == "functiongemma":
            return gemma.render_call(call.name, call.arguments)
        return render_call(call)

    @property
    def stop_strings(self) -> list[str]:
        if self.name == "tags":
            return list(STOP_STRINGS)
        if self.name == "hermes":
            return [CALL_CLOSE, "<tool_response"]
        if self.name == "functiongemma":
            return [gemma.CALL_END, gemma.RESPONSE_START]
        return ["<|eom_id|>"] if self.name == "llama3" else ["[TOOL_RESULTS]"]

    def complete(self, text: str) -> str:
        """Put back a closing tag a stop string removed."""
        if self.name == "functiongemma":
            at = text.find(gemma.CALL_START)
            return text + gemma.CALL_END if at != -1 and gemma.CALL_END not in text[at:] else text
        return complete_turn(text) if self.name in ("tags", "hermes") else text

    def parse(
        self, text: str, call_id: str = "call_0", tool_names: Collection[str] | None = None
    ) -> ParsedTurn:
        """Read one turn written in this format; never raises (see :func:`parse_turn`)."""
        if self.name == "mistral":
            return _parse_mistral(text, call_id, tool_names)
        if self.name == "functiongemma":
            return _parse_gemma(text, call_id, tool_names)
        if self.name == "llama3" and PYTHON_TAG in text:
            head, _, tail = text.partition(PYTHON_TAG)
            parsed = parse_turn(tail, call_id, tool_names)
            if parsed.action == "answer":  # a python tag always means a call
                return ParsedTurn("broken_call", parsed.thought, error="text after <|python_tag|> is no call")
            offset = len(head) + len(PYTHON_TAG)
            return replace(parsed, thought=parsed.thought or head.strip(), end=_shift(parsed.end, offset))
        return parse_turn(text, call_id, tool_names)

    def action_end(self, text: str, tool_names: Collection[str] | None = None) -> int | None:
        """Where the first complete action ends in a turn being written (None: not yet)."""
        if self.name == "mistral":
            if MISTRAL_CALLS not in text:
                return None
            parsed = _parse_mistral(text, "call_0", tool_names)
            return parsed.end if parsed.action == "tool_call" else None
        if self.name == "functiongemma":
            return _gemma_end(text)
        if self.name == "llama3" and PYTHON_TAG in text:
            head, _, tail = text.partition(PYTHON_TAG)
            end = action_end(tail, tool_names)
            return _shift(end, len(head) + len(PYTHON_TAG))
        return action_end(text, tool_names)

    # -- constrained mode -----------------------------------------------------------------

    def grammar(self, tools: list[ToolSpec], allow_answer: bool = True, max_tokens: int | None = None) -> str:
        """A GBNF grammar for one turn in this format: a schema-valid call or an answer. The tag
        grammar fits ``max_tokens`` (every text it accepts is at most that many bytes)."""
        if not self.native:
            return build_grammar(tools, allow_answer, max_tokens=max_tokens)
        return _native_grammar(self, tools, allow_answer, max_tokens)


def gemma_args_max_bytes(tool: ToolSpec, string_cap: int, array_cap: int) -> float:
    """The most bytes the FunctionGemma arguments of a call to ``tool`` take under these caps."""
    from sandbox.turns._gbnf import max_bytes

    rules = gemma.GemmaRules(string_cap, array_cap)
    rule = rules.visit(bounded_schema(tool.input_schema, string_cap, array_cap), "tool-args")
    return max_bytes(rules.text(), rule)


def _shift(end: int | None, offset: int) -> int | None:
    return None if end is None else end + offset


def _parse_gemma(text: str, call_id: str, tool_names: Collection[str] | None) -> ParsedTurn:
    """The first ``<start_function_call>`` is the turn's action: text before it is the thought, text
    after its ``<end_function_call>`` is dropped. A turn without one reads as :func:`parse_turn` does."""
    at = text.find(gemma.CALL_START)
    if at == -1:
        return parse_turn(text, call_id, tool_names)
    thought, _, _, _ = _split_thought(text[:at])
    thought = thought or text[:at].strip()
    try:
        name, arguments, end, _ = gemma.read_call(text, at)
    except gemma.GemmaSyntaxError as exc:
        return ParsedTurn("broken_call", thought, error=str(exc))
    parsed = _call_from_object({"name": name, "arguments": arguments}, thought, call_id)
    return replace(parsed, end=end)


def _gemma_end(text: str) -> int | None:
    """Where a FunctionGemma call being written is complete: after its ``<end_function_call>``."""
    at = text.find(gemma.CALL_START)
    if at == -1 or gemma.CALL_END not in text[at:]:
        return None
    try:
        _, _, end, closed = gemma.read_call(text, at)
    except gemma.GemmaSyntaxError:
        return None
    return end if closed else None


def _parse_mistral(text: str, call_id: str, tool_names: Collection[str] | None) -> ParsedTurn:
    """``[TOOL_CALLS]`` then a JSON list of calls (or one object): the first call runs."""
    at = text.find(MISTRAL_CALLS)
    if at == -1:
        return parse_turn(text, call_id, tool_names)
    thought, _, _, _ = _split_thought(text[:at])
    thought = thought or text[:at].strip()
    start = at + len(MISTRAL_CALLS)
    body = text[start:]
    lead = len(body) - len(body.lstrip())
    try:
        value, end = decode_at_bounded(body, lead, what="tool call", max_depth=_CALL_DEPTH)
    except JSONBoundError as exc:
        return ParsedTurn("broken_call", thought, error=_bound_reason(exc))
    except json.JSONDecodeError as exc:
        return ParsedTurn("broken_call", thought, error=f"tool call is not valid JSON: {exc.msg}")
    if isinstance(value, list):
        if not value:
            return ParsedTurn("broken_call", thought, error="tool call is an empty list")
        value = value[0]
    # The bounded reader of the tag format checks depth, size and NaN: read the object again there.
    parsed = parse_turn(f"{CALL_OPEN}{json.dumps(value)}{CALL_CLOSE}", call_id, tool_names)
    if parsed.action == "answer":
        parsed = _call_from_object(value, thought, call_id)
    return replace(parsed, thought=thought, end=start + end)


# A native answer's first character may not open like a call ('<', '{', '[') nor be a newline.
_FIRST_ANSWER_CLASSES = {
    1: r"[\x09\x0D\x20-\x3B\x3D-\x5A\x5C-\x7A\x7C-\x7E]",
    4: r"[\u0080-\U0010FFFF]",
}


def _native_grammar(
    fmt: Format, tools: list[ToolSpec], allow_answer: bool, max_tokens: int | None = None
) -> str:
    """A native format's turn grammar, sized like the tag format's: with ``max_tokens`` every text it
    accepts is at most that many UTF-8 bytes (so tokens), and a tool whose smallest call does not fit
    is left out; integer and number bounds are exact (:mod:`sandbox.turns._schema_grammar`)."""
    from sandbox.turns._gbnf import byte_chain_rules, chain_ref, max_bytes
    from sandbox.turns._schema_grammar import BoundedConverter  # llama_cpp is heavy: import on use

    thought_bytes = turn_bounds(max_tokens)[0]
    opening, closing = {
        "hermes": (CALL_OPEN + NL, NL + CALL_CLOSE),
        "llama3": ("", ""),
        "mistral": (MISTRAL_CALLS + "[", "]"),
        "functiongemma": (gemma.CALL_HEAD, gemma.CALL_END),
    }[fmt.name]
    think_bytes = len((THINK_OPEN + NL + NL + THINK_CLOSE + NL).encode()) + thought_bytes if fmt.think else 0
    converter = BoundedConverter()
    rules = gemma.GemmaRules()
    args_key = "parameters" if fmt.name == "llama3" else "arguments"
    calls_gemma = fmt.name == "functiongemma"
    alternatives = []
    for index, tool in enumerate(tools):
        head_text = tool.name if calls_gemma else f'{{"name": {json.dumps(tool.name)}, "{args_key}": '
        tail_text = "" if calls_gemma else "}"
        caps = (MAX_STRING_CHARS, MAX_ARRAY_ITEMS)
        if max_tokens is not None:
            frame = len((opening + closing + tail_text + head_text).encode())
            measure = gemma_args_max_bytes if calls_gemma else args_max_bytes
            fitting = tool_caps(tool, max_tokens - think_bytes - frame, measure)
            if fitting is None:
                continue  # even its smallest call does not fit the turn
            caps = fitting
        if calls_gemma:
            rules.string_cap, rules.array_cap = caps
            args_rule = rules.visit(bounded_schema(tool.input_schema, *caps), f"tool{index}-args")
            alternatives.append(f"{_gbnf_literal(head_text)} {args_rule}")
            continue
        converter.string_cap, converter.array_cap = caps
        schema = converter.resolve_refs(bounded_schema(tool.input_schema, *caps), f"tool{index}")
        args_rule = converter.visit(schema, f"tool{index}-args")
        alternatives.append(f"{_gbnf_literal(head_text)} {args_rule} {_gbnf_literal(tail_text)}")
    if not alternatives:
        schema_rules = ""
    else:
        schema_rules = rules.text() if calls_gemma else _json_safe_chars(converter.format_grammar())
    # A plain-text answer gets the turn's room (the thought's, when there is one, comes first).
    room = max(1, (max_tokens - think_bytes) if max_tokens is not None else MAX_ANSWER_CHARS)
    lines = []
    if fmt.think:
        lines.append(
            f"root ::= {_gbnf_literal(THINK_OPEN + NL)} thought {_gbnf_literal(NL + THINK_CLOSE + NL)} action"
        )
        lines.append(f"thought ::= {chain_ref(_TEXT_BYTES, thought_bytes) or _gbnf_literal('')}")
    else:
        lines.append("root ::= action")
    actions = []
    if alternatives:
        actions.append("call")
        parts = [_gbnf_literal(opening)] if opening else []
        parts.append(f"( {' | '.join(alternatives)} )")
        if closing:
            parts.append(_gbnf_literal(closing))
        lines.append(f"call ::= {' '.join(parts)}")
    if allow_answer or not alternatives:
        actions.append("answer")
        first = " | ".join(
            f"{body} {chain_ref(_TEXT_BYTES, room - width)}".strip()
            for width, body in _FIRST_ANSWER_CLASSES.items()
            if width <= room
        )
        lines.append(f"answer ::= ( {first} )")
    lines.append(f"action ::= {' | '.join(actions)}")
    text_rules = byte_chain_rules(
        _TEXT_BYTES,
        _TEXT_CLASSES,
        max(thought_bytes if fmt.think else 0, room if allow_answer or not alternatives else 0, 1),
    )
    lines += [f"{name} ::= {body}" for name, body in text_rules.items()]
    grammar = "\n".join(lines) + "\n" + schema_rules
    if max_tokens is not None and max_bytes(grammar) > max(max_tokens, think_bytes + 1):
        raise AssertionError(f"constrained grammar exceeds {max_tokens} tokens")  # a bug in the sizing
    return grammar


# --------------------------------------------------------------------------- choosing


_TOOLS_BRANCH_RE = re.compile(r"\btools\b")


def detect_format(template: str | None) -> Format | None:
    """The native format a chat template's text shows, or None when it has no tools branch."""
    if not template or not _TOOLS_BRANCH_RE.search(template):
        return None
    think = THINK_OPEN in template
    if any(mark in template for mark in gemma.TEMPLATE_MARKS):
        return Format("functiongemma", think=think)
    if MISTRAL_CALLS in template:
        return Format("mistral", think=think)
    if PYTHON_TAG in template or "ipython" in template:
        return Format("llama3", think=think)
    if CALL_OPEN in template:
        return Format("hermes", think=think)
    return None


def choose_format(choice: str, template: str | None) -> Format:
    """``--format``: ``auto`` (native where the template has a tools branch, else tags), ``native``
    (refused when the template shows no known family), ``tags``, a family by name (thoughts as the
    template has them), or a label such as ``hermes+think`` (that format exactly, whatever the template)."""
    if not is_format_choice(choice):
        raise ConfigError(f"--format must be one of {', '.join(FORMAT_CHOICES)}, not {choice!r}")
    if "+" in choice:
        return format_from_label(choice)
    if choice == "tags":
        return Format("tags")
    detected = detect_format(template)
    if choice == "auto":
        return detected or Format("tags")
    if choice == "native":
        if detected is None:
            raise ConfigError(
                "--format native: the model's chat template has no tools branch of a known family "
                "(Hermes/Qwen <tool_call>, Llama 3 <|python_tag|>, Mistral [TOOL_CALLS], FunctionGemma "
                "<start_function_call>); use --format tags"
            )
        return detected
    think = detected.think if detected is not None else bool(template and THINK_OPEN in template)
    return Format(_family(choice), think=think)


def is_format_choice(choice: str) -> bool:
    """``choice`` is a ``--format`` value: one of :data:`FORMAT_CHOICES`, or a native label
    (``hermes+think``)."""
    name, plus, flag = choice.partition("+")
    if plus:
        return flag == "think" and name in FORMAT_NAMES and name != "tags"
    return choice in FORMAT_CHOICES


def _family(name: str) -> FormatName:
    for family in FORMAT_NAMES:
        if family == name:
            return family
    raise ConfigError(f"unknown turn format {name!r}")


def format_from_label(label: str) -> Format:
    """The :class:`Format` a trace's ``format`` field names (``tags``, ``hermes+think``, ...)."""
    name, _, flag = label.partition("+")
    family = _family(name)
    return Format(family, think=flag == "think" or family == "tags")
