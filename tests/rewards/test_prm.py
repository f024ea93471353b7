"""The rule PRM: each step rule, and each attribute on hand-built traces."""

from __future__ import annotations

import pytest
from _reward_builders import answer, broken, call, ideal, task, trace

from rewards import ProcessRewardModel, RulePRM
from rewards._prm import repeated_share
from sandbox.records import Step

PRM = RulePRM()
WEATHER_TASK = task(expected="sunny", match="contains", ideal=[ideal("get_weather")])
PARIS = {"city": "Paris"}


def grade(step: Step, before: list[Step] | None = None) -> float:
    return PRM.grade_step(WEATHER_TASK, before or [], step)


def test_the_rule_prm_is_a_process_reward_model() -> None:
    assert isinstance(PRM, ProcessRewardModel)
    assert (PRM.name, PRM.version) == ("rule-prm", "4")


# --------------------------------------------------------------------------- step grades


def test_a_good_call_grades_one() -> None:
    assert grade(call(0, "get_weather", PARIS)) == 1.0


def test_a_broken_call_grades_zero() -> None:
    assert grade(broken(0, "get_weather")) == 0.0
    assert grade(broken(0)) == 0.0


@pytest.mark.parametrize("kind", ["tool_error", "unknown_tool"])
def test_a_call_the_tool_rejected_grades_point_three(kind: str) -> None:
    assert grade(call(0, "get_weather", PARIS, error_kind=kind)) == 0.3


@pytest.mark.parametrize("kind", ["timeout", "server_crashed", "protocol_error"])
def test_an_infrastructure_failure_grades_neutral(kind: str) -> None:
    assert grade(call(0, "get_weather", PARIS, error_kind=kind)) == 0.5


def test_repeating_an_identical_call_earns_nothing() -> None:
    first = call(0, "get_weather", PARIS)
    assert grade(call(1, "get_weather", PARIS), [first]) == 0.0
    assert grade(call(1, "get_weather", {"city": "Oslo"}), [first]) == 1.0


def test_an_answer_grades_one_unless_blank() -> None:
    assert grade(answer(0, "sunny")) == 1.0
    assert grade(answer(0, "  ")) == 0.0


# --------------------------------------------------------------------------- attributes


def test_a_clean_right_episode() -> None:
    attributes = PRM.evaluate(
        trace(WEATHER_TASK, [call(0, "get_weather", PARIS), answer(1, "sunny")]), WEATHER_TASK
    )
    assert attributes.model_dump() == {
        "helpfulness": 1.0,
        "correctness": 1.0,
        "coherence": 1.0,
        "complexity": 0.0,
        "verbosity": pytest.approx(1 / 460),  # 1 word over twice (2 x 100 thought + 30 answer words)
    }


def test_helpfulness_halves_without_an_answer_and_counts_ideal_tools() -> None:
    no_answer = trace(WEATHER_TASK, [call(0, "get_weather", PARIS)])
    no_tool = trace(WEATHER_TASK, [answer(0, "sunny")])
    assert PRM.evaluate(no_answer, WEATHER_TASK).helpfulness == 0.5
    assert PRM.evaluate(no_tool, WEATHER_TASK).helpfulness == 0.5


def test_an_answer_buried_in_words_loses_its_helpfulness() -> None:
    four = task(expected="4", match="number")

    def helpfulness(words: int) -> float:
        return PRM.evaluate(trace(four, final_answer="four " * words), four).helpfulness

    # No tool needed: half for the ideal tools; the answer's half lasts to 30 words, gone by 60.
    assert helpfulness(30) == 1.0
    assert helpfulness(45) == 0.75
    assert helpfulness(60) == 0.5
    assert helpfulness(10_000) == 0.5


def test_correctness_follows_the_outcome() -> None:
    wrong = trace(WEATHER_TASK, [call(0, "get_weather", PARIS), answer(1, "rain")])
    assert PRM.evaluate(wrong, WEATHER_TASK).correctness == 0.0


def test_correctness_without_an_expected_answer_is_the_mean_step_grade() -> None:
    open_task = task()
    steps = [call(0, "add", {"a": 1, "b": 2}), broken(1), answer(2, "3")]
    assert PRM.evaluate(trace(open_task, steps), open_task).correctness == pytest.approx(2 / 3)
    assert PRM.evaluate(trace(open_task, []), open_task).correctness == 0.0


def test_coherence_is_the_share_of_steps_neither_broken_nor_repeated() -> None:
    steps = [call(0, "get_weather", PARIS), call(1, "get_weather", PARIS), broken(2), answer(3, "sunny")]
    assert PRM.evaluate(trace(WEATHER_TASK, steps), WEATHER_TASK).coherence == 0.5


def test_complexity_passes_half_beyond_twice_the_ideal_steps() -> None:
    def complexity(count: int) -> float:
        steps = [call(index, "get_weather", {"city": str(index)}) for index in range(count)]
        return PRM.evaluate(trace(WEATHER_TASK, steps), WEATHER_TASK).complexity

    # Ideal: one call and the answer, two steps.
    assert complexity(2) == 0.0
    assert complexity(4) == 0.5
    assert complexity(5) > 0.5
    assert complexity(20) == 1.0


