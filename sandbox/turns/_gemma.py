"""FunctionGemma's call syntax: writing, reading, and the constrained-mode grammar of its values.

A call is ``<start_function_call>call:NAME{key:value,...}<end_function_call>``; a tool result is
shown as ``<start_function_response>response:NAME{value:<escape>TEXT<escape>}<end_function_response>``
(the template writes the two outer tags around the ``tool`` message). Values:

* a string between two ``<escape>`` marks (a string holding ``<escape>`` itself cannot be written);
* a number, ``true``, ``false`` or ``null``, bare;
* a list ``[v,v]`` and an object ``{key:v,key:v}`` with bare keys; a key that is not a plain name
  (letters, digits, ``_ . - $ @``) is written between ``<escape>`` marks.

Reading is lenient where FunctionGemma's own documents are: a bare word that is no number or literal
is a string (``unit:celsius``), and spaces around the marks are skipped. Reading stops past
:data:`~sandbox.records.MAX_JSON_DEPTH` levels of nesting, as JSON calls do.

:class:`GemmaRules` turns an input schema (already bounded by ``bounded_schema``) into GBNF rules of
this syntax: the same bounds as the JSON grammar (strings at most ``string_cap`` bytes, arrays at
most ``array_cap`` items, exact integer and number ranges), so a turn's grammar fits its token limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.records import MAX_JSON_DEPTH

CALL_START = "<start_function_call>"
CALL_END = "<end_function_call>"
RESPONSE_START = "<start_function_response>"
RESPONSE_END = "<end_function_response>"
ESCAPE = "<escape>"
CALL_HEAD = CALL_START + "call:"
# What shows a FunctionGemma chat template (its tool declarations, calls or results).
TEMPLATE_MARKS = ("<start_function_declaration>", CALL_START, RESPONSE_START)
# FunctionGemma calls tools only after this sentence, right before the tool declarations.
DEVELOPER_PROMPT = "You are a model that can do function calling with the following functions"

_KEY_RE = re.compile(r"[A-Za-z0-9_.$@-]+")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_BARE_END = re.compile(r"[,}\]<]")
_NAME_RE = re.compile(r"\s*([^\s{}<>:,]+)\s*\{")


class GemmaSyntaxError(ValueError):
    """A call that cannot be read; the message says where and why."""


# --------------------------------------------------------------------------- writing


def render_value(value: Any) -> str:
    """A JSON value in FunctionGemma's syntax (see the module doc)."""
    if isinstance(value, str):
        return f"{ESCAPE}{value}{ESCAPE}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{render_key(str(k))}:{render_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(render_value(v) for v in value) + "]"
    return json.dumps(value)


def render_key(key: str) -> str:
    return key if _KEY_RE.fullmatch(key) else f"{ESCAPE}{key}{ESCAPE}"


def render_call(name: str, arguments: dict[str, Any]) -> str:
    return f"{CALL_HEAD}{name}{render_value(arguments)}{CALL_END}"


def render_response(name: str, text: str) -> str:
    """A tool result as the ``tool`` message holds it (the template adds the response tags)."""
    return f"{name}{{value:{ESCAPE}{text}{ESCAPE}}}"


# --------------------------------------------------------------------------- reading


def read_call(text: str, start: int) -> tuple[str, dict[str, Any], int, bool]:
    """The call whose ``<start_function_call>`` is at ``start``: its name, its arguments, where it ends
    and whether its closing tag is there (a call may end with its object, as a stop string leaves it).
    Raises :class:`GemmaSyntaxError`."""
    index = start + len(CALL_START)
    index = _skip(text, index)
    if not text.startswith("call:", index):
        raise GemmaSyntaxError("FunctionGemma call: 'call:' does not follow <start_function_call>")
    match = _NAME_RE.match(text, index + len("call:"))
    if match is None:
        raise GemmaSyntaxError("FunctionGemma call: no tool name followed by '{'")
    arguments, end = _read_object(text, match.end() - 1, 1)
    after = _skip(text, end)
    if text.startswith(CALL_END, after):
        return match.group(1), arguments, after + len(CALL_END), True
    return match.group(1), arguments, end, False


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _fail(text: str, index: int, why: str) -> GemmaSyntaxError:
    return GemmaSyntaxError(f"FunctionGemma call: {why} (character {index + 1})")


