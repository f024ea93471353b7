"""The ProcessBench metric, and the bundled hand-written set it runs on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import RulePRM, VerifierPRM, earliest_error, processbench_f1
from rewards._processbench import load_mini_set


def test_earliest_error_is_the_first_grade_below_the_threshold() -> None:
    assert earliest_error([1.0, 0.9, 0.2, 0.0]) == 2
    assert earliest_error([1.0, 0.5, 0.7]) == -1  # 0.5 is not below 0.5
    assert earliest_error([1.0, 0.7], threshold=0.8) == 1
    assert earliest_error([]) == -1


def test_processbench_f1_reports_both_accuracies() -> None:
    labels = [-1, -1, 0, 2, 1]
    predictions = [-1, 0, 0, 1, 1]
    score = processbench_f1(predictions, labels)
    assert score.correct_accuracy == 0.5
    assert score.error_accuracy == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_a_grader_that_never_flags_scores_zero_f1() -> None:
    labels = [-1, 0, 1]
    score = processbench_f1([-1, -1, -1], labels)
    assert (score.error_accuracy, score.correct_accuracy, score.f1) == (0.0, 1.0, 0.0)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        processbench_f1([-1, -1], [-1])


@given(st.lists(st.tuples(st.integers(-1, 5), st.integers(-1, 5)), min_size=1, max_size=30))
def test_scores_are_bounded_and_perfect_only_when_exact(pairs: list[tuple[int, int]]) -> None:
    predictions, labels = [p for p, _ in pairs], [label for _, label in pairs]
    score = processbench_f1(predictions, labels)
    assert 0.0 <= score.f1 <= min(score.error_accuracy, score.correct_accuracy) * 2
    assert 0.0 <= score.f1 <= 1.0
    both_kinds = any(label == -1 for label in labels) and any(label >= 0 for label in labels)
    assert (score.f1 == 1.0) == (both_kinds and predictions == labels)


def test_the_mini_set_is_balanced_and_labelled_in_range() -> None:
    solutions = load_mini_set()
    assert len(solutions) == 20
    assert sum(solution.label == -1 for solution in solutions) == 10
    assert all(-1 <= solution.label < len(solution.steps) for solution in solutions)
    assert (
        len({solution.label for solution in solutions if solution.label >= 0}) >= 3
    )  # errors at various steps


def grade_all(prm: RulePRM | VerifierPRM) -> list[int]:
    predictions = []
    for solution in load_mini_set():
        task, steps = solution.task(), solution.step_records()
        predictions.append(earliest_error([prm.grade_step(task, steps[:i], s) for i, s in enumerate(steps)]))
    return predictions


def test_the_verifier_finds_the_arithmetic_errors_and_the_rule_prm_none() -> None:
    labels = [solution.label for solution in load_mini_set()]
    verifier = processbench_f1(grade_all(VerifierPRM()), labels)
    rules = processbench_f1(grade_all(RulePRM()), labels)
    # Two of the ten errors are wrong reasoning with true arithmetic, which no equation check sees.
    assert (verifier.error_accuracy, verifier.correct_accuracy) == (0.8, 1.0)
    assert (rules.error_accuracy, rules.correct_accuracy, rules.f1) == (0.0, 1.0, 0.0)
