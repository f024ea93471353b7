"""The ``sandbox`` command: a thin shell over the library. The only place that wires the rooms.

sandbox run   --tasks T.jsonl --servers mcp.json [--model M.gguf | --base-url URL] [--mode constrained|free]
              --out traces.jsonl
sandbox generate --tasks T.jsonl --servers mcp.json --out RUN_DIR [--model M.gguf] [--n 10] [--parallel K]
                 [--ray local|auto|ray://HOST:PORT --ray-workers W]
              [--resume | --overwrite]
sandbox export RUN_DIR --format sft|openai|dpo|grpo -o OUT [--min-reward X] [--split 0.9] [--parquet]
sandbox show  traces.jsonl [--trace ID | --index N]
sandbox score traces.jsonl --rewards NAME,... -o scored.jsonl [--overwrite]
sandbox import bfcl QUESTIONS.json [--answers POSSIBLE_ANSWERS.json] -o tasks.jsonl
sandbox replay traces.jsonl -o replayed.jsonl [--rewards ...] [--model M.gguf]
sandbox view  traces.jsonl|RUN_DIR [-o report.html] [--reward NAME]
sandbox new-tool NAME [--dir DIR]
sandbox check-tool CONFIG|URL [--server NAME] [--examples N] [--timeout S]
sandbox quantize --type q4_0|iq4_nl|q8_0|... -o OUT.gguf [--model M.gguf] [--overwrite]
sandbox train RUN_DIR|EXPORT|rows.jsonl -o TRAIN_DIR [--method sft|dpo] [--steps N] [--merge f16|q8_0]
"""

from __future__ import annotations

import math
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from rewards import RewardError
from sandbox._errors import SandboxError
from sandbox._records import Trace, read_traces
from sandbox._train_cli import train_command

if TYPE_CHECKING:
    from sandbox._loss import TraceLoss
    from sandbox._run import HttpModelOptions

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Piped output (logs, CI) gets full-width tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

BUNDLED_TASKS = {"seed": Path(__file__).resolve().parent / "data" / "seed.jsonl"}


def main() -> None:
    try:
        app()
    except (SandboxError, RewardError) as exc:  # a person must fix these: one line, exit 2
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)


# Options that several commands share, written once.
ModelFile = Annotated[Path | None, typer.Option(help="GGUF model file (default: embedded SmolLM2-135M).")]
RewardNames = Annotated[str, typer.Option(help="Comma-separated reward names, or 'all'.")]
LoraFile = Annotated[
    Path | None, typer.Option("--lora", help="LoRA adapter GGUF (from `sandbox train`) on the model.")
]
JudgeModel = Annotated[
    Path | None, typer.Option(help="GGUF model for the judge PRM's rewards (cot_judge, process_judge).")
]

# The options of an OpenAI-compatible model server, shared by `run` and `generate`.
BaseUrl = Annotated[
    str | None,
    typer.Option(
        help="OpenAI-compatible model server to use instead of --model, e.g. http://127.0.0.1:8080/v1."
    ),
]
ApiModel = Annotated[str | None, typer.Option(help="Model name on the server (default: the first it lists).")]
ApiKeyEnv = Annotated[str | None, typer.Option(help="Environment variable that holds the server's API key.")]
ApiToolCalls = Annotated[
    str, typer.Option(help="text (this project's turn format) or native (the server's tool_calls).")
]
ApiGrammar = Annotated[
    str, typer.Option(help="Where the grammar goes: auto, grammar, guided_grammar, structured_outputs, off.")
]
ApiConcurrency = Annotated[int, typer.Option(help="Requests in flight to the server at once.")]


def _http_options(
    base_url: str | None,
    api_model: str | None,
    api_key_env: str | None,
    api_tool_calls: str,
    api_grammar: str,
    api_concurrency: int,
) -> HttpModelOptions | None:
    if base_url is None and (api_model is not None or api_key_env is not None):
        raise SandboxError("--api-model and --api-key-env go with --base-url")
    if base_url is None:
        return None
    from sandbox._run import HttpModelOptions

    return HttpModelOptions(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)


def _task_path(value: str) -> Path:
    return BUNDLED_TASKS.get(value, Path(value))


