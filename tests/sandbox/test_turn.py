import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.records import ToolSpec
from sandbox.turns import (
    MAX_STRING_CHARS,
    bounded_schema,
    build_grammar,
    complete_turn,
    parse_turn,
    render_call,
)

WEATHER = ToolSpec(
    name="get_hourly_forecast",
    description="Hourly forecast.",
    input_schema={
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "date": {"type": "string"},
            "start_hour": {"type": "integer", "minimum": 0, "maximum": 23},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["location", "date"],
    },
)


def test_tagged_call_with_thought() -> None:
    text = (
        "<think>\nneed the hourly one\n</think>\n<tool_call>\n"
        '{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    )
    turn = parse_turn(text)
    assert turn.action == "tool_call"
    assert turn.thought == "need the hourly one"
    assert turn.call is not None and turn.call.name == "f" and turn.call.arguments == {"a": 1}


def test_tagged_answer() -> None:
    turn = parse_turn("<think>easy</think>\n<answer>Paris</answer>")
    assert (turn.action, turn.answer, turn.thought) == ("answer", "Paris", "easy")


def test_plain_text_is_an_answer() -> None:
    turn = parse_turn("Final answer: 4")
    assert (turn.action, turn.answer) == ("answer", "4")


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "f", "arguments": {"a": 1}}\n```',
        '{"name": "f", "arguments": "{\\"a\\": 1}"}',
        '{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}',
        'Sure. {"tool": "f", "parameters": {"a": 1}} done',
        '<tool_call>[{"name": "f", "arguments": {"a": 1}}]</tool_call>',
        '<tool_call>{"name": "f", "arguments": {"a": 1}}',  # closing tag cut by a stop string
    ],
)
def test_lenient_call_shapes(text: str) -> None:
    turn = parse_turn(text)
    assert turn.action == "tool_call", turn.error
    assert turn.call is not None and (turn.call.name, turn.call.arguments) == ("f", {"a": 1})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<tool_call>{"name": "f", "arguments": {"a": </tool_call>', "not valid JSON"),
        ('<tool_call>{"arguments": {}}</tool_call>', "no tool name"),
        ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', "must be an object"),
        ('{"name": "f", "arguments": {', "looks like a tool call"),
        ("<think>only thinking</think>", "empty turn"),
        ("", "empty turn"),
    ],
)
def test_broken_calls_are_data(text: str, reason: str) -> None:
    turn = parse_turn(text)
    assert turn.action == "broken_call"
    assert turn.error is not None and reason in turn.error


@given(st.text(max_size=400))
@settings(max_examples=300)
def test_parser_never_raises(text: str) -> None:
    turn = parse_turn(text)
    assert turn.action in ("tool_call", "answer", "broken_call")
    assert (turn.error is not None) == (turn.action == "broken_call")


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=20) | st.booleans(), max_size=4))
def test_rendered_calls_parse_back(arguments: dict) -> None:
    from sandbox.records import ToolCall

    call = ToolCall(id="c", name="tool_x", arguments=arguments)
    turn = parse_turn("<think>x</think>\n" + render_call(call))
    assert turn.call is not None and turn.call.arguments == arguments


def test_complete_turn_restores_closing_tags() -> None:
    assert complete_turn("<answer>4").endswith("</answer>")
    assert complete_turn('<tool_call>\n{"name": "f"}').endswith("</tool_call>")
    assert complete_turn("<answer>4</answer>") == "<answer>4</answer>"


def test_bounded_schema_bounds_strings_and_arrays() -> None:
    schema = bounded_schema(WEATHER.input_schema)
    props = schema["properties"]
    assert props["location"]["maxLength"] == MAX_STRING_CHARS
    assert props["tags"]["maxItems"] > 0 and props["tags"]["items"]["maxLength"] == MAX_STRING_CHARS
    assert schema["additionalProperties"] is False
    assert "maxLength" not in WEATHER.input_schema["properties"]["location"]  # the original is untouched
    jsonschema.Draft202012Validator.check_schema(schema)


def test_grammar_compiles_in_llama_cpp() -> None:
    from llama_cpp import LlamaGrammar

    grammar = build_grammar(
        [WEATHER, ToolSpec(name="noargs", input_schema={"type": "object", "properties": {}})]
    )
    assert "get_hourly_forecast" in grammar and "answer ::=" in grammar
    LlamaGrammar.from_string(grammar, verbose=False)


def test_grammar_without_tools_only_answers() -> None:
    grammar = build_grammar([])
    assert "tool_call" not in grammar and "answer ::=" in grammar


def test_grammar_calls_validate_against_schema(llama_model) -> None:  # type: ignore[no-untyped-def]
    """Sampled under the grammar, every finished call is schema-valid."""
    from sandbox.models import ModelRequest
    from sandbox.records import Message, Sampling
    from sandbox.turns import system_prompt

    grammar = build_grammar([WEATHER], allow_answer=False)
    messages = [
        Message(role="system", content=system_prompt([WEATHER])),
        Message(role="user", content="Hourly weather for Denver today please."),
    ]
    for seed in range(3):
        response = llama_model.complete(
            ModelRequest(messages, Sampling(temperature=0.9, max_tokens=400, seed=seed), grammar=grammar)
        )
        if response.finish_reason == "length":
            continue
        turn = parse_turn(response.text)
        assert turn.action == "tool_call", response.text
        assert turn.call is not None
        jsonschema.validate(turn.call.arguments, WEATHER.input_schema)
        json.dumps(turn.call.arguments)


@given(
    low=st.integers(-50, 50),
    width=st.integers(0, 60),
    exclusive=st.booleans(),
    step=st.sampled_from([None, 1, 2, 5]),
)
def test_small_integer_ranges_become_exactly_their_valid_values(
    low: int, width: int, exclusive: bool, step: int | None
) -> None:
    schema: dict = {"type": "integer", "minimum": low}
    schema["exclusiveMaximum" if exclusive else "maximum"] = low + width
    if step:
        schema["multipleOf"] = step
    bounded = bounded_schema({"type": "object", "properties": {"n": schema}})["properties"]["n"]
    validator = jsonschema.Draft202012Validator(schema)
    valid = [v for v in range(low - 5, low + width + 5) if validator.is_valid(v)]
    if valid:
        assert bounded["enum"] == valid
    else:
        assert "enum" not in bounded