def distinct_words(count: int) -> str:
    """``count`` different words: long, never repetitive."""
    return " ".join(f"w{index}" for index in range(count))


def test_verbosity_passes_half_once_thoughts_and_answer_overrun_their_budget() -> None:
    four = task(expected="4", match="number")

    def verbosity(thought_words: int, answer_words: int) -> float:
        text = distinct_words(thought_words + answer_words).split()
        step = answer(0, " ".join(text[thought_words:])).model_copy(
            update={"thought": " ".join(text[:thought_words])}
        )
        return PRM.evaluate(trace(four, [step]), four).verbosity

    # Budget: 100 thought words for the one ideal step, plus 30 for a one-word expected answer.
    assert verbosity(100, 30) == 0.5
    assert verbosity(0, 130) == 0.5
    assert verbosity(101, 30) > 0.5
    assert verbosity(10_000, 1) == 1.0


def test_a_long_answer_without_spaces_is_still_long() -> None:
    four = task(expected="4")
    assert PRM.evaluate(trace(four, final_answer="x" * 60_000), four).verbosity == 1.0


def test_verbosity_budget_without_an_expected_answer_is_100_answer_words() -> None:
    open_task = task()
    assert PRM.evaluate(trace(open_task, final_answer=distinct_words(200)), open_task).verbosity == 0.5


def test_a_thought_that_repeats_itself_is_verbose_however_short() -> None:
    four = task(expected="4", match="number")
    once = "I will add the two numbers and then check the sum."
    loop = answer(0, "4").model_copy(update={"thought": f"{once} {once} {once}"})
    plain = answer(0, "4").model_copy(update={"thought": once})
    assert PRM.evaluate(trace(four, [loop]), four).verbosity > 0.5  # 36 words, within the length budget
    assert PRM.evaluate(trace(four, [plain]), four).verbosity < 0.1


def test_repeated_share_counts_the_words_inside_repeated_sequences() -> None:
    words = list("abcdefabcdefx")
    assert repeated_share(words) == pytest.approx(6 / 13)
    assert repeated_share(list("abcdefgh")) == 0.0
    assert repeated_share([]) == 0.0
    assert repeated_share(["same"] * 100) == pytest.approx(99 / 100)  # all but the first word


# --------------------------------------------------------------------------- repeated steps


def test_a_repeated_call_earns_nothing_even_when_it_failed() -> None:
    first = call(0, "get_weather", PARIS, error_kind="tool_error")
    again = call(1, "get_weather", PARIS, error_kind="tool_error")
    assert grade(first) == 0.3
    assert grade(again, [first]) == 0.0


def test_retrying_after_an_infrastructure_failure_is_not_a_repeat() -> None:
    timed_out = call(0, "get_weather", PARIS, error_kind="timeout")
    assert grade(call(1, "get_weather", PARIS), [timed_out]) == 1.0
    assert grade(call(2, "get_weather", PARIS), [timed_out, call(1, "get_weather", PARIS)]) == 0.0


def test_arguments_compare_by_value_not_by_order() -> None:
    first = call(0, "add", {"a": 1, "b": 2})
    assert grade(call(1, "add", {"b": 2, "a": 1}), [first]) == 0.0
    assert grade(call(1, "add", {"a": 1, "b": 3}), [first]) == 1.0


def thinking(step: Step, thought: str) -> Step:
    return step.model_copy(update={"thought": thought})


def test_a_thought_that_restates_an_earlier_one_earns_nothing() -> None:
    said = "The forecast for Paris says it will be sunny and mild all afternoon."
    first = thinking(call(0, "get_weather", PARIS), said)
    restated = thinking(call(1, "get_weather", {"city": "Oslo"}), "So: " + said)
    new = thinking(call(1, "get_weather", {"city": "Oslo"}), "Now the forecast for Oslo, the other city.")
    assert grade(restated, [first]) == 0.0
    assert grade(new, [first]) == 1.0
    assert grade(thinking(answer(1, "sunny"), said), [first]) == 0.0


def test_short_thoughts_are_never_restatements() -> None:
    first = thinking(call(0, "get_weather", PARIS), "Let me check.")
    assert grade(thinking(call(1, "get_weather", {"city": "Oslo"}), "Let me check."), [first]) == 1.0


def test_grading_a_whole_trace_agrees_with_grading_step_by_step() -> None:
    said = "This is a great example of how math can be used to solve problems."
    steps = [
        thinking(call(0, "add", {"a": 2, "b": 2}, error_kind="tool_error"), said),
        thinking(call(1, "add", {"a": 2, "b": 2}, error_kind="tool_error"), said),
        call(2, "add", {"a": 2, "b": 3}, error_kind="timeout"),
        call(3, "add", {"a": 2, "b": 3}),
        broken(4),
        answer(5, "4"),
    ]
    each = [PRM.grade_step(WEATHER_TASK, steps[:index], step) for index, step in enumerate(steps)]
    assert PRM.grade_steps(WEATHER_TASK, steps) == each == [0.3, 0.0, 0.5, 1.0, 0.0, 1.0]