@app.command()
def run(
    tasks: Annotated[str, typer.Option(help="Task JSONL file, or 'seed' for the bundled suite.")],
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')],
    out: Annotated[Path, typer.Option(help="Where to write the traces (JSONL).")],
    model: ModelFile = None,
    mode: Annotated[
        str, typer.Option(help="constrained (grammar) or free (lenient parsing).")
    ] = "constrained",
    rewards: RewardNames = "all",
    max_steps: Annotated[int, typer.Option(help="Steps per episode before it stops.")] = 6,
    max_tokens: Annotated[int, typer.Option(help="Tokens per model turn.")] = 384,
    token_budget: Annotated[int, typer.Option(help="Completion tokens per episode.")] = 2048,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    n_ctx: Annotated[int, typer.Option(help="Context window in tokens.")] = 4096,
    n_gpu_layers: Annotated[
        int, typer.Option(help="Layers to offload to a GPU (-1 = all the build can).")
    ] = -1,
    call_timeout: Annotated[float, typer.Option(help="Seconds a tool call may take.")] = 30.0,
    task_id: Annotated[list[str] | None, typer.Option("--task", help="Run only these task ids.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an --out file that already holds traces.")] = False,
    judge: JudgeModel = None,
    base_url: BaseUrl = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = None,
    api_tool_calls: ApiToolCalls = "text",
    api_grammar: ApiGrammar = "auto",
    api_concurrency: ApiConcurrency = 4,
    lora: LoraFile = None,
) -> None:
    """Run every task as an episode and write one reward-labelled trace per line."""
    from sandbox._run import RunOptions, run_tasks

    if mode not in ("constrained", "free"):
        raise SandboxError(f"--mode must be 'constrained' or 'free', not {mode!r}")
    if base_url is not None and model is not None:
        raise SandboxError("--model and --base-url exclude each other: a GGUF file here, or a model server")
    http = _http_options(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)
    options = RunOptions(
        tasks=_task_path(tasks),
        servers=servers,
        out=out,
        model=model,
        mode=mode,  # type: ignore[arg-type]
        rewards=rewards,
        judge=judge,
        max_steps=max_steps,
        max_tokens=max_tokens,
        token_budget=token_budget,
        temperature=temperature,
        seed=seed,
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        call_timeout=call_timeout,
        only=tuple(task_id or ()),
        overwrite=overwrite,
        http=http,
        lora=lora,
    )
    traces = anyio.run(run_tasks, options, console)
    console.print(summary_table(traces))
    console.print(f"wrote {len(traces)} trace(s) to {out}")


def summary_table(traces: list[Trace]) -> Table:
    """One row per trace: task, steps, calls, each reward, seconds, tokens/s."""
    reward_names = sorted({name for trace in traces for name in trace.rewards})
    table = Table(title="episodes", show_lines=False)
    for column in ("task", "stop", "steps", "calls", *reward_names, "seconds", "tok/s"):
        table.add_column(column, justify="left" if column in ("task", "stop") else "right")
    for trace in traces:
        cells = [_reward_cell(trace, name) for name in reward_names]
        speed = trace.completion_tokens / trace.model_seconds if trace.model_seconds else 0.0
        table.add_row(
            trace.task_id,
            trace.stop_reason,
            str(len(trace.steps)),
            str(len(trace.tool_calls)),
            *cells,
            f"{trace.wall_seconds:.1f}",
            f"{speed:.0f}",
        )
    if traces:
        means = []
        for name in reward_names:
            values = [
                t.rewards[name].value
                for t in traces
                if name in t.rewards and t.rewards[name].value is not None
            ]
            means.append(f"{sum(values) / len(values):+.2f}" if values else "-")
        wall = sum(t.wall_seconds for t in traces)
        tokens = sum(t.completion_tokens for t in traces)
        model_s = sum(t.model_seconds for t in traces)
        table.add_section()
        table.add_row(
            "mean (seconds: total)",
            "",
            f"{sum(len(t.steps) for t in traces) / len(traces):.1f}",
            f"{sum(len(t.tool_calls) for t in traces) / len(traces):.1f}",
            *means,
            f"{wall:.1f}",
            f"{tokens / model_s:.0f}" if model_s else "-",
        )
    return table


def _reward_cell(trace: Trace, name: str) -> str:
    reward = trace.rewards.get(name)
    if reward is None or reward.value is None:
        return "-"
    return f"{reward.value:+.2f}"


