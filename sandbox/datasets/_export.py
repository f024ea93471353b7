"""``sandbox export``: a run's scored traces as datasets for trainers (``sandbox train`` reads ``sft`` and
``dpo`` rows as written; GRPOTrainer takes a ``grpo`` export's prompts and task columns).

Formats (one row per line of JSONL, or the same rows in Parquet):

* ``sft`` -- TRL's conversational language-modeling shape with tools: ``messages`` (assistant calls in
  ``tool_calls`` as ``{"type": "function", "function": {"name", "arguments": {dict}}}``, tool messages
  with ``name``) and ``tools`` (OpenAI function specs). Only traces whose reward passes
  ``min_reward`` (rejection sampling); identical conversations of one task kept once.
* ``openai`` -- OpenAI's chat fine-tuning lines: ``messages`` (arguments as a JSON string, call ids),
  ``tools``, ``parallel_tool_calls``. The uploader refuses unknown keys, so provenance goes to a
  ``<split>.provenance`` file beside it, row for row.
* ``dpo`` -- per task, TRL's conversational preference shape with an explicit prompt: ``prompt``,
  ``chosen``, ``rejected``, from the best and the worst sample when their reward gap is large
  enough. With ``branch`` the prompt holds every message the two samples share, up to the first
  assistant turn where they differ.
* ``grpo`` -- per task, the group: ``prompt`` (the opening messages), ``group_completions`` (not
  ``completions``: GRPOTrainer passes every column to the reward functions beside its own
  ``completions`` argument), the ``rewards`` and the group-normalised ``advantages``
  ``(r - mean) / (std + 1e-4)`` (sample standard deviation, as TRL's GRPOTrainer computes it), and
  ``task`` (JSON) for ``sandbox.datasets._trl`` rewards.

How calls appear (``calls``): ``text`` (default) keeps each message as the model read and wrote it --
the system prompt with its tool list and the ``<tool_call>`` block in the assistant's text -- so a
chat template without tool support (the embedded SmolLM2) renders exactly the episode, and the
calls are also given in ``tool_calls``; ``native`` leaves the call only in ``tool_calls``, tool
results bare, and the system prompt without its tool list (``tools`` carries them), for templates
that render tool calls themselves. ``openai`` is always native. A trace run in a native turn format
(``Trace.format`` not ``tags``) is exported as the model saw it whatever ``calls`` says: messages
as written, no ``tool_calls``, the tools in ``tools``; the model's own template renders the row
back to the episode's prompt text.

Every row keeps its provenance: trace id(s), task id, sample(s), model sha256, reward values and
the run it came from. Rows are split into train and eval by a hash of the task id, so the split
is deterministic and no task is in both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from sandbox.records import (
    ConfigError,
    OutputError,
    Trace,
    code_version,
    iter_traces,
    partial_tail,
    total_reward,
)
from sandbox.runs import CONFIG_FILE, RunConfig, run_trace_file
from sandbox.turns import format_from_label, openai_messages, openai_tool, system_prompt

ExportFormat = Literal["sft", "openai", "dpo", "grpo"]
FORMATS: tuple[ExportFormat, ...] = ("sft", "openai", "dpo", "grpo")
CallStyle = Literal["text", "native"]
# TRL's GRPOTrainer adds this to the group's standard deviation.
ADVANTAGE_EPSILON = 1e-4
MANIFEST = "export.json"

Row = dict[str, Any]


@dataclass(frozen=True)
class ExportOptions:
    source: Path  # a run folder, or a trace JSONL file
    format: ExportFormat
    out: Path  # a folder: train.jsonl, eval.jsonl (or .parquet), export.json
    min_reward: float | None = None
    # "length_free" (the sum of a trace's rewards but the step sums), "total" (the sum of all), or one
    # reward's name
    reward: str = "length_free"
    split: float = 1.0  # share of tasks in train
    parquet: bool = False
    branch: bool = False
    min_gap: float = 0.0
    calls: CallStyle = "text"
    overwrite: bool = False


@dataclass
class ExportReport:
    out: Path
    traces: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows
    files: list[Path] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> traces or tasks left out


# --------------------------------------------------------------------------- messages


def chat_messages(trace: Trace, *, calls: CallStyle, arguments: Literal["dict", "json"]) -> list[Row]:
    """The trace's messages as chat dicts (see the module doc for ``calls``); ``arguments`` as a dict
    (TRL, which also reads ``name`` on tool messages) or a JSON string (OpenAI)."""
    if trace.format != "tags":
        # A native turn format: the messages hold exactly what the chat template rendered with
        # ``tools``; calls stay in the text only, so the same template renders the same prompt.
        return openai_messages(
            trace.messages, native=False, arguments=arguments, tool_names=arguments == "dict", calls_too=False
        )
    native = calls == "native"
    return openai_messages(
        trace.messages,
        native=native,
        arguments=arguments,
        tool_names=arguments == "dict",
        system=system_prompt([], trace.task.system) if native else None,
    )


def opening_length(messages: Sequence[Row]) -> int:
    """How many messages come before the first assistant turn (the task's prompt)."""
    return next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))


