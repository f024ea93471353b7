"""P7: generation tokens/s with every layer on the GPU against the same model on the CPU, and the
batched path on the GPU, in one process (ratios against the CPU run of this same command).

Needs only llama-cpp-python (built with CUDA), numpy, pydantic and this repository's sandbox package
(no MCP servers: each turn is a plain completion of the same prompt, so the figures are the model's).
bench/gpu/run.sh installs those on a GPU machine from .gpu-carry/ (bench/gpu/prepare.sh) and runs this.

Usage: python bench/gpu/measure.py [MODEL.gguf] [--tokens 256] [--sequences 1,8,32] [--cpu-only]

MODEL.gguf defaults to the embedded model. ``--cpu-only`` is a dry run for a machine without a GPU:
the same rows with every layer on the CPU (the GPU rows are skipped), to prove the script end to end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

from sandbox.models import BatchedLlamaModel, LlamaModel, ModelRequest, default_model_path
from sandbox.records import Message, Sampling

MESSAGES = [
    Message(role="system", content="You are a helpful assistant who writes careful, complete answers."),
    Message(role="user", content="Explain how a refrigerator works, step by step."),
]


def _request(seed: int, tokens: int) -> ModelRequest:
    return ModelRequest(MESSAGES, Sampling(temperature=0.8, max_tokens=tokens, seed=seed))


def single(
    model_path: str, gpu_layers: int, tokens: int, repeats: int = 3, threads: int | None = None
) -> float:
    model = LlamaModel(model_path, n_ctx=2048, n_gpu_layers=gpu_layers, n_threads=threads)
    try:
        model.complete(_request(0, 8))  # warm-up
        generated, started = 0, time.perf_counter()
        for seed in range(1, repeats + 1):
            generated += model.complete(_request(seed, tokens)).usage.completion_tokens
        return generated / (time.perf_counter() - started)
    finally:
        model.close()


def batched(
    model_path: str, gpu_layers: int, sequences: int, tokens: int, threads: int | None = None
) -> float:
    model = BatchedLlamaModel(
        model_path, n_seq=sequences, n_ctx=2048, n_gpu_layers=gpu_layers, n_threads=threads
    )
    try:
        model.complete(_request(0, 8))
        started = time.perf_counter()
        with ThreadPoolExecutor(sequences) as pool:
            replies = list(pool.map(lambda s: model.complete(_request(s, tokens)), range(1, sequences + 1)))
        return sum(r.usage.completion_tokens for r in replies) / (time.perf_counter() - started)
    finally:
        model.close()


def _describe(model_path: str) -> str:
    import llama_cpp

    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return (
        f"model {os.path.basename(model_path)}: {os.path.getsize(model_path) / 2**20:.1f} MiB, "
        f"sha256 {digest.hexdigest()[:16]}; llama-cpp-python {llama_cpp.__version__}, "
        f"GPU offload {'supported' if llama_cpp.llama_supports_gpu_offload() else 'NOT supported'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", help="GGUF file (default: the embedded model)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per reply (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="one-sequence replies timed (default 3)")
    parser.add_argument(
        "--sequences", default="1,8,32", help="batched runs, comma-separated (default 1,8,32)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the sandbox's)")
    parser.add_argument(
        "--cpu-only", action="store_true", help="dry run without a GPU: every row on the CPU, no GPU rows"
    )
    args = parser.parse_args()
    model = str(args.model or default_model_path())
    sequence_counts = [int(n) for n in args.sequences.split(",") if n.strip()]
    print(_describe(model), flush=True)
    print(f"{args.tokens} tokens a reply, {args.repeats} one-sequence replies timed", flush=True)
    cpu = single(model, 0, args.tokens, args.repeats, args.threads)
    if args.cpu_only:
        print(f"one sequence: CPU {cpu:.1f} tok/s (--cpu-only: GPU rows skipped)", flush=True)
        base, where, layers = cpu, "CPU", 0
    else:
        gpu = single(model, -1, args.tokens, args.repeats, args.threads)
        print(f"one sequence: CPU {cpu:.1f} tok/s, GPU {gpu:.1f} tok/s, GPU/CPU x{gpu / cpu:.2f}", flush=True)
        base, where, layers = gpu, "GPU", -1
    for sequences in sequence_counts:
        rate = batched(model, layers, sequences, args.tokens, args.threads)
        ratio = f"x{rate / base:.2f} of one sequence"
        print(f"batched on {where}, {sequences:>2} sequences: {rate:.1f} tok/s, {ratio}", flush=True)


if __name__ == "__main__":
    main()
