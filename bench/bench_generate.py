"""Generation benchmark (P3), in one run on one machine, same model, same tasks, same samples:

P3  aggregate completion tokens/s of the batched path (BatchedLlamaModel, K concurrent episodes)
    over sequential sampling (LlamaModel, one episode after another)        goal >= 3x
    and the peak memory (max RSS) of each path.

Each path runs in its own child process, so that its peak memory is its own. The episodes are full
agent episodes of the seed tasks over the bundled servers (stdio), at temperature 0.8.

Also printed, first: the raw llama_decode scaling of this machine (tokens/s of one decode step
carrying B sequences, against B = 1), with a few tokens of context and with 1,000 (about an agent
turn's context), which bounds what batching can gain here; and, with ``--single``, the batched engine
with one sequence run one episode after another, which separates what batching gains from what the
engine's own C-level sampling loop gains.

Usage: python bench/bench_generate.py [--tasks 4] [--samples 4] [--parallel 8] [--max-tokens 256]
                                      [--unified] [--single] [--model M.gguf]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]


async def _episodes(
    path: str,
    tasks: int,
    samples: int,
    parallel: int,
    max_tokens: int,
    unified: bool = False,
    model_path: str | None = None,
) -> dict:
    from sandbox.episodes import Limits, run_episode
    from sandbox.hub import ToolHub, load_config
    from sandbox.records import Sampling, read_tasks

    chosen = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")[:tasks]
    config = load_config(ROOT / "servers" / "mcp.json")
    used = {name for task in chosen for name in task.servers}
    from sandbox.models import BatchedLlamaModel, LlamaModel

    if path != "batched":  # one episode after another
        parallel = 1
    if path == "sequential":
        model = LlamaModel(model_path, n_ctx=4096)
    else:
        model = BatchedLlamaModel(model_path, n_seq=parallel, n_ctx=4096, kv_unified=unified)
    limits = Limits(max_steps=4, max_completion_tokens=2 * max_tokens)
    jobs = [(task, sample) for task in chosen for sample in range(samples)]
    traces = []
    limiter = anyio.Semaphore(parallel)
    async with ToolHub({name: config[name] for name in used}) as hub:
        started = time.perf_counter()

        async def one(task, sample: int) -> None:  # type: ignore[no-untyped-def]
            async with limiter:
                sampling = Sampling(temperature=0.8, max_tokens=max_tokens, seed=1000 * sample + 1)
                traces.append(await run_episode(task, model, hub, limits, sampling=sampling, sample=sample))

        async with anyio.create_task_group() as group:
            for task, sample in jobs:
                group.start_soon(one, task, sample)
        wall = time.perf_counter() - started
    model.close()
    completion = sum(s.usage.completion_tokens for t in traces for s in t.steps)
    evaluated = sum(s.usage.prompt_tokens_evaluated for t in traces for s in t.steps)
    return {
        "episodes": len(traces),
        "completion_tokens": completion,
        "prompt_tokens_evaluated": evaluated,
        "wall_s": wall,
        "tokens_per_s": completion / wall,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _decode_scaling(
    model_path: str | None, sizes: tuple[int, ...] = (1, 8, 16, 32), contexts: tuple[int, ...] = (16, 1000)
) -> dict[str, dict[int, float]]:
    """Tokens/s of a bare decode step carrying B sequences (B tokens), each sequence in its own KV
    stream behind ``context`` tokens of prompt (evaluated once, then copied to the other streams)."""
    import llama_cpp
    from llama_cpp import _internals

    from sandbox.models import LlamaModel

    base = LlamaModel(model_path, n_ctx=256)
    llm = base._llm
    batch = llama_cpp.llama_batch_init(512, 0, 1)

    def fill(tokens: list[tuple[int, int, int]]) -> None:
        for i, (seq, position, token) in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, position, 1, 1
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(tokens)
        if llama_cpp.llama_decode(context.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    rates: dict[str, dict[int, float]] = {}
    try:
        for length in contexts:
            rates[str(length)] = {}
            for size in sizes:
                params = type(llm.context_params).from_buffer_copy(llm.context_params)
                params.n_ctx, params.n_seq_max, params.kv_unified = 2048 * size, size, False
                params.n_batch = params.n_ubatch = 512
                context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
                memory = llama_cpp.llama_get_memory(context.ctx)
                for start in range(0, length, 512):
                    fill([(0, p, 100 + p % 1000) for p in range(start, min(length, start + 512))])
                for seq in range(1, size):
                    llama_cpp.llama_memory_seq_cp(memory, 0, seq, -1, -1)
                steps, started = 16, 0.0
                for step in range(steps + 3):
                    if step == 3:
                        started = time.perf_counter()
                    fill([(seq, length + step, 2000 + seq) for seq in range(size)])
                rates[str(length)][size] = size * steps / (time.perf_counter() - started)
                context.close()
    finally:
        llama_cpp.llama_batch_free(batch)
        base.close()
    return rates


def _child(args: argparse.Namespace) -> None:
    if args.child == "scaling":
        print(json.dumps(_decode_scaling(args.model)))
        return
    result = anyio.run(
        _episodes,
        args.child,
        args.tasks,
        args.samples,
        args.parallel,
        args.max_tokens,
        args.unified,
        args.model,
    )
    print(json.dumps(result))


def _run_child(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", name]
    command += ["--tasks", str(args.tasks), "--samples", str(args.samples)]
    command += ["--parallel", str(args.parallel), "--max-tokens", str(args.max_tokens)]
    command += ["--unified"] if args.unified else []
    command += ["--model", args.model] if args.model else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--model", help="a GGUF file (default: the embedded SmolLM2-135M Q4_1)")
    parser.add_argument("--unified", action="store_true", help="one KV buffer for all sequences")
    parser.add_argument("--single", action="store_true", help="also run the batched engine with one sequence")
    parser.add_argument("--child", choices=["sequential", "single", "batched", "scaling"])
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    scaling = _run_child("scaling", args)
    print("llama_decode tokens/s with B sequences in one step (ratio to B=1), by tokens of context:")
    for length, rates in scaling.items():
        cells = [f"B={size}: {rate:5.0f} x{rate / rates['1']:.2f}" for size, rate in rates.items()]
        print(f"  {length:>5}: " + ",  ".join(cells))
    results = {"sequential": _run_child("sequential", args)}
    if args.single:
        results["single"] = _run_child("single", args)
    results["batched"] = _run_child("batched", args)
    sequential, batched = results["sequential"], results["batched"]
    for name, result in results.items():
        print(
            f"{name:>10}: {result['episodes']} episodes, {result['completion_tokens']} completion tokens "
            f"in {result['wall_s']:.1f} s = {result['tokens_per_s']:.1f} tok/s; "
            f"prompt tokens evaluated {result['prompt_tokens_evaluated']}; "
            f"peak RSS {result['max_rss_mb']:.0f} MB"
        )
    ratio = batched["tokens_per_s"] / sequential["tokens_per_s"]
    print(f"P3 batched / sequential tokens/s: {ratio:.2f}  (goal >= 3)")
    if "single" in results:
        gain = batched["tokens_per_s"] / results["single"]["tokens_per_s"]
        print(f"batched / one-sequence engine tokens/s: {gain:.2f}")
    print(f"peak memory batched / sequential: {batched['max_rss_mb'] / sequential['max_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
