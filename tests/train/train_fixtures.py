"""Runs and exports for the training tests, made the way a user makes them: ``sandbox generate`` (with
the scripted model of ``tests/sandbox/run_fixtures.py``, whose samples are right or wrong by their
seed) and ``sandbox export``. Training rows are kept short: the tasks without a server (about 100
tokens a row), so a few real training steps take seconds, not minutes, on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import numpy as np

from sandbox.datasets import ExportOptions, export_run
from sandbox.runs import generate
from tests.sandbox.run_fixtures import NO_SERVER_TASKS, TASKS, options, scripted_model


def make_run(folder: Path, *, with_tools: bool = False, n: int = 4) -> Path:
    """A run folder: the no-server tasks (or all three, the weather task with real calls) x n samples."""
    run_options = options(folder, TASKS if with_tools else NO_SERVER_TASKS, n=n)
    anyio.run(lambda: generate(run_options, model=scripted_model()))
    return run_options.out


def export(run: Path, out: Path, fmt: str, **changes: object) -> Path:
    export_run(ExportOptions(source=run, format=fmt, out=out, **changes))  # type: ignore[arg-type]
    return out


def trained_traces(run: Path, rows: Path, out: Path) -> Path:
    """The run's traces that became the training rows in ``rows`` (by trace id), as a trace file."""
    ids = {json.loads(line)["trace_id"] for line in rows.read_text(encoding="utf-8").splitlines()}
    lines = [line for line in (run / "traces.jsonl").read_text(encoding="utf-8").splitlines()]
    kept = [line for line in lines if json.loads(line)["id"] in ids]
    out.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return out


def rewrite_adapter(
    source: Path, out: Path, *, zero_b: bool = False, architecture: str | None = None
) -> Path:
    """A copy of an adapter GGUF: with every ``lora_b`` zeroed (it loads and changes nothing), or
    claiming another architecture."""
    import gguf

    reader = gguf.GGUFReader(source)
    arch = architecture or str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(out, arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        data = np.array(tensor.data)
        if zero_b and tensor.name.endswith(".lora_b"):
            data = np.zeros_like(data)
        writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def mean_loss(losses: Path) -> float:
    """The token-weighted mean loss of a ``sandbox loss -o`` file."""
    rows = [json.loads(line) for line in losses.read_text(encoding="utf-8").splitlines()]
    scored = [row for row in rows if row["loss"] is not None]
    assert scored, f"no trace was scored: {rows}"
    return sum(row["loss"] * row["tokens"] for row in scored) / sum(row["tokens"] for row in scored)
