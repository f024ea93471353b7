"""JSON Schema validators for tool arguments, compiled once per schema.

Two costs dominate checking a call's arguments with ``jsonschema``: checking the schema against the
2020-12 metaschema (about 1.4 ms, paid once per schema here: the cache is keyed by the schema's
canonical JSON, so an equal schema from another trace hits it and a changed one never does, and it
holds :data:`CACHED_SCHEMAS` schemas at most), and walking the instance through ``jsonschema``'s
generic keyword machinery (about 30 us for a two-string object).

For the second, a schema written only with the keywords tool schemas use (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, the length, size and number bounds, and
annotations such as ``title``, ``description``, ``default`` and ``format``, which is not asserted
without a format checker, and ``pattern``) is compiled into plain Python closures that decide validity the way
``jsonschema``'s Draft 2020-12 validator does (a bool is neither an integer nor a number; ``1.0``
is an integer), in about a microsecond. Any other keyword anywhere in the schema (``$ref``, ``enum``,
``anyOf``, ``patternProperties``...) leaves the whole schema to ``jsonschema``. A test checks the two agree
on generated schemas and instances.

Bounds. A schema nested deeper than the reward budget's depth (:data:`rewards._budget.MAX_DEPTH`
levels of JSON) is unusable, with that reason: checking it against the metaschema recurses once per
level and would end in ``RecursionError``. A ``$ref`` loop that never reaches the instance (``{"$ref":
"#"}``) is unusable for the same reason, found when ``jsonschema`` recurses past Python's limit.
Every regular expression (``pattern``, ``patternProperties``, and the additional properties they
decide) runs in the ``regex`` engine with a timeout (:data:`PATTERN_SECONDS`, or less when the
reward's budget ends sooner), also in schemas left to ``jsonschema``, whose own keywords use ``re``
with no bound: ``"^(a|a)+$"`` against thirty ``a`` and a ``!`` backtracks for minutes. Past the
timeout the search raises :class:`rewards._budget.BudgetExceeded`. ``unevaluatedProperties`` beside
``patternProperties`` is refused, as ``jsonschema`` would search those patterns with ``re``.
"""

from __future__ import annotations

import functools
import json
import numbers
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import referencing
import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError

from rewards._budget import MAX_DEPTH, BudgetExceeded, depth_of, time_left

CACHED_SCHEMAS = 4096
CACHED_OBJECTS = 256
CACHED_PATTERNS = 1024
PATTERN_SECONDS = 1.0  # one regular-expression search

# Keywords that never decide validity here (Draft 2020-12 annotations; ``format`` is only asserted
# by a validator given a format checker, and rewards use none).
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
    }
)
COMPILED_KEYWORDS = ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
}

Check = Callable[[Any], bool]
Errors = Iterator[ValidationError]


class SchemaValidator(Protocol):
    def is_valid(self, instance: Any) -> bool: ...


class CompiledValidator:
    """A schema compiled to closures (see module doc); the same verdicts as ``jsonschema``'s."""

    def __init__(self, check: Check) -> None:
        self.is_valid = check


def schema_validator(schema: dict[str, Any]) -> SchemaValidator | str:
    """A validator for ``schema``, or why the schema is unusable (its metaschema error, or a bound)."""
    seen = _by_identity.get(id(schema))
    if seen is not None and seen[0] is schema and seen[1] == schema:
        return seen[2]
    if depth_of(schema, MAX_DEPTH) > MAX_DEPTH:
        return f"the schema nests deeper than {MAX_DEPTH} levels"
    try:
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON (a set, say): compiled every time, as it cannot be a key
        return _compile(schema)
    validator = _compiled(key)
    if len(_by_identity) >= CACHED_OBJECTS:
        _by_identity.clear()
    # The schema object is held, so its id is not reused while it is here; the copy (json.loads of
    # the key, a C-speed deep copy) tells whether it was changed in place since.
    _by_identity[id(schema)] = (schema, json.loads(key), validator)
    return validator


# The schema objects seen last, by identity: the steps of one trace share their tool's schema dict,
# and comparing it with a copy costs a twentieth of canonical JSON (0.3 us against 6 us).
_by_identity: dict[int, tuple[dict[str, Any], Any, SchemaValidator | str]] = {}


@functools.lru_cache(maxsize=CACHED_SCHEMAS)
def _compiled(key: str) -> SchemaValidator | str:
    return _compile(json.loads(key))


def _compile(schema: dict[str, Any]) -> SchemaValidator | str:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    unbounded = _unbounded_keywords(schema)
    if unbounded is not None:
        return unbounded
    try:
        check = _closure(schema)
    except regex.error as exc:
        return f"a pattern the regex engine cannot compile: {exc}"
    if check is not None:
        return CompiledValidator(check)
    # An empty registry: a remote $ref is unusable, never fetched (a reward does no I/O).
    return BoundedValidator(schema, registry=referencing.Registry())


