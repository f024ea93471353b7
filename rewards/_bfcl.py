"""Tool calls checked argument by argument, the way the Berkeley Function Calling Leaderboard does.

BFCL's abstract-syntax-tree checker gives each parameter of an ideal call a list of acceptable values
(the task records' ``IdealCall`` convention) and judges a call by these rules, which
:func:`check_call` applies to one call and one ideal call, against the tool's JSON input schema:

1. The call names the ideal call's tool, and that tool was offered (its schema is known).
2. Every parameter the schema requires is present.
3. Every parameter the call gives is in the schema's ``properties``.
4. Each given value has the schema's type exactly: a bool is not an integer or a number, ``"3"`` is
   not a number, ``3.0`` is not an integer; the one leniency is an integer given for a ``number``
   (BFCL's ``float``). Array items and object properties are checked the same way, all the way down.
   A parameter with no ``type`` (BFCL's ``any``), or a type this checker does not know, takes any value.
5. Each given value is among the acceptable values of the ideal call:
   - strings compare after lower-casing, removing spaces and ``, . / - _ * ^``, and reading ``'`` as
     ``"`` (:func:`normalize_string`), so ``"New York, NY"`` is ``"new york ny"``;
   - lists compare element by element, in order, with the same rules;
   - dicts compare one level down: an acceptable dict maps each key to the list of that key's
     acceptable values; every key the call gives must be there with an acceptable value, and a key
     the call leaves out must list ``""``;
   - numbers compare by value (``2 == 2.0``); a bool only ever equals a bool.
6. ``""`` among a parameter's acceptable values marks it optional: the call may leave it out. Any
   other parameter the ideal call lists must be given.
7. Acceptable values of another type than the schema's count as written. The type of a parameter's
   acceptable values is that of the first one that is not ``""``; when the schema's type does not
   admit it (``null`` listed for a ``number``, a string listed for an ``integer``), a given value of
   that type passes the type check of rule 4 (``null`` for that ``number`` is accepted), and the
   given value is compared with the acceptable ones as written: strings exactly, without rule 5's
   normalisation, and dicts and lists by plain equality. This is BFCL's rule for values its ground
   truth lists as literals; one departure: a bool still equals only a bool, where BFCL's Python
   comparison lets ``True`` equal ``1``.

The reason of a failed check names the parameter that failed (and, for a dict value, the key), the
first in the call's order, as BFCL reports it.

One departure: a parameter the ideal call does not list at all is not checked for its value (the
task records' convention, so a hand-written task can constrain only what matters). BFCL instead
rejects it as unexpected; ``strict=True`` does the same. ``sandbox import bfcl`` lists every
parameter of each schema in its ideal calls (``[""]`` for those BFCL's answer leaves out), so on
imported tasks the two agree.

Several calls against several ideal calls (BFCL's "parallel" categories; here, the tool-using steps
of one episode) must match one to one, in any order: :func:`match_calls` finds a maximum bipartite
matching between calls and the ideal calls they pass, with augmenting paths (Kuhn's algorithm,
:func:`maximum_matching`). The graph is a few dozen calls at most and its edges are pass/fail, with
no weights, so a maximum matching is the optimal assignment; 20 lines do it, where SciPy's
``linear_sum_assignment`` would add a large dependency for no gain.
BFCL's own checker matches greedily: each ideal call in turn takes the first remaining call that
passes it. That fails a correct answer when a looser ideal call takes the call a stricter one
needed, which depends on the order the calls come in: ideal calls ``f(x in [1, 2])`` and
``f(x in [1])`` against calls ``f(x=1), f(x=2)`` fail greedily and pass here; the same calls in the
other order pass both.

8. An ideal call with a ``result`` (``IdealCall.result``: what a call whose arguments are left open
   must produce) is matched only by a call whose recorded result is structured and holds, in each
   field listed, one of that field's acceptable values (:func:`check_result`): JSON values compare
   exactly (numbers by value, a bool only with a bool, strings as written: ``"3/74"`` is not
   ``"37/4"``). A call with no result, an error result or one without that field does not match.
   This is not BFCL's (its ground truth has no open arguments); without it a calculator call of
   ``75 + 83 * 99`` would match a task whose answer is ``(75 + 83) * 99``.

"Irrelevance": a task with no ideal call is answered right by making no call (:func:`bfcl_reward`).

Not covered: BFCL's Java and JavaScript type names; JSON Schema keywords other than ``type``,
``properties``, ``items`` and ``required`` (``enum``, ``minimum``...), which the schema validator of
the tool-syntax reward checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewards._budget import bounded, check_depth, check_time, declare
from sandbox.records import IdealCall, Reward, Step, Task, ToolResult, ToolSpec, Trace

NAME = "bfcl"
# 3: rule 8 (an ideal call's result); 2: rule 7, and bounded (a call nested past the depth budget
# cannot be scored)
VERSION = "3"

# An empty string among the acceptable values means the parameter may be left out.
OPTIONAL = ""

_DROPPED = str.maketrans("", "", " ,./-_*^")
_SHOWN_CHARS = 60


def normalize_string(text: str) -> str:
    """BFCL's string form: lower case, no spaces or ``, . / - _ * ^``, ``'`` read as ``"``."""
    return text.lower().translate(_DROPPED).replace("'", '"')


