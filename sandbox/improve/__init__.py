"""Improve: the seed document's loop in rounds -- sample, filter by reward, fine-tune, re-evaluate.

``improve(ImproveOptions(tasks=..., heldout=..., out=...), progress=...) -> ImproveResult`` runs
``sandbox improve``. Each round samples n episodes of every train task with the current model
(temperature 0.8), keeps those whose reward reaches a threshold, adds the oracle's demonstrations
for the tasks where none did, exports the kept traces as ``sft`` rows, trains a LoRA adapter on
them (``sandbox.train``) and evaluates base and tuned model on the held-out tasks with the same
seeds. ``family=...`` makes the tasks instead (:func:`family_tasks`); ``direct_share`` caps the
no-tool traces trained on (:func:`cap_direct`). Everything each stage writes stays in the improve
folder (:data:`REPORT_FILE`, :data:`PLOT_FILE`, one folder per round), and a killed run resumes
after its last finished stage.
"""

from sandbox.improve._loop import ImproveResult, cap_direct, improve
from sandbox.improve._options import ImproveError, ImproveOptions, check_options, family_tasks
from sandbox.improve._report import (
    PLOT_FILE,
    REPORT_FILE,
    STATE_FILE,
    Evaluation,
    evaluate_traces,
    family_of,
    write_plot,
)

__all__ = [
    "Evaluation",
    "ImproveError",
    "ImproveOptions",
    "ImproveResult",
    "PLOT_FILE",
    "REPORT_FILE",
    "STATE_FILE",
    "cap_direct",
    "check_options",
    "evaluate_traces",
    "family_of",
    "family_tasks",
    "improve",
    "write_plot",
]
