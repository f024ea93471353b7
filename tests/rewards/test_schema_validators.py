"""Compiled argument validators decide exactly as jsonschema's Draft 2020-12 validator does."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from rewards._schemas import BoundedValidator, CompiledValidator, schema_validator

NAMES = ["city", "date", "limit", "tags"]
TYPE_NAMES = ["string", "integer", "number", "boolean", "null", "object", "array"]

# Few distinct numbers, shared by bounds and instances, so that values often sit exactly on a bound.
NUMBERS = [-2, 0, 1, 2, -2.0, 0.0, 1.0, 2.5]
sizes = st.none() | st.integers(min_value=0, max_value=3)
bounds = st.none() | st.sampled_from(NUMBERS)
PATTERNS = ["^[a-z]+$", "\\d", "^$", "ab|c", "^(x|y)*z?$"]


def _keywords(draw: st.DrawFn, subschemas: st.SearchStrategy[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if draw(st.booleans()):
        types = draw(st.lists(st.sampled_from(TYPE_NAMES), min_size=1, max_size=3, unique=True))
        schema["type"] = types[0] if len(types) == 1 and draw(st.booleans()) else types
    for keyword in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
        value = draw(sizes)
        if value is not None:
            schema[keyword] = value
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        value = draw(bounds)
        if value is not None:
            schema[keyword] = value
    if draw(st.booleans()):
        schema["properties"] = draw(st.dictionaries(st.sampled_from(NAMES), subschemas, max_size=3))
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
    if draw(st.booleans()):
        schema["additionalProperties"] = draw(subschemas)
    if draw(st.booleans()):
        schema["items"] = draw(subschemas)
    if draw(st.booleans()):
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    if draw(st.booleans()):
        schema.update(title="T", description="d", default=3, format="email")
    return schema


@st.composite
def _schema(draw: st.DrawFn, subschemas: st.SearchStrategy[Any]) -> dict[str, Any]:
    return _keywords(draw, subschemas)


schemas = st.recursive(st.booleans() | st.just({}), lambda inner: _schema(inner), max_leaves=6).filter(
    lambda schema: isinstance(schema, dict)
)
instances = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([*NUMBERS, float("nan"), float("inf"), 10**20])
    | st.floats()
    | st.text(max_size=4)
    | st.sampled_from(["", "abc", "a1", "xyz", "ab", "xxz"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from([*NAMES, "other"]), inner, max_size=4)
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(schemas, st.lists(instances, min_size=1, max_size=5))
def test_compiled_validators_agree_with_jsonschema(schema: dict[str, Any], values: list[Any]) -> None:
    compiled = schema_validator(schema)
    assert isinstance(compiled, CompiledValidator)
    reference = Draft202012Validator(schema)
    for value in values:
        assert compiled.is_valid(value) == reference.is_valid(value), (schema, value)


def test_other_keywords_are_left_to_jsonschema() -> None:
    for schema in (
        {"type": "object", "properties": {"unit": {"enum": ["C", "F"]}}},
        {"type": "array", "items": {"$ref": "#/$defs/x"}, "$defs": {"x": {"type": "string"}}},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
    ):
        validator = schema_validator(schema)
        assert isinstance(validator, BoundedValidator), schema
    enum = schema_validator({"type": "object", "properties": {"unit": {"enum": ["C", "F"]}}})
    assert not isinstance(enum, str)
    assert enum.is_valid({"unit": "C"}) and not enum.is_valid({"unit": "K"})


def test_a_seed_tool_schema_is_compiled_and_judges_calls() -> None:
    schema = {
        "type": "object",
        "properties": {
            "location": {"type": "string", "minLength": 1, "maxLength": 100, "title": "Location"},
            "start_hour": {"type": "integer", "minimum": 0, "maximum": 23, "default": 0},
        },
        "required": ["location"],
        "title": "get_hourly_forecastArguments",
    }
    validator = schema_validator(schema)
    assert isinstance(validator, CompiledValidator)
    assert validator.is_valid({"location": "Denver", "start_hour": 20})
    assert validator.is_valid({"location": "Denver", "start_hour": 20.0})  # 20.0 is an integer in JSON Schema
    assert not validator.is_valid({"location": "Denver", "start_hour": True})
    assert not validator.is_valid({"location": "", "start_hour": 20})
    assert not validator.is_valid({"start_hour": 20})
    assert not validator.is_valid({"location": "Denver", "start_hour": 24})


def test_an_unusable_schema_is_reported() -> None:
    assert isinstance(schema_validator({"type": "strnig"}), str)


def test_a_schema_changed_in_place_is_compiled_again() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    first = schema_validator(schema)
    assert not isinstance(first, str) and first.is_valid({"n": 1})
    schema["properties"]["n"]["type"] = "string"
    second = schema_validator(schema)
    assert not isinstance(second, str) and not second.is_valid({"n": 1}) and second.is_valid({"n": "1"})