@dataclass(frozen=True)
class CallCheck:
    """One call judged against one ideal call: ``ok``, and when not, which parameter failed and why."""

    ok: bool
    reason: str = ""
    parameter: str | None = None


_PASS = CallCheck(ok=True)


def _fail(reason: str, parameter: str | None = None) -> CallCheck:
    return CallCheck(ok=False, reason=reason, parameter=parameter)


def check_call(
    name: str,
    arguments: Mapping[str, Any],
    ideal: IdealCall,
    schema: Mapping[str, Any] | None,
    *,
    strict: bool = False,
) -> CallCheck:
    """Judge a call of tool ``name`` with ``arguments`` against ``ideal`` (module doc, rules 1-6).

    ``schema`` is the tool's JSON input schema (None: the tool was not offered). ``strict`` rejects a
    given parameter the ideal call does not list, as BFCL does. Raises
    :class:`rewards._budget.BudgetExceeded` when the arguments nest deeper than the depth budget;
    never raises on other JSON values.
    """
    check_depth(arguments, f"the arguments of the call of {name!r}")
    if name != ideal.name:
        return _fail(f"called {name!r}, not {ideal.name!r}")
    if not isinstance(schema, Mapping):
        return _fail(f"tool {name!r} was not offered")
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    for parameter in required if isinstance(required, list) else []:
        if isinstance(parameter, str) and parameter not in arguments:
            return _fail(f"required parameter {parameter!r} is missing", parameter)
    for parameter, value in arguments.items():
        verdict = _check_given(parameter, value, properties, ideal.arguments, strict)
        if not verdict.ok:
            return verdict
    for parameter, acceptable in ideal.arguments.items():
        if parameter not in arguments and OPTIONAL not in acceptable:
            return _fail(f"parameter {parameter!r} is missing and not optional", parameter)
    return _PASS


def _check_given(
    parameter: str,
    value: Any,
    properties: Mapping[str, Any],
    acceptable: Mapping[str, list[Any]],
    strict: bool,
) -> CallCheck:
    if parameter not in properties:
        return _fail(f"parameter {parameter!r} is not in the tool's schema", parameter)
    options = acceptable.get(parameter)
    listed = _listed_type(options or [])
    wrong_type = _type_error(value, properties[parameter])
    if wrong_type is not None and type(value) is not listed:  # rule 7: a value of the listed type
        return _fail(f"parameter {parameter!r}: {wrong_type}", parameter)
    if options is None:
        if strict:
            return _fail(f"parameter {parameter!r} is not expected", parameter)
        return _PASS
    literal = listed is not None and not _admits(properties[parameter], listed)
    equal = _literal_equal if literal else same_value
    if any(equal(value, option) for option in options):
        return _PASS
    return _fail(f"parameter {parameter!r}: {_value_mismatch(value, options)}", parameter)


def _listed_type(options: list[Any]) -> type | None:
    """The Python type of the first acceptable value that is not ``""`` (rule 7)."""
    return next((type(option) for option in options if option != OPTIONAL), None)


_ADMITTING: dict[type, frozenset[str]] = {
    str: frozenset({"string"}),
    bool: frozenset({"boolean"}),
    int: frozenset({"integer", "number"}),
    float: frozenset({"number"}),
    list: frozenset({"array"}),
    dict: frozenset({"object"}),
    type(None): frozenset({"null"}),
}


def _admits(schema: Any, listed: type) -> bool:
    """Whether the schema's declared types admit values of type ``listed`` (no known type: any)."""
    declared = schema.get("type") if isinstance(schema, Mapping) else None
    names = (
        {declared} if isinstance(declared, str) else set(declared) if isinstance(declared, list) else set()
    )
    known = {name for name in names if isinstance(name, str) and name in _TYPE_TESTS}
    return not known or bool(known & _ADMITTING.get(listed, frozenset()))


