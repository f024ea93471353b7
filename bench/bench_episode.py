"""Episode benchmark, in one run on one machine:

P1  episode wall time / time inside the model          goal <= 1.05
P2  prompt tokens evaluated / new prompt tokens        goal <= 1.1   (turns after the first)
P4  tokens/s with the constrained grammar / without    goal >= 0.8

Usage: python bench/bench_episode.py [--tasks N] [--repeats R]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import anyio

from sandbox.episodes import Limits, grammar_for, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import LlamaModel, ModelRequest
from sandbox.records import Message, Sampling, read_tasks
from sandbox.turns import system_prompt

ROOT = Path(__file__).resolve().parents[1]


async def episodes(model: LlamaModel, count: int) -> tuple[float, float, float]:
    tasks = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")[:count]
    config = load_config(ROOT / "servers" / "mcp.json")
    wall = inside = 0.0
    evaluated = new = 0
    async with ToolHub(config) as hub:
        for task in tasks:
            trace = await run_episode(
                task, model, hub, Limits(max_steps=4), sampling=Sampling(temperature=0.0, max_tokens=256)
            )
            wall += trace.wall_seconds
            inside += trace.model_seconds
            for step in trace.steps[1:]:
                evaluated += step.usage.prompt_tokens_evaluated
                new += step.usage.new_prompt_tokens
    return wall / inside, evaluated / max(new, 1), inside


def grammar_speed(model: LlamaModel, repeats: int) -> tuple[float, float]:
    """Generation tokens/s for the same first turns with and without the grammar (prompt cached first)."""
    tasks = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")
    config = load_config(ROOT / "servers" / "mcp.json")

    async def tool_sets() -> dict[str, list]:
        async with ToolHub(config) as hub:
            return {name: hub.tools([name]) for name in config}

    tools_by_server = anyio.run(tool_sets)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for index, task in enumerate(tasks[:repeats]):
        tools = [t for s in task.servers for t in tools_by_server[s]]
        messages = [
            Message(role="system", content=system_prompt(tools)),
            Message(role="user", content=task.prompt),
        ]
        grammar = grammar_for(tools, max_tokens=160)  # as a run builds it for the turn's limit
        model.complete(ModelRequest(messages, Sampling(max_tokens=1)))  # cache the prompt
        for constrained in (False, True):
            request = ModelRequest(
                messages,
                Sampling(temperature=0.8, max_tokens=160, seed=index),
                grammar=grammar if constrained else None,
            )
            started = time.perf_counter()
            response = model.complete(request)
            seconds = time.perf_counter() - started
            rates[constrained].append(response.usage.completion_tokens / seconds)
    return statistics.mean(rates[True]), statistics.mean(rates[False])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    model = LlamaModel(n_ctx=4096)
    p1, p2, model_seconds = anyio.run(episodes, model, args.tasks)
    with_grammar, without = grammar_speed(model, args.repeats)
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, model {model.info.name}, "
        f"{model.info.backend}"
    )
    print(
        f"P1 episode wall / model time      {p1:.3f}   (goal <= 1.05; {args.tasks} seed episodes, "
        f"{model_seconds:.1f} s in the model)"
    )
    print(f"P2 prompt evaluated / new tokens  {p2:.3f}   (goal <= 1.1; turns after the first)")
    print(
        f"P4 grammar tok/s / free tok/s     {with_grammar / without:.3f}   (goal >= 0.8; "
        f"{with_grammar:.0f} vs {without:.0f} tok/s)"
    )


if __name__ == "__main__":
    main()
