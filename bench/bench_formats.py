"""Turn formats on the seed suite with the embedded model (issue 15, item 4).

Per format: tool calls made, the share of them that were valid (a schema-valid call of an existing
tool, read from the model's own syntax), mean outcome reward, and the system-prompt tokens: the
tokens of the rendered prompt up to an empty user message, with the seed servers' tools, as each format
puts them (the tag format in its system prompt, the native ones through the chat template's ``tools``).

The embedded SmolLM2 template has no tools branch, so ``tags`` runs on it as it is; the native
formats run the same weights with another family's template set in a copy of the GGUF
(``sandbox.models.write_chat_template``, templates from ``tests/fixtures/templates``).

Usage: python bench/bench_formats.py [--tasks N] [--max-steps S] [--modes constrained,free]
           [--formats tags,hermes] [--threads T]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sandbox, not an installed one

from sandbox.hub import ToolHub, load_config  # noqa: E402
from sandbox.models import LlamaModel, default_model_path, write_chat_template  # noqa: E402
from sandbox.records import Message, read_tasks, read_traces  # noqa: E402
from sandbox.runs import RunSpec, generate  # noqa: E402
from sandbox.turns import Format  # noqa: E402

SEED = ROOT / "sandbox" / "data" / "seed.jsonl"
SERVERS = ROOT / "servers" / "mcp.json"
TEMPLATES = ROOT / "tests" / "fixtures" / "templates"
FAMILY_TEMPLATE = {
    "hermes": "hermes",
    "llama3": "llama3",
    "mistral": "mistral",
    "functiongemma": "functiongemma",
}


def model_file(name: str, folder: Path) -> Path:
    if name == "tags":
        return default_model_path()
    out = folder / f"{name}.gguf"
    if not out.exists():
        write_chat_template(
            default_model_path(), out, (TEMPLATES / f"{FAMILY_TEMPLATE[name]}.jinja").read_text()
        )
    return out


def seed_tools() -> list:
    servers = sorted({s for task in read_tasks(SEED) for s in task.servers})
    config = load_config(SERVERS)

    async def listing() -> list:
        async with ToolHub(config) as hub:
            return hub.tools(servers)

    return anyio.run(listing)


def system_tokens(path: Path, fmt: Format, tools: list) -> int:
    model = LlamaModel(path, n_ctx=8192, n_threads=1)
    try:
        messages = [
            Message(role="system", content=fmt.system_prompt(tools)),
            Message(role="user", content=""),
        ]
        return len(model.tokenize(model.render(messages, tools=fmt.template_tools(tools))))
    finally:
        model.close()


def run(path: Path, name: str, mode: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    tasks = read_tasks(SEED)[: args.tasks]
    spec = RunSpec(
        tasks=SEED,
        servers=SERVERS,
        out=out,
        layout="file",
        n=1,
        model=path,
        mode=mode,  # type: ignore[arg-type]
        turn_format=name,
        rewards="outcome,tool_syntax",
        temperature=0.0,
        max_tokens=256,
        token_budget=1024,
        max_steps=args.max_steps,
        threads=args.threads,
        only=tuple(task.id for task in tasks),
        overwrite=True,
    )
    started = time.perf_counter()
    anyio.run(generate, spec)
    traces = read_traces(out)
    calls = [step for trace in traces for step in trace.steps if step.action != "answer"]
    valid = [
        step
        for step in calls
        if step.action == "tool_call" and step.result is not None and not step.result.is_error
    ]
    outcomes = [trace.rewards["outcome"].value for trace in traces if "outcome" in trace.rewards]
    return {
        "episodes": len(traces),
        "calls": len(calls),
        "valid": len(valid) / len(calls) if calls else 0.0,
        "answered": sum(trace.final_answer is not None for trace in traces),
        "outcome": statistics.mean(v for v in outcomes if v is not None) if outcomes else 0.0,
        "seconds": time.perf_counter() - started,
        "format": traces[0].format if traces else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=17)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--modes", default="constrained")
    parser.add_argument("--formats", default="tags,hermes")
    parser.add_argument("--prompt-formats", default="tags,hermes,llama3,mistral,functiongemma")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"{platform.machine()}, {platform.python_version()}, embedded SmolLM2-135M-Instruct Q4_1")
    tools = seed_tools()
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        folder = Path(tmp)
        print(f"system-prompt tokens, the seed servers' {len(tools)} tools:")
        for name in args.prompt_formats.split(","):
            fmt = Format() if name == "tags" else Format(name, think=False)  # type: ignore[arg-type]
            print(f"  {name:8} {system_tokens(model_file(name, folder), fmt, tools):6}")
        print("format    mode         episodes  calls  valid  answered  outcome  seconds")
        for name in args.formats.split(","):
            for mode in args.modes.split(","):
                row = run(model_file(name, folder), name, mode, args, folder / f"{name}-{mode}.jsonl")
                print(
                    f"{row['format']:9} {mode:12} {row['episodes']:8} {row['calls']:6} {row['valid']:6.2f}"
                    f" {row['answered']:9} {row['outcome']:8.2f} {row['seconds']:8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
