"""The dataset commands: ``export``, ``loss``, ``view``, ``import bfcl``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sandbox.cli._app import LoraFile, ModelFile, Threads, app, console
from sandbox.cli._render import loss_table
from sandbox.records import SandboxError


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder (or trace JSONL file) to export.")],
    fmt: Annotated[str, typer.Option("--format", help="sft, openai, dpo or grpo.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for train/eval files and export.json.")],
    min_reward: Annotated[
        float | None, typer.Option(help="sft/openai: keep traces whose reward is at least this.")
    ] = None,
    reward: Annotated[
        str,
        typer.Option(
            help="'length_free' (sum of a trace's rewards but the per-step sums process, "
            "process_verifier, process_judge), 'total' (sum of all) or one reward's name."
        ),
    ] = "length_free",
    split: Annotated[float, typer.Option(help="Share of tasks in train; the rest go to eval.")] = 1.0,
    parquet: Annotated[bool, typer.Option(help="Write Parquet instead of JSONL.")] = False,
    branch: Annotated[bool, typer.Option(help="dpo: the prompt holds the turns both samples share.")] = False,
    min_gap: Annotated[float, typer.Option(help="dpo: least reward gap between chosen and rejected.")] = 0.0,
    calls: Annotated[
        str, typer.Option(help="text (turns as the model wrote them) or native (calls only in tool_calls).")
    ] = "text",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export in -o.")] = False,
) -> None:
    """Turn a run's scored traces into SFT, OpenAI, DPO or GRPO datasets, split by task."""
    from sandbox.datasets import ExportOptions, export_run

    report = export_run(
        ExportOptions(
            source=run,
            format=fmt,  # type: ignore[arg-type]
            out=out,
            min_reward=min_reward,
            reward=reward,
            split=split,
            parquet=parquet,
            branch=branch,
            min_gap=min_gap,
            calls=calls,  # type: ignore[arg-type]
            overwrite=overwrite,
        )
    )
    rows = ", ".join(f"{split_name} {count}" for split_name, count in report.rows.items())
    console.print(f"{report.traces} trace(s) -> {fmt} rows: {rows}", highlight=False, markup=False)
    for reason, count in report.skipped.most_common():
        console.print(f"  left out: {count} {reason}", highlight=False, markup=False)
    for path in report.files:
        console.print(f"wrote {path}", highlight=False, markup=False)


@app.command()
def loss(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file.")],
    model: ModelFile = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write one JSON line of loss per trace.")
    ] = None,
    max_perplexity: Annotated[
        float | None, typer.Option(help="Keep only traces at or below this perplexity (needs --keep).")
    ] = None,
    keep: Annotated[
        Path | None, typer.Option(help="Where to write the traces that pass --max-perplexity.")
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window in tokens.")] = 4096,
    n_gpu_layers: Annotated[
        int, typer.Option(help="Layers to offload to a GPU (-1 = all the build can).")
    ] = -1,
    lora: LoraFile = None,
    threads: Threads = None,
) -> None:
    """Mean next-token loss (nats) and perplexity of each trace's assistant tokens under a model."""
    from sandbox.datasets import loss_file

    if (max_perplexity is None) != (keep is None):
        raise SandboxError("--max-perplexity and --keep go together")
    results = loss_file(
        traces,
        model,
        out,
        max_perplexity,
        keep,
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        lora=lora,
        threads=threads,
    )
    console.print(loss_table(results))


@app.command()
def view(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file, or a run directory of them.")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="HTML file to write (default: beside the traces).")
    ] = None,
    reward: Annotated[
        str | None, typer.Option(help="Rank and colour by this reward (default: the sum of all rewards).")
    ] = None,
) -> None:
    """Write one self-contained HTML report: overview, filters, every trace, best vs worst per task."""
    from sandbox.view import write_report

    report = write_report(traces, out, reward=reward)
    for note in report.skipped:
        console.print(f"skipped {note}", highlight=False, markup=False)
    console.print(
        f"wrote {report.path} ({report.traces} traces, {report.tasks} tasks, {report.bytes / 1e6:.1f} MB)",
        highlight=False,
        markup=False,
    )


import_app = typer.Typer(no_args_is_help=True, help="Turn other benchmarks' files into tasks and servers.")
app.add_typer(import_app, name="import")


@import_app.command("bfcl")
def import_bfcl(
    questions: Annotated[Path, typer.Argument(help="BFCL question file (JSON lines).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Task JSONL file to write.")],
    answers: Annotated[
        Path | None, typer.Option(help="BFCL possible-answer file (JSON lines) for the ideal calls.")
    ] = None,
) -> None:
    """BFCL questions as tasks, their functions as MCP servers (<out>.mcp.json), answers as ideal calls."""
    from sandbox.datasets import import_bfcl as run_import

    report = run_import(questions, answers, out)
    for line in report.summary():
        console.print(line, highlight=False, markup=False)
