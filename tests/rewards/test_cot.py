"""The seed's CoT formula, branch by branch, and the reward built on a PRM."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from _reward_builders import answer, call, ideal, task, trace

from rewards import calculate_reward, cot_reward, make_cot_reward
from sandbox.records import Attributes, Step, Task, Trace


def attributes(
    helpfulness: float = 0.9,
    correctness: float = 0.9,
    coherence: float = 0.9,
    complexity: float = 0.1,
    verbosity: float = 0.1,
) -> Attributes:
    return Attributes(
        helpfulness=helpfulness,
        correctness=correctness,
        coherence=coherence,
        complexity=complexity,
        verbosity=verbosity,
    )


# --------------------------------------------------------------------------- the formula


def test_a_wrong_answer_scores_minus_one_whatever_the_attributes() -> None:
    assert calculate_reward(False, attributes()) == -1.0
    assert calculate_reward(False, attributes(verbosity=1.0, correctness=0.0)) == -1.0


def test_a_right_helpful_coherent_answer_earns_the_bonus() -> None:
    assert calculate_reward(True, attributes()) == 1.2


@pytest.mark.parametrize(
    "dull", [{"helpfulness": 0.5}, {"coherence": 0.5}, {"helpfulness": 0.2, "coherence": 0.1}]
)
def test_the_bonus_needs_both_helpfulness_and_coherence_above_half(dull: dict[str, float]) -> None:
    assert calculate_reward(True, attributes(**dull)) == 1.0


@pytest.mark.parametrize(
    "doubt", [{"correctness": 0.49}, {"complexity": 0.51}, {"correctness": 0.0, "complexity": 1.0}]
)
def test_doubtful_or_complex_costs_point_two_once(doubt: dict[str, float]) -> None:
    assert calculate_reward(True, attributes(**doubt)) == pytest.approx(1.0)


def test_the_thresholds_are_strict() -> None:
    assert calculate_reward(True, attributes(correctness=0.5, complexity=0.5, verbosity=0.5)) == 1.2


def test_verbosity_costs_point_two() -> None:
    assert calculate_reward(True, attributes(verbosity=0.51)) == pytest.approx(1.0)


def test_every_penalty_and_no_bonus() -> None:
    worst = attributes(helpfulness=0.0, coherence=0.0, correctness=0.0, verbosity=1.0)
    assert calculate_reward(True, worst) == pytest.approx(0.6)


# --------------------------------------------------------------------------- the reward


FOUR = task(expected="4", match="number")


def test_seed_story_two_plus_two_in_ten_thousand_words() -> None:
    rambling = " ".join(["Let me think about this carefully."] * 2000) + " So 2 + 2 = 4"
    reward = cot_reward(trace(FOUR, [answer(0, rambling)]), FOUR)
    assert reward.components["verbosity"] > 0.5
    assert reward.components["verbosity_penalty"] == -0.2
    assert reward.value is not None
    assert reward.value <= 0.8


def test_seed_story_a_wrong_answer() -> None:
    reward = cot_reward(trace(FOUR, [answer(0, "2 + 2 = 5")]), FOUR)
    assert reward.value == -1.0
    assert reward.components["answer_correct"] == 0.0
    assert reward.components["helpful_coherent_bonus"] == 0.0


def test_a_short_right_answer() -> None:
    reward = cot_reward(trace(FOUR, [answer(0, "4")]), FOUR)
    assert reward.value == 1.2
    assert reward.components == {
        "helpfulness": 1.0,
        "correctness": 1.0,
        "coherence": 1.0,
        "complexity": 0.0,
        "verbosity": pytest.approx(1 / 260),  # 1 word over twice (100 thought + 30 answer words)
        "answer_correct": 1.0,
        "helpful_coherent_bonus": 0.2,
        "doubtful_or_complex_penalty": 0.0,
        "verbosity_penalty": 0.0,
    }
    assert (reward.name, reward.version) == ("cot", "5+rule-prm@4")


def test_a_right_answer_after_a_long_detour() -> None:
    weather = task(expected="sunny", match="contains", ideal=[ideal("get_weather")])
    steps = [call(index, "get_weather", {"city": "Paris"}) for index in range(6)] + [answer(6, "sunny")]
    reward = cot_reward(trace(weather, steps), weather)
    assert reward.components["complexity"] > 0.5
    assert reward.components["coherence"] < 0.5  # five repeats
    assert reward.value == pytest.approx(0.8)


def test_no_expected_answer_cannot_be_scored() -> None:
    open_task = task()
    reward = cot_reward(trace(open_task, [answer(0, "4")]), open_task)
    assert reward.value is None
    assert "no expected answer" in reward.reason


class FixedPRM:
    """A test double: the same grade and attributes for everything."""

    name = "fixed"
    version = "7"

    def __init__(self, rated: Attributes) -> None:
        self.rated = rated

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        return 0.25

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        return self.rated


def test_any_prm_plugs_in_and_names_itself_in_the_version() -> None:
    reward_fn = make_cot_reward(FixedPRM(attributes(verbosity=0.9)))
    reward = reward_fn(trace(FOUR, [answer(0, "4")]), FOUR)
    assert reward.version == "5+fixed@7"
    assert reward.value == pytest.approx(1.0)
