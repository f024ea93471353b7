"""The ProcessBench metric for step graders, and the small arithmetic set it runs on here.

ProcessBench (Zheng et al. 2024, arXiv 2412.06559) asks for the index of the earliest wrong step of a
solution, -1 when every step is right. A step grader is reduced to that index by the first step whose
grade falls below a threshold (:func:`earliest_error`). The score is the exact-index accuracy on the
erroneous solutions, the accuracy on the correct ones, and their harmonic mean (F1); both accuracies
are reported, since F1 alone hides which way a grader fails.

:func:`load_solutions` reads ProcessBench's own records (one JSON object a line: ``id``, ``problem``,
``steps``, ``label``, and optionally ``final_answer_correct`` and ``generator``), such as the 300 real
solutions of ``processbench_dev.jsonl``. ``rewards/data/processbench_mini.jsonl`` holds a small
hand-written set in the same shape, for unit tests. :func:`step_auroc` says how well a grader's grades
separate the earliest wrong steps from the steps before them, whatever the threshold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rewards._prm import ProcessRewardModel
from sandbox.records import SandboxError, Step, Task

ERROR_THRESHOLD = 0.5
NO_ERROR = -1


@dataclass(frozen=True)
class Solution:
    """One solution to grade: its problem, its steps' texts, and the index of its earliest wrong step."""

    id: str
    problem: str
    steps: tuple[str, ...]
    label: int
    final_answer_correct: bool | None = None

    @property
    def source(self) -> str:
        """The split an id names: ``gsm8k-143`` is from ``gsm8k``."""
        return self.id.rpartition("-")[0] or self.id

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


def grade_solution(prm: ProcessRewardModel, solution: Solution) -> list[float]:
    """The grade of every step of ``solution``, each given the steps before it."""
    task, steps = solution.task(), solution.step_records()
    return [prm.grade_step(task, steps[:index], step) for index, step in enumerate(steps)]


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


class ProcessBenchFileError(SandboxError, ValueError):
    """A solutions file that cannot be read: missing, not JSON lines, or a record out of shape."""


def load_mini_set() -> list[Solution]:
    """The bundled hand-written set (``rewards/data/processbench_mini.jsonl``)."""
    text = resources.files("rewards").joinpath("data/processbench_mini.jsonl").read_text(encoding="utf-8")
    return _parse_lines(text, "processbench_mini.jsonl")


def load_solutions(path: Path) -> list[Solution]:
    """ProcessBench records from a JSON-lines file; a bad file raises :class:`ProcessBenchFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProcessBenchFileError(f"cannot read {path}: {exc}") from exc
    return _parse_lines(text, str(path))


def _parse_lines(text: str, name: str) -> list[Solution]:
    solutions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                solutions.append(_solution(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ProcessBenchFileError(
                    f"{name} line {number}: not a ProcessBench record ({exc})"
                ) from exc
    return solutions


def _solution(record: Any) -> Solution:
    steps = record["steps"]
    if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
        raise TypeError("'steps' must be a list of strings")
    label = int(record["label"])
    if not NO_ERROR <= label < len(steps):
        raise ValueError(f"label {label} outside -1..{len(steps) - 1}")
    correct = record.get("final_answer_correct")
    final = None if correct is None else bool(correct)
    return Solution(str(record["id"]), str(record["problem"]), tuple(steps), label, final)


def step_auroc(graded: Sequence[Sequence[float]], labels: Sequence[int]) -> float | None:
    """AUROC of the earliest wrong step's grade against the grades of the steps before it.

    Over the erroneous solutions, the probability that a labelled wrong step grades below a step that
    comes before the error in its solution (ties count half):
    0.5 is no signal, 1.0 a perfect ranking. None without both kinds of step.
    """
    wrong = [grades[label] for grades, label in zip(graded, labels, strict=True) if label != NO_ERROR]
    right = [
        grade for grades, label in zip(graded, labels, strict=True) for grade in _before_error(grades, label)
    ]
    if not wrong or not right:
        return None
    # Mann-Whitney U over the pooled, sorted grades, with midranks for ties.
    pooled = sorted([(grade, 0) for grade in wrong] + [(grade, 1) for grade in right])
    rank_sum, index = 0.0, 0
    while index < len(pooled):
        end = index
        while end < len(pooled) and pooled[end][0] == pooled[index][0]:
            end += 1
        midrank = (index + end + 1) / 2
        rank_sum += midrank * sum(kind for _, kind in pooled[index:end])
        index = end
    greater = rank_sum - len(right) * (len(right) + 1) / 2  # pairs where the right step grades higher
    return greater / (len(wrong) * len(right))


def _before_error(grades: Sequence[float], label: int) -> Sequence[float]:
    return grades[:label] if label != NO_ERROR else ()
