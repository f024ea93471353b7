"""``sandbox train``: the typer command over :func:`sandbox.train.train`, with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sandbox.cli._app import app, console, err_console
from sandbox.cli._runs import INTERRUPTED, resume_command

if TYPE_CHECKING:
    from sandbox.train import TrainProgress, TrainResult


def train_command(
    data: Annotated[Path, typer.Argument(help="Run folder, sft/dpo export, or a JSONL/Parquet file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Training run folder (config, adapter, ...).")],
    method: Annotated[str | None, typer.Option(help="sft or dpo (default: from the rows).")] = None,
    model: Annotated[Path | None, typer.Option(help="Base GGUF (default: embedded SmolLM2-135M).")] = None,
    min_reward: Annotated[
        float | None, typer.Option(help="Run folder: train on traces whose total reward is at least this.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: --epochs).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the rows when --steps is not given.")] = 1.0,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate (constant).")] = 2e-4,
    batch_size: Annotated[int, typer.Option(help="Rows per micro-batch.")] = 1,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    alpha: Annotated[float, typer.Option(help="LoRA alpha (the update is scaled by alpha / rank).")] = 32.0,
    max_length: Annotated[int | None, typer.Option(help="Tokens per row (default: the longest row).")] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16 or fp32.")] = "auto",
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="Recompute activations in the backward pass: less memory, slower.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA when torch sees a GPU), cpu or cuda.")] = "auto",
    save_steps: Annotated[int, typer.Option(help="Write a checkpoint every this many steps.")] = 50,
    merge: Annotated[
        str | None, typer.Option(help="Also write the merged model: f16 or q8_0 (not re-quantized to Q4).")
    ] = None,
    beta: Annotated[float, typer.Option(help="dpo: the preference temperature.")] = 0.1,
    chat_template: Annotated[
        Path | None, typer.Option(help="Training chat template with {% generation %} markers.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the LoRA init and the row order.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a training run already in --out.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its newest checkpoint (same options).")
    ] = False,
) -> None:
    """Fine-tune a LoRA adapter (SFT on the assistant's tokens, or DPO on pairs) into a llama.cpp GGUF
    for --lora. A first Ctrl-C stops after the current step and writes a checkpoint and the adapter;
    --resume continues from the newest checkpoint to the same total steps."""
    from sandbox.train import TrainOptions, train

    options = TrainOptions(
        data=data,
        out=out,
        method=method,  # type: ignore[arg-type]
        model=model,
        min_reward=min_reward,
        steps=steps,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        gradient_accumulation=grad_accum,
        rank=rank,
        alpha=alpha,
        max_length=max_length,
        precision=precision,  # type: ignore[arg-type]
        gradient_checkpointing=gradient_checkpointing,
        device=device,  # type: ignore[arg-type]
        save_steps=save_steps,
        merge=merge,  # type: ignore[arg-type]
        beta=beta,
        chat_template=chat_template,
        seed=seed,
        overwrite=overwrite,
        resume=resume,
    )
    try:
        with _Bar(err_console) as bar:
            result = train(options, progress=bar.update)
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        if not (out / "config.json").is_file():  # nothing to resume yet
            err_console.print("interrupted before training started", highlight=False, markup=False)
            raise typer.Exit(INTERRUPTED) from None
        _interrupted("stopped before the next checkpoint; the checkpoints written are kept")
    _print_result(result)
    if result.interrupted:
        saved = result.checkpoints[-1] if result.checkpoints else "-"
        _interrupted(f"stopped after step {result.steps} of {result.total_steps}, checkpoint {saved} saved")


def _interrupted(what: str) -> NoReturn:
    err_console.print(
        f"interrupted: {what}; resume with: {resume_command()}", highlight=False, markup=False, soft_wrap=True
    )
    raise typer.Exit(INTERRUPTED)


class _Bar:
    """Steps, loss and tokens/s: a bar on a terminal, one line per step elsewhere (logs, CI)."""

    def __init__(self, out: Console) -> None:
        self._out = out
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Bar:
        if self._out.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self._out,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def update(self, event: TrainProgress) -> None:
        status = event.message
        if event.phase == "training":
            status = f"loss {event.loss:.4f}  {event.tokens_per_second:.0f} tok/s  {event.tokens} tokens"
        if self._progress is None:
            if event.phase != "done":
                step = f"step {event.step}/{event.total_steps}  " if event.phase == "training" else ""
                self._out.print(f"{step}{status}", highlight=False, markup=False)
            return
        if self._task is None:
            self._task = self._progress.add_task("train", total=None, status=status)
        total = event.total_steps or None
        self._progress.update(self._task, completed=event.step, total=total, status=status)


def _print_result(result: TrainResult) -> None:
    loss = "-" if result.first_loss is None else f"{result.first_loss:.4f} -> {result.last_loss:.4f}"
    lines = [
        f"{result.method}: {result.steps}/{result.total_steps} steps on {result.rows} rows, loss {loss}",
        f"{result.tokens} tokens in {result.seconds:.1f} s ({result.tokens_per_second:.1f} tokens/s) on "
        f"{result.device} ({result.precision}), peak memory {result.peak_rss_mb:.0f} MB",
        f"wrote {result.adapter}" + (f" and {result.merged}" if result.merged else ""),
        f"use it: sandbox run ... --lora {result.adapter}",
    ]
    if result.resumed_from is not None:
        lines.insert(0, f"resumed from step {result.resumed_from}")
    if result.interrupted:
        lines.insert(0, f"the adapter so far (step {result.steps}) is saved")
    for line in lines:
        console.print(line, highlight=False, markup=False)


app.command("train")(train_command)
