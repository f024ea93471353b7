"""Many episodes on one llama.cpp context: their turns are decoded together, one batch per step.

:class:`BatchedLlamaModel` has the same seam as :class:`~sandbox.models._llama.LlamaModel`
(``complete(request) -> response``) but may be called from many threads at once. Each call becomes a
job; one scheduler thread owns the llama.cpp context and, at every step, puts the next token of every
generating job and a chunk of every job's unevaluated prompt into one ``llama_decode`` batch. A
job's turn ends as in ``LlamaModel`` (end of generation, a stop string, ``max_tokens``), its thread
gets the reply and the job's sequence leaves the batch; the episode calls its tool and comes back
with a longer transcript, which re-enters the batch.

KV reuse, the part that makes n samples of one task cheap:

* Each of the ``n_seq`` sequences keeps the tokens it holds in the KV cache after its job ends. A new
  job takes the free sequence that shares the longest token prefix with its prompt (the episode's own
  previous turn, usually), and evaluates only the rest.
* When another sequence shares a longer prefix (the n samples of one task share their whole first
  prompt), that prefix is copied into the job's sequence with ``llama_memory_seq_cp``, so nothing is
  evaluated twice. Each sequence has its own KV stream by default: the copy is a memory copy of the
  source's stream, and each token attends over its own sequence's cells only. With one unified KV
  buffer (``kv_unified=True``) a copied prefix is shared, not duplicated, which saves memory, but every
  token then attends over the cells of all sequences (masked): on this project's CPU a 128-token prompt
  chunk beside seven decoding sequences of 1,000 tokens took 882 ms unified against 373 ms in separate
  streams. A job whose prefix is still being evaluated by another sequence waits for it.
* The model's own turns are never re-tokenized: the text of each finished turn and the tokens that
  produced it are remembered, as in ``LlamaModel``.

Sampling is llama.cpp's sampler chain per job (top-k 40, top-p, min-p 0.05, temperature, a seeded
draw; greedy at temperature 0), the same chain ``LlamaModel`` gets from llama-cpp-python. A grammar
is applied lazily (:class:`~sandbox.models._grammar_sampler.LazyGrammar`): the likeliest tokens are checked
first, the whole vocabulary only when none fits, and the mask is written into the logits row before
the chain draws from it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sandbox.models._base import MIN_COMPLETION_TOKENS, ModelRequest, ModelResponse, SyncModel
from sandbox.models._decode import common_prefix
from sandbox.models._files import default_threads
from sandbox.models._grammar_sampler import LazyGrammar
from sandbox.models._llama import LlamaModel, reply_prefix_tokens
from sandbox.models._lora import set_lora
from sandbox.records import ContextFullError, Message, ModelInfo, Sampling, Usage

TOP_K = 40
MIN_P = 0.05
# How many finished turns' (text, tokens) pairs are kept for re-use in later prompts.
MEMO_SIZE = 64


@dataclass(eq=False)
class _Job:
    request: ModelRequest
    prompt_text: str
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event | None = None  # set: end the turn at the next step, with the text so far
    response: ModelResponse | None = None
    error: BaseException | None = None
    started: float = field(default_factory=time.perf_counter)
    # Set when the job is admitted to a sequence:
    tokens: list[int] = field(default_factory=list)  # the whole prompt
    new_tokens: int = 0
    reused: int = 0
    seq: int = -1
    chain: Any = None
    grammar: LazyGrammar | None = None
    max_tokens: int = 0
    generated: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    next_token: int | None = None  # sampled, not yet evaluated
    logits_index: int = -1  # where this job's logits land in the current batch


@dataclass(eq=False)
class _Sequence:
    seq: int
    cached: list[int] = field(default_factory=list)  # the tokens this sequence holds in the KV cache
    job: _Job | None = None
    last_used: int = 0

    def planned(self) -> list[int]:
        """The tokens this sequence will hold once its job's prompt is evaluated."""
        if self.job is not None and self.job.next_token is None and not self.job.generated:
            return self.job.tokens
        return self.cached


