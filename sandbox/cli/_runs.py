"""The run commands: ``run``, ``generate``, ``score``, ``replay``, ``show``, ``gauntlet``, ``demos``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer

from sandbox.cli._app import (
    ApiConcurrency,
    ApiGrammar,
    ApiKeyEnv,
    ApiModel,
    ApiToolCalls,
    BaseUrl,
    JudgeApiKeyEnv,
    JudgeApiModel,
    JudgeBaseUrl,
    JudgeModel,
    LoraFile,
    ModelFile,
    RewardNames,
    Threads,
    app,
    console,
    err_console,
    http_options,
    judge_server,
    task_path,
)
from sandbox.cli._render import (
    RunProgress,
    episodes_table,
    gauntlet_table,
    render_trace,
    run_table,
    score_table,
)
from sandbox.records import SandboxError, read_traces

T = TypeVar("T")
INTERRUPTED = 130  # the exit code of a run stopped by Ctrl-C (128 + SIGINT), as sandbox.runs.INTERRUPTED

TurnFormat = Annotated[
    str,
    typer.Option(
        "--format",
        help="Turn format: auto (native where the model's chat template has a tools branch, else tags), "
        "native, tags, or a family (hermes, llama3, mistral, functiongemma).",
    ),
]


def run_stoppable(main: Callable[[], Awaitable[T]]) -> T:
    """:func:`sandbox.runs.run_stoppable`, saying on the console that the run is stopping."""
    from sandbox.runs import run_stoppable as stoppable

    return stoppable(main, say=lambda line: err_console.print(line, highlight=False))


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that continues this one: the same arguments, ``--overwrite`` dropped (it would
    start again) and ``--resume`` added."""
    argv = list(sys.argv if argv is None else argv)
    program = Path(argv[0]).name if argv else "sandbox"
    head = [sys.executable, "-m", "sandbox"] if program == "__main__.py" else [program or "sandbox"]
    args = [a for a in argv[1:] if a not in ("--overwrite", "--no-overwrite", "--no-resume")]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(head + args)


@app.command()
def run(
    tasks: Annotated[str, typer.Option(help="Task JSONL file, or 'seed' for the bundled suite.")],
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')],
    out: Annotated[Path, typer.Option(help="Where to write the traces (JSONL).")],
    model: ModelFile = None,
    mode: Annotated[
        str, typer.Option(help="constrained (grammar) or free (lenient parsing).")
    ] = "constrained",
    turn_format: TurnFormat = "auto",
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
    start_timeout: Annotated[float, typer.Option(help="Seconds each MCP server may take to start.")] = 30.0,
    threads: Threads = None,
    task_id: Annotated[list[str] | None, typer.Option("--task", help="Run only these task ids.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an --out file that already holds traces.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run: only the tasks without a trace in --out.")
    ] = False,
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_model: JudgeApiModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    base_url: BaseUrl = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = None,
    api_tool_calls: ApiToolCalls = "text",
    api_grammar: ApiGrammar = "auto",
    api_concurrency: ApiConcurrency = 4,
    lora: LoraFile = None,
) -> None:
    """Run every task as one episode (greedy by default) and write one reward-labelled trace per line."""
    from sandbox.runs import RunSpec, generate

    http = http_options(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)
    spec = RunSpec(
        tasks=task_path(tasks),
        servers=servers,
        out=out,
        layout="file",
        n=1,
        model=model,
        mode=mode,  # type: ignore[arg-type]
        turn_format=turn_format,
        rewards=rewards,
        judge=judge,
        judge_server=judge_server(judge_base_url, judge_api_model, judge_api_key_env),
        max_steps=max_steps,
        max_tokens=max_tokens,
        token_budget=token_budget,
        temperature=temperature,
        seed=seed,
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        call_timeout=call_timeout,
        start_timeout=start_timeout,
        threads=threads,
        only=tuple(task_id or ()),
        overwrite=overwrite,
        resume=resume,
        http=http,
        lora=lora,
    )
    progress = RunProgress(err_console, label="run", lines=True)
    try:
        with progress:
            run_stoppable(partial(generate, spec, events=progress))
    except KeyboardInterrupt:
        _interrupted(progress, out)
    console.print(episodes_table(progress.traces))
    console.print(f"wrote {len(progress.traces)} trace(s) to {out}")


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
    turn_format: TurnFormat = "auto",
    rewards: RewardNames = "all",
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_model: JudgeApiModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
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
    start_timeout: Annotated[float, typer.Option(help="Seconds each MCP server may take to start.")] = 30.0,
    threads: Threads = None,
    task_id: Annotated[list[str] | None, typer.Option("--task", help="Run only these task ids.")] = None,
    base_url: BaseUrl = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = None,
    api_tool_calls: ApiToolCalls = "text",
    api_grammar: ApiGrammar = "auto",
    api_concurrency: ApiConcurrency = 4,
    lora: LoraFile = None,
    ray: Annotated[
        str | None,
        typer.Option(help="Shard over Ray: 'local' (a private instance), 'auto', or ray://HOST:PORT."),
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="Ray workers, each with its own model and servers.")] = 1,
    ray_worker_cpus: Annotated[float, typer.Option(help="CPUs each Ray worker reserves.")] = 1.0,
) -> None:
    """Run n samples of every task, each scored by every reward, into a run folder that a kill -9
    cannot corrupt: traces are appended and fsynced as they finish, and --resume carries on."""
    from sandbox.runs import RunSpec
    from sandbox.runs import generate as run_generate

    http = http_options(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)
    spec = RunSpec(
        tasks=task_path(tasks),
        servers=servers,
        out=out,
        model=model,
        n=n,
        parallel=parallel,
        resume=resume,
        overwrite=overwrite,
        mode=mode,  # type: ignore[arg-type]
        turn_format=turn_format,
        rewards=rewards,
        judge=judge,
        judge_server=judge_server(judge_base_url, judge_api_model, judge_api_key_env),
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        token_budget=token_budget,
        max_steps=max_steps,
        seed=seed,
        n_ctx=n_ctx,
        n_gpu_layers=n_gpu_layers,
        call_timeout=call_timeout,
        start_timeout=start_timeout,
        threads=threads,
        only=tuple(task_id or ()),
        http=http,
        lora=lora,
        ray=ray,
        ray_workers=ray_workers,
        ray_worker_cpus=ray_worker_cpus,
    )
    progress = RunProgress(err_console)
    try:
        with progress:
            summary = run_stoppable(partial(run_generate, spec, events=progress))
    except KeyboardInterrupt:
        _interrupted(progress, out)
    console.print(run_table(summary))


