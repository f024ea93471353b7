"""Reward benchmark P6: the rule rewards score at least 10,000 traces per second on one core.

The traces are real: every trace of ``runs/seed.jsonl`` (written by ``make run``), repeated until
there are ``--traces`` of them, each with its own id and each parsed from its own JSON line, so no
two share an object (as when ``sandbox score`` reads a file). Each is scored with every rule reward
(``outcome``, ``tool_syntax``, ``cot``, ``process``) through :func:`rewards.score_trace`, as
``sandbox score`` does. P6 times the scoring alone; a second figure adds reading each trace from its
JSON line and writing it back, the rest of what ``sandbox score`` does per trace. One process, one
thread, pinned to one core.

Usage: python bench/bench_rewards.py [--traces N] [--source runs/seed.jsonl]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from rewards import cot_reward, outcome_reward, process_reward, score_trace, tool_syntax_reward
from sandbox.records import Trace, read_traces

ROOT = Path(__file__).resolve().parents[1]
GOAL = 10_000  # traces per second
RULE_REWARDS = {
    "cot": cot_reward,
    "outcome": outcome_reward,
    "process": process_reward,
    "tool_syntax": tool_syntax_reward,
}


def corpus_lines(source: Path, count: int) -> list[str]:
    """``count`` JSON lines: the source's traces in turn, each with its own id."""
    seeds = read_traces(source)
    if not seeds:
        raise SystemExit(f"{source}: no traces; run `make run` first")
    lines = []
    for index in range(count):
        seed = seeds[index % len(seeds)]
        lines.append(seed.model_copy(update={"id": f"{seed.id}#{index}"}).model_dump_json())
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--source", type=Path, default=ROOT / "runs" / "seed.jsonl")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    lines = corpus_lines(args.source, args.traces)
    traces = [Trace.model_validate_json(line) for line in lines]
    steps = sum(len(trace.steps) for trace in traces) / len(traces)
    score_trace(traces[0], traces[0].task, RULE_REWARDS)  # warm caches and imports

    started = time.perf_counter()
    for trace in traces:
        score_trace(trace, trace.task, RULE_REWARDS)
    seconds = time.perf_counter() - started

    started = time.perf_counter()
    for line in lines:
        trace = Trace.model_validate_json(line)
        score_trace(trace, trace.task, RULE_REWARDS).model_dump_json()
    end_to_end = time.perf_counter() - started

    rate, full_rate = len(traces) / seconds, len(lines) / end_to_end
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"P6  {len(traces)} traces ({steps:.1f} steps each), {len(RULE_REWARDS)} rule rewards, one core")
    print(f"    {seconds:.2f} s, {rate:,.0f} traces/s; ratio to the goal of {GOAL:,}/s: {rate / GOAL:.2f}")
    print(f"    with each trace read from and written to JSON: {end_to_end:.2f} s, {full_rate:,.0f} traces/s")


if __name__ == "__main__":
    main()