@dataclass
class BatchStats:
    """Counters of the scheduler, for benchmarks and tests."""

    decode_calls: int = 0
    tokens_decoded: int = 0  # prompt and generated tokens evaluated
    tokens_generated: int = 0
    prompt_tokens_copied: int = 0  # prompt tokens a job got by a KV copy from another sequence
    max_batch_sequences: int = 0
    evictions: int = 0


class BatchedLlamaModel(SyncModel):
    """A GGUF model that decodes up to ``n_seq`` concurrent turns in one batch (see the module doc).

    ``n_ctx`` is the context of one sequence, as for ``LlamaModel``; the KV buffer holds
    ``n_ctx * n_seq`` cells unless ``kv_cells`` says otherwise. In separate streams (the default) each
    sequence gets ``kv_cells // n_seq`` of them, which bounds its context; in a unified buffer shared
    prefixes use their cells once, and when the buffer is full idle sequences give theirs up, then a
    turn that still does not fit ends with :class:`ContextFullError`.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_seq: int = 8,
        n_ctx: int = 4096,
        kv_cells: int | None = None,
        n_gpu_layers: int = -1,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        kv_unified: bool = False,
        flash_attn: bool = False,
        lora_path: str | Path | None = None,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        if n_seq < 1:
            raise ValueError("n_seq must be at least 1")
        cells = kv_cells or n_ctx * n_seq
        if not kv_unified:  # llama.cpp gives each stream n_ctx / n_seq cells
            cells -= cells % n_seq
            n_ctx = min(n_ctx, cells // n_seq)
        if n_ctx < 2 * MIN_COMPLETION_TOKENS:
            raise ValueError(f"{cells} KV cells leave a context of {n_ctx} tokens per sequence")
        # The single-sequence model gives the weights, the tokenizer and the chat template; its own
        # context is kept tiny, as it only ever tokenizes.
        self._base = LlamaModel(
            path,
            n_ctx=256,
            n_gpu_layers=n_gpu_layers,
            n_threads=n_threads,
            seed=seed,
            flash_attn=flash_attn,
            lora_path=lora_path,
        )
        llm = self._base._llm
        self._lib = llama_cpp
        # The same context settings as the one-sequence backend (flash attention, threads, ...),
        # widened to n_seq sequences.
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = cells
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        # A KV stream per sequence unless kv_unified (see the module doc).
        params.kv_unified = self._unified = kv_unified
        threads = n_threads or default_threads()
        params.n_threads = threads
        params.n_threads_batch = threads
        self._context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._ctx = self._context.ctx
        if self._base.lora_adapter is not None:  # llama.cpp applies an adapter per context
            set_lora(self._ctx, self._base.lora_adapter)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        self._llm = llm
        self.n_seq = n_seq
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.path = self._base.path
        self.stats = BatchStats()
        self.info = ModelInfo(
            name=self._base.info.name,
            path=self._base.info.path,
            sha256=self._base.info.sha256,
            n_ctx=n_ctx,
            backend=f"llama.cpp batched ({n_seq} sequences, gpu offload: {self._base.gpu_offload})",
            lora=self._base.info.lora,
            lora_sha256=self._base.info.lora_sha256,
        )
        self._sequences = [_Sequence(seq) for seq in range(n_seq)]
        self._pending: deque[_Job] = deque()
        self._memos: deque[tuple[str, list[int]]] = deque(maxlen=MEMO_SIZE)
        self._grammars: dict[str, list[LazyGrammar]] = {}
        self._piece_cache: dict[int, bytes] = {}
        self._clock = itertools.count(1)
        self._cond = threading.Condition()
        self._closed = False
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._thread = threading.Thread(target=self._serve, name="batched-llama", daemon=True)
        self._thread.start()

    # -- the seam ----------------------------------------------------------------------------

    @property
    def chat_template(self) -> str:
        return self._base.chat_template

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        return self._base.render(messages, add_generation_prompt=add_generation_prompt, tools=tools)

    def tokenize(self, text: str) -> list[int]:
        return self._base.tokenize(text)

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Write one assistant turn; blocks this thread while the scheduler runs it with the others."""
        prompt_text = self.render(request.messages, tools=request.template_tools)
        return self._run(_Job(request=request, prompt_text=prompt_text))

    def complete_or_stop(self, request: ModelRequest, stop: threading.Event) -> ModelResponse:
        """``complete``, ended at the scheduler's next step once ``stop`` is set."""
        return self._run(_Job(request=request, prompt_text=self.render(request.messages), stop=stop))

    def complete_text(
        self, prompt_text: str, sampling: Sampling, *, stop: Sequence[str] = ()
    ) -> ModelResponse:
        """Continue ``prompt_text`` as it is (a rendered transcript with the reply begun, say), in the
        same batches as the turns: jobs whose prompts share a prefix share its KV cells."""
        request = ModelRequest(messages=(), sampling=sampling, stop=tuple(stop))
        return self._run(_Job(request=request, prompt_text=prompt_text))

    def _run(self, job: _Job) -> ModelResponse:
        with self._cond:
            if self._closed:
                raise RuntimeError("the model is closed")
            self._pending.append(job)
            self._cond.notify()
        while not job.done.wait(None if job.stop is None else 0.05):
            if job.stop is not None and job.stop.is_set():
                with self._cond:
                    self._cond.notify()  # the scheduler may be waiting: it drops the job at once
        if job.error is not None:
            raise job.error
        assert job.response is not None
        return job.response

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        for grammars in self._grammars.values():
            for grammar in grammars:
                grammar.close()
        self._context.close()
        self._base.close()

    # -- scheduler ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._pending and not self._active():
                    self._cond.wait()
                if self._closed:
                    break
                self._drop_stopped()
                self._admit()
            if self._active():
                try:
                    self._step()
                except Exception as exc:  # llama.cpp failed: every running job gets the error
                    self._lib.llama_memory_clear(self._memory, True)
                    for sequence in self._sequences:
                        sequence.cached = []
                        if sequence.job is not None:
                            self._fail(sequence, exc)
        failure = RuntimeError("the model was closed while this turn was running")
        for sequence in self._sequences:
            if sequence.job is not None:
                self._fail(sequence, failure)
        for job in self._pending:
            job.error = failure
            job.done.set()

    def _drop_stopped(self) -> None:
        """End the jobs whose ``stop`` is set (caller holds the lock): a running one with the text it
        has, a waiting one with an empty reply."""
        for sequence in self._sequences:
            if sequence.job is not None and sequence.job.stop is not None and sequence.job.stop.is_set():
                self._finish(sequence, "stop")
        for job in [j for j in self._pending if j.stop is not None and j.stop.is_set()]:
            self._pending.remove(job)
            job.response = ModelResponse("", "stop", Usage(), time.perf_counter() - job.started)
            job.done.set()

    def _active(self) -> list[_Sequence]:
        return [s for s in self._sequences if s.job is not None]

    def _admit(self) -> None:
        """Give pending jobs free sequences, re-using the longest cached prefix (caller holds the lock)."""
        waiting: deque[_Job] = deque()
        while self._pending:
            job = self._pending.popleft()
            free = [s for s in self._sequences if s.job is None]
            if not free:
                waiting.append(job)
                continue
            if not job.tokens:
                try:
                    self._tokenize(job)
                except ContextFullError as exc:
                    job.error = exc
                    job.done.set()
                    continue
            own = max(free, key=lambda s: (common_prefix(job.tokens, s.cached), -s.last_used))
            own_prefix = common_prefix(job.tokens, own.cached)
            source, source_prefix = own, own_prefix
            for sequence in self._sequences:
                shared = common_prefix(job.tokens, sequence.planned())
                if shared > source_prefix:
                    source, source_prefix = sequence, shared
            if source_prefix > len(source.cached):
                waiting.append(job)  # that prefix is still being evaluated: copy it once it is there
                continue
            self._start(job, own, source, source_prefix)
        self._pending = waiting

    def _tokenize(self, job: _Job) -> None:
        text = job.prompt_text
        memo = max((m for m in self._memos if text.startswith(m[0])), key=lambda m: len(m[0]), default=None)
        if memo is not None:
            job.tokens = memo[1] + self._base.tokenize_piece(text[len(memo[0]) :])
            job.new_tokens = len(job.tokens) - len(memo[1])
        else:
            job.tokens = self._base.tokenize(text)
            job.new_tokens = len(job.tokens) - self._base._previous_length(job.request)
        room = self.n_ctx - len(job.tokens)
        if room < MIN_COMPLETION_TOKENS:
            raise ContextFullError(
                f"prompt of {len(job.tokens)} tokens leaves {room} of {self.n_ctx} for the reply"
            )
        job.max_tokens = min(job.request.sampling.max_tokens, room)

    def _start(self, job: _Job, own: _Sequence, source: _Sequence, prefix: int) -> None:
        lib = self._lib
        if source is not own:
            lib.llama_memory_seq_rm(self._memory, own.seq, 0, -1)
            if self._unified:
                lib.llama_memory_seq_cp(self._memory, source.seq, own.seq, 0, prefix)
            else:  # between separate KV streams llama.cpp copies a whole stream
                lib.llama_memory_seq_cp(self._memory, source.seq, own.seq, -1, -1)
                lib.llama_memory_seq_rm(self._memory, own.seq, prefix, -1)
            self.stats.prompt_tokens_copied += prefix
        else:
            lib.llama_memory_seq_rm(self._memory, own.seq, prefix, -1)
        own.cached = job.tokens[:prefix]
        if prefix >= len(job.tokens):  # the last prompt token is evaluated again for fresh logits
            prefix = len(job.tokens) - 1
            lib.llama_memory_seq_rm(self._memory, own.seq, prefix, -1)
            own.cached = own.cached[:prefix]
        job.reused = prefix
        job.seq = own.seq
        job.chain = self._sampler_chain(job)
        if job.request.grammar:
            job.grammar = self._take_grammar(job.request.grammar)
        own.job = job

    def _sampler_chain(self, job: _Job) -> Any:
        lib = self._lib
        sampling = job.request.sampling
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if sampling.temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(TOP_K))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(MIN_P, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(sampling.temperature))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(sampling.seed & 0xFFFFFFFF))
        return chain

    def _take_grammar(self, text: str) -> LazyGrammar:
        free = self._grammars.setdefault(text, [])
        grammar = free.pop() if free else LazyGrammar(self._vocab, text)
        grammar.reset()
        return grammar

    def _step(self) -> None:
        """One ``llama_decode``: a token of every generating job, then prompt chunks, then sampling."""
        batch = self._batch
        entries: list[tuple[_Sequence, int, int]] = []  # (sequence, token, position)
        wants: list[_Job] = []
        running = self._active()
        for sequence in running:
            job = sequence.job
            assert job is not None
            if job.next_token is not None and len(entries) < self.n_batch:
                job.logits_index = len(entries)
                entries.append((sequence, job.next_token, len(sequence.cached)))
                wants.append(job)
        for sequence in running:
            job = sequence.job
            assert job is not None
            if job.next_token is not None:
                continue
            start = len(sequence.cached)
            room = self.n_batch - len(entries)
            if room <= 0:
                break
            chunk = job.tokens[start : start + room]
            for offset, token in enumerate(chunk):
                entries.append((sequence, token, start + offset))
            if start + len(chunk) == len(job.tokens):
                job.logits_index = len(entries) - 1
                wants.append(job)
        want_rows = {job.logits_index for job in wants}
        for index, (sequence, token, position) in enumerate(entries):
            batch.token[index] = token
            batch.pos[index] = position
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence.seq
            batch.logits[index] = index in want_rows
        batch.n_tokens = len(entries)
        status = self._lib.llama_decode(self._ctx, batch)
        if status == 1 and self._evict():  # the KV buffer is full: idle sequences give up their cells
            status = self._lib.llama_decode(self._ctx, batch)
        if status == 1:
            victim = max(running, key=lambda s: len(s.cached))
            self._lib.llama_memory_seq_rm(self._memory, victim.seq, 0, -1)
            victim.cached = []
            self._fail(victim, ContextFullError("the shared KV cache is full"))
            return
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")
        self.stats.decode_calls += 1
        self.stats.tokens_decoded += len(entries)
        self.stats.max_batch_sequences = max(self.stats.max_batch_sequences, len({e[0].seq for e in entries}))
        for sequence, token, _ in entries:
            sequence.cached.append(token)
        for job in wants:
            self._sample(self._sequences[job.seq], job)

    def _evict(self) -> bool:
        idle = [s for s in self._sequences if s.job is None and s.cached]
        for sequence in idle:
            self._lib.llama_memory_seq_rm(self._memory, sequence.seq, 0, -1)
            sequence.cached = []
        self.stats.evictions += len(idle)
        return bool(idle)

    def _sample(self, sequence: _Sequence, job: _Job) -> None:
        lib = self._lib
        job.next_token = None
        if job.grammar is not None:
            row = np.ctypeslib.as_array(
                lib.llama_get_logits_ith(self._ctx, job.logits_index), (self._n_vocab,)
            )
            job.grammar.mask_in_place(row)
        token = int(lib.llama_sampler_sample(job.chain, self._ctx, job.logits_index))
        if job.grammar is not None:
            job.grammar.accept(token)
        if lib.llama_vocab_is_eog(self._vocab, token):
            self._finish(sequence, "stop")
            return
        job.generated.append(token)
        job.text += self._piece(token)
        self.stats.tokens_generated += 1
        stopped = bool(job.request.stop) and self._cut_at_stop(job)
        if stopped or (job.request.stop_at is not None and self._cut_at_action(job)):
            self._finish(sequence, "stop")
        elif len(job.generated) >= job.max_tokens:
            self._finish(sequence, "length")
        else:
            job.next_token = token

    def _piece(self, token: int) -> bytes:
        piece = self._piece_cache.get(token)
        if piece is None:
            piece = self._llm.detokenize([token])
            self._piece_cache[token] = piece
        return piece

    @staticmethod
    def _cut_at_stop(job: _Job) -> bool:
        longest = max(len(s.encode("utf-8")) for s in job.request.stop)
        tail = bytes(job.text[-(longest + 16) :]).decode("utf-8", "ignore")
        if not any(stop in tail for stop in job.request.stop):
            return False
        text = bytes(job.text).decode("utf-8", "ignore")
        cut = min(i for i in (text.find(stop) for stop in job.request.stop) if i >= 0)
        job.text = bytearray(text[:cut].encode("utf-8"))
        return True

    @staticmethod
    def _cut_at_action(job: _Job) -> bool:
        assert job.request.stop_at is not None
        if b"}" not in job.text[-8:]:  # a turn's action ends with a brace or a closing tag
            return False
        text = bytes(job.text).decode("utf-8", "ignore")
        end = job.request.stop_at(text)
        if end is None:
            return False
        job.text = bytearray(text[:end].encode("utf-8"))
        return True

    def _finish(self, sequence: _Sequence, reason: Literal["stop", "length"]) -> None:
        job = sequence.job
        assert job is not None
        text = bytes(job.text).decode("utf-8", "replace")
        self._remember(job, text)
        usage = Usage(
            prompt_tokens=len(job.tokens),
            prompt_tokens_evaluated=len(job.tokens) - job.reused,
            prompt_tokens_reused=job.reused,
            new_prompt_tokens=max(job.new_tokens, 0),
            completion_tokens=len(job.generated),
        )
        job.response = ModelResponse(text, reason, usage, time.perf_counter() - job.started)
        self._release(sequence)
        job.done.set()

    def _remember(self, job: _Job, text: str) -> None:
        """Keep the longest run of generated tokens whose text starts the reply (see ``LlamaModel``)."""
        kept, kept_text = reply_prefix_tokens(self._llm, job.generated, text)
        self._memos.append((job.prompt_text + kept_text, job.tokens + kept))

    def _fail(self, sequence: _Sequence, error: BaseException) -> None:
        job = sequence.job
        assert job is not None
        job.error = error
        self._release(sequence)
        job.done.set()

    def _release(self, sequence: _Sequence) -> None:
        job = sequence.job
        assert job is not None
        self._lib.llama_sampler_free(job.chain)
        job.chain = None
        if job.grammar is not None:
            self._grammars[job.request.grammar or ""].append(job.grammar)
            job.grammar = None
        sequence.job = None
        sequence.last_used = next(self._clock)
