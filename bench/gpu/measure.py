"""P7: generation tokens/s with every layer on the GPU against the same model on the CPU, and the
batched path on the GPU, in one process (ratios against the CPU run of this same command).

Needs only llama-cpp-python (built with CUDA), numpy, pydantic and this repository's sandbox package
(no MCP servers: each turn is a plain completion of the same prompt, so the figures are the model's).

Usage: python bench/gpu/measure.py MODEL.gguf [--tokens 256]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from sandbox._batched import BatchedLlamaModel
from sandbox._models import LlamaModel, ModelRequest
from sandbox._records import Message, Sampling

MESSAGES = [
    Message(role="system", content="You are a helpful assistant who writes careful, complete answers."),
    Message(role="user", content="Explain how a refrigerator works, step by step."),
]


def _request(seed: int, tokens: int) -> ModelRequest:
    return ModelRequest(MESSAGES, Sampling(temperature=0.8, max_tokens=tokens, seed=seed))


def single(model_path: str, gpu_layers: int, tokens: int, repeats: int = 3) -> float:
    model = LlamaModel(model_path, n_ctx=2048, n_gpu_layers=gpu_layers)
    try:
        model.complete(_request(0, 8))  # warm-up
        generated, started = 0, time.perf_counter()
        for seed in range(1, repeats + 1):
            generated += model.complete(_request(seed, tokens)).usage.completion_tokens
        return generated / (time.perf_counter() - started)
    finally:
        model.close()


def batched(model_path: str, gpu_layers: int, sequences: int, tokens: int) -> float:
    model = BatchedLlamaModel(model_path, n_seq=sequences, n_ctx=2048, n_gpu_layers=gpu_layers)
    try:
        model.complete(_request(0, 8))
        started = time.perf_counter()
        with ThreadPoolExecutor(sequences) as pool:
            replies = list(pool.map(lambda s: model.complete(_request(s, tokens)), range(1, sequences + 1)))
        return sum(r.usage.completion_tokens for r in replies) / (time.perf_counter() - started)
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    cpu = single(args.model, 0, args.tokens)
    gpu = single(args.model, -1, args.tokens)
    print(f"one sequence: CPU {cpu:.1f} tok/s, GPU {gpu:.1f} tok/s, GPU/CPU x{gpu / cpu:.2f}")
    for sequences in (1, 8, 32):
        rate = batched(args.model, -1, sequences, args.tokens)
        print(
            f"batched on GPU, {sequences:>2} sequences: {rate:.1f} tok/s, x{rate / gpu:.2f} of one sequence"
        )


if __name__ == "__main__":
    main()
