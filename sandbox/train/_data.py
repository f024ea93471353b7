"""What ``sandbox train`` trains on: rows exactly as ``sandbox export`` writes them.

The input is one of

* a run folder (``traces.jsonl`` + ``config.json``, as ``sandbox generate`` writes it): its traces
  become ``sft`` rows (those whose reward reaches ``min_reward``) or ``dpo`` pairs (cut at the first
  assistant turn where the two samples part, so a pair does not train on the tool results they
  share), by the export's own code, and are written into the training run folder as ``data.jsonl``;
* an export folder (``export.json`` + ``train.jsonl`` or ``train.parquet``);
* one JSONL or Parquet file of such rows.

The shape decides the method: ``messages`` rows are SFT, ``prompt``/``chosen``/``rejected`` rows are
DPO. Anything else, or a row whose conversation is not a list of chat messages, is refused with its
file and row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sandbox.records import SandboxError
from sandbox.train._errors import TrainDataError

Method = Literal["sft", "dpo"]
ROLES = ("system", "user", "assistant", "tool")
COLUMNS: dict[Method, tuple[str, ...]] = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}
EXPORT_MANIFEST = "export.json"
TRACES_FILE = "traces.jsonl"
DATA_FILE = "data.jsonl"


@dataclass(frozen=True)
class TrainData:
    """Rows to train on: the file they are read from, their method and how many there are."""

    path: Path  # a JSONL or Parquet file of export rows
    method: Method
    rows: list[dict[str, Any]]
    source: Path  # what the person named (a run folder, an export, a file)
    note: str = ""  # how the rows were made (from a run folder's traces), for the run's config
    sha256: str = ""  # of the file the rows are in (made from a run folder: as written to ``path``)

    def conversations(self) -> Iterator[tuple[str, list[Mapping[str, Any]], Any]]:
        """(where, messages, tools) of every conversation the rows render, for the template checks."""
        for number, row in enumerate(self.rows, start=1):
            where = f"{self.path} row {number}"
            if self.method == "sft":
                yield where, row["messages"], row.get("tools")
            else:
                yield where, [*row["prompt"], *row["chosen"]], row.get("tools")
                yield where, [*row["prompt"], *row["rejected"]], row.get("tools")


def read_data(
    source: Path, method: Method | None, out: Path, *, min_reward: float | None = None, write: bool = True
) -> TrainData:
    """The rows of ``source`` (see the module doc); a run folder's rows are written to ``out``
    (unless ``write`` is false: :func:`write_rows` writes them later)."""
    if source.is_dir() and (source / TRACES_FILE).exists():
        data = _from_run(source, method or "sft", out, min_reward)
        if write:
            write_rows(data)
        return data
    if min_reward is not None:
        raise TrainDataError("--min-reward filters a run folder's traces; an export is already filtered")
    if source.is_dir():
        path = _export_file(source)
    elif source.is_file():
        path = source
    else:
        raise TrainDataError(f"no run folder, export folder or dataset file at {source}")
    rows = _read_rows(path)
    found = _method_of(path, rows)
    if method is not None and method != found:
        raise TrainDataError(f"{path} holds {found} rows, not {method}: use --method {found} or other data")
    for number, row in enumerate(rows, start=1):
        _check_row(row, found, f"{path} row {number}")
    return TrainData(path, found, rows, source, sha256=_file_sha256(path))


def write_rows(data: TrainData) -> None:
    """The rows made from a run folder, into their ``data.jsonl`` (whole, or not at all)."""
    from sandbox.train._folder import write_text

    write_text(data.path, _jsonl(data.rows))


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_run(run: Path, method: Method, out: Path, min_reward: float | None) -> TrainData:
    from sandbox.datasets import ExportOptions, export_rows

    if min_reward is not None and method != "sft":
        raise TrainDataError("--min-reward keeps sft traces; dpo pairs take a task's best and worst sample")
    options = ExportOptions(source=run, format=method, out=out, min_reward=min_reward, branch=method == "dpo")
    try:
        rows, report, _ = export_rows(options)
    except SandboxError as exc:
        raise TrainDataError(str(exc)) from exc
    if not rows:
        left_out = "; ".join(f"{count} {reason}" for reason, count in report.skipped.most_common())
        raise TrainDataError(
            f"{run}: no {method} rows from its {report.traces} traces (left out: {left_out})"
        )
    note = f"{len(rows)} {method} rows from {report.traces} traces of {run}"
    sha256 = hashlib.sha256(_jsonl(rows).encode("utf-8")).hexdigest()
    return TrainData(out / DATA_FILE, method, rows, run, note, sha256)


def _export_file(folder: Path) -> Path:
    manifest = folder / EXPORT_MANIFEST
    if not manifest.exists():
        raise TrainDataError(
            f"{folder} is neither a run folder ({TRACES_FILE}) nor an export ({EXPORT_MANIFEST})"
        )
    for name in ("train.jsonl", "train.parquet"):
        if (folder / name).exists():
            return folder / name
    raise TrainDataError(f"export {folder} has no train split (train.jsonl or train.parquet)")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainDataError(f"{path} line {number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise TrainDataError(
                    f"{path} line {number}: a row is a JSON object, not {type(row).__name__}"
                )
            rows.append(row)
    if not rows:
        raise TrainDataError(f"{path}: no rows")
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TrainDataError(f"{path}: not a readable Parquet file ({exc})") from exc
    return [_json_columns(row) for row in table.to_pylist()]


def _json_columns(value: Any, key: str = "") -> Any:
    """A Parquet row as its JSONL twin: free-form JSON (call arguments, tool specs) is stored as text,
    and keys that do not apply to a message are nulls."""
    if key in ("arguments", "tools_item") and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, dict):
        drop = "role" in value  # a message leaves out what does not apply to it
        return {
            k: _json_columns(v, k) for k, v in value.items() if not (drop and v is None and k != "content")
        }
    if isinstance(value, list):
        return [_json_columns(item, "tools_item" if key == "tools" else "") for item in value]
    return value


def _method_of(path: Path, rows: list[dict[str, Any]]) -> Method:
    columns = set(rows[0])
    for method, needed in COLUMNS.items():
        if set(needed) <= columns:
            return method
    hint = " (a grpo export: its prompts train with GRPOTrainer)" if "group_completions" in columns else ""
    raise TrainDataError(
        f"{path}: rows with columns {sorted(columns)}{hint}; sandbox train takes sft rows (messages) or dpo "
        "rows (prompt, chosen, rejected), as `sandbox export --format sft|dpo` writes them"
    )


def _check_row(row: Mapping[str, Any], method: Method, where: str) -> None:
    for column in COLUMNS[method]:
        _check_conversation(row.get(column), f"{where}, {column}")
    assistant = row["messages"] if method == "sft" else [*row["chosen"], *row["rejected"]]
    if not any(message["role"] == "assistant" for message in assistant):
        raise TrainDataError(f"{where}: no assistant message to train on")


def _check_conversation(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise TrainDataError(f"{where}: a conversation is a non-empty list of messages, not {value!r:.60}")
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise TrainDataError(f"{where}, message {index}: a message has a role in {list(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise TrainDataError(f"{where}, message {index}: content must be text")
