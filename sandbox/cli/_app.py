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
sandbox tasks --family weather|music|calculator|files|direct|all --n N --seed S --split train|heldout
              -o T.jsonl [--servers servers/mcp.json] [--overwrite]
sandbox gauntlet [--tasks seed --servers servers/mcp.json] [--rewards ...]
sandbox demos --tasks T.jsonl -o RUN_DIR [--servers servers/mcp.json]
sandbox view  traces.jsonl|RUN_DIR [-o report.html] [--reward NAME]
sandbox new-tool NAME [--dir DIR]
sandbox check-tool CONFIG|URL [--server NAME] [--examples N] [--timeout S]
sandbox quantize --type q4_0|iq4_nl|q8_0|... -o OUT.gguf [--model M.gguf] [--overwrite]
sandbox train RUN_DIR|EXPORT|rows.jsonl -o TRAIN_DIR [--method sft|dpo] [--steps N] [--merge f16|q8_0]
sandbox improve --tasks TRAIN.jsonl --heldout HELDOUT.jsonl -o DIR [--rounds R] [--n N] [--threshold X]
                [--steps S | --epochs E] [--resume | --overwrite]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from sandbox.records import SandboxError

if TYPE_CHECKING:
    from sandbox.runs import HttpModelOptions, JudgeServer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Piped output (logs, CI) gets full-width tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

BUNDLED_TASKS = {"seed": Path(__file__).resolve().parent.parent / "data" / "seed.jsonl"}


def main() -> None:
    try:
        app()
    except SandboxError as exc:  # a person must fix these: one line, exit 2
        _error_line(str(exc))
    except OSError as exc:  # the system refused a file (read-only, full disk, gone): the same line
        where = f"{exc.filename}: " if exc.filename else ""
        _error_line(f"{where}{exc.strerror or exc}")


def _error_line(text: str) -> None:
    # The message is text: brackets in it ("agent-sandbox[train]") are not rich markup.
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(2)


# Options that several commands share, written once.
ModelFile = Annotated[Path | None, typer.Option(help="GGUF model file (default: embedded SmolLM2-135M).")]
RewardNames = Annotated[str, typer.Option(help="Comma-separated reward names, or 'all'.")]
Threads = Annotated[
    int | None,
    typer.Option(help="llama.cpp threads (default: every core; on a busy machine fewer can be faster)."),
]
JudgeModel = Annotated[
    Path | None,
    typer.Option(help="GGUF model for the judge PRM's rewards (cot_judge, process_judge), on --threads."),
]
JudgeBaseUrl = Annotated[
    str | None,
    typer.Option(
        help="OpenAI-compatible server of the judge model instead of --judge (it must return logprobs)."
    ),
]
JudgeApiModel = Annotated[
    str | None, typer.Option(help="The judge's model name on its server (default: the first it lists).")
]
JudgeApiKeyEnv = Annotated[
    str | None, typer.Option(help="Environment variable that holds the judge server's API key.")
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
LoraFile = Annotated[
    Path | None, typer.Option("--lora", help="LoRA adapter GGUF (from `sandbox train`) on the model.")
]


def http_options(
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
    from sandbox.runs import HttpModelOptions

    return HttpModelOptions(base_url, api_model, api_key_env, api_tool_calls, api_grammar, api_concurrency)


def judge_server(base_url: str | None, api_model: str | None, api_key_env: str | None) -> JudgeServer | None:
    if base_url is None and (api_model is not None or api_key_env is not None):
        raise SandboxError("--judge-api-model and --judge-api-key-env go with --judge-base-url")
    if base_url is None:
        return None
    from sandbox.runs import JudgeServer

    return JudgeServer(base_url, api_model, api_key_env)


def task_path(value: str) -> Path:
    return BUNDLED_TASKS.get(value, Path(value))