def _read_value(text: str, index: int, depth: int) -> tuple[Any, int]:
    index = _skip(text, index)
    if text.startswith(ESCAPE, index):
        return _read_escaped(text, index)
    head = text[index : index + 1]
    if head == "{":
        return _read_object(text, index, depth + 1)
    if head == "[":
        return _read_list(text, index, depth + 1)
    match = _BARE_END.search(text, index)
    end = match.start() if match else len(text)
    word = text[index:end].strip()
    if not word:
        raise _fail(text, index, "a value is missing")
    if word in _LITERALS:
        return _LITERALS[word], end
    if _NUMBER_RE.fullmatch(word):
        number = float(word) if any(c in word for c in ".eE") else int(word)
        return number, end
    return word, end


def _read_escaped(text: str, index: int) -> tuple[str, int]:
    body = index + len(ESCAPE)
    close = text.find(ESCAPE, body)
    if close == -1:
        raise _fail(text, index, "a string's closing <escape> is missing")
    return text[body:close], close + len(ESCAPE)


def _check_depth(depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise GemmaSyntaxError(f"tool call arguments: nested deeper than {MAX_JSON_DEPTH} levels")


def _read_object(text: str, index: int, depth: int) -> tuple[dict[str, Any], int]:
    _check_depth(depth)
    value: dict[str, Any] = {}
    index = _skip(text, index + 1)
    if text.startswith("}", index):
        return value, index + 1
    while True:
        index = _skip(text, index)
        if text.startswith(ESCAPE, index):
            key, index = _read_escaped(text, index)
        else:
            colon = text.find(":", index)
            key = text[index:colon].strip() if colon != -1 else ""
            if not key or not _KEY_RE.fullmatch(key):
                raise _fail(text, index, "an object key followed by ':' is expected")
            index = colon
        index = _skip(text, index)
        if not text.startswith(":", index):
            raise _fail(text, index, "':' is expected after a key")
        value[key], index = _read_value(text, index + 1, depth)
        index = _skip(text, index)
        if text.startswith(",", index):
            index += 1
            continue
        if text.startswith("}", index):
            return value, index + 1
        raise _fail(text, index, "',' or '}' is expected")


def _read_list(text: str, index: int, depth: int) -> tuple[list[Any], int]:
    _check_depth(depth)
    items: list[Any] = []
    index = _skip(text, index + 1)
    if text.startswith("]", index):
        return items, index + 1
    while True:
        item, index = _read_value(text, index, depth)
        items.append(item)
        index = _skip(text, index)
        if text.startswith(",", index):
            index += 1
            continue
        if text.startswith("]", index):
            return items, index + 1
        raise _fail(text, index, "',' or ']' is expected")


# --------------------------------------------------------------------------- grammar

# String content by encoded width: tab, newline, CR and printable ASCII but "<" (so no string holds
# ``<escape>``); any wider character counted as 4 bytes.
STRING_CLASSES = {
    1: r"[\x09\x0A\x0D\x20-\x3B\x3D-\x7E]",
    4: r"[\u0080-\U0010FFFF]",
}
STRING_BYTES = "escbytes"
_NUMBER = r'"-"? [0-9]{1,15} ( "." [0-9]{1,6} )?'
_FREE_KEY = "[A-Za-z0-9_]"


def _literal(text: str) -> str:
    return json.dumps(text)


class GemmaRules:
    """GBNF rules for argument values in FunctionGemma's syntax, one schema at a time (:meth:`visit`),
    under ``string_cap`` and ``array_cap``; :meth:`text` is every rule made so far."""

    def __init__(self, string_cap: int = 200, array_cap: int = 16) -> None:
        self.string_cap, self.array_cap = string_cap, array_cap
        self._rules: dict[str, str] = {}
        self._chain = 0
        self._root: Any = {}
        self._open_refs: set[str] = set()

    def visit(self, schema: Any, name: str) -> str:
        """The name of a rule for a call's arguments under ``schema`` (``$ref`` resolved within
        ``schema`` itself): always an object, the schema's own or, for a schema that declares no
        properties, one of at most ``array_cap`` bounded scalars."""
        self._root = schema
        declared = isinstance(schema, dict) and (
            bool(schema.get("properties"))
            or isinstance(schema.get("additionalProperties"), dict)
            or schema.get("additionalProperties") is False
        )
        body = self._object(schema, name) if declared else self._free_members()
        return self._add(name, body)

    def text(self) -> str:
        from sandbox.turns._gbnf import byte_chain_rules

        rules = dict(self._rules)
        rules.update(byte_chain_rules(STRING_BYTES, STRING_CLASSES, self._chain))
        return "".join(f"{name} ::= {body}\n" for name, body in rules.items())

    def _add(self, name: str, body: str) -> str:
        name = re.sub(r"[^A-Za-z0-9-]", "-", name)
        base, number = name, 1
        while name in self._rules and self._rules[name] != body:
            number += 1
            name = f"{base}-{number}"
        self._rules[name] = body
        return name

    def _string(self, size: int, least: int = 0) -> str:
        from sandbox.turns._gbnf import chain_ref

        size = max(size, 0)
        least = min(max(least, 0), size)
        rest = max(0, size - 4 * least)
        self._chain = max(self._chain, rest)
        any_char = " | ".join(f"( {c} )" for c in STRING_CLASSES.values())
        parts = [
            _literal(ESCAPE),
            *[f"( {any_char} )"] * least,
            chain_ref(STRING_BYTES, rest),
            _literal(ESCAPE),
        ]
        return " ".join(part for part in parts if part)

    def _scalar(self) -> str:
        string = self._add(f"gemma-string-{self.string_cap}", self._string(self.string_cap))
        number = self._add("gemma-number", _NUMBER)
        return self._add(
            f"gemma-scalar-{self.string_cap}", f'{string} | {number} | "true" | "false" | "null"'
        )

    def _repeat(self, item: str, least: int, most: int, opening: str, closing: str) -> str:
        most = max(most, least)
        if most == 0:
            return f"{_literal(opening)} {_literal(closing)}"
        if least == 0:
            more = f' ( "," {item} ){{0,{most - 1}}}' if most > 1 else ""
            return f"{_literal(opening)} ( {item}{more} )? {_literal(closing)}"
        more = f' ( "," {item} ){{{least - 1},{most - 1}}}' if most > 1 else ""
        return f"{_literal(opening)} {item}{more} {_literal(closing)}"

    def _free_members(self) -> str:
        key = f"{_FREE_KEY}{{1,{max(1, min(32, self.string_cap))}}}"
        member = self._add("gemma-free-member", f'{key} ":" {self._scalar()}')
        return self._repeat(member, 0, self.array_cap, "{", "}")

    def _free(self, name: str) -> str:
        scalar = self._scalar()
        items = self._repeat(scalar, 0, self.array_cap, "[", "]")
        return f"{scalar} | {items} | {self._free_members()}"

    def _part(self, schema: Any, name: str) -> str:
        """A rule of its own for ``schema`` (its name)."""
        return self._add(name, self._value(schema, name))

    def _value(self, schema: Any, name: str) -> str:
        if not isinstance(schema, dict) or not schema:
            return self._free(name)
        if "$ref" in schema:
            return self._ref(schema["$ref"], name)
        if "const" in schema:
            return _literal(render_value(schema["const"]))
        if "enum" in schema:
            values = schema["enum"] if isinstance(schema["enum"], list) else []
            return " | ".join(_literal(render_value(v)) for v in values) or self._free(name)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                parts = [
                    self._add(f"{name}-{i}", self._value(s, f"{name}-{i}")) for i, s in enumerate(schema[key])
                ]
                return " | ".join(parts)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return self._value(_merge([s for s in schema["allOf"] if isinstance(s, dict)]), name)
        kind = schema.get("type")
        if isinstance(kind, list):
            parts = [
                self._add(f"{name}-{t}", self._value({**schema, "type": t}, f"{name}-{t}")) for t in kind
            ]
            return " | ".join(parts) or self._free(name)
        if kind == "string":
            size = int(schema.get("maxLength", self.string_cap))
            return self._string(min(size, self.string_cap), int(schema.get("minLength", 0)))
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return '"true" | "false"'
        if kind == "null":
            return '"null"'
        if kind == "array" or "items" in schema:
            return self._array(schema, name)
        if kind == "object" or "properties" in schema or "additionalProperties" in schema:
            return self._object(schema, name)
        return self._free(name)

    def _ref(self, ref: Any, name: str) -> str:
        target = _pointer(self._root, ref) if isinstance(ref, str) else None
        if target is None or ref in self._open_refs:
            return self._free(name)  # an unknown or recursive reference: any bounded value
        self._open_refs.add(ref)
        try:
            return self._value(target, name)
        finally:
            self._open_refs.discard(ref)

    def _integer(self, schema: dict[str, Any]) -> str:
        from sandbox.turns._gbnf import integer_range_rule
        from sandbox.turns._schema_grammar import integer_bounds

        return integer_range_rule(*integer_bounds(schema)) or '"0"'

    def _number(self, schema: dict[str, Any]) -> str:
        from sandbox.turns._gbnf import decimal_range_rule
        from sandbox.turns._schema_grammar import number_bounds

        if not any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return _NUMBER
        low, low_exclusive, high, high_exclusive = number_bounds(schema)
        body = decimal_range_rule(low, high, low_exclusive=low_exclusive, high_exclusive=high_exclusive)
        return body or '"0"'

    def _array(self, schema: dict[str, Any], name: str) -> str:
        items = schema.get("items")
        item = self._add(
            f"{name}-item", self._value(items if isinstance(items, dict) else {}, f"{name}-item")
        )
        most = min(int(schema.get("maxItems", self.array_cap)), self.array_cap)
        return self._repeat(item, int(schema.get("minItems", 0)), most, "[", "]")

    def _object(self, schema: dict[str, Any], name: str) -> str:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            extra = schema.get("additionalProperties", True)
            if isinstance(extra, dict):
                value = self._add(f"{name}-value", self._value(extra, f"{name}-value"))
                key = f"{_FREE_KEY}{{1,{max(1, min(32, self.string_cap))}}}"
                member = self._add(f"{name}-member", f'{key} ":" {value}')
                return self._repeat(member, 0, self.array_cap, "{", "}")
            if extra is False:
                return '"{" "}"'
            return self._free(name)
        required = [k for k in properties if k in set(schema.get("required") or [])]
        optional = [k for k in properties if k not in required]
        pairs = {
            key: self._add(
                f"{name}-{key}-kv",
                f"{_literal(render_key(key) + ':')} {self._part(properties[key], f'{name}-{key}')}",
            )
            for key in properties
        }
        body = ' "," '.join(pairs[k] for k in required)
        if optional:
            # the first optional pair present, then any later ones
            more = [""] * (len(optional) + 1)  # more[K]: pairs K.. each optional, after a comma
            for index in range(len(optional) - 1, 0, -1):
                pair = pairs[optional[index]]
                more[index] = self._add(f"{name}-more{index}", f'( "," {pair} )? {more[index + 1]}'.strip())
            firsts = [f"{pairs[key]} {more[index + 1]}".strip() for index, key in enumerate(optional)]
            tail = self._add(f"{name}-optional", " | ".join(firsts))
            body = f'{body} ( "," {tail} )?' if body else f"{tail}?"
        return f'"{{" {body} "}}"'


def _merge(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for schema in schemas:
        merged.update({k: v for k, v in schema.items() if k not in ("properties", "required")})
        properties.update(schema.get("properties") or {})
        required += [r for r in schema.get("required") or [] if r not in required]
    if properties:
        merged["properties"], merged["required"] = properties, required
    return merged


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
