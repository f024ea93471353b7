"""The ProcessBench metric and AUROC, the solutions files they read, and the bundled hand-written set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import RulePRM, VerifierPRM, earliest_error, processbench_f1
from rewards._processbench import (
    ProcessBenchFileError,
    Solution,
    grade_solution,
    load_mini_set,
    load_solutions,
    step_auroc,
)

DEV_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "processbench_dev.jsonl"
DEV_SET_SHA256 = "3362aca3bc0a7c4f6f9a84ac7e2df957a2819d06abddb13a6bfa42402ec23cb2"


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


def test_step_auroc_ranks_the_wrong_steps_against_the_steps_before_them() -> None:
    # Wrong steps (at the labels) graded 0.0 and 0.5; the steps before them 1.0, 0.5 and 1.0.
    graded = [[1.0, 0.0, 1.0], [0.5, 1.0, 0.5], [0.0, 0.0]]
    labels = [1, 2, -1]  # the correct solution's steps are not counted
    # pairs (wrong, before): 0.0 below all three; 0.5 ties 0.5 and is below two 1.0s
    assert step_auroc(graded, labels) == pytest.approx((3 + 2 + 0.5) / 6)
    assert step_auroc([[0.2, 0.9]], [0]) is None  # nothing before the error
    assert step_auroc([[0.2]], [-1]) is None


@given(
    st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=6), min_size=1, max_size=12),
    st.data(),
)
def test_step_auroc_is_bounded_and_flips_with_the_grades(
    graded: list[list[float]], data: st.DataObject
) -> None:
    labels = [data.draw(st.integers(-1, len(grades) - 1)) for grades in graded]
    auroc = step_auroc(graded, labels)
    flipped = step_auroc([[1.0 - grade for grade in grades] for grades in graded], labels)
    assert (auroc is None) == (flipped is None)
    if auroc is not None and flipped is not None:
        assert 0.0 <= auroc <= 1.0
        assert auroc + flipped == pytest.approx(1.0)


def test_solutions_files_are_read_with_their_sources_and_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "pb.jsonl"
    record = {
        "id": "gsm8k-3",
        "generator": "g",
        "problem": "p",
        "steps": ["a", "b"],
        "final_answer_correct": False,
    }
    path.write_text(
        json.dumps({**record, "label": 1}) + "\n\n" + json.dumps({**record, "id": "math-7", "label": -1})
    )
    first, second = load_solutions(path)
    assert (first.source, first.label, first.final_answer_correct, first.steps) == (
        "gsm8k",
        1,
        False,
        ("a", "b"),
    )
    assert second.source == "math"
    assert grade_solution(VerifierPRM(), first) == [0.5, 0.5]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not a ProcessBench record"),
        ('{"id": "x", "problem": "p", "steps": ["a"]}', "'label'"),
        ('{"id": "x", "problem": "p", "steps": ["a"], "label": 1}', "label 1 outside -1..0"),
        ('{"id": "x", "problem": "p", "steps": "a", "label": 0}', "'steps' must be a list of strings"),
    ],
)
def test_a_bad_solutions_file_is_one_clear_error(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line)
    with pytest.raises(ProcessBenchFileError, match=message):
        load_solutions(path)
    with pytest.raises(ProcessBenchFileError, match="cannot read"):
        load_solutions(tmp_path / "missing.jsonl")


@pytest.mark.skipif(
    not DEV_SET.exists(), reason="the development data (../shared/data) is not next to this checkout"
)
def test_the_verifier_flags_no_correct_solution_of_the_development_half() -> None:
    assert hashlib.sha256(DEV_SET.read_bytes()).hexdigest() == DEV_SET_SHA256
    development = load_solutions(DEV_SET)[0::2]  # the rows the parser was developed on
    correct = [solution for solution in development if solution.label == -1]
    assert len(correct) == 71
    prm = VerifierPRM()
    flagged = [s.id for s in correct if earliest_error(grade_solution(prm, s)) != -1]
    assert flagged == []


def test_solution_source_is_the_id_prefix() -> None:
    assert Solution("math-12", "p", ("a",), -1).source == "math"
    assert Solution("plain", "p", ("a",), -1).source == "plain"