def branch_point(chosen: Sequence[Row], rejected: Sequence[Row]) -> int:
    """Where a preference pair is cut: the first assistant turn at or before the point where the two
    conversations part, such that both still have that turn."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    for cut in range(shared, 0, -1):
        if (
            cut < len(chosen)
            and cut < len(rejected)
            and chosen[cut]["role"] == "assistant"
            and rejected[cut]["role"] == "assistant"
        ):
            return cut
    return opening_length(chosen)


def group_advantages(rewards: Sequence[float]) -> list[float]:
    """``(r - mean) / (std + eps)`` over one group, std the sample standard deviation (0 for one)."""
    mean = math.fsum(rewards) / len(rewards)
    spread = statistics.stdev(rewards) if len(rewards) > 1 else 0.0
    return [(r - mean) / (spread + ADVANTAGE_EPSILON) for r in rewards]


def split_of(task_id: str, train_share: float) -> Literal["train", "eval"]:
    """A task's split, from a hash of its id: the same on every machine and every export."""
    position = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big") / 2**64
    return "train" if position < train_share else "eval"


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class _Scored:
    trace: Trace
    value: float | None  # the selected reward


def _details(trace: Trace) -> dict[str, float | None]:
    return {name: reward.value for name, reward in sorted(trace.rewards.items())}


def _provenance(item: _Scored, run: str) -> Row:
    return {
        "trace_id": item.trace.id,
        "task_id": item.trace.task_id,
        "sample": item.trace.sample,
        "model_sha256": item.trace.model.sha256,
        "reward": item.value,
        "reward_details": _details(item.trace),
        "run": run,
    }


def _tools(trace: Trace) -> list[Row]:
    """The tools column: for a native trace exactly what its chat template was given (so a row
    renders as the model saw it), else each tool as an OpenAI function spec."""
    fmt = format_from_label(trace.format)
    shown = fmt.template_tools(trace.tools)
    return list(shown) if shown is not None else [openai_tool(spec) for spec in trace.tools]


def sft_rows(
    groups: Mapping[str, list[_Scored]], options: ExportOptions, run: str, report: ExportReport
) -> list[Row]:
    rows = []
    native = options.format == "openai"
    for items in groups.values():
        seen: set[str] = set()
        for item in items:
            if options.min_reward is not None and (item.value is None or item.value < options.min_reward):
                report.skipped["below --min-reward (or unscored)"] += 1
                continue
            messages = chat_messages(
                item.trace,
                calls="native" if native else options.calls,
                arguments="json" if native else "dict",
            )
            key = json.dumps(messages, sort_keys=True)
            if key in seen:
                report.skipped["same conversation as another sample of the task"] += 1
                continue
            seen.add(key)
            if native:
                rows.append(
                    {
                        "messages": [_openai_message(m) for m in messages],
                        "tools": _tools(item.trace),
                        "parallel_tool_calls": False,
                        "_provenance": _provenance(item, run),  # written beside the line, not in it
                    }
                )
            else:
                rows.append({"messages": messages, "tools": _tools(item.trace), **_provenance(item, run)})
    return rows


def _openai_message(message: Row) -> Row:
    """OpenAI's shape: no empty content beside tool calls, nothing it does not know."""
    shaped = {key: value for key, value in message.items() if value is not None}
    if shaped.get("tool_calls") and not shaped.get("content"):
        shaped["content"] = None
    return shaped


def _scored_group(items: list[_Scored], report: ExportReport) -> list[_Scored]:
    """A task's samples that have a reward and a turn; none when fewer than two (counted as skipped)."""
    scored = [item for item in items if item.value is not None and _has_turn(item.trace)]
    if len(scored) < 2:
        report.skipped["task with fewer than 2 scored samples"] += 1
        return []
    return scored


