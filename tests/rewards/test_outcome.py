"""The outcome reward and its answer matching."""

from __future__ import annotations

import pytest
from _reward_builders import answer, task, trace

from rewards import AnswerSpecError, answers_match, outcome_reward

# --------------------------------------------------------------------------- exact and contains


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Paris", "paris"),
        ("  The   Eiffel Tower! ", "eiffel tower"),
        ("ＰＡＲＩＳ", "Paris"),  # NFKC folds full-width letters
        ("STRASSE", "straße"),  # casefold, not lower
        ("an apple", "Apple."),
        ("New-York", "new york"),
    ],
)
def test_exact_matches_after_normalisation(given: str, expected: str) -> None:
    assert answers_match(given, [expected], "exact")


@pytest.mark.parametrize(
    ("given", "expected"), [("Paris, France", "Paris"), ("Pari", "Paris"), ("", "Paris")]
)
def test_exact_rejects_other_texts(given: str, expected: str) -> None:
    assert not answers_match(given, [expected], "exact")


def test_an_acceptable_answer_of_only_punctuation_is_compared_lightly() -> None:
    assert answers_match(" ? ", ["?"], "exact")
    assert not answers_match("!", ["?"], "exact")


def test_contains_finds_whole_words() -> None:
    assert answers_match("I think it is Paris, in France.", ["paris"], "contains")
    assert answers_match("the New York Times", ["new york"], "contains")
    assert not answers_match("Parisian food", ["Paris"], "contains")


def test_any_acceptable_answer_counts() -> None:
    assert answers_match("Oslo", ["Paris", "Oslo"], "exact")


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0.5", "1/2"),
        ("1/2", "0.5"),
        ("1,000", "1000"),
        ("The total is 1,234,567.", "1234567"),
        ("-3/4", "-0.75"),
        ("\u22127", "-7"),  # the Unicode minus sign
        ("5.0", "5"),
        ("1e3", "1000"),
        (".25", "1/4"),
        ("50%", "50%"),
        ("50%", "0.5"),
        ("2 + 2 = 4", "4"),
        ("I first thought 3, but the answer is 4", "4"),
        ("\\boxed{42}", "42"),
    ],
)
def test_equal_numbers_match(given: str, expected: str) -> None:
    assert answers_match(given, [expected], "number")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0.5", "0.51"),
        ("3, no wait: 4", "3"),  # the last number counts
        ("50%", "50"),  # a percent sign divides by 100
        ("50", "50%"),
        ("-4", "4"),
        ("x2", "2"),  # inside a word, not a number
        ("no number here", "4"),
    ],
)
def test_other_numbers_do_not_match(given: str, expected: str) -> None:
    assert not answers_match(given, [expected], "number")


def test_a_number_too_long_to_compare_never_matches() -> None:
    assert not answers_match("1" * 2000, ["1" * 10], "number")


@pytest.mark.parametrize("expected", ["four", "1/0", "3 or 4", "", "1" * 1001])
def test_an_acceptable_answer_that_is_not_one_number_is_the_tasks_fault(expected: str) -> None:
    with pytest.raises(AnswerSpecError, match="not a number"):
        answers_match("4", [expected], "number")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(AnswerSpecError, match="unknown answer_match"):
        answers_match("4", ["4"], "fuzzy")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the reward


def test_a_right_answer_scores_one() -> None:
    the_task = task(expected=["Paris", "City of Light"])
    reward = outcome_reward(trace(the_task, [answer(0, "paris.")]), the_task)
    assert (reward.name, reward.version, reward.value) == ("outcome", "5", 1.0)
    assert reward.components == {"answer_correct": 1.0}
    assert "Paris" in reward.reason


def test_a_wrong_answer_scores_zero() -> None:
    the_task = task(expected="4", match="number")
    reward = outcome_reward(trace(the_task, [answer(0, "5")]), the_task)
    assert reward.value == 0.0
    assert "no acceptable answer matched" in reward.reason


def test_no_final_answer_scores_zero_and_says_so() -> None:
    the_task = task(expected="4")
    reward = outcome_reward(trace(the_task, []), the_task)
    assert reward.value == 0.0
    assert reward.reason == "no final answer"


def test_a_task_without_an_expected_answer_cannot_be_scored() -> None:
    the_task = task()
    reward = outcome_reward(trace(the_task, [answer(0, "4")]), the_task)
    assert reward.value is None
    assert "no expected answer" in reward.reason


def test_a_task_whose_number_is_not_a_number_cannot_be_scored() -> None:
    the_task = task(expected="four", match="number", task_id="bad-task")
    reward = outcome_reward(trace(the_task, [answer(0, "4")]), the_task)
    assert reward.value is None
    assert "bad-task" in reward.reason
    assert "'four'" in reward.reason
