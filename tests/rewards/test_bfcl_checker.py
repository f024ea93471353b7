"""BFCL's argument checker rule by rule, the one-to-one matcher, and the ``bfcl`` reward."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from _reward_builders import TOOLS as SEED_TOOLS
from _reward_builders import answer, broken, call, ideal, task, trace
from _reward_strategies import steps as any_step
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import CallAttempt, bfcl_reward, check_call, match_calls, tool_syntax_reward
from rewards._bfcl import maximum_matching, normalize_string
from sandbox.records import IdealCall, ToolSpec

EVERY_TYPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "point": {"type": "array", "items": {"type": "integer"}},
        "filters": {
            "type": "object",
            "properties": {"color": {"type": "string"}, "size": {"type": "integer"}},
        },
        "anything": {},
        "maybe": {"type": ["string", "null"]},
    },
    "required": ["city"],
}
PLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"artist": {"type": "string"}, "duration": {"type": "integer"}},
    "required": ["artist", "duration"],
}
TOOLS = [ToolSpec(name="f", input_schema=EVERY_TYPE), ToolSpec(name="play", input_schema=PLAY_SCHEMA)]


def check(arguments: dict[str, Any], strict: bool = False, **acceptable: list[Any]) -> Any:
    return check_call(
        "f", {"city": "Paris", **arguments}, ideal("f", **acceptable), EVERY_TYPE, strict=strict
    )


# --------------------------------------------------------------------------- one call, rule by rule


def test_the_name_must_be_the_ideal_calls() -> None:
    verdict = check_call("g", {}, ideal("f"), EVERY_TYPE)
    assert not verdict.ok and verdict.reason == "called 'g', not 'f'"


def test_a_tool_that_was_not_offered_fails() -> None:
    verdict = check_call("f", {"city": "x"}, ideal("f"), None)
    assert not verdict.ok and "not offered" in verdict.reason


def test_a_required_parameter_must_be_present_even_when_the_ideal_marks_it_optional() -> None:
    verdict = check_call("f", {}, ideal("f", city=["Paris", ""]), EVERY_TYPE)
    assert not verdict.ok
    assert verdict.parameter == "city"
    assert verdict.reason == "required parameter 'city' is missing"


def test_a_parameter_outside_the_schema_fails() -> None:
    verdict = check({"country": "FR"})
    assert not verdict.ok and verdict.parameter == "country"
    assert "not in the tool's schema" in verdict.reason


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("count", True, "integer"),
        ("count", 3.0, "integer"),
        ("count", "3", "integer"),
        ("ratio", "3", "number"),
        ("ratio", False, "number"),
        ("flag", 1, "boolean"),
        ("city", 7, "string"),
        ("tags", "a", "array"),
        ("filters", [], "object"),
        ("maybe", 3, "string or null"),
    ],
)
def test_a_value_must_have_the_schemas_exact_type(parameter: str, value: Any, expected: str) -> None:
    verdict = check({parameter: value})
    assert not verdict.ok
    assert verdict.parameter == parameter
    assert verdict.reason.endswith(f"expected {expected}")


def test_an_integer_for_a_number_is_the_one_leniency() -> None:
    assert check({"ratio": 2}, ratio=[2.0]).ok
    assert check({"ratio": 2.5}, ratio=[2.5]).ok
    assert not check({"count": 2.0}, count=[2]).ok


def test_array_items_and_object_properties_are_typed_all_the_way_down() -> None:
    verdict = check({"point": [1, True]})
    assert not verdict.ok and verdict.reason == "parameter 'point': item 1: True is boolean, expected integer"
    verdict = check({"filters": {"color": "red", "size": "L"}})
    assert not verdict.ok and "key 'size'" in verdict.reason


def test_an_untyped_parameter_takes_any_value() -> None:
    for value in (None, 1, "x", [1, "a"], {"k": [True]}):
        assert check({"anything": value}).ok


def test_strings_compare_after_bfcl_normalisation() -> None:
    assert normalize_string("New York, NY") == "newyorkny"
    assert normalize_string("a-b_c/d.e*f^g h") == "abcdefgh"
    assert normalize_string("it's") == 'it"s'
    assert check({}, city=["paris"]).ok
    assert check_call("f", {"city": "new_york ny."}, ideal("f", city=["New York, NY"]), EVERY_TYPE).ok
    assert check_call("f", {"city": "o'hare"}, ideal("f", city=['O"Hare']), EVERY_TYPE).ok
    verdict = check_call("f", {"city": "Rome"}, ideal("f", city=["Paris", "Lyon"]), EVERY_TYPE)
    assert not verdict.ok and verdict.reason == "parameter 'city': 'Rome' is not among ['Paris', 'Lyon']"


def test_numbers_compare_by_value_and_booleans_only_equal_booleans() -> None:
    assert check({"ratio": 2}, ratio=[2.0]).ok
    assert not check({"flag": True}, flag=[1]).ok
    assert check({"flag": False}, flag=[False]).ok
    assert not check({"count": 1}, count=[True]).ok


def test_an_empty_string_marks_a_parameter_optional() -> None:
    assert check({}, count=[3, ""]).ok
    assert check({"count": 3}, count=[3, ""]).ok
    verdict = check({}, count=[3])
    assert not verdict.ok and verdict.reason == "parameter 'count' is missing and not optional"


def test_a_parameter_the_ideal_does_not_list_is_free_unless_strict() -> None:
    assert check({"count": 9}, city=["Paris"]).ok
    verdict = check({"count": 9}, strict=True, city=["Paris"])
    assert not verdict.ok and verdict.reason == "parameter 'count' is not expected"


def test_lists_compare_element_by_element_in_order() -> None:
    assert check({"tags": ["Red Wine", "cheese"]}, tags=[["red wine", "Cheese"]]).ok
    assert not check({"tags": ["cheese", "red wine"]}, tags=[["red wine", "cheese"]]).ok
    assert not check({"tags": ["cheese"]}, tags=[["cheese", "bread"]]).ok
    assert check({"point": [1, 2]}, point=[[3, 4], [1, 2]]).ok


def test_dicts_compare_one_level_down() -> None:
    wanted = [{"color": ["red", "crimson"], "size": [10, ""]}]
    assert check({"filters": {"color": "Crimson"}}, filters=wanted).ok
    assert check({"filters": {"color": "red", "size": 10}}, filters=wanted).ok
    assert not check({"filters": {"color": "blue"}}, filters=wanted).ok
    assert not check({"filters": {"size": 10}}, filters=wanted).ok  # color is not optional
    assert not check({"filters": {"color": "red", "shape": 1}}, filters=wanted).ok


# --------------------------------------------------------------------------- several calls

LOOSE = IdealCall(name="play", arguments={"artist": ["Taylor Swift", "Maroon 5"], "duration": [20, 15]})
TIGHT = IdealCall(name="play", arguments={"artist": ["Taylor Swift"], "duration": [20]})
SWIFT = CallAttempt("play", {"artist": "Taylor Swift", "duration": 20})
MAROON = CallAttempt("play", {"artist": "Maroon 5", "duration": 15})
SCHEMAS = {spec.name: spec.input_schema for spec in TOOLS}


def bfcl_greedy(calls: list[CallAttempt], ideals: list[IdealCall]) -> bool:
    """BFCL's own matcher: each ideal call in turn takes the first remaining call that passes it."""
    left = list(range(len(calls)))
    for wanted in ideals:
        found = next(
            (i for i in left if check_call(calls[i].name or "", calls[i].arguments, wanted, PLAY_SCHEMA).ok),
            None,
        )
        if found is None:
            return False
        left.remove(found)
    return not left


