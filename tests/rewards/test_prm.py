"""The rule PRM: each step rule, and each attribute on hand-built traces."""

from __future__ import annotations

import pytest
from _reward_builders import answer, broken, call, ideal, task, trace

from rewards import ProcessRewardModel, RulePRM
from sandbox.records import Step

PRM = RulePRM()
WEATHER_TASK = task(expected="sunny", match="contains", ideal=[ideal("get_weather")])
PARIS = {"city": "Paris"}


def grade(step: Step, before: list[Step] | None = None) -> float:
    return PRM.grade_step(WEATHER_TASK, before or [], step)


def test_the_rule_prm_is_a_process_reward_model() -> None:
    assert isinstance(PRM, ProcessRewardModel)
    assert (PRM.name, PRM.version) == ("rule-prm", "2")


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
        "verbosity": pytest.approx(1 / 60),  # 1 word over twice a 30-word budget
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


def test_verbosity_passes_half_once_the_answer_overruns_its_budget() -> None:
    four = task(expected="4", match="number")

    def verbosity(words: int) -> float:
        return PRM.evaluate(trace(four, final_answer=" ".join(["four"] * words)), four).verbosity

    assert verbosity(30) == 0.5
    assert verbosity(31) > 0.5
    assert verbosity(10_000) == 1.0


def test_a_long_answer_without_spaces_is_still_long() -> None:
    four = task(expected="4")
    assert PRM.evaluate(trace(four, final_answer="x" * 60_000), four).verbosity == 1.0


def test_verbosity_budget_without_an_expected_answer_is_100_words() -> None:
    open_task = task()
    assert PRM.evaluate(trace(open_task, final_answer="word " * 100), open_task).verbosity == 0.5