def dpo_rows(
    groups: Mapping[str, list[_Scored]], options: ExportOptions, run: str, report: ExportReport
) -> list[Row]:
    rows = []
    for items in groups.values():
        scored = _scored_group(items, report)
        if not scored:
            continue
        best = max(scored, key=lambda item: (item.value, -item.trace.sample))
        worst = min(scored, key=lambda item: (item.value, item.trace.sample))
        assert best.value is not None and worst.value is not None
        gap = best.value - worst.value
        if gap <= 0 or gap < options.min_gap:
            report.skipped["task whose reward gap is below --min-gap"] += 1
            continue
        chosen = chat_messages(best.trace, calls=options.calls, arguments="dict")
        rejected = chat_messages(worst.trace, calls=options.calls, arguments="dict")
        cut = branch_point(chosen, rejected) if options.branch else opening_length(chosen)
        if not options.branch and chosen[:cut] != rejected[:cut]:
            report.skipped["task whose samples open differently"] += 1
            continue
        rows.append(
            {
                "prompt": chosen[:cut],
                "chosen": chosen[cut:],
                "rejected": rejected[cut:],
                "tools": _tools(best.trace),
                "task_id": best.trace.task_id,
                "chosen_trace_id": best.trace.id,
                "rejected_trace_id": worst.trace.id,
                "chosen_sample": best.trace.sample,
                "rejected_sample": worst.trace.sample,
                "chosen_reward": best.value,
                "rejected_reward": worst.value,
                "chosen_reward_details": _details(best.trace),
                "rejected_reward_details": _details(worst.trace),
                "prompt_assistant_turns": sum(1 for m in chosen[:cut] if m["role"] == "assistant"),
                "model_sha256": best.trace.model.sha256,
                "run": run,
            }
        )
    return rows


def grpo_rows(
    groups: Mapping[str, list[_Scored]], options: ExportOptions, run: str, report: ExportReport
) -> list[Row]:
    rows = []
    for items in groups.values():
        scored = _scored_group(items, report)
        if not scored:
            continue
        conversations = [chat_messages(item.trace, calls=options.calls, arguments="dict") for item in scored]
        cut = opening_length(conversations[0])
        if any(c[:cut] != conversations[0][:cut] for c in conversations):
            report.skipped["task whose samples open differently"] += 1
            continue
        values = [item.value for item in scored if item.value is not None]
        first = scored[0].trace
        rows.append(
            {
                "prompt": conversations[0][:cut],
                "group_completions": [c[cut:] for c in conversations],
                "rewards": values,
                "advantages": group_advantages(values),
                "reward_details": [_details(item.trace) for item in scored],
                "task": first.task.model_dump_json(),
                "tools": _tools(first),
                "task_id": first.task_id,
                "trace_ids": [item.trace.id for item in scored],
                "samples": [item.trace.sample for item in scored],
                "model_sha256": first.model.sha256,
                "run": run,
            }
        )
    return rows


def _has_turn(trace: Trace) -> bool:
    return any(message.role == "assistant" for message in trace.messages)


BUILDERS: dict[
    ExportFormat, Callable[[Mapping[str, list[_Scored]], ExportOptions, str, ExportReport], list[Row]]
] = {
    "sft": sft_rows,
    "openai": sft_rows,
    "dpo": dpo_rows,
    "grpo": grpo_rows,
}


# --------------------------------------------------------------------------- the export


def check_options(options: ExportOptions) -> None:
    if options.format not in FORMATS:
        raise ConfigError(f"--format must be one of {list(FORMATS)}, not {options.format!r}")
    if not 0 < options.split <= 1:
        raise ConfigError(f"--split is the share of tasks in train, in (0, 1]; got {options.split}")
    if options.min_reward is not None and options.format not in ("sft", "openai"):
        raise ConfigError("--min-reward filters sft and openai exports; dpo pairs use --min-gap")
    if options.branch and options.format != "dpo":
        raise ConfigError("--branch applies to dpo exports")
    if options.min_gap < 0:
        raise ConfigError("--min-gap must be 0 or more")
    if options.calls not in ("text", "native"):
        raise ConfigError(f"--calls must be 'text' or 'native', not {options.calls!r}")


def export_rows(options: ExportOptions) -> tuple[list[Row], ExportReport, Path]:
    """The rows an export of ``options`` writes (before the split), its report and the trace file read."""
    check_options(options)
    trace_file = run_trace_file(options.source)
    report = ExportReport(out=options.out)
    groups = _read_groups(trace_file, options.reward, report)
    return BUILDERS[options.format](groups, options, str(options.source), report), report, trace_file


