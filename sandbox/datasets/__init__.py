"""Datasets: scored traces as rows trainers read, the next-token loss of traces, and tasks imported
from other benchmarks.

- :func:`export_run` (``sandbox export``): ``sft``, ``openai``, ``dpo`` and ``grpo`` rows, JSONL or
  Parquet, split by task, each row with its provenance.
- :func:`trl_reward_functions`: this project's rewards as TRL ``GRPOTrainer`` reward functions.
- :class:`TraceScorer` and :func:`loss_file` (``sandbox loss``): the document's pre-training view,
  inputs ``tokens[:-1]``, labels ``tokens[1:]``, the mean cross-entropy of the assistant's tokens.
- :func:`import_bfcl` (``sandbox import bfcl``): BFCL questions and answers as tasks and servers.
"""

from sandbox.datasets._bfcl_import import FORMAT, FORMAT_VERSION, BFCLImportError, ImportReport, import_bfcl
from sandbox.datasets._export import (
    FORMATS,
    MANIFEST,
    CallStyle,
    ExportFormat,
    ExportOptions,
    ExportReport,
    branch_point,
    chat_messages,
    export_rows,
    export_run,
    group_advantages,
    ranking_value,
    split_of,
)
from sandbox.datasets._loss import TemplateError, TraceLoss, TraceScorer, loss_file, tokenize_trace
from sandbox.datasets._trl import (
    TRLRewardFunction,
    completion_trace,
    trl_reward_function,
    trl_reward_functions,
)

__all__ = [
    "BFCLImportError",
    "CallStyle",
    "ExportFormat",
    "ExportOptions",
    "ExportReport",
    "FORMAT",
    "FORMATS",
    "FORMAT_VERSION",
    "ImportReport",
    "MANIFEST",
    "TRLRewardFunction",
    "TemplateError",
    "TraceLoss",
    "TraceScorer",
    "branch_point",
    "chat_messages",
    "completion_trace",
    "export_rows",
    "export_run",
    "group_advantages",
    "import_bfcl",
    "loss_file",
    "ranking_value",
    "split_of",
    "tokenize_trace",
    "trl_reward_function",
    "trl_reward_functions",
]
