"""Constrained mode's bounds: every turn fits the turn's token limit, and numbers keep to their ranges.

The range rules are checked against Python's own reading of the numbers (hypothesis), the sizing
against the grammar's longest text, and both on the real model: through llama.cpp's sampler and
through the real hub with a fixture server whose tools take bounded numbers and unbounded strings.
"""

from __future__ import annotations

import json
import math
import re
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.records import ToolSpec
from sandbox.turns import Format, build_grammar, parse_turn
from sandbox.turns._gbnf import MAX_MAGNITUDE, decimal_range_rule, integer_range_rule, max_bytes
from sandbox.turns._turn import tool_caps, turn_bounds

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JSON_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def rule_regex(body: str) -> re.Pattern[str]:
    """A range rule's body (literals, digit classes, alternatives) as the regex it means."""
    parts = []
    for token in re.findall(r'"[^"]*"|\[[^\]]*\]|[|()]', body):
        parts.append(re.escape(token[1:-1]) if token.startswith('"') else token)
    return re.compile("".join(parts))


# --------------------------------------------------------------------------- integer and decimal ranges

bound = st.one_of(st.none(), st.integers(-(10**7), 10**7), st.integers(-(10**16), 10**16))


@given(low=bound, high=bound, data=st.data())
@settings(max_examples=300, deadline=None)
def test_integer_rule_accepts_exactly_the_range(
    low: int | None, high: int | None, data: st.DataObject
) -> None:
    body = integer_range_rule(low, high)
    first = -MAX_MAGNITUDE if low is None else max(low, -MAX_MAGNITUDE)
    last = MAX_MAGNITUDE if high is None else min(high, MAX_MAGNITUDE)
    if first > last:
        assert body == ""
        return
    regex = rule_regex(body)
    near = [first - 1, first, first + 1, last - 1, last, last + 1, 0, -1, 1, 10**9, -(10**9)]
    values = near + data.draw(st.lists(st.integers(first - 100, last + 100), max_size=20))
    for value in values:
        assert bool(regex.fullmatch(str(value))) == (first <= value <= last), (body, value)
    # and nothing that is not a JSON integer: leading zeros, "-0", signs, points
    for text in data.draw(st.lists(st.text("-+0123456789.e", min_size=1, max_size=8), max_size=30)):
        if regex.fullmatch(text):
            assert JSON_INTEGER.fullmatch(text) and text != "-0", (body, text)
            assert first <= int(text) <= last


def test_integer_rule_for_the_issue_range() -> None:
    regex = rule_regex(integer_range_rule(1, 999999))
    assert regex.fullmatch("999999") and regex.fullmatch("1") and regex.fullmatch("5000")
    assert not regex.fullmatch("1000000") and not regex.fullmatch("0") and not regex.fullmatch("-1")


decimal_bound = st.one_of(
    st.none(),
    st.fractions(min_value=-1000, max_value=1000, max_denominator=1000),
    st.integers(-(10**6), 10**6).map(Fraction),
)