def export_run(options: ExportOptions) -> ExportReport:
    """Write ``options.out`` (see the module doc); the run folder is only read."""
    rows, report, trace_file = export_rows(options)
    by_split: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        task_id = row.get("task_id") or row["_provenance"]["task_id"]
        by_split[split_of(task_id, options.split)].append(row)
    _prepare_out(options.out, options.overwrite)
    for split in ("train", "eval"):
        if split == "eval" and options.split >= 1:
            continue
        split_rows = by_split.get(split, [])
        report.rows[split] = len(split_rows)
        report.files.extend(_write_split(options, split, split_rows))
    manifest = options.out / MANIFEST
    manifest.write_text(json.dumps(_manifest(options, report, trace_file), indent=2) + "\n", encoding="utf-8")
    report.files.append(manifest)
    return report


# Rewards that add a grade per step: their value grows with the number of steps, so ranking by them
# pays for length and loops. The default ranking ("length_free") leaves them out; ``process_mean``
# (mean step grade plus outcome) stands for them.
STEP_SUMS = frozenset({"process", "process_verifier", "process_judge"})
TOTALS = ("length_free", "total")


def ranking_value(trace: Trace, reward: str) -> float | None:
    """The value a trace is ranked by: ``length_free``, ``total`` or one reward's value."""
    if reward == "total":
        return total_reward(trace)
    if reward == "length_free":
        values = [r.value for n, r in trace.rewards.items() if n not in STEP_SUMS and r.value is not None]
        return math.fsum(values) if values else None
    return total_reward(trace, reward)


def _read_groups(trace_file: Path, reward: str, report: ExportReport) -> dict[str, list[_Scored]]:
    """The traces by task (in file order), each sample once, with the selected reward."""
    groups: dict[str, list[_Scored]] = {}
    seen: set[tuple[str, int]] = set()
    names: set[str] = set()
    for trace in iter_traces(trace_file):
        report.traces += 1
        names.update(trace.rewards)
        if (trace.task_id, trace.sample) in seen:
            report.skipped["repeated (task, sample)"] += 1
            continue
        seen.add((trace.task_id, trace.sample))
        value = ranking_value(trace, reward)
        groups.setdefault(trace.task_id, []).append(_Scored(trace, value))
    if report.traces == 0:
        raise ConfigError(f"{trace_file}: no traces to export")
    if reward not in TOTALS and reward not in names:
        raise ConfigError(
            f"--reward {reward!r} is on no trace; the traces carry {sorted(names)} "
            "(or use 'length_free' or 'total')"
        )
    if partial_tail(trace_file):
        report.skipped[
            "half-written last line (a run cut short: resume it to finish the line's episode)"
        ] += 1
    for items in groups.values():
        items.sort(key=lambda item: item.trace.sample)
    return groups


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out} is a file; an export is a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{out} is not empty; pass --overwrite to replace the export, or pick another -o"
            )
        for name in _OUTPUT_NAMES:
            for path in out.glob(name):
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


_OUTPUT_NAMES = ("train.*", "eval.*", MANIFEST)


def _write_split(options: ExportOptions, split: str, rows: list[Row]) -> list[Path]:
    """The split's files; none for an empty split (``datasets`` cannot read an empty JSONL file)."""
    if not rows:
        return []
    provenance = [row.pop("_provenance") for row in rows if "_provenance" in row]
    suffix = "parquet" if options.parquet else "jsonl"
    files = [options.out / f"{split}.{suffix}"]
    write = _write_parquet if options.parquet else _write_jsonl
    write(files[0], rows, partial(_schema, options.format))
    if provenance:
        files.append(options.out / f"{split}.provenance.{suffix}")
        write(files[1], provenance, _provenance_fields)
    return files


