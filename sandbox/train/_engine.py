"""``train(options) -> TrainResult``: LoRA on the GGUF's own weights, out as a llama.cpp adapter.

1. The run folder is opened (``_folder``) and the rows are read (``_data``): an export's ``sft`` or
   ``dpo`` rows as written, or a run folder's traces turned into them.
2. The base model comes from its GGUF (``_base``); the training chat template (``_templates``) must
   render every row byte for byte as the model's own does, and a template that drops tool calls
   refuses rows that keep calls only in ``tool_calls``.
3. peft puts LoRA on the attention and MLP projections; TRL's ``SFTTrainer`` takes the loss on the
   assistant's tokens only (``assistant_only_loss``: the seed's next-token loss restricted to what the
   model wrote, its end-of-turn token included), ``DPOTrainer`` trains on pairs with the adapter-free
   model as reference. ``max_length`` is the longest row, so no row is cut.
4. Each step reports a :class:`TrainProgress` (loss, tokens/s) to ``progress``. Every ``save_steps``,
   at the last step and on a first Ctrl-C (SIGINT) the Trainer writes its own checkpoint (peft
   adapter, optimizer, scheduler, RNG and trainer state), which is moved whole into the run folder
   with the adapter GGUF beside it (``_folder``); the interrupted run then ends with its adapter
   saved, a second Ctrl-C stops at once. ``resume`` continues from the newest checkpoint through
   the Trainer's ``resume_from_checkpoint`` (the rows already trained on are skipped, so the run
   ends at the same step, on the same rows, as one never stopped), after checking that nothing that
   changes what is trained differs from the run's ``config.json``.
5. The adapter is written as a llama.cpp LoRA GGUF (``_gguf``) and as a peft folder; ``merge`` also
   writes the full model as F16 or Q8_0.

CPU by default here, CUDA when torch sees a GPU; bf16 where the hardware has it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from sandbox.models import check_model_file, default_model_path, file_sha256
from sandbox.records import code_version
from sandbox.train._base import Device, Placement, Precision, load_base, placement
from sandbox.train._data import Method, TrainData, read_data, write_rows
from sandbox.train._errors import CheckpointError, ResumeRefused, TrainDataError
from sandbox.train._folder import (
    CONFIG,
    METRICS,
    RESULT,
    STAGING,
    TrainFolder,
    write_atomically,
    write_text,
)
from sandbox.train._gguf import MergeType, base_model_shape, lora_pairs, merge, write_adapter
from sandbox.train._stack import require_stack, stack_versions
from sandbox.train._templates import check_calls_rendered, check_identical, training_template

# LoRA on every projection of attention and MLP (Llama-family names, as peft sees them).
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_FILE = "adapter.gguf"
PEFT_FOLDER = "adapter"


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``sandbox train`` is told. ``steps`` (optimizer steps) wins over ``epochs``."""

    data: Path  # a run folder, an export folder, or a JSONL/Parquet file of export rows
    out: Path  # the training run folder
    method: Method | None = None  # None: from the rows' shape (a run folder: sft)
    model: Path | None = None  # the base GGUF (default: the embedded SmolLM2-135M)
    min_reward: float | None = None  # a run folder's sft traces: keep those whose total reward reaches it
    steps: int | None = None
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 1
    gradient_accumulation: int = 1
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    device: Device = "auto"
    precision: Precision = "auto"
    gradient_checkpointing: bool = False
    max_length: int | None = None  # None: the longest row
    save_steps: int = 50
    keep_checkpoints: int = 2
    merge: MergeType | None = None
    beta: float = 0.1  # DPO's temperature
    seed: int = 0
    chat_template: Path | None = None
    overwrite: bool = False
    resume: bool = False  # continue the run in ``out`` from its newest checkpoint


# The options that change what is trained: a resume refuses to change them (with the data, the
# base model and the chat template, compared by sha256, and the precision the run trained in).
TRAINED = (
    "min_reward",
    "steps",
    "epochs",
    "learning_rate",
    "batch_size",
    "gradient_accumulation",
    "rank",
    "alpha",
    "dropout",
    "targets",
    "max_length",
    "beta",
    "seed",
)


@dataclass(frozen=True)
class TrainProgress:
    """One report of a training run: a phase, and during training the step's loss and speed."""

    phase: Literal["loading", "training", "saving", "done"]
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    tokens: int = 0  # tokens trained on so far (padding excluded)
    tokens_per_second: float = 0.0
    seconds: float = 0.0  # since training started
    message: str = ""


