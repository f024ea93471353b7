"""``sandbox run``: every task of a file as one episode, traces written as they finish.

Part of the CLI, the one layer that wires the rooms: the engine runs episodes, ``rewards`` scores
them (its registry also loads third-party rewards from the ``sandbox.rewards`` entry points).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from rewards import RewardFn, available_rewards, score_trace
from sandbox._episode import Limits, run_episode
from sandbox._errors import ConfigError
from sandbox._hub import ServerConfig, ToolHub, load_config
from sandbox._models import LlamaModel, Model
from sandbox._records import Sampling, Task, Trace, read_tasks, write_trace


@dataclass(frozen=True)
class HttpModelOptions:
    """A model behind an OpenAI-compatible server (``--base-url`` and the ``--api-*`` options)."""

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    tool_calls: str = "text"
    grammar: str = "auto"
    concurrency: int = 4


def open_http_model(options: HttpModelOptions) -> Model:
    """The HTTP model, its API key read from the named environment variable (never from the command line)."""
    from sandbox._http_model import GRAMMAR_FIELDS, OpenAIModel

    if options.tool_calls not in ("text", "native"):
        raise ConfigError(f"--api-tool-calls must be 'text' or 'native', not {options.tool_calls!r}")
    if options.grammar not in GRAMMAR_FIELDS:
        raise ConfigError(f"--api-grammar must be one of {list(GRAMMAR_FIELDS)}, not {options.grammar!r}")
    api_key = None
    if options.api_key_env is not None:
        api_key = os.environ.get(options.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env names {options.api_key_env}, which is not set (or empty)")
    return OpenAIModel(
        options.base_url,
        model=options.model,
        api_key=api_key,
        tool_calls=options.tool_calls,  # type: ignore[arg-type]
        grammar=options.grammar,  # type: ignore[arg-type]
        max_concurrency=options.concurrency,
    )


@dataclass(frozen=True)
class RunOptions:
    tasks: Path
    servers: Path
    out: Path
    model: Path | None = None
    mode: Literal["constrained", "free"] = "constrained"
    rewards: str = "all"
    judge: Path | None = None
    max_steps: int = 6
    max_tokens: int = 384
    token_budget: int = 2048
    temperature: float = 0.0
    seed: int = 0
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    call_timeout: float = 30.0
    only: tuple[str, ...] = ()
    overwrite: bool = False
    http: HttpModelOptions | None = None  # set: the model is behind an HTTP server, not --model
    lora: Path | None = None  # a LoRA adapter GGUF on the llama.cpp model


async def run_tasks(options: RunOptions, console: Console | None = None) -> list[Trace]:
    """Check everything first (tasks, servers, rewards, model), then run the episodes in order."""
    console = console or Console(stderr=True)
    if not options.overwrite and options.out.exists() and options.out.stat().st_size > 0:
        raise ConfigError(
            f"{options.out} already holds traces; pass --overwrite to replace it, or pick another --out"
        )
    tasks, servers, rewards = check_run_inputs(
        options.tasks, options.servers, options.rewards, judge=options.judge, only=options.only
    )
    model: Model
    if options.http is not None:
        if options.lora is not None:
            raise ConfigError("--lora applies to a llama.cpp model (--model), not to a model server")
        model = open_http_model(options.http)
    else:
        model = LlamaModel(
            options.model,
            n_ctx=options.n_ctx,
            n_gpu_layers=options.n_gpu_layers,
            seed=options.seed,
            lora_path=options.lora,
        )
    limits = Limits(
        max_steps=options.max_steps,
        max_completion_tokens=options.token_budget,
        call_timeout=options.call_timeout,
    )
    sampling = Sampling(temperature=options.temperature, max_tokens=options.max_tokens, seed=options.seed)
    traces: list[Trace] = []
    options.out.parent.mkdir(parents=True, exist_ok=True)
    async with ToolHub(servers, call_timeout=options.call_timeout) as hub:
        with options.out.open("w", encoding="utf-8") as handle:
            for number, task in enumerate(tasks, start=1):
                # Each episode gets its own view: stateful servers start fresh, from the warm pool.
                with console.status(f"[{number}/{len(tasks)}] {task.id}"):
                    async with hub.episode(task.servers) as episode_hub:
                        trace = await run_episode(
                            task, model, episode_hub, limits, mode=options.mode, sampling=sampling
                        )
                trace = score_trace(trace, task, rewards)
                write_trace(handle, trace)
                traces.append(trace)
    aclose = getattr(model, "aclose", None)  # an HTTP model's connections on this event loop
    if aclose is not None:
        await aclose()
    return traces


def check_run_inputs(
    tasks_path: Path,
    servers_path: Path,
    rewards_spec: str,
    *,
    judge: Path | None = None,
    only: tuple[str, ...] = (),
) -> tuple[list[Task], dict[str, ServerConfig], dict[str, RewardFn]]:
    """Read and check what a run needs before any model or server starts: the tasks (only those in
    ``only`` when given), the configs of the servers they name, and the rewards.

    Raises a ``SandboxError`` with one line naming what to fix.
    """
    tasks = read_tasks(tasks_path)
    if only:
        missing = sorted(set(only) - {t.id for t in tasks})
        if missing:
            raise ConfigError(f"{tasks_path}: no task(s) {missing}")
        tasks = [t for t in tasks if t.id in only]
    config = load_config(servers_path)
    used = sorted({name for task in tasks for name in task.servers})
    unknown = [name for name in used if name not in config]
    if unknown:
        raise ConfigError(
            f"tasks name server(s) {unknown} that {servers_path} does not configure "
            f"(configured: {sorted(config)})"
        )
    return tasks, {name: config[name] for name in used}, select_rewards(rewards_spec, judge)


def select_rewards(spec: str, judge: Path | None = None) -> dict[str, RewardFn]:
    """The rewards named in ``spec`` ("all", or comma-separated names), in that order.

    With ``judge`` (a GGUF file), the judge PRM's rewards (``cot_judge``, ``process_judge``) join
    the registered ones; "all" then includes them.
    """
    available = available_rewards()
    if judge is not None:
        from rewards import make_judge_rewards

        available.update(make_judge_rewards(judge))
    if spec.strip() in ("all", ""):
        return dict(sorted(available.items()))
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown:
        hint = (
            " (judge rewards need --judge MODEL.gguf)" if any(n.endswith("_judge") for n in unknown) else ""
        )
        raise ConfigError(f"unknown reward(s) {unknown}; available: {sorted(available)}{hint}")
    return {name: available[name] for name in names}