def _write_jsonl(path: Path, rows: list[Row], _fields: object) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(_drop_none_keys(row), ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise OutputError.of(path, exc) from None


def _drop_none_keys(value: Any) -> Any:
    """Messages leave out keys that do not apply (a user message has no ``tool_calls``)."""
    if isinstance(value, list):
        return [_drop_none_keys(item) for item in value]
    if isinstance(value, dict) and "role" in value:
        return {k: _drop_none_keys(v) for k, v in value.items() if v is not None or k == "content"}
    if isinstance(value, dict):
        return {k: _drop_none_keys(v) for k, v in value.items()}
    return value


def _manifest(options: ExportOptions, report: ExportReport, trace_file: Path) -> Row:
    config_path = options.source / CONFIG_FILE if options.source.is_dir() else None
    config = None
    if config_path is not None and config_path.exists():
        with contextlib.suppress(ValueError):
            config = RunConfig.model_validate_json(config_path.read_bytes()).model_dump(mode="json")
    return {
        "format": options.format,
        "calls": "native" if options.format == "openai" else options.calls,
        "reward": options.reward,
        "min_reward": options.min_reward,
        "min_gap": options.min_gap,
        "branch": options.branch,
        "split": options.split,
        "source": str(options.source),
        "trace_file": str(trace_file),
        "traces": report.traces,
        "rows": report.rows,
        "skipped": dict(report.skipped),
        "files": [path.name for path in report.files],
        "run_config": config,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
    }


# --------------------------------------------------------------------------- parquet


def _schema(export_format: ExportFormat, reward_details: Any) -> list[tuple[str, Any]]:
    """The Arrow fields of a format's rows. Free-form JSON (call arguments, tool specs, a task) is
    Arrow's JSON type, which ``datasets`` reads back as its ``Json`` feature (the shape TRL asks for).
    ``reward_details`` is the struct of the run's reward names (they differ between runs)."""
    import pyarrow as pa

    json_type = pa.json_()
    arguments = pa.string() if export_format == "openai" else json_type
    call = pa.struct(
        [
            ("id", pa.string()),
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", arguments)])),
        ]
    )
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("name", pa.string()),
            ("tool_call_id", pa.string()),
            ("tool_calls", pa.list_(call)),
        ]
    )
    conversation = pa.list_(message)
    tools = pa.list_(json_type)
    if export_format == "openai":
        return [("messages", conversation), ("tools", tools), ("parallel_tool_calls", pa.bool_())]
    if export_format == "sft":
        return [("messages", conversation), ("tools", tools), *_provenance_fields(reward_details)]
    if export_format == "dpo":
        return [
            ("prompt", conversation),
            ("chosen", conversation),
            ("rejected", conversation),
            ("tools", tools),
            ("task_id", pa.string()),
            ("chosen_trace_id", pa.string()),
            ("rejected_trace_id", pa.string()),
            ("chosen_sample", pa.int64()),
            ("rejected_sample", pa.int64()),
            ("chosen_reward", pa.float64()),
            ("rejected_reward", pa.float64()),
            ("chosen_reward_details", reward_details),
            ("rejected_reward_details", reward_details),
            ("prompt_assistant_turns", pa.int64()),
            ("model_sha256", pa.string()),
            ("run", pa.string()),
        ]
    return [
        ("prompt", conversation),
        ("group_completions", pa.list_(conversation)),
        ("rewards", pa.list_(pa.float64())),
        ("advantages", pa.list_(pa.float64())),
        ("reward_details", pa.list_(reward_details)),
        ("task", json_type),
        ("tools", tools),
        ("task_id", pa.string()),
        ("trace_ids", pa.list_(pa.string())),
        ("samples", pa.list_(pa.int64())),
        ("model_sha256", pa.string()),
        ("run", pa.string()),
    ]


def _provenance_fields(reward_details: Any) -> list[tuple[str, Any]]:
    import pyarrow as pa

    return [
        ("trace_id", pa.string()),
        ("task_id", pa.string()),
        ("sample", pa.int64()),
        ("model_sha256", pa.string()),
        ("reward", pa.float64()),
        ("reward_details", reward_details),
        ("run", pa.string()),
    ]


def _write_parquet(path: Path, rows: list[Row], fields: Callable[[Any], list[tuple[str, Any]]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = sorted({name for row in rows for name in _reward_names(row)})
    # Parquet cannot store an empty struct: traces without rewards get one null field, "none".
    details = pa.struct([(name, pa.float64()) for name in names or ["none"]])
    schema = pa.schema(fields(details))
    storage = pa.schema([(f.name, _storage(f.type)) for f in schema])
    columns = {f.name: [_to_storage(row.get(f.name), f.type) for row in rows] for f in schema}
    table = pa.Table.from_pydict(columns, schema=storage).cast(schema)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def _reward_names(row: Row) -> set[str]:
    names: set[str] = set()
    for key, value in row.items():
        if key.endswith("reward_details"):
            for details in value if isinstance(value, list) else [value]:
                names.update(details)
    return names


def _storage(kind: Any) -> Any:
    """``kind`` with every JSON type replaced by its string storage (how rows are first built)."""
    import pyarrow as pa

    if isinstance(kind, pa.BaseExtensionType):
        return kind.storage_type
    if pa.types.is_list(kind):
        return pa.list_(_storage(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([(f.name, _storage(f.type)) for f in kind])
    return kind


def _to_storage(value: Any, kind: Any) -> Any:
    """A row's value shaped for ``_storage(kind)``: JSON values serialized, structs filled in."""
    import pyarrow as pa

    if value is None:
        return None
    if isinstance(kind, pa.BaseExtensionType):
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if pa.types.is_list(kind):
        return [_to_storage(item, kind.value_type) for item in value]
    if pa.types.is_struct(kind):
        return {f.name: _to_storage(value.get(f.name), f.type) for f in kind}
    return value