def test_the_optimal_assignment_passes_what_bfcls_greedy_order_fails() -> None:
    ideals = [LOOSE, TIGHT]
    assert not bfcl_greedy([SWIFT, MAROON], ideals)  # LOOSE takes SWIFT, which TIGHT needed
    assert bfcl_greedy([MAROON, SWIFT], ideals)  # the same answer, in the other order
    for calls in ([SWIFT, MAROON], [MAROON, SWIFT]):
        matching = match_calls(calls, ideals, SCHEMAS)
        assert matching.ok and matching.reason == ""
        assert sorted(matching.pairs.values()) == [0, 1]


def test_a_missing_or_extra_call_is_named() -> None:
    matching = match_calls([MAROON], [LOOSE, TIGHT], SCHEMAS)
    assert not matching.ok
    assert matching.unmatched_ideals == (1,)
    assert matching.reason == "ideal call 1 (play) has no call left to match it"
    matching = match_calls([SWIFT, SWIFT], [TIGHT], SCHEMAS)
    assert matching.unmatched_calls == (1,)
    assert matching.reason == "call 1 (play) matches no ideal call"


def test_an_unmatched_ideal_call_says_why_the_closest_call_fails() -> None:
    wrong = CallAttempt("play", {"artist": "Adele", "duration": 20}, label="step 4")
    matching = match_calls([wrong], [TIGHT], SCHEMAS)
    assert matching.reason == (
        "ideal call 0 (play) is unmatched; step 4: parameter 'artist': 'Adele' is not among ['Taylor Swift']"
    )