@dataclass(frozen=True)
class TrainResult:
    """What a training run did and where its files are."""

    out: Path
    method: Method
    adapter: Path
    merged: Path | None
    steps: int
    total_steps: int
    interrupted: bool
    rows: int
    tokens: int
    seconds: float
    tokens_per_second: float
    first_loss: float | None
    last_loss: float | None
    max_length: int
    device: str
    precision: str
    peak_rss_mb: float
    checkpoints: tuple[Path, ...] = ()
    resumed_from: int | None = None  # the checkpoint's step this run continued from


ProgressFn = Callable[[TrainProgress], None]


def check_options(options: TrainOptions) -> None:
    problems = [
        (options.steps is not None and options.steps < 1, "--steps must be at least 1"),
        (not options.epochs > 0, "--epochs must be positive"),
        (not options.learning_rate > 0, "--learning-rate must be positive"),
        (
            options.batch_size < 1 or options.gradient_accumulation < 1,
            "--batch-size and --grad-accum must be 1 or more",
        ),
        (options.rank < 1 or not options.alpha > 0, "--rank must be 1 or more and --alpha positive"),
        (not 0 <= options.dropout < 1, "--dropout must be in [0, 1)"),
        (
            options.save_steps < 1 or options.keep_checkpoints < 1,
            "--save-steps and --keep-checkpoints must be 1 or more",
        ),
        (options.max_length is not None and options.max_length < 16, "--max-length must be at least 16"),
        (options.merge not in (None, "f16", "q8_0"), f"--merge must be f16 or q8_0, not {options.merge!r}"),
        (options.method not in (None, "sft", "dpo"), f"--method must be sft or dpo, not {options.method!r}"),
        (options.resume and options.overwrite, "--resume and --overwrite exclude each other"),
        (
            options.device not in ("auto", "cpu", "cuda"),
            f"--device must be auto, cpu or cuda, not {options.device!r}",
        ),
        (
            options.precision not in ("auto", "bf16", "fp32"),
            f"--precision must be auto, bf16 or fp32, not {options.precision!r}",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise TrainDataError(message)


def train(options: TrainOptions, progress: ProgressFn | None = None) -> TrainResult:
    """Train a LoRA adapter on ``options.data`` into the run folder ``options.out`` (see the module doc).

    Everything a person can get wrong (options, the stack, the model file, the rows, the template)
    is checked before a training step runs, each with one line saying what to fix.
    """
    report = progress or (lambda _event: None)
    check_options(options)
    require_stack()
    base = check_model_file(options.model if options.model is not None else default_model_path())
    folder = TrainFolder(options.out, keep=options.keep_checkpoints)
    folder.open(overwrite=options.overwrite, resume=options.resume)
    try:
        data = read_data(
            options.data, options.method, options.out, min_reward=options.min_reward, write=not options.resume
        )
        where = placement(options.device, options.precision)
        before = _check_resume(options, base, data, where) if options.resume else None
        if before is not None and data.note:
            write_rows(data)  # the same rows (same sha256); a kill may have cut the file
        report(TrainProgress("loading", message=f"loading {base.name} on {where.device}"))
        run = _Run(options, base, data, where, folder, report, before=before)
        return run.train()
    finally:
        folder.close()


def _check_resume(options: TrainOptions, base: Path, data: TrainData, where: Placement) -> dict[str, Any]:
    """The run's ``config.json``, once nothing that changes what is trained differs from it; else
    one line naming each difference. The chat template is compared (by sha256) once it is read."""
    try:
        config = json.loads((options.out / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResumeRefused(
            f"{options.out / CONFIG} cannot be read ({exc}); --overwrite to train again"
        ) from exc
    before = config.get("options", {})
    defaults = TrainOptions(data=options.data, out=options.out)
    changed = [
        name
        for name in TRAINED
        if _plain(getattr(options, name)) != _plain(before.get(name, getattr(defaults, name)))
    ]
    changed += [
        name
        for name, now, then in (
            ("data", data.sha256, config.get("data", {}).get("sha256")),
            ("method", data.method, config.get("method")),
            ("model", file_sha256(base), config.get("model", {}).get("sha256")),
            ("precision", where.precision, config.get("precision")),
        )
        if now != then
    ]
    if changed:
        raise ResumeRefused(
            f"{options.out} was trained with other settings ({', '.join(changed)}); --resume continues "
            "the same run: pass the same options, or --overwrite to train again"
        )
    return config


def _plain(value: Any) -> Any:
    """An option as ``config.json`` holds it."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class _Run:
    options: TrainOptions
    base: Path
    data: TrainData
    where: Placement
    folder: TrainFolder
    report: ProgressFn
    before: dict[str, Any] | None = None  # the config.json of the run a resume continues
    metrics: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    tokens_before: int = 0  # tokens trained on before the checkpoint a resume starts from
    saving: int | None = None  # the step whose checkpoint the Trainer is writing

    def train(self) -> TrainResult:
        import torch

        torch.manual_seed(self.options.seed)
        model, tokenizer = load_base(self.base)
        model_template = str(tokenizer.chat_template or "")
        template = training_template(model_template, self.options.chat_template)
        tokenizer.chat_template = template
        template_sha256 = hashlib.sha256(template.encode("utf-8")).hexdigest()
        if self.before is not None and self.before.get("chat_template_sha256") != template_sha256:
            raise ResumeRefused(
                f"{self.folder.path} was trained with another chat template; --resume continues the "
                "same run: pass the same options, or --overwrite to train again"
            )
        dataset = _dataset(self.data)
        conversations = list(_conversations(self.data, dataset))
        check_identical(tokenizer, conversations, model_template, template)
        check_calls_rendered(tokenizer, conversations, template)
        max_length = self.options.max_length or _longest(tokenizer, conversations)
        if self.before is None:
            self._write_config(template, max_length)
        trainer = self._trainer(_with_lora(model, self.options), tokenizer, dataset, max_length)
        checkpoint = self._resume_point()
        self.started = time.perf_counter()
        try:
            with _first_interrupt_stops(self.stop):
                trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        except Exception as exc:
            if self.saving is None or isinstance(exc, CheckpointError):
                raise
            raise self._save_failed(exc) from exc
        steps = int(trainer.state.global_step)
        total = int(trainer.state.max_steps or 0) or steps  # from the epochs when no steps were given
        seconds = time.perf_counter() - self.started
        self.report(TrainProgress("saving", steps, total, message="writing the adapter"))
        adapter, merged = self._save_final(trainer.model)
        resumed = self.folder.step_of(checkpoint) if checkpoint else None
        return self._result(trainer, adapter, merged, steps, total, seconds, max_length, resumed)

    def _resume_point(self) -> Path | None:
        """The checkpoint a resume continues from (its metrics and token count taken back), or None."""
        if self.before is None:
            return None
        checkpoint = self.folder.resume_point()
        if checkpoint is None:
            self.report(TrainProgress("loading", message="resuming: no checkpoint yet, from step 0"))
            return None
        step = self.folder.step_of(checkpoint)
        lines = (checkpoint / METRICS).read_text(encoding="utf-8").splitlines()
        self.metrics = [json.loads(line) for line in lines if line.strip()]
        self.metrics = [line for line in self.metrics if line["step"] <= step]
        self.tokens_before = self.metrics[-1]["tokens"] if self.metrics else 0
        self.report(TrainProgress("loading", step, message=f"resuming from {checkpoint} (step {step})"))
        return checkpoint

    def _save_failed(self, exc: Exception) -> CheckpointError:
        """The one line of a checkpoint the Trainer could not write (a full disk): the earlier ones
        are whole, and its half-written files are removed."""
        shutil.rmtree(self.folder.path / STAGING, ignore_errors=True)
        reason: BaseException | None = exc
        while reason is not None and not isinstance(reason, OSError):
            reason = reason.__cause__ or reason.__context__
        text = (reason.strerror if isinstance(reason, OSError) else None) or str(exc).strip().splitlines()[-1]
        return CheckpointError(
            f"could not write checkpoint step-{self.saving} in {self.folder.path}: {text}; "
            "the earlier checkpoints are intact (--resume continues from the newest)"
        )

    # -- the trainer -----------------------------------------------------------------------------

    def _trainer(self, model: Any, tokenizer: Any, dataset: Any, max_length: int) -> Any:
        from transformers import TrainerCallback

        run = self

        class Hooks(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
                if logs and "loss" in logs:
                    run.on_loss(state, float(logs["loss"]))

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                run.on_step(state, control)

            def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                run.on_save(state, kwargs["model"])

        common = self._common_args(max_length)
        args: Any
        trainer: Any
        if self.data.method == "dpo":
            from trl import DPOConfig, DPOTrainer

            args = DPOConfig(**common, beta=self.options.beta)
            trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        else:
            from trl import SFTConfig, SFTTrainer

            args = SFTConfig(**common, assistant_only_loss=True, packing=False)
            trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.add_callback(Hooks())
        # The Trainer saves the adapter with peft's defaults, which would look the base model up
        # on the Hub to decide about the embeddings: they are never trained here.
        trainer.model.save_pretrained = partial(trainer.model.save_pretrained, save_embedding_layers=False)
        return trainer

    def _common_args(self, max_length: int) -> dict[str, Any]:
        options = self.options
        return {
            "output_dir": str(self.folder.path / ".trainer"),
            "max_steps": options.steps if options.steps is not None else -1,
            "num_train_epochs": options.epochs,
            "per_device_train_batch_size": options.batch_size,
            "gradient_accumulation_steps": options.gradient_accumulation,
            "learning_rate": options.learning_rate,
            "lr_scheduler_type": "constant",
            "warmup_steps": 0,
            "max_length": max_length,
            "bf16": self.where.precision == "bf16",
            "use_cpu": self.where.device == "cpu",
            "activation_checkpointing": options.gradient_checkpointing,
            "logging_steps": 1,
            # The Trainer's own checkpoints, written into a staging folder and moved whole into
            # checkpoints/ (on_save); the run folder keeps the newest (_folder), the Trainer none.
            "save_strategy": "steps",
            "save_steps": options.save_steps,
            "save_total_limit": None,
            "report_to": "none",
            "disable_tqdm": True,
            "include_num_input_tokens_seen": "non_padding",
            "seed": options.seed,
            "data_seed": options.seed,
            "dataloader_num_workers": 0,
        }

    # -- callbacks -------------------------------------------------------------------------------

    def on_loss(self, state: Any, loss: float) -> None:
        seconds = time.perf_counter() - self.started
        tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        event = TrainProgress(
            "training",
            int(state.global_step),
            int(state.max_steps),
            loss,
            tokens,
            (tokens - self.tokens_before) / seconds if seconds > 0 else 0.0,
            seconds,
        )
        self.metrics.append({k: v for k, v in asdict(event).items() if k not in ("phase", "message")})
        self.report(event)

    def on_step(self, state: Any, control: Any) -> None:
        if self.stop.is_set():  # Ctrl-C: a checkpoint of this step, then the end
            control.should_save = True
            control.should_training_stop = True
        self.saving = int(state.global_step) if control.should_save else None

    def on_save(self, state: Any, model: Any) -> None:
        """The Trainer's checkpoint of this step is complete in the staging folder: moved, with the
        adapter GGUF and the metrics so far, into ``checkpoints/step-N`` as one folder."""
        step = int(state.global_step)
        staged = self.folder.path / STAGING / f"checkpoint-{step}"

        def fill(folder: Path) -> None:
            for child in staged.iterdir():
                os.replace(child, folder / child.name)
            self._write_adapter(model, folder)
            lines = "".join(json.dumps(line) + "\n" for line in self.metrics if line["step"] <= step)
            (folder / METRICS).write_text(lines, encoding="utf-8")

        self.folder.save_checkpoint(step, fill)
        shutil.rmtree(staged, ignore_errors=True)
        self.saving = None

    # -- files -----------------------------------------------------------------------------------

    def _write_config(self, template: str, max_length: int) -> None:
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.options).items()}
        config = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "method": self.data.method,
            "options": options,
            "model": {"path": str(self.base), "sha256": file_sha256(self.base)},
            "data": {
                "source": str(self.data.source),
                "path": str(self.data.path),
                "sha256": self.data.sha256,
                "rows": len(self.data.rows),
                "note": self.data.note,
            },
            "chat_template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
            "max_length": max_length,
            "device": self.where.device,
            "precision": self.where.precision,
            "stack": stack_versions(),
        }
        write_text(self.folder.path / CONFIG, json.dumps(config, indent=2) + "\n")

    def _write_adapter(self, model: Any, folder: Path) -> None:
        """``adapter.gguf`` for llama.cpp in ``folder`` (the peft adapter is the Trainer's, beside it)."""
        from peft import get_peft_model_state_dict

        pairs = lora_pairs(
            get_peft_model_state_dict(model, save_embedding_layers=False), base_model_shape(self.base)
        )
        write_adapter(folder / ADAPTER_FILE, pairs, base_model_shape(self.base), self.options.alpha)

    def _save_final(self, model: Any) -> tuple[Path, Path | None]:
        from peft import get_peft_model_state_dict

        out = self.folder.path
        shape = base_model_shape(self.base)
        pairs = lora_pairs(get_peft_model_state_dict(model, save_embedding_layers=False), shape)
        adapter = out / ADAPTER_FILE
        write_atomically(
            adapter, lambda temporary: write_adapter(temporary, pairs, shape, self.options.alpha)
        )
        write_atomically(
            out / PEFT_FOLDER, lambda temporary: model.save_pretrained(temporary, save_embedding_layers=False)
        )
        merged = None
        if self.options.merge is not None:
            merged = out / f"model-{self.options.merge}.gguf"
            kind = self.options.merge
            self.report(TrainProgress("saving", message=f"merging into {merged.name}"))
            write_atomically(
                merged, lambda temporary: merge(self.base, pairs, self.options.alpha, temporary, kind)
            )
        write_text(out / METRICS, "".join(json.dumps(line) + "\n" for line in self.metrics))
        shutil.rmtree(out / STAGING, ignore_errors=True)
        return adapter, merged

    def _result(
        self,
        trainer: Any,
        adapter: Path,
        merged: Path | None,
        steps: int,
        total: int,
        seconds: float,
        max_length: int,
        resumed_from: int | None,
    ) -> TrainResult:
        losses = [line["loss"] for line in self.metrics if line["loss"] is not None]
        tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
        trained_now = tokens - self.tokens_before
        result = TrainResult(
            out=self.folder.path,
            method=self.data.method,
            adapter=adapter,
            merged=merged,
            steps=steps,
            total_steps=total,
            interrupted=self.stop.is_set() and steps < total,  # a Ctrl-C after the last step stops nothing
            rows=len(self.data.rows),
            tokens=tokens,
            seconds=seconds,
            tokens_per_second=trained_now / seconds if seconds > 0 else 0.0,
            first_loss=losses[0] if losses else None,
            last_loss=losses[-1] if losses else None,
            max_length=max_length,
            device=self.where.device,
            precision=self.where.precision,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            checkpoints=tuple(self.folder.checkpoints),
            resumed_from=resumed_from,
        )
        summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
        summary["checkpoints"] = [str(path) for path in result.checkpoints]
        write_text(self.folder.path / RESULT, json.dumps(summary, indent=2) + "\n")
        self.report(
            TrainProgress("done", steps, total, result.last_loss, tokens, result.tokens_per_second, seconds)
        )
        return result


# --------------------------------------------------------------------------- helpers


def _with_lora(model: Any, options: TrainOptions) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha,  # type: ignore[arg-type]  # peft scales by alpha / r; a float works
        lora_dropout=options.dropout,
        target_modules=list(options.targets),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft reads an attribute transformers 5 renamed
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def _dataset(data: TrainData) -> Any:
    """The rows as a ``datasets.Dataset`` TRL reads: call arguments stay free-form JSON (Arrow would
    otherwise merge every call's keys into one struct) and the tool list is a JSON string."""
    from datasets import Dataset, Features, Json, List, Value

    call = {
        "id": Value("string"),
        "type": Value("string"),
        "function": {"name": Value("string"), "arguments": Json()},
    }
    message = {
        "role": Value("string"),
        "content": Value("string"),
        "name": Value("string"),
        "tool_call_id": Value("string"),
        "tool_calls": List(call),
    }
    columns = ("messages",) if data.method == "sft" else ("prompt", "chosen", "rejected")
    features = Features({**{column: List(message) for column in columns}, "tools": Value("string")})
    rows = [
        {**{column: row[column] for column in columns}, "tools": json.dumps(row.get("tools") or [])}
        for row in data.rows
    ]
    return Dataset.from_list(rows, features=features)


def _conversations(data: TrainData, dataset: Any) -> Iterator[tuple[str, list[dict[str, Any]], Any]]:
    """What TRL renders: each row of the dataset (with its nulls), by file and row."""
    for number, row in enumerate(dataset, start=1):
        where = f"{data.path} row {number}"
        if data.method == "sft":
            yield where, row["messages"], row["tools"]
        else:
            yield where, row["prompt"] + row["chosen"], row["tools"]
            yield where, row["prompt"] + row["rejected"], row["tools"]


def _longest(tokenizer: Any, conversations: list[tuple[str, list[dict[str, Any]], Any]]) -> int:
    """Tokens of the longest rendered conversation: TRL's default of 1,024 would cut most rows."""
    lengths = [
        len(
            tokenizer.apply_chat_template(messages, tools=json.loads(tools), tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for _, messages, tools in conversations
    ]
    return max(lengths)


@contextmanager
def _first_interrupt_stops(stop: threading.Event) -> Iterator[None]:
    """A first SIGINT asks the trainer to stop after the current step (and save); a second one
    interrupts at once. Only the main thread can take signals; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
