"""llama-cpp-python's JSON-schema converter with bounded strings, number ranges and free-form values.

Imported on use by :func:`sandbox.turns.build_grammar` (llama_cpp is heavy). It replaces four kinds
of schema node, and leaves every other node to llama-cpp-python's ``SchemaConverter``:

* a plain string (no ``pattern``, ``format``, ``enum`` or ``const``) with ``maxLength`` N: at most N
  **bytes** of JSON string content (:data:`JSON_CHAR_CLASSES`; raw UTF-8, the two-character escapes,
  no ``\\uXXXX``), so its worst case in tokens is N, not 6·N as a character count with escapes is;
* an ``integer`` with ``minimum``/``maximum``/``exclusive*``: exactly the integers in the range
  (:func:`~sandbox.turns._gbnf.integer_range_rule`); the converter ignores these keywords;
* a ``number`` with such bounds: exactly the decimals in the range with at most six fraction digits
  and no exponent (:func:`~sandbox.turns._gbnf.decimal_range_rule`);
* a free-form value (``{}``, an object without ``properties``, an array without ``items``): a scalar,
  or an array or object of at most ``array_cap`` scalars, strings at most ``string_cap`` bytes.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from llama_cpp.llama_grammar import RESERVED_NAMES, STRING_FORMAT_RULES, SchemaConverter

from sandbox.turns._gbnf import byte_chain_rules, chain_ref, decimal_range_rule, integer_range_rule

JSON_BYTES = "jsonbytes"
# JSON string content by encoded width: printable ASCII but `"` and `\`; a two-character escape;
# any wider character, counted as 4 bytes (fewer alternatives per byte, fewer grammar stacks).
JSON_CHAR_CLASSES = {
    1: r"[\x20\x21\x23-\x5B\x5D-\x7E]",
    2: r'"\\" ["\\/bfnrt]',
    4: r"[\u0080-\U0010FFFF]",
}
_ANY_CHAR = " | ".join(f"( {alternative} )" for alternative in JSON_CHAR_CLASSES.values())
_BOUNDED_NUMBER = r'"-"? [0-9]{1,15} ( "." [0-9]{1,6} )? space'
_STRUCTURAL = ("$ref", "oneOf", "anyOf", "allOf", "const", "enum")


def _exact(value: Any) -> Fraction | None:
    """A schema bound as an exact fraction (a float by its shortest decimal), or None if it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def number_bounds(schema: dict[str, Any]) -> tuple[Fraction | None, bool, Fraction | None, bool]:
    """(low, low exclusive, high, high exclusive) of a numeric schema, drafts 4 and 2020-12 alike."""
    low, high = _exact(schema.get("minimum")), _exact(schema.get("maximum"))
    low_exclusive = high_exclusive = False
    if schema.get("exclusiveMinimum") is True:
        low_exclusive = low is not None
    elif (bound := _exact(schema.get("exclusiveMinimum"))) is not None and (low is None or bound >= low):
        low, low_exclusive = bound, True
    if schema.get("exclusiveMaximum") is True:
        high_exclusive = high is not None
    elif (bound := _exact(schema.get("exclusiveMaximum"))) is not None and (high is None or bound <= high):
        high, high_exclusive = bound, True
    return low, low_exclusive, high, high_exclusive


def integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The least and greatest integer a schema's numeric bounds allow (None: unbounded)."""
    low, low_exclusive, high, high_exclusive = number_bounds(schema)
    first = None if low is None else (math.floor(low) + 1 if low_exclusive else math.ceil(low))
    last = None if high is None else (math.ceil(high) - 1 if high_exclusive else math.floor(high))
    return first, last


