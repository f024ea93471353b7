"""Bounds on the JSON that enters a trace, and the one way a trace becomes a line and back.

Where outside text becomes a value (a model's call, a server's structured result or state), it is
read with :func:`loads_bounded`: nested at most :data:`MAX_JSON_DEPTH` levels, at most
:data:`MAX_JSON_CHARS` characters, and with no ``NaN`` or ``Infinity`` (JSON has no such numbers).
Past a bound the text is refused with the reason, before any recursive parser sees it, so no text
can make a parser overflow its stack. :func:`value_problem` checks a value already decoded (by the
MCP client, say) against the same bounds.

:func:`trace_line` is the only serializer of a trace. A lone surrogate (half of a UTF-16 pair, which
UTF-8 cannot hold; a server's ``"\\ud83d"`` decodes to one) is replaced by U+FFFD and the trace gets
a note naming where; a value nested past what the serializer can write is cut to a marker string,
also with a note. So writing never fails on what a model or a server sent. :func:`validate_line`
is the matching reader: it reads any line :func:`trace_line` writes, including ones nested deeper
than pydantic's own JSON parser accepts (about 200 levels; a task file's values sit a few levels
deeper inside a trace than in the task file).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

MAX_JSON_DEPTH = 64
"""How deep a model's arguments or a server's structured value may nest (objects and arrays)."""

MAX_JSON_CHARS = 8_000_000
"""The most characters of JSON text read as one value (the files server takes writes of 1 MB)."""

# Deeper than this, pydantic's serializer refuses to write a value (it stops at 255 levels; a value
# in a trace already sits a few levels down).
_WRITABLE_DEPTH = 200
_CUT = "[cut: nested deeper than {depth} levels]"

_SURROGATE_RE = re.compile("[\ud800-\udfff]")

Model = TypeVar("Model", bound=BaseModel)


class JSONBoundError(ValueError):
    """JSON text or a value past a bound; the message is the reason, for a person."""


def json_depth(text: str, stop: int | None = None) -> int:
    """How deeply ``text`` nests objects and arrays, counted outside strings, without recursion;
    stops counting once past ``stop``. Text that is not JSON gets a number too (the parser then
    refuses it)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop is not None and deepest > stop:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JSONBoundError(f"{name} is not a JSON number")


def _check_text(text: str, what: str, max_depth: int) -> None:
    if len(text) > MAX_JSON_CHARS:
        raise JSONBoundError(f"{what}: {len(text):,} characters, more than the {MAX_JSON_CHARS:,} allowed")
    if json_depth(text, stop=max_depth) > max_depth:
        raise JSONBoundError(f"{what}: nested deeper than {max_depth} levels")


