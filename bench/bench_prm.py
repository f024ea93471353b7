"""ProcessBench metric of the bundled step graders on the hand-written arithmetic set.

Grades every step of ``rewards/data/processbench_mini.jsonl`` with the rule PRM, the verifier PRM and
the judge PRM (the embedded SmolLM2-135M, or ``--judge MODEL.gguf``), reduces each solution to its
earliest step graded below 0.5, and prints the accuracy on erroneous solutions, on correct ones, and
their F1 (ProcessBench's metric).

    python bench/bench_prm.py [--judge MODEL.gguf]
"""

from __future__ import annotations

import argparse
import time

from rewards import JudgePRM, ProcessRewardModel, RulePRM, VerifierPRM, earliest_error, processbench_f1
from rewards._processbench import ERROR_THRESHOLD, ProcessBenchScore, load_mini_set
from sandbox.models import LlamaScorer


def grade(prm: ProcessRewardModel) -> tuple[list[list[float]], float]:
    """Every step's grade, per solution, and the seconds it took."""
    started = time.perf_counter()
    graded = []
    for solution in load_mini_set():
        task, steps = solution.task(), solution.step_records()
        graded.append([prm.grade_step(task, steps[:index], step) for index, step in enumerate(steps)])
    return graded, time.perf_counter() - started


def score(graded: list[list[float]], labels: list[int], threshold: float) -> ProcessBenchScore:
    return processbench_f1([earliest_error(grades, threshold) for grades in graded], labels)


def best_threshold(graded: list[list[float]], labels: list[int]) -> float:
    """The threshold of best F1 on this very set (optimistic: ProcessBench tunes on another split)."""
    # grade < threshold flags a step: just above each grade flags it and every lower one.
    candidates = sorted({0.0} | {grade + 1e-9 for grades in graded for grade in grades})
    return max(candidates, key=lambda threshold: score(graded, labels, threshold).f1)


def mean_grades(graded: list[list[float]], labels: list[int]) -> tuple[float, float]:
    """Mean grade of the labelled wrong steps, and of the steps before any error."""
    wrong = [grades[label] for grades, label in zip(graded, labels, strict=True) if label >= 0]
    right = [
        g
        for grades, label in zip(graded, labels, strict=True)
        for g in grades[: label if label >= 0 else None]
    ]
    return sum(wrong) / len(wrong), sum(right) / len(right)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", help="judge GGUF (default: the embedded SmolLM2-135M)")
    args = parser.parse_args()
    if args.judge is None:
        from sandbox.models import default_model_path

        args.judge = default_model_path()
    labels = [solution.label for solution in load_mini_set()]
    errors, correct = sum(label >= 0 for label in labels), sum(label < 0 for label in labels)
    print(
        f"{len(labels)} solutions: {errors} erroneous, {correct} correct; error threshold {ERROR_THRESHOLD}"
    )
    print(
        f"{'grader':<16} {'threshold':>9} {'error acc':>9} {'correct acc':>11} {'F1':>5} "
        f"{'mean grade wrong/right':>22} {'seconds':>7}"
    )
    for prm in (RulePRM(), VerifierPRM(), JudgePRM(LlamaScorer(args.judge))):
        graded, seconds = grade(prm)
        wrong, right = mean_grades(graded, labels)
        for threshold, note in ((ERROR_THRESHOLD, ""), (best_threshold(graded, labels), " (tuned here)")):
            result = score(graded, labels, threshold)
            print(
                f"{prm.name:<16} {threshold:>9.3g} {result.error_accuracy:>9.2f} "
                f"{result.correct_accuracy:>11.2f} {result.f1:>5.2f} {wrong:>10.3f} / {right:<9.3f} "
                f"{seconds:>7.1f}{note}"
            )
        print(f"  version {prm.version}")


if __name__ == "__main__":
    main()
