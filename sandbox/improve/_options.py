"""What ``sandbox improve`` is told (:class:`ImproveOptions`), checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sandbox.records import SandboxError, Task, read_tasks
from sandbox.turns import FORMAT_CHOICES, is_format_choice


class ImproveError(SandboxError):
    """An improve run cannot start or continue (bad options, overlapping splits, a folder in use)."""


@dataclass(frozen=True)
class ImproveOptions:
    """Everything an improve run is told. The sampling defaults are the seed document's
    (temperature 0.8); evaluation is greedy unless ``eval_temperature`` says otherwise, with the
    same seeds for the base and every tuned model."""

    tasks: Path | None  # the train tasks (None: made from ``family``)
    heldout: Path | None  # the held-out tasks: no id in common with ``tasks``
    out: Path  # the improve folder
    # Or tasks made by sandbox.tasks: ``train_n`` train and ``heldout_n`` held-out tasks of each
    # comma-separated family (``all``: that many in total, round-robin), held-out values unseen in
    # training, written to OUT/tasks/ (:func:`family_tasks`).
    family: str | None = None
    train_n: int = 20
    heldout_n: int = 10
    servers: Path = Path("servers/mcp.json")
    model: Path | None = None  # the base GGUF (default: the embedded SmolLM2-135M)
    # --format: the turn format, resolved once against the base model's chat template (auto: native
    # where it has a tools branch, else tags); sampling, demonstrations, evaluation and the export
    # all use it, and state.json records it.
    turn_format: str = "auto"
    rounds: int = 1
    n: int = 4  # samples per train task and round
    temperature: float = 0.8
    reward: str = "outcome"  # the reward a sample must reach to be kept
    threshold: float = 1.0
    demos: bool = True  # add the oracle's demonstration where no sample of a task was kept
    # At most this share of the trained traces answers a no-tool question (the rest are dropped,
    # last first), so that direct answers do not teach the model to skip tools. None: no cap.
    direct_share: float | None = None
    eval_n: int = 1  # samples per held-out task
    eval_temperature: float = 0.0
    max_steps: int = 6
    max_tokens: int = 384  # tokens per model turn
    token_budget: int = 2048  # completion tokens per episode
    n_ctx: int = 4096
    parallel: int = 1
    threads: int | None = None
    start_timeout: float = 30.0  # seconds each MCP server may take to start (raise it under load)
    seed: int = 0
    rewards: str = "all"
    # training (sandbox.train)
    chat_template: Path | None = None  # a training template with {% generation %} markers
    steps: int | None = None
    epochs: float = 1.0
    learning_rate: float = 2e-4
    rank: int = 16
    alpha: float = 32.0
    batch_size: int = 1
    gradient_accumulation: int = 1
    # A training checkpoint (adapter, optimizer, scheduler, RNG) every this many steps, and on Ctrl-C:
    # an interrupted train stage continues from the newest one.
    save_steps: int = 10
    resume: bool = False
    overwrite: bool = False


def _problems(options: ImproveOptions) -> list[tuple[bool, str]]:
    return [
        (options.rounds < 1, "--rounds must be at least 1"),
        (options.n < 1 or options.eval_n < 1, "--n and --eval-n must be at least 1"),
        (options.temperature < 0 or options.eval_temperature < 0, "temperatures must be 0 or more"),
        (options.max_steps < 1, "--max-steps must be at least 1"),
        (options.parallel < 1, "--parallel must be at least 1"),
        (options.threads is not None and options.threads < 1, "--threads must be at least 1"),
        (options.steps is not None and options.steps < 1, "--steps must be at least 1"),
        (options.save_steps < 1, "--save-steps must be at least 1"),
        (not options.epochs > 0, "--epochs must be positive"),
        (options.resume and options.overwrite, "--resume and --overwrite exclude each other"),
        (not options.start_timeout > 0, "--start-timeout must be positive"),
        (
            options.direct_share is not None and not 0 <= options.direct_share < 1,
            "--direct-share must be in [0, 1)",
        ),
        (options.train_n < 1 or options.heldout_n < 1, "--train-n and --heldout-n must be at least 1"),
        (
            not is_format_choice(options.turn_format),
            f"--format must be one of {', '.join(FORMAT_CHOICES)}, not {options.turn_format!r}",
        ),
    ]


def check_settings(options: ImproveOptions) -> None:
    """The settings alone, before any file is read or made: one line naming the first to fix."""
    for failed, message in _problems(options):
        if failed:
            raise ImproveError(message)


def check_options(options: ImproveOptions) -> tuple[list[Task], list[Task]]:
    """The settings and both task files, checked: the train and held-out tasks, or one line saying
    what to fix (a missing file, a held-out id or prompt that is also a train task's, bad numbers)."""
    check_settings(options)
    if options.tasks is None or options.heldout is None:
        raise ImproveError("pass --tasks and --heldout, or --family")
    for flag, path in (
        ("--tasks", options.tasks),
        ("--heldout", options.heldout),
        ("--servers", options.servers),
    ):
        if not path.is_file():
            raise ImproveError(f"{flag} {path}: no such file")
    train, heldout = read_tasks(options.tasks), read_tasks(options.heldout)
    if not train or not heldout:
        raise ImproveError(f"{options.tasks if not train else options.heldout}: no tasks")
    shared = sorted({t.id for t in train} & {t.id for t in heldout})
    if shared:
        raise ImproveError(
            f"{len(shared)} held-out task id(s) are also train tasks ({', '.join(shared[:3])}"
            f"{', ...' if len(shared) > 3 else ''}): held-out tasks must be unseen"
        )
    prompts = {t.prompt for t in train}
    same = sorted(t.id for t in heldout if t.prompt in prompts)
    if same:
        raise ImproveError(
            f"held-out task(s) {', '.join(same[:3])} ask a train task's prompt: held-out tasks must be unseen"
        )
    return train, heldout


TASKS_FOLDER = "tasks"


def family_tasks(options: ImproveOptions) -> ImproveOptions:
    """``options`` with ``tasks`` and ``heldout`` made from ``family`` (train seed 1, held-out seed 2:
    the same files on every run) into OUT/tasks/, or ``options`` as given when it names no family."""
    if options.family is None:
        return options
    if options.tasks is not None or options.heldout is not None:
        raise ImproveError("--family makes the tasks: leave out --tasks and --heldout")
    check_settings(options)
    if options.out.exists() and not options.out.is_dir():
        raise ImproveError(f"-o {options.out} is a file; an improve run is a folder")
    from sandbox.tasks import ALL, FAMILIES, make_tasks, write_tasks

    names = [name.strip() for name in options.family.split(",") if name.strip()]
    unknown = [name for name in names if name != ALL and name not in FAMILIES]
    if not names or unknown:
        raise ImproveError(
            f"--family {options.family!r}: unknown family; pick from {', '.join((ALL, *FAMILIES))}"
        )
    folder = options.out / TASKS_FOLDER
    files = {"train": folder / "train.jsonl", "heldout": folder / "heldout.jsonl"}
    for split, count, seed in (("train", options.train_n, 1), ("heldout", options.heldout_n, 2)):
        tasks = [
            task for name in names for task in make_tasks(name, count, seed, split, servers=options.servers)
        ]
        write_tasks(tasks, files[split], overwrite=True)
    return replace(options, tasks=files["train"], heldout=files["heldout"])