def test_a_broken_call_never_matches() -> None:
    matching = match_calls([CallAttempt("play", dict(SWIFT.arguments), broken="bad JSON")], [TIGHT], SCHEMAS)
    assert not matching.ok and "did not parse (bad JSON)" in matching.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
names = st.sampled_from(["f", "play", "g"])
type_names = st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "null", "weird"])
schemas = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "type": st.just("object"),
            "properties": st.dictionaries(
                st.sampled_from(["a", "b", "c"]),
                st.fixed_dictionaries({"type": type_names | st.lists(type_names, max_size=2)}) | json_values,
            )
            | json_values,
            "required": st.lists(st.sampled_from(["a", "b"]) | json_values, max_size=2) | json_values,
        }
    ),
)
arguments = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_values, max_size=4)
ideals = st.builds(
    IdealCall,
    name=names,
    arguments=st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.lists(json_values | st.just(""), max_size=3)
    ),
)


@settings(max_examples=300, deadline=None)
@given(names, arguments, ideals, schemas, st.booleans())
def test_the_checker_never_raises_on_any_json(
    name: str, given_arguments: dict, wanted: IdealCall, schema: Any, strict: bool
) -> None:
    verdict = check_call(name, given_arguments, wanted, schema, strict=strict)
    assert verdict.ok or verdict.reason


attempts = st.builds(CallAttempt, name=names, arguments=arguments, broken=st.none() | st.just("bad"))


@settings(max_examples=200, deadline=None)
@given(st.lists(attempts, max_size=5), st.lists(ideals, max_size=4), st.data())
def test_permuting_the_calls_never_changes_the_verdict(
    calls: list, wanted: list, data: st.DataObject
) -> None:
    schemas_by_name = {"f": EVERY_TYPE, "play": PLAY_SCHEMA}
    first = match_calls(calls, wanted, schemas_by_name)
    shuffled = data.draw(st.permutations(calls))
    again = match_calls(shuffled, wanted, schemas_by_name)
    assert (again.ok, len(again.pairs)) == (first.ok, len(first.pairs))


@given(st.integers(0, 5), st.integers(0, 5), st.sets(st.tuples(st.integers(0, 4), st.integers(0, 4))))
def test_the_matching_is_maximum(left: int, right: int, edges: set) -> None:
    matching = maximum_matching(left, right, lambda i, j: (i, j) in edges)
    assert all((i, j) in edges for i, j in matching.items())
    assert len(set(matching.values())) == len(matching)
    best = 0
    for size in range(min(left, right), 0, -1):
        for chosen in itertools.combinations(range(left), size):
            if any(
                all((i, j) in edges for i, j in zip(chosen, perm, strict=True))
                for perm in itertools.permutations(range(right), size)
            ):
                best = size
                break
        if best:
            break
    assert len(matching) == best


# --------------------------------------------------------------------------- the bfcl reward

PARALLEL = task(ideal=[LOOSE, TIGHT])


def play(index: int, attempt: CallAttempt) -> Any:
    return call(index, "play", dict(attempt.arguments))


def test_the_reward_is_one_for_the_right_calls_in_any_order() -> None:
    for first, second in ([SWIFT, MAROON], [MAROON, SWIFT]):
        steps = [play(0, first), play(1, second), answer(2, "done")]
        reward = bfcl_reward(trace(PARALLEL, steps, tools=TOOLS), PARALLEL)
        assert reward.value == 1.0
        assert reward.reason == "all 2 ideal call(s) matched one to one"
        assert reward.per_step == [1.0, 1.0, None]
        assert (reward.name, reward.version) == ("bfcl", "3")


def test_a_repeated_call_is_one_too_many() -> None:
    steps = [play(0, SWIFT), play(1, MAROON), play(2, MAROON)]
    reward = bfcl_reward(trace(PARALLEL, steps, tools=TOOLS), PARALLEL)
    assert reward.value == 0.0
    assert reward.reason == "step 2 (play) matches no ideal call"
    assert reward.components == {"matched": 2.0, "unmatched_ideal": 0.0, "unmatched_calls": 1.0}


