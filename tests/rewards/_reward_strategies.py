"""Hypothesis strategies for arbitrary tasks and traces, including malformed and huge ones."""

from __future__ import annotations

from typing import Any

from _reward_builders import TOOLS, answer, broken, call, ideal, task, trace
from hypothesis import strategies as st

from sandbox.records import Step, Task, Trace

# Tool names the traces call: listed ones (good and bad schemas) and unknown ones.
CALL_NAMES = ["get_weather", "add", "bad_schema", "remote_ref", "unknown_tool", ""]
IDEAL_NAMES = ["get_weather", "add", "unknown_tool"]
ERROR_KINDS = [None, "tool_error", "unknown_tool", "timeout", "server_crashed", "protocol_error"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
arguments = st.dictionaries(st.sampled_from(["city", "unit", "a", "b", "x"]), json_scalars, max_size=4)

# Answers: short words and numbers, huge ones, and text made to look like numbers.
huge_text = st.integers(0, 12_000).map(lambda words: "four " * words)
number_text = st.from_regex(r"-?[0-9]{1,6}([.,/][0-9]{1,4})?%?", fullmatch=True)
answers = st.one_of(st.text(max_size=40), huge_text, number_text, st.just("1" * 6000), st.just("1e999"))


@st.composite
def steps(draw: st.DrawFn, index: int) -> Step:
    kind = draw(st.sampled_from(["call", "broken", "answer"]))
    if kind == "call":
        name = draw(st.sampled_from(CALL_NAMES))
        return call(index, name, draw(arguments), error_kind=draw(st.sampled_from(ERROR_KINDS)))
    if kind == "broken":
        return broken(index, draw(st.none() | st.sampled_from(CALL_NAMES)), draw(arguments))
    return answer(index, draw(answers))


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    ideals = draw(st.lists(st.sampled_from(IDEAL_NAMES), max_size=3))
    match = draw(st.sampled_from(["exact", "contains", "number"]))
    expected: Any = draw(st.none() | number_text | st.lists(number_text, min_size=1, max_size=2))
    if match != "number":
        expected = draw(
            st.none() | st.text(max_size=12) | st.lists(st.text(max_size=12), min_size=1, max_size=2)
        )
    return task(expected=expected, match=match, ideal=[ideal(name) for name in ideals])


@st.composite
def traces(draw: st.DrawFn, the_task: Task | None = None) -> Trace:
    """A trace of up to 8 arbitrary steps against ``the_task`` (drawn when not given)."""
    chosen = the_task if the_task is not None else draw(tasks())
    count = draw(st.integers(0, 8))
    drawn = [draw(steps(index)) for index in range(count)]
    final = draw(st.none() | answers)
    return trace(chosen, drawn, final_answer=final, tools=draw(st.sampled_from([TOOLS, TOOLS[:2], []])))
