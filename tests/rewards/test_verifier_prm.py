"""The verifier PRM: step grades from checked equations, and nothing for a repeated step."""

from __future__ import annotations

from _reward_builders import answer, call, task, trace
from hypothesis import given
from hypothesis import strategies as st

from rewards import ProcessRewardModel, RulePRM, VerifierPRM
from rewards._verifier import (
    MIN_RESTATED_TRIGRAMS,
    NO_EQUATION_GRADE,
    REPEATED_STEP_GRADE,
    process_verifier,
)
from sandbox.records import Step, ToolCall, Trace

PRM = VerifierPRM()
TASK = task(expected="17", match="number")
TWO_PLUS_TWO = task(expected="4", match="number")
SLOP = "This is a great example of how math can be used to solve problems. "


def thought(text: str, index: int = 0) -> Step:
    return Step(index=index, raw_text=text, thought=text, action="answer", answer="done")


def thinking_call(index: int, text: str, expression: str = "2 + 2", *, failed: bool = False) -> Step:
    step = call(index, "calculate", {"expression": expression}, error_kind="tool_error" if failed else None)
    return step.model_copy(update={"thought": text})


def grades(steps: list[Step], prm: ProcessRewardModel | None = None) -> list[float]:
    grader = prm or VerifierPRM()
    return [grader.grade_step(TASK, steps[:index], step) for index, step in enumerate(steps)]


def test_step_grades() -> None:
    assert isinstance(PRM, ProcessRewardModel)
    assert PRM.grade_step(TASK, [], thought("20 - 3 = 17")) == 1.0
    assert PRM.grade_step(TASK, [], thought("20 - 3 = 17, so 17 * 2 = 35")) == 0.0
    assert PRM.grade_step(TASK, [], thought("I will think about it")) == NO_EQUATION_GRADE


def test_call_arguments_and_answers_are_read() -> None:
    note = ToolCall(id="c", name="note", arguments={"text": "2 + 2 = 5"})
    step = Step(index=0, raw_text="", action="tool_call", call=note)
    assert PRM.grade_step(TASK, [], step) == 0.0
    assert PRM.grade_step(TASK, [], answer(0, "20 - 3 = 17")) == 1.0


def test_a_false_equation_caps_correctness() -> None:
    right = trace(TASK, [thought("20 * 15% = 3"), answer(1, "20 - 3 = 17")], final_answer="17")
    wrong = trace(TASK, [thought("20 * 15% = 4"), answer(1, "20 - 3 = 17")], final_answer="17")
    assert PRM.evaluate(right, TASK).correctness == RulePRM().evaluate(right, TASK).correctness == 1.0
    assert PRM.evaluate(wrong, TASK).correctness == 0.5


# --------------------------------------------------------------------------- repeats


def test_a_repeated_call_grades_nothing_whatever_its_thought() -> None:
    steps = [thinking_call(0, "Let me add them."), thinking_call(1, "Now I am sure: 3 + 4 = 7.")]
    assert grades(steps) == [NO_EQUATION_GRADE, REPEATED_STEP_GRADE]
    other = [steps[0], thinking_call(1, "Now I am sure: 3 + 4 = 7.", expression="3 + 4")]
    assert grades(other) == [NO_EQUATION_GRADE, 1.0]


def test_a_retry_after_an_infrastructure_failure_is_no_repeat() -> None:
    timed_out = call(0, "calculate", {"expression": "2 + 2"}, error_kind="timeout")
    retry = call(1, "calculate", {"expression": "2 + 2"})
    again = call(2, "calculate", {"expression": "2 + 2"})
    assert grades([timed_out, retry, again]) == [NO_EQUATION_GRADE, NO_EQUATION_GRADE, REPEATED_STEP_GRADE]


def test_a_restated_thought_grades_nothing_whatever_its_call() -> None:
    first = thinking_call(0, "2 + 2 = 4.", expression="2 + 2")
    same_words = thinking_call(1, "2+2 = 4", expression="2 * 2")  # equal once normalized
    assert grades([first, same_words]) == [1.0, REPEATED_STEP_GRADE]
    empty = thinking_call(1, "", expression="2 * 2")  # an empty thought restates nothing
    assert grades([thinking_call(0, ""), empty]) == [NO_EQUATION_GRADE, NO_EQUATION_GRADE]