def loads_bounded(text: str, *, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` within the bounds above; raises :class:`JSONBoundError` whose message is
    ``"<what>: <the bound>"``, or ``json.JSONDecodeError`` for text that is not JSON."""
    _check_text(text, what, max_depth)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except JSONBoundError as exc:
        raise JSONBoundError(f"{what}: {exc}") from None


def raw_decode_bounded(text: str, *, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The first JSON value at the start of ``text`` (trailing text ignored), within the bounds."""
    _check_text(text, what, max_depth)
    try:
        value, _ = json.JSONDecoder(parse_constant=_refuse_constant).raw_decode(text)
    except JSONBoundError as exc:
        raise JSONBoundError(f"{what}: {exc}") from None
    return value


def decode_at_bounded(
    text: str, index: int, *, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH
) -> tuple[Any, int]:
    """The JSON value that starts at ``text[index]`` and the index where it ends, within the
    bounds. The bounds are checked on the value read, not on the rest of the text, so scanning a
    long text for its objects stays linear in what each object spans."""
    try:
        value, end = json.JSONDecoder(parse_constant=_refuse_constant).raw_decode(text, index)
    except RecursionError:  # deeper than the parser's own stack: past any bound this module sets
        raise JSONBoundError(f"{what}: nested deeper than {max_depth} levels") from None
    except JSONBoundError as exc:
        raise JSONBoundError(f"{what}: {exc}") from None
    if end - index > MAX_JSON_CHARS:
        raise JSONBoundError(f"{what}: {end - index:,} characters, more than the {MAX_JSON_CHARS:,} allowed")
    problem = value_problem(value, what=what, max_depth=max_depth)
    if problem is not None:
        raise JSONBoundError(problem)
    return value, end


def value_problem(value: Any, *, what: str = "value", max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a decoded JSON value breaks a bound (nesting past ``max_depth``, a number that is not
    finite), or None. Walks the value without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return f"{what}: nested deeper than {max_depth} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{what}: {item!r} is not a JSON number"
    return None


# --------------------------------------------------------------------------- writing and reading lines


def trace_line(record: BaseModel, notes_field: str = "notes") -> str:
    """``record`` as one JSON line (no newline). When it cannot be written as it is (a lone
    surrogate, a value nested too deep), the offending parts are replaced as the module doc says and
    each replacement is named in ``record.<notes_field>`` (the record itself is left as it was)."""
    try:
        return record.model_dump_json()
    except PydanticSerializationError:
        pass
    notes: list[str] = []
    data = _clean(record.model_dump(mode="python"), notes)
    if notes_field in type(record).model_fields:
        data[notes_field] = [*getattr(record, notes_field), *notes]
    cleaned = type(record).model_validate(data)
    return cleaned.model_dump_json()


def _clean(value: Any, notes: list[str]) -> Any:
    """A copy of a dumped record with lone surrogates replaced and values nested past
    ``_WRITABLE_DEPTH`` cut, a note per replacement (iterative: the value may be deep)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, str, int]] = [(value, root, 0, "", 0)]
    surrogates: list[str] = []
    while stack:
        item, parent, key, where, depth = stack.pop()
        if isinstance(item, dict | list) and depth >= _WRITABLE_DEPTH:
            parent[key] = _CUT.format(depth=_WRITABLE_DEPTH)
            cut = f"nested deeper than {_WRITABLE_DEPTH} levels and was cut"
            notes.append(f"{_short(where) or 'the record'} was {cut}")
        elif isinstance(item, dict):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            for name, child in item.items():
                inner = f"{where}.{name!s}" if where else str(name)
                clean_name = _fix_text(name, surrogates, inner) if isinstance(name, str) else name
                copy[clean_name] = None
                stack.append((child, copy, clean_name, inner, depth + 1))
        elif isinstance(item, list):
            copy_list: list[Any] = [None] * len(item)
            parent[key] = copy_list
            for index, child in enumerate(item):
                stack.append((child, copy_list, index, f"{where}[{index}]", depth + 1))
        elif isinstance(item, str):
            parent[key] = _fix_text(item, surrogates, where)
        else:
            parent[key] = item
    if surrogates:
        more = f" and {len(surrogates) - 5} more" if len(surrogates) > 5 else ""
        shown = ", ".join(sorted(surrogates)[:5]) + more
        notes.append(f"lone surrogates (not text UTF-8 can hold) were replaced with U+FFFD in {shown}")
    return root[0]


def _short(where: str, most: int = 80) -> str:
    return where if len(where) <= most else where[: most - 1] + "…"


def _fix_text(text: str, found: list[str], where: str) -> str:
    if not _SURROGATE_RE.search(text):
        return text
    found.append(_short(where) or "a text")
    # A proper pair (a model may emit one as two escapes) becomes its character; a lone half becomes U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def validate_line(model: type[Model], line: bytes | str) -> Model:
    """``model.model_validate_json(line)``, and for a line nested deeper than pydantic's JSON parser
    reads, the standard library's parser and then validation. Raises ``ValidationError``, or
    :class:`JSONBoundError` for a line nested deeper than any writer here produces."""
    try:
        return model.model_validate_json(line)
    except ValidationError as exc:
        if not any(
            error["type"] == "json_invalid" and "recursion limit" in error["msg"]
            for error in exc.errors(include_url=False)
        ):
            raise
    try:
        data = json.loads(line)
    except RecursionError:
        raise JSONBoundError("the line is nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise JSONBoundError(f"not JSON: {exc.msg} at {exc.pos}") from None
    return model.model_validate(data)
