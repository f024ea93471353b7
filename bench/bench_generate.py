"""Generation benchmark (P3), in one run on one machine, same model, same tasks, same samples:

P3  aggregate completion tokens/s of the batched path (BatchedLlamaModel, K concurrent episodes)
    over sequential sampling (LlamaModel, one episode after another)        goal >= 3x
    and the peak memory (max RSS) of each path.

Each path runs in its own child process, so that its peak memory is its own. The episodes are full
agent episodes of the seed tasks over the bundled servers (stdio), at temperature 0.8.

Also printed: the raw llama_decode scaling of this machine (tokens/s of one decode step carrying B
sequences, against B = 1), which bounds what batching can gain here.

Usage: python bench/bench_generate.py [--tasks 4] [--samples 4] [--parallel 8] [--max-tokens 256]
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
    path: str, tasks: int, samples: int, parallel: int, max_tokens: int, unified: bool = True
) -> dict:
    from sandbox._episode import Limits, run_episode
    from sandbox._hub import ToolHub, load_config
    from sandbox._records import Sampling, read_tasks

    chosen = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")[:tasks]
    config = load_config(ROOT / "servers" / "mcp.json")
    used = {name for task in chosen for name in task.servers}
    if path == "batched":
        from sandbox._batched import BatchedLlamaModel

        model = BatchedLlamaModel(n_seq=parallel, n_ctx=4096, kv_unified=unified)
    else:
        from sandbox._models import LlamaModel

        model = LlamaModel(n_ctx=4096)
        parallel = 1
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


def _decode_scaling(sizes: tuple[int, ...] = (1, 4, 8, 16)) -> dict[int, float]:
    """Tokens/s of a bare decode step with B sequences (B tokens) after a short prefix."""
    import llama_cpp
    from llama_cpp import _internals

    from sandbox._models import LlamaModel

    base = LlamaModel(n_ctx=256)
    llm = base._llm
    params = type(llm.context_params).from_buffer_copy(llm.context_params)
    params.n_ctx, params.n_seq_max, params.kv_unified = 4096, max(sizes), True
    context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    batch = llama_cpp.llama_batch_init(max(sizes), 0, 1)
    rates: dict[int, float] = {}
    try:
        for size in sizes:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(context.ctx), True)
            steps, started = 24, 0.0
            for step in range(steps + 4):
                if step == 4:
                    started = time.perf_counter()
                for i in range(size):
                    batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = 100 + i, step, 1, 1
                    batch.seq_id[i][0] = i
                batch.n_tokens = size
                if llama_cpp.llama_decode(context.ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed")
            rates[size] = size * steps / (time.perf_counter() - started)
    finally:
        llama_cpp.llama_batch_free(batch)
        context.close()
        base.close()
    return rates


def _child(args: argparse.Namespace) -> None:
    if args.child == "scaling":
        print(json.dumps(_decode_scaling()))
        return
    result = anyio.run(
        _episodes, args.child, args.tasks, args.samples, args.parallel, args.max_tokens, not args.separate_kv
    )
    print(json.dumps(result))


def _run_child(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", name]
    command += ["--tasks", str(args.tasks), "--samples", str(args.samples)]
    command += ["--parallel", str(args.parallel), "--max-tokens", str(args.max_tokens)]
    command += ["--separate-kv"] if args.separate_kv else []
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
    parser.add_argument("--separate-kv", action="store_true", help="one KV stream per sequence")
    parser.add_argument("--child", choices=["sequential", "batched", "scaling"])
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    scaling = {int(k): v for k, v in _run_child("scaling", args).items()}
    print("llama_decode tokens/s with B sequences in one step (ratio to B=1):")
    for size, rate in scaling.items():
        print(f"  B={size:>2}: {rate:7.1f} tok/s  x{rate / scaling[1]:.2f}")
    sequential = _run_child("sequential", args)
    batched = _run_child("batched", args)
    for name, result in (("sequential", sequential), ("batched", batched)):
        print(
            f"{name:>10}: {result['episodes']} episodes, {result['completion_tokens']} completion tokens "
            f"in {result['wall_s']:.1f} s = {result['tokens_per_s']:.1f} tok/s; "
            f"prompt tokens evaluated {result['prompt_tokens_evaluated']}; "
            f"peak RSS {result['max_rss_mb']:.0f} MB"
        )
    ratio = batched["tokens_per_s"] / sequential["tokens_per_s"]
    print(f"P3 batched / sequential tokens/s: {ratio:.2f}  (goal >= 3)")
    print(f"peak memory batched / sequential: {batched['max_rss_mb'] / sequential['max_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