def _literal_equal(given: Any, expected: Any) -> bool:
    """Plain equality, except that a bool equals only a bool (rule 7)."""
    if isinstance(given, bool) or isinstance(expected, bool):
        return isinstance(given, bool) and isinstance(expected, bool) and given == expected
    return bool(given == expected)


def _value_mismatch(value: Any, options: list[Any]) -> str:
    """Why ``value`` is none of ``options``: for a dict, the first key that fails the first
    acceptable dict; else the value and the options."""
    first = next((option for option in options if isinstance(option, dict)), None)
    if isinstance(value, dict) and first is not None:
        for key, item in value.items():
            if key not in first:
                return f"key {key!r} is not expected"
            if not _acceptable(item, first[key]):
                return f"key {key!r}: {_show(item)} is not among {_show(first[key])}"
        missing = next((key for key in first if key not in value and not _optional(first[key])), None)
        if missing is not None:
            return f"key {missing!r} is missing and not optional"
    return f"{_show(value)} is not among {_show(options)}"


# --------------------------------------------------------------------------- types


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # an int for a float: allowed


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
    "null": lambda value: value is None,
}


def _type_error(value: Any, schema: Any) -> str | None:
    """Why ``value`` does not have the schema's exact type (None when it does), items and properties
    included."""
    if not isinstance(schema, Mapping):
        return None
    known = _known_types(schema)
    if known and not any(_TYPE_TESTS[name](value) for name in known):
        return f"{_show(value)} is {_json_type(value)}, expected {' or '.join(known)}"
    if isinstance(value, list):
        return _items_error(value, schema.get("items"))
    if isinstance(value, dict):
        return _properties_error(value, schema.get("properties"))
    return None


def _known_types(schema: Any) -> list[str]:
    """The type names a schema declares that this checker knows (rule 4)."""
    declared = schema.get("type") if isinstance(schema, Mapping) else None
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    return [name for name in names if isinstance(name, str) and name in _TYPE_TESTS]


def _items_error(values: list[Any], items: Any) -> str | None:
    for index, item in enumerate(values):
        error = _type_error(item, items)
        if error is not None:
            return f"item {index}: {error}"
    return None


def _properties_error(values: dict[str, Any], properties: Any) -> str | None:
    if not isinstance(properties, Mapping):
        return None
    for key, item in values.items():
        error = _type_error(item, properties.get(key))
        if error is not None:
            return f"key {key!r}: {error}"
    return None


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPE_TESTS[name](value):
            return name
    return type(value).__name__


# --------------------------------------------------------------------------- values


def step_produces(ideal: IdealCall, step: Step, tools: Sequence[ToolSpec]) -> bool:
    """Whether ``step`` is a call that did not fail, matches ``ideal`` (:func:`check_call`, against
    the called tool's schema in ``tools``) and, where ``ideal`` lists a ``result``, returned it."""
    called, result = step.call, step.result
    if step.action != "tool_call" or called is None or result is None or result.is_error:
        return False
    schema = tool_schema(called.name, called.arguments, tools)
    return check_call(called.name, called.arguments, ideal, schema).ok and check_result(result, ideal).ok


