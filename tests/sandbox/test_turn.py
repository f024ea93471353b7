import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.records import ToolSpec
from sandbox.turns import (
    MAX_STRING_CHARS,
    action_end,
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


# --------------------------------------------------------------------------- which JSON is a call; order


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "Bob", "type": "person", "observations": ["likes tea"]}\n```',
        'The entities: {"name": "Bob", "type": "person"} and {"name": "Ann", "type": "person"}.',
        '{"name": "Bob"}',  # a name alone is a call only when it names a tool
        '{"name": "calculate", "arguments": {"x": 1}, "note": "extra key"}',
    ],
)
def test_json_that_is_not_call_shaped_is_answer_text(text: str) -> None:
    turn = parse_turn(text, tool_names={"calculate"})
    assert turn.action == "answer" and turn.call is None, turn
    assert turn.answer is not None and "{" in turn.answer


def test_a_name_alone_is_a_call_when_it_is_a_known_tool() -> None:
    turn = parse_turn('{"name": "get_time"}', tool_names={"get_time"})
    assert turn.action == "tool_call" and turn.call is not None and turn.call.arguments == {}
    assert parse_turn('{"name": "get_time"}').action == "answer"  # no tools known: not a call


def test_the_first_action_wins_and_says_where_it_ends() -> None:
    text = '<think>x</think>\n{"name": "calculate", "arguments": {"expression": "1+1"}}\n<answer>3</answer>'
    turn = parse_turn(text)
    assert turn.action == "tool_call" and turn.call is not None
    assert turn.call.name == "calculate" and turn.call.arguments == {"expression": "1+1"}
    assert text[: turn.end].endswith('"1+1"}}') and "<answer>" not in text[: turn.end]
    answer_first = "<think>x</think>\n<answer>2</answer>\n" + render_call(turn.call)
    parsed = parse_turn(answer_first)
    assert (parsed.action, parsed.answer) == ("answer", "2")
    assert answer_first[: parsed.end].endswith("</answer>")
    tagged_first = '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n<answer>3</answer>'
    assert parse_turn(tagged_first).action == "tool_call"


def test_action_end_only_for_a_complete_action() -> None:
    call = '<think>a {"name": "f", "arguments": {}}</think>\n{"name": "f", "arguments": {"a": 1}}'
    assert action_end(call) == len(call)
    assert action_end(call + "\n<tool_response>made up") == len(call)
    assert action_end(call[:-1]) is None  # the object is not closed yet
    assert action_end('<think>a {"name": "f", "arguments": {}}') is None  # still thinking
    assert action_end('<tool_call>{"name": "f", "arguments": {}}') is None  # its tag is still open
    assert action_end("<answer>4") is None and action_end("<answer>4</answer>") == len("<answer>4</answer>")
    assert action_end('{"name": "Bob", "type": "person"}') is None


def test_json_error_text_names_the_character_once() -> None:
    turn = parse_turn('<tool_call>{"name": "f", "arguments": {"a": "x</tool_call>')
    assert turn.error is not None and "at at" not in turn.error
    assert turn.error == "tool call is not valid JSON: Unterminated string starting at (character 34)"


_calls = st.builds(
    lambda name, args: {"name": name, "arguments": args},
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=10), max_size=3),
)


_plain = st.text(alphabet=st.characters(blacklist_characters="{}<>"), max_size=60)


@given(_plain, _calls, st.text(max_size=80))
@settings(max_examples=200)
def test_a_bare_call_wins_over_whatever_follows(prefix: str, call: dict, tail: str) -> None:
    text = prefix + json.dumps(call) + tail
    turn = parse_turn(text)
    assert turn.action == "tool_call" and turn.call is not None
    assert (turn.call.name, turn.call.arguments) == (call["name"], call["arguments"])
    assert turn.end == len(prefix) + len(json.dumps(call))


_nameless = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.dictionaries(st.sampled_from(["type", "age", "x", "id"]), inner, max_size=3)
        | st.lists(inner, max_size=3)
    ),
    max_leaves=8,
)


@given(_nameless)
def test_json_without_a_name_is_never_a_call(value: object) -> None:
    turn = parse_turn("Result: " + json.dumps(value), tool_names={"f"})
    assert turn.action == "answer"


# --------------------------------------------------------------------------- tool cards


def test_a_tool_card_drops_generated_titles_and_keeps_every_constraint() -> None:
    from sandbox.turns import card_schema

    schema = {
        "title": "playArguments",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "title": {"title": "Title", "type": "string", "maxLength": 20},
            "tags": {"type": "array", "items": {"title": "Tag", "type": "string", "enum": ["a", "b"]}},
            "extra": {"type": "object", "additionalProperties": {"title": "V", "type": "integer"}},
            "pick": {
                "anyOf": [{"title": "A", "type": "integer", "minimum": 1}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["title"],
    }
    card = card_schema(schema)
    assert "title" not in card and "additionalProperties" not in card
    assert list(card["properties"]) == ["title", "tags", "extra", "pick"]  # a property named title stays
    assert card["properties"]["title"] == {"type": "string", "maxLength": 20}
    assert card["properties"]["tags"]["items"] == {"type": "string", "enum": ["a", "b"]}
    assert card["properties"]["extra"]["additionalProperties"] == {"type": "integer"}
    assert card["properties"]["pick"] == {
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
        "default": None,
    }
    assert card["required"] == ["title"]
    assert schema["title"] == "playArguments"  # the tool's own schema is not changed


def test_a_tool_card_leaves_out_bounds_no_call_comes_near() -> None:
    from sandbox.turns import card_schema

    schema = {
        "type": "object",
        "properties": {
            "offset": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
            "delta": {"type": "integer", "minimum": -(2**63), "maximum": 23},
            "content": {"type": "string", "minLength": 1, "maxLength": 1_000_000},
            "path": {"type": "string", "maxLength": 999},
            "flag": {"type": "boolean", "default": True},
        },
    }
    card = card_schema(schema)["properties"]
    assert card["offset"] == {"type": "integer", "minimum": 0}
    assert card["delta"] == {"type": "integer", "maximum": 23}
    assert card["content"] == {"type": "string", "minLength": 1}
    assert card["path"] == {"type": "string", "maxLength": 999}
    assert card["flag"] == {"type": "boolean", "default": True}


_CARD_SCHEMAS = [
    WEATHER.input_schema,
    {
        "title": "A",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "n": {"title": "N", "type": "integer", "minimum": -3, "maximum": 40},
            "items": {
                "type": "array",
                "maxItems": 3,
                "items": {"title": "I", "type": "string", "maxLength": 4},
            },
            "title": {"anyOf": [{"title": "T", "type": "string"}, {"type": "null"}]},
        },
        "required": ["n"],
    },
]


@pytest.mark.parametrize("schema", _CARD_SCHEMAS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_tool_card_accepts_what_its_schema_accepts(schema: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    """Dropping titles and a closed object only loosens: every instance of the schema fits its card."""
    from hypothesis_jsonschema import from_schema

    from sandbox.turns import card_schema

    instance = data.draw(from_schema(schema))
    jsonschema.validate(instance, card_schema(schema))


# --------------------------------------------------------------------------- tool results


def test_an_indented_json_result_is_shown_compact_and_means_the_same() -> None:
    from sandbox.turns import compact_result

    pretty = json.dumps({"hours": [{"hour": 20, "temp_f": 35, "note": "café"}]}, indent=2)
    shown = compact_result(pretty)
    assert shown == '{"hours": [{"hour": 20, "temp_f": 35, "note": "café"}]}'
    assert json.loads(shown) == json.loads(pretty)
    for text in ("12.5", "Paris", "[1, 2] and more", '{"a": 1, "a": 2}', '{"x": NaN}', "[" * 5000, ""):
        assert compact_result(text) == text  # not one JSON document, or one re-dumping would change


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    ),
    st.sampled_from([None, 1, 2, 4]),
)
def test_a_compact_result_reads_back_as_the_same_value(value: object, indent: int | None) -> None:
    from sandbox.turns import compact_result

    text = json.dumps(value, indent=indent, ensure_ascii=False)
    shown = compact_result(text)
    assert json.loads(shown) == value and len(shown) <= len(text)
