"""``sandbox improve``: the typer command over :func:`sandbox.improve.improve`, one line per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sandbox.cli._app import ModelFile, RewardNames, Threads, app, console, err_console
from sandbox.cli._runs import INTERRUPTED, resume_command


@app.command("improve")
def improve_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="Improve folder: rounds, report.json, plot.")],
    tasks: Annotated[Path | None, typer.Option(help="Train tasks (JSONL).")] = None,
    heldout: Annotated[
        Path | None, typer.Option(help="Held-out tasks (JSONL): no id in common with --tasks.")
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(help="Make the tasks instead: comma-separated families, or all (into -o/tasks/)."),
    ] = None,
    train_n: Annotated[int, typer.Option(help="--family: train tasks per family (all: in total).")] = 20,
    heldout_n: Annotated[int, typer.Option(help="--family: held-out tasks per family (all: in total).")] = 10,
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')] = Path(
        "servers/mcp.json"
    ),
    model: ModelFile = None,
    turn_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="Turn format of every stage: auto (native where the base model's chat template has a "
            "tools branch, else tags), native, tags, or a family (hermes, llama3, mistral, functiongemma).",
        ),
    ] = "auto",
    rounds: Annotated[int, typer.Option(help="Rounds of sample, filter, train, evaluate.")] = 1,
    n: Annotated[int, typer.Option("--n", help="Samples per train task and round.")] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the train samples.")] = 0.8,
    reward: Annotated[str, typer.Option(help="The reward a sample must reach to be kept.")] = "outcome",
    threshold: Annotated[float, typer.Option(help="Keep samples whose --reward is at least this.")] = 1.0,
    demos: Annotated[
        bool, typer.Option(help="Add the oracle's demonstration for tasks with no kept sample.")
    ] = True,
    direct_share: Annotated[
        float | None, typer.Option(help="Most share of trained traces that answer a no-tool question.")
    ] = None,
    eval_n: Annotated[int, typer.Option(help="Samples per held-out task.")] = 1,
    eval_temperature: Annotated[float, typer.Option(help="Held-out sampling temperature.")] = 0.0,
    max_steps: Annotated[int, typer.Option(help="Steps per episode before it stops.")] = 6,
    max_tokens: Annotated[int, typer.Option(help="Tokens per model turn.")] = 384,
    token_budget: Annotated[int, typer.Option(help="Completion tokens per episode.")] = 2048,
    parallel: Annotated[int, typer.Option(help="Episodes at once (one batched llama.cpp context).")] = 1,
    threads: Threads = None,
    start_timeout: Annotated[float, typer.Option(help="Seconds each MCP server may take to start.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Run seed (base and tuned use the same held-out seeds).")] = 0,
    rewards: RewardNames = "all",
    chat_template: Annotated[
        Path | None,
        typer.Option(help="Training template with {% generation %} markers (for a model none ships for)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps per round (default: --epochs).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the rows when --steps is not given.")] = 1.0,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate (constant).")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    alpha: Annotated[float, typer.Option(help="LoRA alpha.")] = 32.0,
    batch_size: Annotated[int, typer.Option(help="Rows per micro-batch.")] = 1,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    save_steps: Annotated[
        int, typer.Option(help="Training checkpoint every this many steps (and on Ctrl-C).")
    ] = 10,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in -o after its last finished stage.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Start the run in -o again.")] = False,
) -> None:
    """Close the loop in rounds: sample n episodes per train task, keep those whose reward reaches
    the threshold (plus the oracle's demonstration where none did), train a LoRA adapter on them,
    and evaluate base and tuned model on the held-out tasks with the same seeds. Writes
    report.json, rewards.png and a viewer page per evaluation into -o."""
    from sandbox.improve import ImproveOptions, improve

    options = ImproveOptions(
        tasks=tasks,
        heldout=heldout,
        out=out,
        family=family,
        train_n=train_n,
        heldout_n=heldout_n,
        servers=servers,
        model=model,
        turn_format=turn_format,
        rounds=rounds,
        n=n,
        temperature=temperature,
        reward=reward,
        threshold=threshold,
        demos=demos,
        direct_share=direct_share,
        eval_n=eval_n,
        eval_temperature=eval_temperature,
        max_steps=max_steps,
        max_tokens=max_tokens,
        token_budget=token_budget,
        parallel=parallel,
        threads=threads,
        start_timeout=start_timeout,
        seed=seed,
        rewards=rewards,
        chat_template=chat_template,
        steps=steps,
        epochs=epochs,
        learning_rate=learning_rate,
        rank=rank,
        alpha=alpha,
        batch_size=batch_size,
        gradient_accumulation=grad_accum,
        save_steps=save_steps,
        resume=resume,
        overwrite=overwrite,
    )

    def line(text: str) -> None:
        err_console.print(text, highlight=False, markup=False)

    try:
        result = improve(options, progress=line)
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted: finished stages and the newest training checkpoint are kept in {out}; "
            f"resume with: {resume_command()}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(INTERRUPTED) from None
    for text in summary_lines(result.report):
        console.print(text, highlight=False, markup=False)
    console.print(f"wrote {result.report_path}, {result.plot} and {len(result.views)} viewer page(s)")


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The held-out means of the base and of each round, one line per reward."""
    base = report["base"]["heldout"]["rewards"]
    rounds = report["rounds"]
    header = f"{'held-out':<22}{'base':>9}" + "".join(f"{'round ' + str(r['round']):>10}" for r in rounds)
    lines = [header]
    for name in sorted(base):
        values = "".join(f"{r['heldout']['rewards'].get(name, float('nan')):>10.3f}" for r in rounds)
        lines.append(f"{name:<22}{base[name]:>9.3f}{values}")
    direct = report["base"]["heldout"].get("direct_answers")
    if direct is not None:
        values = "".join(f"{(r['heldout'].get('direct_answers') or 0.0):>10.3f}" for r in rounds)
        lines.append(f"{'no-tool answered':<22}{direct:>9.3f}{values}")
    loss = report["base"].get("heldout_loss")
    if loss is not None:
        values = "".join(f"{(r.get('heldout_loss') or float('nan')):>10.4f}" for r in rounds)
        lines.append(f"{'held-out loss':<22}{loss:>9.4f}{values}")
    families = report["base"]["heldout"].get("families") or {}
    for name, got in families.items():
        values = "".join(
            f"{r['heldout'].get('families', {}).get(name, {}).get('outcome', float('nan')):>10.3f}"
            for r in rounds
        )
        lines.append(f"{'outcome ' + name:<22}{got['outcome']:>9.3f}{values}")
    for r in rounds:
        seconds = ", ".join(f"{k} {v:.0f} s" for k, v in r["seconds"].items())
        speed = r["train"]["tokens_per_second"]
        lines.append(f"round {r['round']}: {r['rows']} rows, {speed:.0f} training tokens/s; {seconds}")
    return lines