def _unbounded_keywords(schema: Any) -> str | None:
    """Why ``jsonschema`` would run an unbounded search on this schema (None: it would not)."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found |= {"patternProperties", "unevaluatedProperties"} & item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    if found == {"patternProperties", "unevaluatedProperties"}:
        return "unevaluatedProperties beside patternProperties is not supported (its search is unbounded)"
    return None


# --------------------------------------------------------------------------- bounded regular expressions


@functools.lru_cache(maxsize=CACHED_PATTERNS)
def _pattern(source: str) -> regex.Pattern[str]:
    return regex.compile(source)


def pattern_search(source: str, text: str) -> bool:
    """Whether ``source`` matches somewhere in ``text``, within :data:`PATTERN_SECONDS` (or the
    budget's remaining time); raises :class:`BudgetExceeded` past it."""
    seconds = time_left(PATTERN_SECONDS, "searching a schema pattern")
    try:
        return _pattern(source).search(text, timeout=seconds) is not None
    except TimeoutError:
        shown = source if len(source) <= 60 else source[:57] + "..."
        raise BudgetExceeded(
            f"the schema pattern {shown!r} ran past {seconds:.3g} s on a {len(text)}-character string"
        ) from None


def _pattern_keyword(validator: Any, source: str, instance: Any, schema: Any) -> Errors:
    if isinstance(instance, str) and not pattern_search(source, instance):
        yield ValidationError(f"{instance!r} does not match {source!r}")


def _pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    for source, subschema in patterns.items():
        for key, value in instance.items():
            if pattern_search(source, key):
                yield from validator.descend(value, subschema, path=key, schema_path=source)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    named = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    others = [
        key for key in instance if key not in named and not any(pattern_search(p, key) for p in patterns)
    ]
    if extra is False and others:
        yield ValidationError(f"additional properties are not allowed: {', '.join(map(repr, others))}")
    elif isinstance(extra, dict):
        for key in others:
            yield from validator.descend(instance[key], extra, path=key)


BoundedValidator = validators.extend(
    Draft202012Validator,
    validators={
        "pattern": _pattern_keyword,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
"""Draft 2020-12 with every regular-expression search bounded (module doc)."""


# --------------------------------------------------------------------------- the compiled subset


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
}


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _closure(schema: Any) -> Check | None:
    """``schema`` (already checked against the metaschema) as one check; None when a keyword is not
    in :data:`COMPILED_KEYWORDS`, here or in a subschema."""
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, Mapping) or not schema.keys() <= COMPILED_KEYWORDS:
        return None
    parts = [
        _type_check(schema),
        _string_check(schema),
        _pattern_check(schema),
        _number_check(schema),
        _object_check(schema),
        _array_check(schema),
    ]
    if any(part is None for part in parts):
        return None
    checks: tuple[Check, ...] = tuple(part for part in parts if part is not _always)  # type: ignore[misc]

    def check(value: Any) -> bool:
        for one in checks:  # noqa: SIM110 -- a plain loop: all() of a generator costs more than the checks
            if not one(value):
                return False
        return True

    return check


def _type_check(schema: Mapping[str, Any]) -> Check:
    if "type" not in schema:
        return _always
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    tests = tuple(TYPES[name] for name in names)
    if len(tests) == 1:
        return tests[0]

    def check(value: Any) -> bool:
        for test in tests:  # noqa: SIM110 -- as above
            if test(value):
                return True
        return False

    return check


def _string_check(schema: Mapping[str, Any]) -> Check:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is None and high is None:
        return _always

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        return not (low is not None and len(value) < low) and not (high is not None and len(value) > high)

    return check


def _pattern_check(schema: Mapping[str, Any]) -> Check:
    if "pattern" not in schema:
        return _always
    source = schema["pattern"]
    _pattern(source)  # compiled now: a pattern the engine refuses makes the schema unusable

    def check(value: Any) -> bool:
        return not isinstance(value, str) or pattern_search(source, value)

    return check


def _number_check(schema: Mapping[str, Any]) -> Check:
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is None and high is None and above is None and below is None:
        return _always

    def check(value: Any) -> bool:
        if not _is_number(value):
            return True
        return not (
            (low is not None and value < low)
            or (high is not None and value > high)
            or (above is not None and value <= above)
            or (below is not None and value >= below)
        )

    return check


def _object_check(schema: Mapping[str, Any]) -> Check | None:
    properties = {name: _closure(sub) for name, sub in schema.get("properties", {}).items()}
    extra = _closure(schema["additionalProperties"]) if "additionalProperties" in schema else _always
    if extra is None or any(check is None for check in properties.values()):
        return None
    required = tuple(schema.get("required", ()))
    low, high = schema.get("minProperties"), schema.get("maxProperties")
    if not properties and extra is _always and not required and low is None and high is None:
        return _always

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            one = properties.get(name, extra)
            if not one(item):  # type: ignore[misc]
                return False
        return True

    return check


def _array_check(schema: Mapping[str, Any]) -> Check | None:
    items = _closure(schema["items"]) if "items" in schema else _always
    if items is None:
        return None
    low, high = schema.get("minItems"), schema.get("maxItems")
    if items is _always and low is None and high is None:
        return _always

    def check(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return False
        return all(items(item) for item in value)

    return check