def _interrupted(progress: RunProgress, out: Path) -> None:
    """The one line an interrupted run ends with (what was kept, how to go on), and exit 130."""
    summary = progress.summary
    kept = (
        f"{summary.written} finished trace(s) written now, {summary.total} of {summary.expected} in all"
        if summary is not None
        else "no trace written now"
    )
    err_console.print(
        f"interrupted: {kept}, kept in {out}; resume with: {resume_command()}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(INTERRUPTED)


@app.command()
def score(
    traces: Annotated[Path, typer.Argument(help="Trace JSONL file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the re-scored traces (JSONL).")],
    rewards: RewardNames = "all",
    overwrite: Annotated[bool, typer.Option(help="Replace an -o file that already holds traces.")] = False,
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_model: JudgeApiModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    threads: Threads = None,
) -> None:
    """Re-score existing traces with the named rewards; every other reward on a trace stays as it was."""
    from sandbox.runs import score_file, select_rewards

    server = judge_server(judge_base_url, judge_api_model, judge_api_key_env)
    chosen = select_rewards(rewards, judge, threads=threads, judge_server=server)
    summary = score_file(traces, out, chosen, overwrite=overwrite)
    console.print(score_table(summary))
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
    turn_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="recorded (each trace in the format it ran); with --model also auto, native, tags "
            "or a family (hermes, llama3, mistral, functiongemma).",
        ),
    ] = "recorded",
    max_steps: Annotated[int, typer.Option(help="With --model: steps per episode before it stops.")] = 6,
    token_budget: Annotated[int, typer.Option(help="With --model: completion tokens per episode.")] = 2048,
    n_ctx: Annotated[int, typer.Option(help="With --model: context window in tokens.")] = 4096,
    overwrite: Annotated[bool, typer.Option(help="Replace an -o file that already holds traces.")] = False,
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_model: JudgeApiModel = None,
    judge_api_key_env: JudgeApiKeyEnv = None,
    threads: Threads = None,
    lora: LoraFile = None,
) -> None:
    """Re-run recorded episodes with their recorded tool results and no live server, and score them."""
    from sandbox.episodes import Limits
    from sandbox.models import LlamaModel
    from sandbox.runs import check_replay_format, check_replay_paths, replay_file, select_rewards

    if lora is not None and model is None:
        raise SandboxError("--lora goes with --model: it applies to a live model")
    live_format = check_replay_format(turn_format, live=model is not None)
    server = judge_server(judge_base_url, judge_api_model, judge_api_key_env)
    chosen = select_rewards(rewards, judge, threads=threads, judge_server=server)
    check_replay_paths(traces, out, overwrite=overwrite)  # before a live model loads
    live = LlamaModel(model, n_ctx=n_ctx, n_threads=threads, lora_path=lora) if model is not None else None
    limits = Limits(max_steps=max_steps, max_completion_tokens=token_budget)
    try:
        report = anyio.run(
            partial(
                replay_file,
                traces,
                out,
                chosen,
                model=live,
                limits=limits,
                overwrite=overwrite,
                turn_format=live_format,
            )
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


@app.command()
def gauntlet(
    tasks: Annotated[str, typer.Option(help="Task JSONL file, or 'seed' for the bundled suite.")] = "seed",
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')] = Path(
        "servers/mcp.json"
    ),
    rewards: RewardNames = "all",
    max_steps: Annotated[int, typer.Option(help="Steps per episode before it stops.")] = 6,
    parallel: Annotated[int, typer.Option(help="Tasks run at once.")] = 4,
) -> None:
    """Run the oracle (the reference solutions) and every attack on every task, and print which
    reward scores which attack below the oracle. Exit 1 when a reward misses an attack it declares
    it catches, or the oracle misses a reward's maximum."""
    from sandbox.episodes import Limits
    from sandbox.runs import gauntlet as run_gauntlet

    if max_steps < 1 or parallel < 1:
        raise SandboxError("--max-steps and --parallel must be at least 1")
    limits = Limits(max_steps=max_steps)
    report = anyio.run(
        partial(run_gauntlet, task_path(tasks), servers, rewards, limits=limits, parallel=parallel)
    )
    console.print(gauntlet_table(report))
    failures = report.failures()
    for line in failures:
        err_console.print(f"[bold red]fails:[/] {line}", highlight=False, soft_wrap=True)
    episodes = len(report.oracle) + len(report.attacked)
    console.print(
        f"{episodes} episode(s) on {len(report.tasks)} task(s); "
        f"{sum(p.declared for p in report.pairs())} declared pair(s), {len(failures)} failure(s)",
        highlight=False,
    )
    if failures:
        raise typer.Exit(1)