class BoundedConverter(SchemaConverter):
    """A ``SchemaConverter`` whose strings, numbers and free-form values have bounded length."""

    def __init__(self) -> None:
        super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        self.string_cap = 200
        self.array_cap = 16

    def visit(self, schema: Any, name: str) -> str:
        if not isinstance(schema, dict) or any(key in schema for key in _STRUCTURAL):
            return str(super().visit(schema, name))
        rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
        if schema.get("items") == {}:  # the converter takes an empty ``items`` for a missing one
            schema = {**schema, "items": {"description": "any value"}}
        kind = schema.get("type")
        bounded = any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
        if kind == "integer" and bounded and schema.get("multipleOf", 1) == 1:
            body = integer_range_rule(*integer_bounds(schema))
            if body:
                return str(self._add_rule(rule_name, f"( {body} ) space"))
        if kind == "number" and bounded:
            low, low_exclusive, high, high_exclusive = number_bounds(schema)
            body = decimal_range_rule(low, high, low_exclusive=low_exclusive, high_exclusive=high_exclusive)
            if body:
                return str(self._add_rule(rule_name, f"( {body} ) space"))
        if kind == "string" and self._plain_string(schema):
            size = int(schema.get("maxLength", self.string_cap))
            return str(self._add_rule(rule_name, self._string(size, int(schema.get("minLength", 0)))))
        if self._free_form(schema):
            return str(self._add_rule(rule_name, self._any_value()))
        if (
            kind in (None, "object")
            and "properties" not in schema
            and isinstance(schema.get("additionalProperties"), dict)
        ):
            value = self.visit(schema["additionalProperties"], f"{name}-value")
            return str(self._add_rule(rule_name, self._members(value)))
        return str(super().visit(schema, name))

    @staticmethod
    def _plain_string(schema: dict[str, Any]) -> bool:
        schema_format = schema.get("format") or ""
        return (
            "pattern" not in schema
            and f"{schema_format}-string" not in STRING_FORMAT_RULES
            and not re.match(r"^uuid[1-5]?$", schema_format)
        )

    @staticmethod
    def _free_form(schema: dict[str, Any]) -> bool:
        kind = schema.get("type")
        if kind is None:
            return not any(
                key in schema for key in ("properties", "additionalProperties", "items", "prefixItems")
            )
        if kind == "object":
            return "properties" not in schema and schema.get("additionalProperties", True) is True
        if kind == "array":
            return "items" not in schema and "prefixItems" not in schema
        return False

    def _string(self, size: int, least: int) -> str:
        """A JSON string of at most ``size`` bytes of content (at least ``least`` characters)."""
        size = max(size, 0)
        rest = max(0, size - 4 * least)
        for rule, body in byte_chain_rules(JSON_BYTES, JSON_CHAR_CLASSES, rest).items():
            self._add_rule(rule, body)
        parts = ['"\\""'] + [f"( {_ANY_CHAR} )"] * least + [chain_ref(JSON_BYTES, rest), '"\\"" space']
        return " ".join(part for part in parts if part)

    def _scalar(self) -> str:
        string = self._add_rule(f"bounded-string-{self.string_cap}", self._string(self.string_cap, 0))
        number = self._add_rule("bounded-number", _BOUNDED_NUMBER)
        return str(
            self._add_rule(
                f"bounded-scalar-{self.string_cap}",
                f'{string} | {number} | ("true" | "false" | "null") space',
            )
        )

    def _members(self, value: str) -> str:
        key = self._add_rule(f"bounded-string-{self.string_cap}", self._string(self.string_cap, 0))
        member = f'{key} ":" space {value}'
        if self.array_cap == 0:
            return '"{" space "}" space'
        more = f' ( "," space {member} ){{0,{self.array_cap - 1}}}' if self.array_cap > 1 else ""
        return f'"{{" space ( {member}{more} )? "}}" space'

    def _any_value(self) -> str:
        scalar = self._scalar()
        if self.array_cap == 0:
            items = '"[" space "]" space'
        else:
            more = f' ( "," space {scalar} ){{0,{self.array_cap - 1}}}' if self.array_cap > 1 else ""
            items = f'"[" space ( {scalar}{more} )? "]" space'
        return f"{scalar} | {items} | {self._members(scalar)}"