def tool_schema(name: str, arguments: Mapping[str, Any], tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The input schema of the tool ``name`` in ``tools``; for a tool not listed, one that admits
    the given ``arguments`` as they are."""
    spec = next((tool for tool in tools if tool.name == name), None)
    if spec is not None:
        return spec.input_schema
    return {"type": "object", "properties": {parameter: {} for parameter in arguments}}


def check_result(result: ToolResult | None, ideal: IdealCall) -> CallCheck:
    """Judge a call's recorded result against ``ideal.result`` (module doc, rule 8); passes when the
    ideal call lists no result."""
    if not ideal.result:
        return _PASS
    if result is None or result.is_error:
        return _fail("the call has no result to check" if result is None else "the call's result is an error")
    structured = result.structured
    if not isinstance(structured, Mapping):
        return _fail("the call's result is not structured, so what it computed cannot be checked")
    check_depth(structured, "the call's structured result")
    for field, acceptable in ideal.result.items():
        if field not in structured:
            return _fail(f"the call's result has no {field!r}")
        if not any(same_json(structured[field], value) for value in acceptable):
            shown = repr(structured[field])[:_SHOWN_CHARS]
            return _fail(f"the call's result has {field!r} {shown}, not one of the ideal call's")
    return _PASS


def same_json(given: Any, expected: Any) -> bool:
    """Exact JSON equality: numbers by value, a bool only with a bool, strings as written."""
    if isinstance(given, bool) or isinstance(expected, bool):
        return isinstance(given, bool) and isinstance(expected, bool) and given == expected
    if _is_number(given) or _is_number(expected):
        return _is_number(given) and _is_number(expected) and given == expected
    if isinstance(given, list) and isinstance(expected, list):
        return len(given) == len(expected) and all(map(same_json, given, expected))
    if isinstance(given, dict) and isinstance(expected, dict):
        return given.keys() == expected.keys() and all(same_json(given[k], expected[k]) for k in given)
    return type(given) is type(expected) and given == expected


def same_value(given: Any, expected: Any) -> bool:
    """Whether one given value equals one acceptable value, under BFCL's comparison rules (rule 5)."""
    if isinstance(given, str):
        return isinstance(expected, str) and normalize_string(given) == normalize_string(expected)
    if isinstance(given, bool) or isinstance(expected, bool):
        return isinstance(given, bool) and isinstance(expected, bool) and given == expected
    if _is_number(given):
        return _is_number(expected) and given == expected
    if isinstance(given, list):
        return (
            isinstance(expected, list)
            and len(given) == len(expected)
            and all(same_value(item, want) for item, want in zip(given, expected, strict=True))
        )
    if isinstance(given, dict):
        return isinstance(expected, dict) and _dict_matches(given, expected)
    return given is None and expected is None


def _dict_matches(given: dict[str, Any], expected: dict[str, Any]) -> bool:
    """One level down: each given key holds one of the key's acceptable values; an absent key must
    be optional. An acceptable value that is not a list stands for itself."""
    for key, value in given.items():
        if key not in expected or not _acceptable(value, expected[key]):
            return False
    return all(_optional(expected[key]) for key in expected if key not in given)


def _acceptable(value: Any, options: Any) -> bool:
    if isinstance(options, list):
        # A list of acceptable values, or (for a list-valued key) the one acceptable list itself.
        return any(same_value(value, option) for option in options) or same_value(value, options)
    return same_value(value, options)


def _optional(options: Any) -> bool:
    return options == OPTIONAL or (isinstance(options, list) and OPTIONAL in options)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


# --------------------------------------------------------------------------- matching


def maximum_matching(left: int, right: int, fits: Callable[[int, int], bool]) -> dict[int, int]:
    """A maximum matching of a bipartite graph, as ``{left: right}``; ``fits(i, j)`` says whether
    ``i`` and ``j`` may pair.

    Kuhn's augmenting paths, left vertices in order, right ones tried in order, so the result is
    deterministic, and a left vertex once matched stays matched: of all maximum matchings, the
    matched left vertices are the earliest ones possible. O(left x edges), for a few dozen calls.
    """
    edges = [[j for j in range(right) if fits(i, j)] for i in range(left)]
    owner: dict[int, int] = {}  # right -> left

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(left):
        augment(i, set())
    return {i: j for j, i in owner.items()}


@dataclass(frozen=True)
class CallAttempt:
    """A call as the matcher sees it: a name and arguments, or why it could not be read."""

    name: str | None
    arguments: Mapping[str, Any]
    broken: str | None = None
    label: str = ""  # how a reason names it ("step 3"); "call N" when empty
    result: ToolResult | None = None  # what the call returned, for an ideal call's ``result``

    def named(self, position: int) -> str:
        return self.label or f"call {position}"


@dataclass(frozen=True)
class CallMatching:
    """Calls paired one to one with ideal calls (``pairs``: call index -> ideal call index). ``ok``
    when every call and every ideal call is paired; ``reason`` names the first mismatch."""

    pairs: dict[int, int]
    unmatched_calls: tuple[int, ...]
    unmatched_ideals: tuple[int, ...]
    reason: str

    @property
    def ok(self) -> bool:
        return not self.unmatched_calls and not self.unmatched_ideals


def match_calls(
    calls: Sequence[CallAttempt],
    ideals: Sequence[IdealCall],
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    strict: bool = False,
) -> CallMatching:
    """Pair ``calls`` with ``ideals`` one to one, in any order, each pair passing :func:`check_call`
    (``schemas``: input schema by tool name)."""

    def check(i: int, j: int) -> CallCheck:
        check_time(f"checking {calls[i].named(i)}")
        call = calls[i]
        if call.broken is not None or call.name is None:
            return _fail(f"the call did not parse ({call.broken or 'no tool name'})")
        verdict = check_call(call.name, call.arguments, ideals[j], schemas.get(call.name), strict=strict)
        return check_result(call.result, ideals[j]) if verdict.ok else verdict

    pairs = maximum_matching(len(calls), len(ideals), lambda i, j: check(i, j).ok)
    free_calls = tuple(i for i in range(len(calls)) if i not in pairs)
    taken = set(pairs.values())
    free_ideals = tuple(j for j in range(len(ideals)) if j not in taken)
    reason = _mismatch(calls, ideals, free_calls, free_ideals, check)
    return CallMatching(pairs, free_calls, free_ideals, reason)


def _mismatch(
    calls: Sequence[CallAttempt],
    ideals: Sequence[IdealCall],
    free_calls: tuple[int, ...],
    free_ideals: tuple[int, ...],
    check: Callable[[int, int], CallCheck],
) -> str:
    """The first unmatched ideal call and why the likeliest call fails it; else the first extra call."""
    if free_ideals:
        j = free_ideals[0]
        wanted = ideals[j].name
        tried = [i for i in free_calls if calls[i].name == wanted] or list(free_calls)
        if not tried:
            return f"ideal call {j} ({wanted}) has no call left to match it"
        first = tried[0]
        why = check(first, j).reason
        return f"ideal call {j} ({wanted}) is unmatched; {calls[first].named(first)}: {why}"
    if free_calls:
        i = free_calls[0]
        return f"{calls[i].named(i)} ({calls[i].name or 'unparsed'}) matches no ideal call"
    return ""


# --------------------------------------------------------------------------- the reward


@bounded(NAME, VERSION)
def bfcl_reward(trace: Trace, task: Task) -> Reward:
    """BFCL's AST accuracy as a reward: 1.0 when the episode's tool calls match the task's ideal
    calls one to one (in any order), or, when the task has no ideal call, when it made no call;
    else 0.0. Every tool-using step is a call (a broken one never matches; a repeat is an extra
    call). ``per_step``: 1.0 for a matched call, 0.0 for an unmatched one. The reason names the
    first mismatch."""
    positions = [index for index, step in enumerate(trace.steps) if _uses_tool(step)]
    per_step: list[float | None] = [None] * len(trace.steps)
    ideals = task.ideal_calls
    if not ideals:
        for index in positions:
            per_step[index] = 0.0
        if not positions:
            return _reward(1.0, per_step, 0, 0, 0, "no tool fits and none was called")
        step = trace.steps[positions[0]]
        called = step.call.name if step.call else "a tool"
        reason = f"no tool fits, yet step {step.index} called {called} (irrelevance: no call is right)"
        return _reward(0.0, per_step, 0, 0, len(positions), reason)
    schemas = {spec.name: spec.input_schema for spec in trace.tools}
    matching = match_calls([_attempt(trace.steps[index]) for index in positions], ideals, schemas)
    for number, index in enumerate(positions):
        per_step[index] = 1.0 if number in matching.pairs else 0.0
    counts = (len(matching.pairs), len(matching.unmatched_ideals), len(matching.unmatched_calls))
    if matching.ok:
        return _reward(1.0, per_step, *counts, f"all {len(ideals)} ideal call(s) matched one to one")
    return _reward(0.0, per_step, *counts, matching.reason)


def _uses_tool(step: Step) -> bool:
    return step.action in ("tool_call", "broken_call")


def _attempt(step: Step) -> CallAttempt:
    """A tool-using step as the matcher sees it (a broken call never matches)."""
    call, label = step.call, f"step {step.index}"
    if step.action != "tool_call" or call is None:
        name, arguments = (call.name, call.arguments) if call else (None, {})
        return CallAttempt(name, arguments, broken=step.parse_error or "unparsed", label=label)
    return CallAttempt(call.name, call.arguments, label=label, result=step.result)


def _reward(
    value: float, per_step: list[float | None], matched: int, missing: int, extra: int, reason: str
) -> Reward:
    components = {
        "matched": float(matched),
        "unmatched_ideal": float(missing),
        "unmatched_calls": float(extra),
    }
    return Reward(
        name=NAME, version=VERSION, value=value, components=components, per_step=per_step, reason=reason
    )


# What ``sandbox gauntlet`` checks: the attacks this reward catches, and its maximum.
declare(
    bfcl_reward,
    catches=frozenset({"loop", "every_tool", "guess", "broken_call"}),
    maximum=lambda trace, task: 1.0,
)