@app.command()
def generate(
    tasks: Annotated[str, typer.Option(help="Task JSONL file, or 'seed' for the bundled suite.")],
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')],
    out: Annotated[Path, typer.Option(help="Run folder: config.json and traces.jsonl.")],
    model: ModelFile = None,
    n: Annotated[int, typer.Option("--n", help="Samples per task.")] = 10,
    parallel: Annotated[
        int, typer.Option(help="Episodes at once (above 1: one batched llama.cpp context).")
    ] = 1,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out: only the (task, sample) pairs not yet written.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Start the run in --out again, dropping its traces.")
    ] = False,
    mode: Annotated[
        str, typer.Option(help="constrained (grammar) or free (lenient parsing).")
    ] = "constrained",
    rewards: RewardNames = "all",
    judge: JudgeModel = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.8,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Tokens per model turn (bounded by the context).")] = 8192,
    token_budget: Annotated[int, typer.Option(help="Completion tokens per episode.")] = 8192,
    max_steps: Annotated[int, typer.Option(help="Steps per episode before it stops.")] = 6,
    seed: Annotated[int, typer.Option(help="Run seed; each (task, sample) derives its own.")] = 0,
    n_ctx: Annotated[int, typer.Option(help="Context window in tokens (per sequence).")] = 4096,
    n_gpu_layers: Annotated[
        int, typer.Option(help="Layers to offload to a GPU (-1 = all the build can).")
    ] = -1,
    call_timeout: Annotated[float, typer.Option(help="Seconds a tool call may take.")] = 30.0,
    task_id: Annotated[list[str] | None, typer.Option("--task", help="Run only these task ids.")] = None,
    base_url: BaseUrl = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = None,
    api_tool_calls: ApiToolCalls = "text",
    api_grammar: ApiGrammar = "auto",
    api_concurrency: ApiConcurrency = 4,
    ray: Annotated[
        str | None,
        typer.Option(help="Shard over Ray: 'local' (a private instance), 'auto', or ray://HOST:PORT."),
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="Ray workers, each with its own model and servers.")] = 1,
    ray_worker_cpus: Annotated[float, typer.Option(help="CPUs each Ray worker reserves.")] = 1.0,
    lora: LoraFile = None,
) -> None:
    """Run n samples of every task, each scored by every reward, into a run folder that a kill -9
    cannot corrupt: traces are appended and fsynced as they finish, and --resume carries on."""
    from sandbox._generate import GenerateOptions
    from sandbox._generate import generate as run_generate
    from sandbox._generate import summary_table as generate_table

    http = _http_options(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)
    options = GenerateOptions(
        tasks=_task_path(tasks),
        servers=servers,
        out=out,
        model=model,
        n=n,
        parallel=parallel,
        resume=resume,
        overwrite=overwrite,
        mode=mode,  # type: ignore[arg-type]
        rewards=rewards,
        judge=judge,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        token_budget=token_budget,
        max_steps=max_steps,
        seed=seed,
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        call_timeout=call_timeout,
        only=tuple(task_id or ()),
        http=http,
        ray=ray,
        ray_workers=ray_workers,
        ray_worker_cpus=ray_worker_cpus,
        lora=lora,
    )
    try:
        summary = anyio.run(partial(run_generate, options, console=err_console))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: the traces written so far are in {out}; continue with --resume")
        raise typer.Exit(130) from None
    console.print(generate_table(summary))


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder (or trace JSONL file) to export.")],
    fmt: Annotated[str, typer.Option("--format", help="sft, openai, dpo or grpo.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for train/eval files and export.json.")],
    min_reward: Annotated[
        float | None, typer.Option(help="sft/openai: keep traces whose reward is at least this.")
    ] = None,
    reward: Annotated[
        str, typer.Option(help="'total' (sum of a trace's rewards) or one reward's name.")
    ] = "total",
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
    from sandbox._export import ExportOptions, export_run

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
) -> None:
    """Mean next-token loss (nats) and perplexity of each trace's assistant tokens under a model."""
    from sandbox._loss_cli import run_loss

    if (max_perplexity is None) != (keep is None):
        raise SandboxError("--max-perplexity and --keep go together")
    results = run_loss(
        traces, model, out, max_perplexity, keep, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, lora=lora
    )
    console.print(loss_table(results))