def test_restating_is_nine_tenths_of_the_thought_s_trigrams_seen_before() -> None:
    words = [f"w{number}" for number in range(12)]  # 10 distinct trigrams
    earlier = thinking_call(0, " ".join(words), expression="1 + 1")
    one_changed = thinking_call(1, " ".join([*words[:-1], "new"]), expression="2 + 2")  # 9 of 10 seen
    two_changed = thinking_call(1, " ".join([*words[:-2], "new", "other"]), expression="2 + 2")  # 8 of 10
    assert grades([earlier, one_changed])[1] == REPEATED_STEP_GRADE
    assert grades([earlier, two_changed])[1] == NO_EQUATION_GRADE
    short = " ".join(words[: MIN_RESTATED_TRIGRAMS + 1])  # too short for the overlap rule
    assert grades([earlier, thinking_call(1, short, expression="2 + 2")])[1] == NO_EQUATION_GRADE


def test_the_looping_episode_scores_below_a_right_one_step_answer() -> None:
    # Six identical failing calls, each thought restating 2 + 2 = 4 in slop; no answer.
    loop_thought = "I need to add 2 and 2. 2 + 2 = 4. " + SLOP * 10
    loop = trace(
        TWO_PLUS_TWO,
        [thinking_call(index, loop_thought, failed=True) for index in range(6)],
        final_answer=None,
    )
    varied = trace(
        TWO_PLUS_TWO,
        [
            thinking_call(index, f"Attempt {index}: 2 + 2 = 4. " + SLOP * 10, failed=True)
            for index in range(6)
        ],
        final_answer=None,
    )
    right = trace(TWO_PLUS_TWO, [answer(0, "4")], final_answer="4")
    right_with_work = trace(
        TWO_PLUS_TWO, [Step(index=0, raw_text="", thought="2 + 2 = 4", action="answer", answer="4")]
    )
    scores = {name: process_verifier(each, TWO_PLUS_TWO) for name, each in
              (("loop", loop), ("varied", varied), ("right", right), ("work", right_with_work))}  # fmt: skip
    assert scores["loop"].per_step == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert scores["varied"].per_step == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert scores["loop"].value == scores["varied"].value == 1.0
    assert scores["right"].value == 1.5 and scores["work"].value == 2.0


def test_a_loop_cannot_accumulate_the_neutral_grade() -> None:
    steps = [thinking_call(index, "Let me call the tool again.", failed=True) for index in range(50)]
    assert sum(grades(steps)) == NO_EQUATION_GRADE


# Steps made of a few thoughts and calls, so that repeats are frequent.
THOUGHTS = ["", "2 + 2 = 4.", "2 + 2 = 5.", "Let me check the weather first.", SLOP * 3, "3 * 4 = 12 so far"]
EXPRESSIONS = ["2 + 2", "3 * 4", "1 + 1 = 3"]


@st.composite
def loop_steps(draw: st.DrawFn, index: int) -> Step:
    text = draw(st.sampled_from(THOUGHTS))
    if draw(st.booleans()):
        return Step(
            index=index,
            raw_text=text,
            thought=text,
            action="answer",
            answer=draw(st.sampled_from(["4", "5"])),
        )
    return thinking_call(index, text, draw(st.sampled_from(EXPRESSIONS)), failed=draw(st.booleans()))


@st.composite
def step_lists(draw: st.DrawFn, max_size: int = 8) -> list[Step]:
    count = draw(st.integers(1, max_size))
    return [draw(loop_steps(index)) for index in range(count)]


def total(steps: list[Step]) -> float:
    scored = process_verifier(
        Trace.model_validate(trace(TWO_PLUS_TWO, steps, final_answer="4")), TWO_PLUS_TWO
    )
    assert scored.value is not None
    return scored.value


@given(step_lists(), st.data())
def test_repeating_a_step_never_raises_the_process_total(steps: list[Step], data: st.DataObject) -> None:
    original = data.draw(st.integers(0, len(steps) - 1))
    copy = steps[original]
    if copy.call is None and not copy.thought:
        return  # a bare answer with no thought is no repeat by the rules
    at = data.draw(st.integers(original + 1, len(steps)))
    repeated = [*steps[:at], copy.model_copy(), *steps[at:]]
    assert total(repeated) <= total(steps)


@given(st.lists(step_lists(), min_size=1, max_size=3), st.data())
def test_the_step_index_and_the_one_pass_give_the_grades_of_a_fresh_grader(
    solutions: list[list[Step]], data: st.DataObject
) -> None:
    expected = [
        [VerifierPRM().grade_step(TASK, steps[:i], step) for i, step in enumerate(steps)]
        for steps in solutions
    ]
    calls = [(which, index) for which, steps in enumerate(solutions) for index in range(len(steps))]
    order = data.draw(st.permutations(calls))
    shared = VerifierPRM()
    for which, index in order:
        steps = solutions[which]
        assert shared.grade_step(TASK, steps[:index], steps[index]) == expected[which][index]
    assert [shared.grade_steps(TASK, steps) for steps in solutions] == expected