@given(
    low=decimal_bound,
    high=decimal_bound,
    low_exclusive=st.booleans(),
    high_exclusive=st.booleans(),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_decimal_rule_accepts_exactly_the_range(
    low: Fraction | None,
    high: Fraction | None,
    low_exclusive: bool,
    high_exclusive: bool,
    data: st.DataObject,
) -> None:
    body = decimal_range_rule(low, high, low_exclusive=low_exclusive, high_exclusive=high_exclusive)

    def inside(value: Fraction) -> bool:
        if low is not None and (value <= low if low_exclusive else value < low):
            return False
        if high is not None and (value >= high if high_exclusive else value > high):
            return False
        return abs(value) <= MAX_MAGNITUDE

    regex = rule_regex(body) if body else re.compile(r"(?!)")
    anchors = [b for b in (low, high) if b is not None] + [Fraction(0)]
    values = [a + Fraction(d, 10**6) for a in anchors for d in (-1, 0, 1)]
    values += data.draw(
        st.lists(st.fractions(min_value=-2000, max_value=2000, max_denominator=10**6), max_size=20)
    )
    for value in values:
        if (value * 10**6).denominator != 1:
            continue  # more than six fraction digits: never written
        for places in range(7):
            text = f"{Decimal(value.numerator) / Decimal(value.denominator):.{places}f}"
            if Fraction(text) == value:
                assert bool(regex.fullmatch(text)) == inside(value), (body[:200], text)
    for text in data.draw(st.lists(st.text("-0123456789.", min_size=1, max_size=9), max_size=30)):
        if regex.fullmatch(text):
            assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?", text) and inside(Fraction(text)), text
            assert not re.fullmatch(r"-0(\.0*)?", text), text


# --------------------------------------------------------------------------- the longest text


def test_max_bytes_reads_gbnf() -> None:
    assert max_bytes('root ::= "ab" [x-z]? ( "c" | "dddd" )') == 7
    assert max_bytes('root ::= [^a] "é"') == 4 + 2
    assert max_bytes("root ::= item{2,5}\nitem ::= [0-9]") == 5
    assert max_bytes('root ::= "a"*') == math.inf
    assert max_bytes('root ::= "[" ( root )? "]"') == math.inf  # recursion
    assert max_bytes('root ::= "x" ""*') == 1


schema_leaf = st.one_of(
    st.just({"type": "string"}),
    st.integers(0, 500).map(lambda n: {"type": "string", "maxLength": n}),
    st.integers(0, 8).map(lambda n: {"type": "string", "minLength": n}),
    st.just({"type": "integer"}),
    st.tuples(st.integers(-(10**9), 0), st.integers(0, 10**9)).map(
        lambda b: {"type": "integer", "minimum": b[0], "maximum": b[1]}
    ),
    st.just({"type": "number", "exclusiveMinimum": 0, "maximum": 2.5}),
    st.just({"type": "number", "minimum": -50}),
    st.just({"type": "number"}),
    st.just({"type": "boolean"}),
    st.just({"type": "string", "enum": ["a", "bb"]}),
    st.just({}),
    st.just({"type": "object"}),
    st.just({"type": "object", "additionalProperties": {"type": "string"}}),
    st.just({"type": "array"}),
)
schemas = st.recursive(
    schema_leaf,
    lambda inner: st.one_of(
        inner.map(lambda item: {"type": "array", "items": item}),
        st.dictionaries(
            st.sampled_from(["a", "path", "message", "n", "items"]), inner, min_size=1, max_size=3
        ).flatmap(
            lambda props: st.sets(st.sampled_from(sorted(props))).map(
                lambda required: {"type": "object", "properties": props, "required": sorted(required)}
            )
        ),
    ),
    max_leaves=6,
)
tool_names = st.sampled_from(["f", "git_status", "save_a_long_note_to_the_notebook"])


@given(
    tools=st.lists(st.tuples(tool_names, schemas), min_size=0, max_size=3, unique_by=lambda t: t[0]),
    max_tokens=st.integers(36, 1500),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_text_the_grammar_accepts_fits_the_token_limit(tools: list, max_tokens: int) -> None:
    from llama_cpp import LlamaGrammar

    specs = [
        ToolSpec(name=name, input_schema={"type": "object", "properties": {"x": schema}, "required": ["x"]})
        for name, schema in tools
    ]
    grammar = build_grammar(specs, max_tokens=max_tokens)
    assert max_bytes(grammar) <= max_tokens
    LlamaGrammar.from_string(grammar, verbose=False)


NATIVE_FORMATS = [
    Format(name, think=think)
    for name in ("hermes", "llama3", "mistral", "functiongemma")
    for think in (False, True)
]


@given(
    fmt=st.sampled_from(NATIVE_FORMATS),
    tools=st.lists(st.tuples(tool_names, schemas), min_size=0, max_size=3, unique_by=lambda t: t[0]),
    max_tokens=st.integers(96, 1500),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_grammars_fit_the_token_limit_too(fmt: Format, tools: list, max_tokens: int) -> None:
    """Each native format's grammar is sized like the tag format's: no accepted text is longer."""
    from llama_cpp import LlamaGrammar

    specs = [
        ToolSpec(name=name, input_schema={"type": "object", "properties": {"x": schema}, "required": ["x"]})
        for name, schema in tools
    ]
    grammar = fmt.grammar(specs, max_tokens=max_tokens)
    assert max_bytes(grammar) <= max_tokens
    LlamaGrammar.from_string(grammar, verbose=False)


def test_native_grammars_keep_number_bounds() -> None:
    """The digit-range rule of a bounded integer reaches the native grammars, not just the tag one."""
    tool = ToolSpec(
        name="fetch",
        input_schema={
            "type": "object",
            "properties": {"max_length": {"type": "integer", "minimum": 1, "maximum": 999999}},
            "required": ["max_length"],
        },
    )
    expected = integer_range_rule(1, 999999)
    for fmt in NATIVE_FORMATS:
        assert expected in fmt.grammar([tool], max_tokens=384), fmt.label


def test_caps_keep_calls_useful_at_the_default_limit() -> None:
    """At 384 tokens a one-string tool keeps nearly the full 200-byte string, two strings about 90."""
    thought, answer = turn_bounds(384)
    assert thought == 85 and answer > 250
    one = ToolSpec(
        name="git_status", input_schema={"type": "object", "properties": {"repo_path": {"type": "string"}}}
    )
    two = ToolSpec(
        name="git_commit",
        input_schema={
            "type": "object",
            "properties": {"repo_path": {"type": "string"}, "message": {"type": "string"}},
        },
    )
    room = 384 - 18 - thought - 26 - len('{"name": "git_status", "arguments": ')
    one_caps, two_caps = tool_caps(one, room), tool_caps(two, room)
    assert one_caps is not None and one_caps[0] >= 190
    assert two_caps is not None and two_caps[0] >= 80
    grammar = build_grammar([one, two], max_tokens=384)
    assert "git_status" in grammar and "git_commit" in grammar


def test_a_tool_whose_smallest_call_does_not_fit_is_left_out() -> None:
    wide = ToolSpec(
        name="wide",
        input_schema={"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(20)}},
    )
    grammar = build_grammar([wide], max_tokens=96)
    assert "wide" not in grammar and "answer ::=" in grammar
    assert "wide" in build_grammar([wide], max_tokens=1024)


# --------------------------------------------------------------------------- on the real model

NOTE = ToolSpec(
    name="save_a_long_note_to_the_notebook",
    description="Save a note of any length.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)
NOTE_SHORT = ToolSpec(
    name="note",
    description="Save a note.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)


@pytest.mark.model
@pytest.mark.parametrize("max_tokens", [48, 96, 160, 384])
def test_constrained_turns_close_within_the_token_limit(llama_model, max_tokens: int) -> None:  # type: ignore[no-untyped-def]
    """A long string argument and a hot sampler: every turn is a call or an answer, never cut off."""
    from sandbox.models import ModelRequest
    from sandbox.records import Message, Sampling
    from sandbox.turns import system_prompt

    actions = []
    for tools in ([NOTE], [NOTE_SHORT]):
        grammar = build_grammar(tools, max_tokens=max_tokens)
        messages = (
            Message(role="system", content=system_prompt(tools)),
            Message(
                role="user", content="Save a note with the whole text of the US Declaration of Independence."
            ),
        )
        for seed in range(3):
            sampling = Sampling(temperature=1.2, max_tokens=max_tokens, seed=seed)
            response = llama_model.complete(ModelRequest(messages, sampling, grammar=grammar))
            turn = parse_turn(response.text)
            assert turn.action in ("tool_call", "answer"), response.text
            assert response.usage.completion_tokens <= max_tokens
            if turn.call is not None:
                jsonschema.validate(turn.call.arguments, tools[0].input_schema)
            actions.append(turn.action)
    if max_tokens >= 96:
        assert "tool_call" in actions  # the short-named tool fits from 96 tokens on


@pytest.mark.model
@pytest.mark.anyio
async def test_calls_through_the_hub_keep_to_the_schema(llama_model) -> None:  # type: ignore[no-untyped-def]
    """The real hub, a stdio server with bounded numbers, the real model in constrained mode: every
    call validates against the tool's schema, the server refuses none, no turn is a broken call."""
    from sandbox.episodes import Limits, run_episode
    from sandbox.hub import ToolHub, load_config
    from sandbox.records import Sampling, Task

    config = load_config(
        {
            "mcpServers": {
                "bounded": {"command": sys.executable, "args": [str(FIXTURES / "bounded_server.py")]}
            }
        }
    )
    prompts = [
        "Fetch https://example.com with max_length 1000000, start_index -100 and ratio 3.5.",
        "Use fetch_page on http://a.b/c with the biggest max_length you can, then save a long note about it.",
    ]
    calls = 0
    async with ToolHub(config) as hub:
        schemas = {tool.name: tool.input_schema for tool in hub.tools(["bounded"])}
        for index, prompt in enumerate(prompts):
            task = Task(id=f"bounded-{index}", prompt=prompt, servers=["bounded"])
            for seed in range(3):
                for max_tokens in (128, 384):
                    sampling = Sampling(temperature=1.0, max_tokens=max_tokens, seed=seed)
                    trace = await run_episode(task, llama_model, hub, Limits(max_steps=3), sampling=sampling)
                    for step in trace.steps:
                        assert step.action != "broken_call", (step.raw_text, step.parse_error)
                        if step.call is not None:
                            calls += 1
                            jsonschema.validate(step.call.arguments, schemas[step.call.name])
                            assert step.result is not None and not step.result.is_error, step.result.text
                            json.dumps(step.call.arguments)
    assert calls >= 4


@given(
    tools=st.lists(st.tuples(tool_names, schemas), min_size=1, max_size=3, unique_by=lambda t: t[0]),
    max_tokens=st.integers(64, 1500),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_functiongemma_grammars_fit_the_token_limit(tools: list, max_tokens: int) -> None:
    """FunctionGemma's grammar (its own value syntax, not JSON) is sized like the others."""
    from llama_cpp import LlamaGrammar

    specs = [
        ToolSpec(name=name, input_schema={"type": "object", "properties": {"x": schema}, "required": ["x"]})
        for name, schema in tools
    ]
    grammar = Format("functiongemma", think=False).grammar(specs, max_tokens=max_tokens)
    assert max_bytes(grammar) <= max_tokens
    LlamaGrammar.from_string(grammar, verbose=False)


CALC = ToolSpec(
    name="calculate",
    description="Exact arithmetic.",
    input_schema={
        "type": "object",
        "properties": {
            "expression": {"type": "string"},
            "precision": {"type": "integer", "minimum": 0, "maximum": 12},
            "mode": {"enum": ["exact", "float"]},
        },
        "required": ["expression"],
    },
)


@pytest.mark.model
def test_constrained_functiongemma_turns_read_back_as_schema_valid_calls(llama_model) -> None:  # type: ignore[no-untyped-def]
    """What the grammar lets the real model write is a FunctionGemma call the parser reads back,
    valid against the tool's schema, within the token limit."""
    from sandbox.models import ModelRequest
    from sandbox.records import Message, Sampling

    fmt = Format("functiongemma", think=False)
    grammar = fmt.grammar([CALC], allow_answer=False, max_tokens=160)
    assert "calculate" in grammar  # the tool fits the turn (each <escape> counts its 8 bytes)
    messages = (
        Message(role="system", content=fmt.system_prompt([CALC])),
        Message(role="user", content="What is 17*24-39? Use the calculator."),
    )
    for seed in range(3):
        sampling = Sampling(temperature=1.0, max_tokens=160, seed=seed)
        response = llama_model.complete(ModelRequest(messages, sampling, grammar=grammar))
        turn = fmt.parse(response.text)
        assert turn.action == "tool_call" and turn.call is not None, (response.text, turn.error)
        assert response.text.startswith("<start_function_call>call:calculate{expression:<escape>")
        jsonschema.validate(turn.call.arguments, CALC.input_schema)
        assert response.usage.completion_tokens <= 160
