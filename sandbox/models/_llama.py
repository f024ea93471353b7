"""llama.cpp in process (llama-cpp-python), one conversation at a time.

One ``Llama`` per model file; the prompt is the GGUF's own chat template over an append-only
transcript, so llama.cpp reuses the KV cache prefix across turns. Each response says how many prompt
tokens were evaluated and how many came from the cache. ``complete`` is synchronous (llama.cpp holds
the CPU); ``acomplete`` runs it in a worker thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from sandbox.models._base import MIN_COMPLETION_TOKENS, ModelRequest, ModelResponse, SyncModel
from sandbox.models._decode import common_prefix
from sandbox.models._files import (
    chat_formatter,
    check_model_file,
    context_tokens,
    default_model_path,
    file_sha256,
    load_llama,
)
from sandbox.models._grammar_sampler import LazyGrammar
from sandbox.records import ContextFullError, Message, ModelFileError, ModelInfo, Usage


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


class LlamaModel(SyncModel):
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
        path = check_model_file(path if path is not None else default_model_path())
        self._llm = load_llama(
            path,
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=n_threads,
            n_batch=n_batch,
            seed=seed,
            flash_attn=flash_attn,
        )
        self.lora_adapter = None if lora_path is None else self._load_lora(Path(lora_path))
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._formatter = chat_formatter(self._llm)
        if self._formatter is None:
            raise ModelFileError(f"model has no chat template in its GGUF metadata: {path}")
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
        from sandbox.models._lora import load_lora

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

    @property
    def chat_template(self) -> str:
        """The GGUF's own chat template (its text decides the native turn format)."""
        return str(self._llm.metadata.get("tokenizer.chat_template", ""))

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """The prompt text of a transcript, through the GGUF's chat template; ``tools`` (OpenAI
        function specs) go to the template's own ``tools`` argument (a native turn format)."""
        plain = [self._plain(m) for m in messages]
        if tools is not None:
            return self._format(plain, add_generation_prompt, list(tools))
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

    def _format(
        self, plain: list[dict[str, str]], add_generation_prompt: bool, tools: list[Any] | None = None
    ) -> str:
        template = self._formatter._environment  # the compiled jinja2 template
        extra = {"tools": tools} if tools is not None else {}
        return template.render(
            **extra,
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
        """Tokens of a text that starts a context (one BOS where the model wants one, even when the
        chat template writes it too)."""
        return context_tokens(self._llm, text)

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
            return self._complete(request, None)

    def complete_or_stop(self, request: ModelRequest, stop: threading.Event) -> ModelResponse:
        """``complete``, cut at the next token once ``stop`` is set (the prompt's evaluation, one
        ``n_batch`` chunk at a time, is not cut)."""
        with self._lock:
            return self._complete(request, stop)

    def _complete(self, request: ModelRequest, stop: threading.Event | None) -> ModelResponse:
        started = time.perf_counter()
        prompt_text = self.render(request.messages, tools=request.template_tools)
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
            stopping_criteria=self._stop_at(request, len(prompt), stop),
        )
        choice = output["choices"][0]
        if request.stop_at is not None:
            end = request.stop_at(choice["text"])
            if end is not None:
                choice["text"], choice["finish_reason"] = choice["text"][:end], "stop"
        self._remember(prompt_text, prompt, choice["text"])
        usage = Usage(
            prompt_tokens=len(prompt),
            prompt_tokens_evaluated=len(prompt) - reused,
            prompt_tokens_reused=reused,
            new_prompt_tokens=max(new_tokens, 0),
            completion_tokens=int(output["usage"]["completion_tokens"]),
        )
        finish: Literal["stop", "length"] = "length" if choice["finish_reason"] == "length" else "stop"
        return ModelResponse(choice["text"], finish, usage, time.perf_counter() - started)

    def _stop_at(self, request: ModelRequest, prompt_length: int, stop: threading.Event | None) -> Any:
        """llama.cpp's stopping criterion: ``stop`` is set, or (``request.stop_at``) the generated
        text holds a turn."""
        stop_at = request.stop_at
        if stop_at is None and stop is None:
            return None
        from llama_cpp import StoppingCriteriaList

        llm = self._llm

        def done(input_ids: Any, _logits: Any) -> bool:
            if stop is not None and stop.is_set():
                return True
            if stop_at is None:
                return False
            generated = input_ids[prompt_length:].tolist()
            if not generated:
                return False
            text = llm.detokenize(generated).decode("utf-8", "ignore")
            return stop_at(text) is not None

        return StoppingCriteriaList([done])

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
        text = self.render(earlier, add_generation_prompt=False, tools=request.template_tools)
        return len(self.tokenize(text))

    def close(self) -> None:
        self._llm.close()
