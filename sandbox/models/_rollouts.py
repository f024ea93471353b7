"""A policy model's continuations of partial solutions, for Monte Carlo step values.

``rewards.MonteCarloPRM`` asks for ``k`` continuations of each partial solution of a problem. Each
prompt is the problem as the user's message through the GGUF's chat template, then the reply begun
with the steps so far (one paragraph each, as ProcessBench splits them), so the model goes on from
the step; :meth:`BatchedLlamaModel.complete_text` runs every continuation of every prefix in the same
batches, and the ``k`` continuations of a prefix, like the prefixes of one solution, share the KV
cells of their common prompt. Each continuation samples with its own seed (``seed`` + its index).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sandbox.models._batched import BatchedLlamaModel
from sandbox.records import Message, Sampling

SYSTEM_PROMPT = "Solve the problem step by step. Put the final answer in \\boxed{}."
STEP_SEPARATOR = "\n\n"


class PolicyRollouts:
    """Continuations of partial solutions by a :class:`BatchedLlamaModel` (see the module doc).

    ``tokens`` and ``seconds`` add up what the continuations cost, for benchmarks.
    """

    def __init__(
        self, model: BatchedLlamaModel, *, max_tokens: int = 128, temperature: float = 0.8, seed: int = 0
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.version = f"{model.info.name}@t{temperature:g}+max{max_tokens}+seed{seed}"
        self.tokens = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def prompt(self, problem: str, steps: Sequence[str]) -> str:
        """The text a continuation starts from: the problem asked, the reply begun with ``steps``."""
        messages = [Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=problem)]
        return self.model.render(messages) + "".join(step.strip() + STEP_SEPARATOR for step in steps)

    def continuations(self, problem: str, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        """``k`` continuations of each prefix, all submitted at once."""
        jobs = [(self.prompt(problem, prefix), sample) for prefix in prefixes for sample in range(k)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            texts = list(pool.map(lambda job: self._one(*job), jobs))
        with self._lock:
            self.seconds += time.perf_counter() - started
        return [texts[index * k : (index + 1) * k] for index in range(len(prefixes))]

    def _one(self, prompt: str, sample: int) -> str:
        sampling = Sampling(temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed + sample)
        response = self.model.complete_text(prompt, sampling)
        with self._lock:
            self.tokens += response.usage.completion_tokens
        return response.text