@app.command()
def demos(
    tasks: Annotated[str, typer.Option(help="Task JSONL file, or 'seed' for the bundled suite.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run folder: config.json and traces.jsonl.")],
    servers: Annotated[Path, typer.Option(help='MCP config: {"mcpServers": {...}}.')] = Path(
        "servers/mcp.json"
    ),
    rewards: RewardNames = "all",
    max_steps: Annotated[int, typer.Option(help="Steps per episode before it stops.")] = 6,
    max_tokens: Annotated[
        int,
        typer.Option(
            help="The turn limit of the runs these demos train for: thoughts fit its constrained turn."
        ),
    ] = 8192,
    turn_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="The turn format the demonstrations are written in: auto or tags (the tag format), a "
            "family (hermes, llama3, mistral, functiongemma) or a label such as hermes+think.",
        ),
    ] = "auto",
    task_id: Annotated[list[str] | None, typer.Option("--task", help="Only these task ids.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Start the run in --out again, drop its traces.")] = False,
) -> None:
    """Write demonstrations: the oracle plays each task's reference solution through the real servers,
    thinking in a stated template (which tool and why; what the result said), into a scored run
    folder that `sandbox export` and `sandbox train` read like any other."""
    from sandbox.runs import RunSpec, write_demos

    spec = RunSpec(
        tasks=task_path(tasks),
        servers=servers,
        out=out,
        rewards=rewards,
        max_steps=max_steps,
        max_tokens=max_tokens,
        turn_format=turn_format,
        only=tuple(task_id or ()),
        resume=resume,
        overwrite=overwrite,
    )
    with RunProgress(err_console, label="demos") as progress:
        summary = anyio.run(partial(write_demos, spec, events=progress))
    console.print(run_table(summary))
