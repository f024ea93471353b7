"""The ProcessBench metric for step graders, and the small arithmetic set it runs on here.

ProcessBench (Zheng et al. 2024, arXiv 2412.06559) asks for the index of the earliest wrong step of a
solution, -1 when every step is right. A step grader is reduced to that index by the first step whose
grade falls below a threshold (:func:`earliest_error`). The score is the exact-index accuracy on the
erroneous solutions, the accuracy on the correct ones, and their harmonic mean (F1); both accuracies
are reported, since F1 alone hides which way a grader fails.

``rewards/data/processbench_mini.jsonl`` holds a small hand-written set in ProcessBench's shape: one
JSON object a line, ``id``, ``problem``, ``steps`` (a list of step texts) and ``label``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from sandbox.records import Step, Task

ERROR_THRESHOLD = 0.5
NO_ERROR = -1


@dataclass(frozen=True)
class Solution:
    """One solution to grade: its problem, its steps' texts, and the index of its earliest wrong step."""

    id: str
    problem: str
    steps: tuple[str, ...]
    label: int

    def task(self) -> Task:
        return Task(id=self.id, prompt=self.problem)

    def step_records(self) -> list[Step]:
        """The steps as trace steps, each a written answer, so any PRM can grade them."""
        return [
            Step(index=i, raw_text=text, action="answer", answer=text) for i, text in enumerate(self.steps)
        ]


@dataclass(frozen=True)
class ProcessBenchScore:
    error_accuracy: float  # exact earliest-error index, over the erroneous solutions
    correct_accuracy: float  # -1 predicted, over the correct solutions
    f1: float  # harmonic mean of the two


def earliest_error(grades: Sequence[float], threshold: float = ERROR_THRESHOLD) -> int:
    """Index of the first grade below ``threshold``, or -1 when there is none."""
    return next((index for index, grade in enumerate(grades) if grade < threshold), NO_ERROR)


def processbench_f1(predictions: Sequence[int], labels: Sequence[int]) -> ProcessBenchScore:
    """Accuracy on the erroneous solutions (label >= 0), on the correct ones (label -1), and their F1.

    An accuracy with no solution of its kind is 0.0. F1 is 0.0 when either accuracy is.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    erroneous = [p == label for p, label in zip(predictions, labels, strict=True) if label != NO_ERROR]
    correct = [p == NO_ERROR for p, label in zip(predictions, labels, strict=True) if label == NO_ERROR]
    error_accuracy = sum(erroneous) / len(erroneous) if erroneous else 0.0
    correct_accuracy = sum(correct) / len(correct) if correct else 0.0
    total = error_accuracy + correct_accuracy
    f1 = 2 * error_accuracy * correct_accuracy / total if total else 0.0
    return ProcessBenchScore(error_accuracy, correct_accuracy, f1)


def load_mini_set() -> list[Solution]:
    """The bundled hand-written set (``rewards/data/processbench_mini.jsonl``)."""
    text = resources.files("rewards").joinpath("data/processbench_mini.jsonl").read_text(encoding="utf-8")
    solutions = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            steps = tuple(record["steps"])
            solutions.append(Solution(record["id"], record["problem"], steps, int(record["label"])))
    return solutions
