"""What a run is told (:class:`RunSpec`), checked in one place, and the pieces every runner shares.

``sandbox run`` and ``sandbox generate`` build the same :class:`RunSpec`: ``run`` is one greedy
sample of every task written to one trace file, ``generate`` n sampled ones into a run folder. The
local runner (``_generate.py``) and the Ray workers (``_ray.py``) both take their inputs, their
model and their episodes from here, so a pair runs the same way wherever it runs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rewards import JudgeBackend, RewardFn, available_rewards
from sandbox.episodes import Limits, Mode, run_episode
from sandbox.hub import ServerConfig, ToolHub, load_config
from sandbox.models import MIN_COMPLETION_TOKENS, Model
from sandbox.records import ConfigError, Sampling, Task, Trace, read_tasks
from sandbox.turns import FORMAT_CHOICES, is_format_choice

# Seeds stay below 2**31 so that the per-step offsets run_episode adds fit llama.cpp's uint32 seed.
SEED_BITS = 31

Layout = Literal["folder", "file"]


@dataclass(frozen=True)
class HttpModelOptions:
    """A model behind an OpenAI-compatible server (``--base-url`` and the ``--api-*`` options)."""

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    tool_calls: str = "text"
    grammar: str = "auto"
    concurrency: int = 4


@dataclass(frozen=True)
class JudgeServer:
    """A judge model behind an OpenAI-compatible server (``--judge-base-url`` and its options)."""

    base_url: str
    model: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """Everything a run is told. The defaults are ``sandbox generate``'s, the seed document's
    sampling: n = 10, temperature 0.8, max_tokens 8192 (bounded by a local model's context).

    ``layout`` is where traces go: ``"folder"`` is a run folder (``config.json`` and
    ``traces.jsonl``, resumable); ``"file"`` is one trace file, replaced only with ``overwrite``.
    """

    tasks: Path
    servers: Path
    out: Path
    layout: Layout = "folder"
    model: Path | None = None
    lora: Path | None = None  # a LoRA adapter GGUF applied to the local model
    n: int = 10
    parallel: int = 1
    resume: bool = False
    overwrite: bool = False
    mode: Mode = "constrained"
    # --format: auto, native, tags, a family (sandbox.turns.FORMAT_CHOICES) or a label (hermes+think)
    turn_format: str = "auto"
    rewards: str = "all"
    judge: Path | None = None  # a GGUF judge, run by llama.cpp with ``threads``
    judge_server: JudgeServer | None = None  # or a judge behind a server
    temperature: float = 0.8
    top_p: float = 1.0
    max_tokens: int = 8192
    token_budget: int = 8192
    max_steps: int = 6
    seed: int = 0
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    threads: int | None = None  # llama.cpp threads (None: every core; a Ray worker: the CPUs it reserves)
    call_timeout: float = 30.0
    start_timeout: float = 30.0  # seconds each MCP server may take to start (raise it under load)
    only: tuple[str, ...] = ()
    http: HttpModelOptions | None = None  # set: the model is behind an HTTP server, not --model
    # Ray: an address for ray.init ("local" starts a private instance), workers (actors), and the CPUs
    # each worker reserves; ``parallel`` then counts episodes per worker.
    ray: str | None = None
    ray_workers: int = 1
    ray_worker_cpus: float = 1.0
    ray_cpus: int | None = None  # CPUs of a "local" instance (default: all)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_steps=self.max_steps, max_completion_tokens=self.token_budget, call_timeout=self.call_timeout
        )

    @property
    def sampling(self) -> Sampling:
        """The run's sampling; a turn never asks for more tokens than a local model's context holds.
        ``seed`` is the run seed: each (task, sample) derives its own (:func:`derive_seed`)."""
        max_tokens = self.max_tokens if self.http is not None else min(self.max_tokens, self.n_ctx)
        return Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens, seed=self.seed)


def derive_seed(run_seed: int, task_id: str, sample: int) -> int:
    """The sampling seed of one (task, sample): stable across processes, resumes and machines."""
    digest = hashlib.sha256(f"{run_seed}\x00{task_id}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def check_spec(spec: RunSpec) -> None:
    """The settings on their own, before any file is read: one line naming the first one to fix."""
    problems = [
        (spec.layout not in ("folder", "file"), f"layout must be 'folder' or 'file', not {spec.layout!r}"),
        (spec.n < 1, "--n must be at least 1"),
        (spec.parallel < 1, "--parallel must be at least 1"),
        (
            not is_format_choice(spec.turn_format),
            f"--format must be one of {', '.join(FORMAT_CHOICES)}, not {spec.turn_format!r}",
        ),
        (spec.temperature < 0, "--temperature must be 0 or more"),
        (not 0 < spec.top_p <= 1, "--top-p must be in (0, 1]"),
        (spec.max_tokens < 1 or spec.token_budget < 1, "--max-tokens and --token-budget must be positive"),
        (spec.max_steps < 1, "--max-steps must be at least 1"),
        (spec.call_timeout <= 0, "--call-timeout must be positive"),
        (spec.start_timeout <= 0, "--start-timeout must be positive"),
        (spec.threads is not None and spec.threads < 1, "--threads must be at least 1"),
        (spec.n_ctx < 2 * MIN_COMPLETION_TOKENS, f"--n-ctx must be at least {2 * MIN_COMPLETION_TOKENS}"),
        (
            spec.mode not in ("constrained", "free"),
            f"--mode must be 'constrained' or 'free', not {spec.mode!r}",
        ),
        (spec.http is not None and spec.model is not None, "--model and --base-url exclude each other"),
        (
            spec.judge is not None and spec.judge_server is not None,
            "--judge and --judge-base-url exclude each other",
        ),
        (
            spec.http is not None and spec.lora is not None,
            "--lora applies to a local model, not to --base-url",
        ),
        (spec.resume and spec.overwrite, "--resume and --overwrite exclude each other"),
        (spec.ray_workers < 1, "--ray-workers must be at least 1"),
        (spec.ray_worker_cpus <= 0, "--ray-worker-cpus must be positive"),
    ]
    for failed, message in problems:
        if failed:
            raise ConfigError(message)


def check_run_inputs(spec: RunSpec) -> tuple[list[Task], dict[str, ServerConfig], dict[str, RewardFn]]:
    """Read and check what a run needs before any model or server starts: the tasks (only those in
    ``spec.only`` when given), the configs of the servers they name, and the rewards.

    Raises a ``SandboxError`` with one line naming what to fix.
    """
    tasks = read_tasks(spec.tasks)
    if spec.only:
        missing = sorted(set(spec.only) - {t.id for t in tasks})
        if missing:
            raise ConfigError(f"{spec.tasks}: no task(s) {missing}")
        tasks = [t for t in tasks if t.id in spec.only]
    used = sorted({name for task in tasks for name in task.servers})
    config = load_config(spec.servers, only=used)
    unknown = [name for name in used if name not in config]
    if unknown:
        raise ConfigError(
            f"tasks name server(s) {unknown} that {spec.servers} does not configure "
            f"(configured: {sorted(config)})"
        )
    return (
        tasks,
        {name: config[name] for name in used},
        select_rewards(spec.rewards, spec.judge, threads=spec.threads, judge_server=spec.judge_server),
    )


def select_rewards(
    names: str,
    judge: Path | None = None,
    *,
    threads: int | None = None,
    judge_server: JudgeServer | None = None,
) -> dict[str, RewardFn]:
    """The rewards named in ``names`` ("all", or comma-separated names), in that order.

    With a judge, the judge PRM's rewards (``cot_judge``, ``process_judge``) join the registered
    ones; "all" then includes them. The judge is ``judge``, a GGUF file run by llama.cpp on
    ``threads`` threads (None: every core), or ``judge_server``, a model behind an OpenAI-compatible
    server; the two exclude each other.
    """
    if threads is not None and threads < 1:
        raise ConfigError("--threads must be at least 1")
    if judge is not None and judge_server is not None:
        raise ConfigError("--judge and --judge-base-url exclude each other")
    available = available_rewards()
    if judge is not None or judge_server is not None:
        from rewards import make_judge_rewards

        available.update(make_judge_rewards(open_judge(judge, threads=threads, server=judge_server)))
    if names.strip() in ("all", ""):
        return dict(sorted(available.items()))
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in available]
    if unknown:
        hint = (
            " (judge rewards need --judge MODEL.gguf or --judge-base-url URL)"
            if any(n.endswith("_judge") for n in unknown)
            else ""
        )
        raise ConfigError(f"unknown reward(s) {unknown}; available: {sorted(available)}{hint}")
    return {name: available[name] for name in chosen}


def open_judge(
    path: Path | None, *, threads: int | None = None, server: JudgeServer | None = None
) -> JudgeBackend:
    """The judge's backend: a server's model when ``server`` is given, else the GGUF at ``path`` (the
    embedded model when None) on ``threads`` llama.cpp threads (None: every core)."""
    if server is not None:
        from sandbox.models import OpenAIScorer

        key = _api_key(server.api_key_env, "--judge-api-key-env")
        return OpenAIScorer(server.base_url, model=server.model, api_key=key)
    from sandbox.models import LlamaScorer, check_model_file, default_model_path

    model = check_model_file(path if path is not None else default_model_path())
    return LlamaScorer(model, n_threads=threads)


def _api_key(env: str | None, option: str = "--api-key-env") -> str | None:
    """The API key from the environment variable ``env`` names (never from the command line)."""
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"{option} names {env}, which is not set (or empty)")
    return key


def open_http_model(options: HttpModelOptions) -> Model:
    """The HTTP model, its API key read from the named environment variable (never from the command line)."""
    from sandbox.models import GRAMMAR_FIELDS, OpenAIModel

    if options.tool_calls not in ("text", "native"):
        raise ConfigError(f"--api-tool-calls must be 'text' or 'native', not {options.tool_calls!r}")
    if options.grammar not in GRAMMAR_FIELDS:
        raise ConfigError(f"--api-grammar must be one of {list(GRAMMAR_FIELDS)}, not {options.grammar!r}")
    if options.concurrency < 1:
        raise ConfigError("--api-concurrency must be at least 1")
    return OpenAIModel(
        options.base_url,
        model=options.model,
        api_key=_api_key(options.api_key_env),
        tool_calls=options.tool_calls,  # type: ignore[arg-type]
        grammar=options.grammar,  # type: ignore[arg-type]
        max_concurrency=options.concurrency,
    )


def open_model(spec: RunSpec) -> Model:
    """The run's model backend, chosen in this one place: an HTTP server when ``http`` is set; else
    llama.cpp in process, batched over ``parallel`` sequences when more than one episode runs at once."""
    if spec.http is not None:
        return open_http_model(spec.http)
    from sandbox.models import BatchedLlamaModel, LlamaModel

    if spec.parallel > 1:
        return BatchedLlamaModel(
            spec.model,
            n_seq=spec.parallel,
            n_ctx=spec.n_ctx,
            n_gpu_layers=spec.n_gpu_layers,
            n_threads=spec.threads,
            seed=spec.seed,
            lora_path=spec.lora,
        )
    return LlamaModel(
        spec.model,
        n_ctx=spec.n_ctx,
        n_gpu_layers=spec.n_gpu_layers,
        n_threads=spec.threads,
        seed=spec.seed,
        lora_path=spec.lora,
    )


async def run_sample(
    task: Task,
    sample: int,
    model: Model,
    hub: ToolHub,
    limits: Limits,
    *,
    mode: Mode,
    sampling: Sampling,
    turn_format: str = "auto",
) -> Trace:
    """One (task, sample) episode with its own derived seed, and its own view of the hub: a stateful
    server's state (a play history, a folder) stays inside the episode, also when episodes run at once."""
    seeded = sampling.model_copy(update={"seed": derive_seed(sampling.seed, task.id, sample)})
    async with hub.episode(task.servers) as episode_hub:
        return await run_episode(
            task,
            model,
            episode_hub,
            limits,
            mode=mode,
            sampling=seeded,
            sample=sample,
            turn_format=turn_format,
        )