def loss_table(results: list[TraceLoss]) -> Table:
    table = Table(title="next-token loss of the assistant tokens")
    for column in ("trace", "task", "tokens", "loss", "perplexity", "evaluated", "note"):
        table.add_column(column, justify="left" if column in ("trace", "task", "note") else "right")
    for r in results:
        table.add_row(
            r.trace_id,
            r.task_id,
            str(r.tokens),
            "-" if r.loss is None else f"{r.loss:.3f}",
            "-" if r.perplexity is None else f"{r.perplexity:.2f}",
            str(r.evaluated_tokens),
            r.reason,
        )
    scored = [r for r in results if r.loss is not None]
    if scored:
        tokens = sum(r.tokens for r in scored)
        mean = sum(r.loss * r.tokens for r in scored if r.loss is not None) / tokens
        table.add_section()
        table.add_row(
            "all",
            "",
            str(tokens),
            f"{mean:.3f}",
            f"{math.exp(mean):.2f}",
            str(sum(r.evaluated_tokens for r in results)),
            f"{len(scored)}/{len(results)} scored",
        )
    return table


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
    from sandbox._view import write_report

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
    from sandbox._bfcl_import import import_bfcl as run_import

    report = run_import(questions, answers, out)
    for line in report.summary():
        console.print(line, highlight=False, markup=False)


@app.command()
def score(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the re-scored traces (JSONL).")],
    rewards: RewardNames = "all",
    overwrite: Annotated[bool, typer.Option(help="Replace an -o file that already holds traces.")] = False,
    judge: JudgeModel = None,
) -> None:
    """Re-score existing traces with the named rewards; every other reward on a trace stays as it was."""
    from sandbox._run import select_rewards
    from sandbox._score import score_file, summary_table

    chosen = select_rewards(rewards, judge)
    summary = score_file(traces, out, chosen, overwrite=overwrite)
    console.print(summary_table(summary))
    console.print(f"wrote {summary.traces} trace(s) to {out}", highlight=False, markup=False)


@app.command()
def replay(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file, or a run folder.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the replayed traces (JSONL).")],
    rewards: RewardNames = "all",
    model: Annotated[
        Path | None,
        typer.Option(help="Re-run a live GGUF model against the recorded tool results instead."),
    ] = None,
    max_steps: Annotated[int, typer.Option(help="With --model: steps per episode before it stops.")] = 6,
    token_budget: Annotated[int, typer.Option(help="With --model: completion tokens per episode.")] = 2048,
    n_ctx: Annotated[int, typer.Option(help="With --model: context window in tokens.")] = 4096,
    overwrite: Annotated[bool, typer.Option(help="Replace an -o file that already holds traces.")] = False,
    judge: JudgeModel = None,
    lora: LoraFile = None,
) -> None:
    """Re-run recorded episodes with their recorded tool results and no live server, and score them."""
    from sandbox._episode import Limits
    from sandbox._models import LlamaModel
    from sandbox._replay import check_replay_paths, replay_file
    from sandbox._run import select_rewards
    from sandbox._score import summary_table as score_table

    if lora is not None and model is None:
        raise SandboxError("--lora goes with --model: it applies to a live model")
    chosen = select_rewards(rewards, judge)
    check_replay_paths(traces, out, overwrite=overwrite)  # before a live model loads
    live = LlamaModel(model, n_ctx=n_ctx, lora_path=lora) if model is not None else None
    limits = Limits(max_steps=max_steps, max_completion_tokens=token_budget)
    try:
        report = anyio.run(
            partial(replay_file, traces, out, chosen, model=live, limits=limits, overwrite=overwrite)
        )
    finally:
        if live is not None:
            live.close()
    console.print(score_table(report.scores))
    for line in report.lines():
        console.print(line, highlight=False, markup=False)


@app.command()
def show(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file.")],
    trace: Annotated[str | None, typer.Option(help="Trace id (or task id) to show.")] = None,
    index: Annotated[int, typer.Option(help="Position of the trace in the file.")] = 0,
) -> None:
    """Print one trace readably: prompt, each step's thoughts, call and result, answer and rewards."""
    all_traces = read_traces(traces)
    if not all_traces:
        raise SandboxError(f"{traces}: no traces in file")
    if trace is not None:
        chosen = next((t for t in all_traces if trace in (t.id, t.task_id)), None)
        if chosen is None:
            raise SandboxError(f"{traces}: no trace with id or task id {trace!r}")
    else:
        if not -len(all_traces) <= index < len(all_traces):
            raise SandboxError(f"{traces}: index {index} out of range (file has {len(all_traces)} traces)")
        chosen = all_traces[index]
    render_trace(chosen, console)