def test_a_wrong_value_is_named_in_the_reason() -> None:
    steps = [play(0, SWIFT), call(1, "play", {"artist": "Maroon 5", "duration": 16})]
    reward = bfcl_reward(trace(PARALLEL, steps, tools=TOOLS), PARALLEL)
    assert reward.value == 0.0
    # SWIFT fits both ideal calls and goes to the first; TIGHT is left, and step 1 fails it.
    assert reward.reason == (
        "ideal call 1 (play) is unmatched; "
        "step 1: parameter 'artist': 'Maroon 5' is not among ['Taylor Swift']"
    )
    single = task(ideal=[TIGHT])
    steps = [call(0, "play", {"artist": "Taylor Swift", "duration": 16})]
    reward = bfcl_reward(trace(single, steps, tools=TOOLS), single)
    assert (
        reward.reason
        == "ideal call 0 (play) is unmatched; step 0: parameter 'duration': 16 is not among [20]"
    )


def test_a_broken_call_scores_zero() -> None:
    the_task = task(ideal=[TIGHT])
    reward = bfcl_reward(trace(the_task, [broken(0, "play", dict(SWIFT.arguments))], tools=TOOLS), the_task)
    assert reward.value == 0.0 and "did not parse" in reward.reason


def test_irrelevance_is_right_only_without_a_call() -> None:
    no_tool = task(expected="Shakespeare")
    assert bfcl_reward(trace(no_tool, [answer(0, "Shakespeare")], tools=TOOLS), no_tool).value == 1.0
    reward = bfcl_reward(trace(no_tool, [play(0, SWIFT), answer(1, "x")], tools=TOOLS), no_tool)
    assert reward.value == 0.0
    assert reward.reason == "no tool fits, yet step 0 called play (irrelevance: no call is right)"


# --------------------------------------------------------------------------- inside the tool-syntax reward


def test_tool_syntax_pairs_steps_with_ideal_calls_optimally() -> None:
    # Version 1 (first come, first served) spent LOOSE on the first call and judged MAROON invalid.
    steps = [play(0, SWIFT), play(1, MAROON)]
    reward = tool_syntax_reward(trace(PARALLEL, steps, tools=TOOLS), PARALLEL)
    assert reward.per_step == [0.8, 0.8]
    assert reward.components["bfcl_matched"] == 2.0
    assert reward.components["missing_ideal_calls"] == 0.0


def test_tool_syntax_judges_a_wrong_value_invalid_and_a_later_retry_valid() -> None:
    the_task = task(ideal=[TIGHT])
    steps = [call(0, "play", {"artist": "Adele", "duration": 20}), play(1, SWIFT), play(2, SWIFT)]
    reward = tool_syntax_reward(trace(the_task, steps, tools=TOOLS), the_task)
    assert reward.per_step == [-0.5, 0.8, -1.0]
    assert reward.components["bfcl_argument_failures"] == 1.0
    assert "step 0 play: parameter 'artist': 'Adele' is not among ['Taylor Swift']" in reward.reason


valued_ideals = st.lists(
    st.sampled_from(
        [
            ideal("get_weather", city=["Paris", "paris"]),
            ideal("get_weather", city=["Oslo"], unit=["C", ""]),
            ideal("add", a=[1], b=[2, 2.0]),
        ]
    ),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(valued_ideals, st.integers(0, 6).flatmap(lambda n: st.tuples(*[any_step(i) for i in range(n)])))
def test_with_acceptable_values_the_rewards_keep_their_bounds(wanted: list, drawn: tuple) -> None:
    the_task = task(ideal=wanted)
    the_trace = trace(the_task, list(drawn), tools=SEED_TOOLS)
    syntax = tool_syntax_reward(the_trace, the_task)
    tool_steps = [step for step in drawn if step.action != "answer"]
    assert syntax.per_step is not None
    assert {score for score in syntax.per_step if score is not None} <= {-1.0, -0.5, 0.8}
    if syntax.value is not None and tool_steps:
        assert -1.0 * len(tool_steps) <= syntax.value <= 0.8 * len(wanted) + 1e-9
        assert syntax.components["bfcl_matched"] <= len(wanted)
    verdict = bfcl_reward(the_trace, the_task)
    assert verdict.value in (0.0, 1.0) and verdict.reason
    assert verdict.value == 1.0 or verdict.components["matched"] < max(len(wanted), len(tool_steps))