def render_trace(trace: Trace, out: Console) -> None:
    out.print(
        Panel(
            trace.task.prompt,
            title=f"{trace.task_id}  [{trace.id}]",
            subtitle=f"model {trace.model.name}, {trace.mode} mode",
            highlight=False,
        )
    )
    for step in trace.steps:
        out.print(
            f"[bold]step {step.index}[/]  {step.action}  ({step.usage.completion_tokens} tokens, "
            f"{step.model_seconds:.2f} s)",
            highlight=False,
        )
        if step.thought:
            out.print("  thought: " + step.thought, highlight=False, markup=False, style="dim")
        if step.call is not None:
            out.print(f"  call: {step.call.name}({step.call.arguments})", highlight=False, markup=False)
        if step.parse_error:
            out.print(f"  broken: {step.parse_error}", style="yellow", highlight=False, markup=False)
        if step.result is not None:
            style = "red" if step.result.is_error else "green"
            out.print(f"  result: {step.result.text[:600]}", style=style, highlight=False, markup=False)
        if step.answer is not None:
            out.print(f"  answer: {step.answer}", style="bold", highlight=False, markup=False)
    expected = trace.task.expected_answer
    out.print(
        f"stop: {trace.stop_reason}   final answer: {trace.final_answer!r}   expected: {expected!r}",
        highlight=False,
        markup=False,
    )
    if trace.error:
        out.print(f"error: {trace.error}", style="red", markup=False)
    table = Table(title="rewards")
    for column in ("reward", "version", "value", "components", "reason"):
        table.add_column(column)
    for name, reward in trace.rewards.items():
        value = "-" if reward.value is None else f"{reward.value:+.3f}"
        parts = ", ".join(f"{k}={v:g}" for k, v in reward.components.items())
        table.add_row(name, reward.version, value, parts, reward.reason)
    out.print(table)


@app.command("new-tool")
def new_tool(
    name: Annotated[str, typer.Argument(help="Server name, a Python module name (e.g. unit_converter).")],
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write into (default: ./NAME).")
    ] = None,
) -> None:
    """Write a new MCP server with an example tool, its pytest test, an mcp.json and a task file."""
    from tools import new_tool as write_scaffold

    made = write_scaffold(name, folder)
    for path in made.files:
        console.print(f"wrote {path}", highlight=False, markup=False)
    traces = made.folder / "traces.jsonl"
    console.print(
        f"next: python -m pytest {made.folder}\n"
        f"      sandbox check-tool {made.config}\n"
        f"      sandbox run --tasks {made.tasks} --servers {made.config} --out {traces}",
        highlight=False,
        markup=False,
    )


@app.command("check-tool")
def check_tool(
    config: Annotated[str, typer.Argument(help="MCP config (mcp.json), or a streamable HTTP server's URL.")],
    server: Annotated[
        list[str] | None, typer.Option("--server", help="Check only this server of the config (repeatable).")
    ] = None,
    examples: Annotated[int, typer.Option(help="Calls per tool with arguments made from its schema.")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds a call may take.")] = 10.0,
) -> None:
    """Call every tool with generated, invalid and huge arguments; exit 1 if any tool breaks its contract.

    The calls are real: point it at a test instance of a server, never at one holding data that matters.
    """
    from tools import check_server, print_report, select_servers

    if examples < 0 or timeout <= 0:
        raise SandboxError("--examples must be 0 or more and --timeout positive")
    violations = 0
    for entry in select_servers(config, server or ()):
        with console.status(f"checking {entry.name} ..."):
            report = anyio.run(partial(check_server, entry, examples=examples, timeout=timeout))
        print_report(report, console)
        violations += len(report.violations)
    if violations:
        console.print(f"{violations} violation(s)", style="bold red", highlight=False)
        raise typer.Exit(1)


@app.command()
def quantize(
    type_name: Annotated[str, typer.Option("--type", help="Weight type: q4_0, iq4_nl, q8_0, q5_0, ...")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The new GGUF file.")],
    model: ModelFile = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Re-quantize a GGUF model with llama.cpp's quantizer: some weight types batch far better on a CPU.

    On a 2-core x86 machine, `generate --parallel 8` gained 1.21x over sequential sampling with the
    embedded Q4_1 model and 1.58x with its Q4_0 requantization. A quantized model quantized again
    loses accuracy, which `sandbox loss` measures.
    """
    from sandbox._quantize import quantize as run_quantize

    with console.status(f"quantizing to {type_name} ..."):
        result = run_quantize(model, out, type_name.lower(), overwrite=overwrite)
    console.print(
        f"{result.path}: {result.type}, {result.size / 1e6:.1f} MB (from {result.source_size / 1e6:.1f} MB), "
        f"sha256 {result.sha256}",
        highlight=False,
    )


app.command("train")(train_command)

if __name__ == "__main__":
    main()
