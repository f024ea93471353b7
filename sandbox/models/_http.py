"""A model behind an OpenAI-compatible HTTP server: llama-server, vLLM, Ollama, llama-cpp-python's server.

:class:`OpenAIModel` has the seam of every backend, ``complete(request) -> response``, and an async
twin, ``acomplete``, which the episode loop awaits: many episodes then wait on the server from one
event loop, with no thread each. It talks to ``/v1/chat/completions`` through httpx's async client.

Two ways to get a turn out of a server (``tool_calls``):

* ``"text"`` (default) -- this project's turn format. The transcript goes as plain role/content
  messages and the reply's text is read by :func:`~sandbox.turns._turn.parse_turn`. In constrained mode the
  turn grammar goes along when the server takes one (``grammar``: llama-server and llama-cpp-python
  accept a GBNF ``grammar`` field, vLLM ``structured_outputs`` or the older ``guided_grammar``;
  ``"auto"`` sends it only to llama.cpp servers). Where no grammar can be sent, the free-mode stop
  strings are sent instead and the closing tag they cut is put back.
* ``"native"`` -- the server's own tool calling. The tools go as OpenAI ``tools``, the transcript's
  calls as ``tool_calls`` and results as ``tool`` messages; the reply's ``tool_calls`` are written
  back as ``<tool_call>`` blocks, its content and ``reasoning_content`` as thoughts, so the trace and
  the parser see the same turn text in both ways. No grammar is sent: the server constrains its calls.

Failures are sorted at the boundary: 429, 408, 5xx and dropped connections are retried with
exponential backoff, jitter and the server's ``Retry-After``; a context overflow becomes
:class:`~sandbox.records._errors.ContextFullError` (or one retry with ``max_tokens`` cut to the room left,
when the server says how much that is); any other 4xx, and a failure that outlives its retries,
is a :class:`~sandbox.records._errors.ModelServerError` naming the server and quoting its message.

At most ``max_concurrency`` requests are in flight per model and event loop (an
``anyio.CapacityLimiter``); a request waiting out a backoff holds no slot. The episode loop awaits
``acomplete``; ``complete`` is for code without an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import itertools
import json
import random
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx

from sandbox.models._base import MIN_COMPLETION_TOKENS, ModelRequest, ModelResponse
from sandbox.records import ConfigError, ContextFullError, Message, ModelInfo, ModelServerError, Usage
from sandbox.turns import (
    CALL_CLOSE,
    STOP_STRINGS,
    complete_turn,
    openai_messages,
    openai_tool,
    reply_turn_text,
)

ToolCallMode = Literal["text", "native"]
GrammarField = Literal["auto", "grammar", "guided_grammar", "structured_outputs", "off"]
GRAMMAR_FIELDS: tuple[str, ...] = ("auto", "grammar", "guided_grammar", "structured_outputs", "off")

# ``owned_by`` in /v1/models of servers known to take a GBNF ``grammar`` field (llama-cpp-python's
# server says "me").
_GRAMMAR_OWNERS = {"llamacpp": "grammar", "me": "grammar"}
_RETRY_STATUSES = {408, 429}
# Prompt token totals remembered per transcript, for ``Usage.new_prompt_tokens``.
_MEMO_SIZE = 4096


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a failed request again."""

    retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A server asking for a longer wait than this is not waited for: the request fails.
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, half of it jittered, at least Retry-After."""
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return max(rng.uniform(backoff / 2, backoff), retry_after or 0.0)


# --------------------------------------------------------------------------- the model


class OpenAIModel:
    """A chat model served over HTTP by any OpenAI-compatible server.

    ``base_url`` is the server's address with or without ``/v1``. ``model`` picks one of the models
    the server lists (default: the first). Construction asks ``/v1/models`` and fails with a
    one-line :class:`ModelServerError` when the server cannot be reached or lacks the model.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        tool_calls: ToolCallMode = "text",
        grammar: GrammarField = "auto",
        max_concurrency: int = 4,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if tool_calls not in ("text", "native"):
            raise ConfigError(f"tool_calls must be 'text' or 'native', not {tool_calls!r}")
        if grammar not in GRAMMAR_FIELDS:
            raise ConfigError(f"grammar must be one of {list(GRAMMAR_FIELDS)}, not {grammar!r}")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.base_url = normalize_base_url(base_url)
        self.tool_calls: ToolCallMode = tool_calls
        self.timeout = timeout
        self._client_options: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": {"Authorization": f"Bearer {api_key}"} if api_key else {},
            "timeout": httpx.Timeout(timeout, connect=connect_timeout),
            "limits": httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        }
        self._max_concurrency = max_concurrency
        # An httpx.AsyncClient and an anyio limiter belong to the event loop that made them.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._retry = retry
        self._rng = random.Random()
        self._totals = _Totals(_MEMO_SIZE)
        entry = self._find_model(model)
        self.entry: dict[str, Any] = entry  # the server's /v1/models entry for the model
        self.name: str = entry["id"]
        self.grammar_field = _grammar_field(grammar, entry)
        self.info = ModelInfo(
            name=self.name,
            n_ctx=_int(entry.get("max_model_len")),
            backend=f"openai-http ({self.base_url})",
        )

    # -- the seam ------------------------------------------------------------------------------

    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        """One assistant turn, awaited on the running event loop."""
        started = time.perf_counter()
        body, restore = self.payload(request)
        try:
            reply = await self._post(body)
        except _ContextError as exc:
            reply = await self._post(_with_room(body, exc))
        return self._response(request, reply, restore, time.perf_counter() - started)

    def complete(self, request: ModelRequest) -> ModelResponse:
        """One turn from code that has no event loop (a script, a worker thread): ``acomplete`` on a
        loop of its own, its connection closed afterwards. Concurrent callers share a loop and
        ``acomplete``: the concurrency limit counts the requests of one loop."""

        async def once() -> ModelResponse:
            try:
                return await self.acomplete(request)
            finally:
                await self.aclose()

        return anyio.run(once)

    async def apost(self, body: dict[str, Any]) -> dict[str, Any]:
        """One ``/chat/completions`` request with a body built elsewhere (the judge's scorer), with
        the same concurrency limit, retries and errors as a turn; the reply's JSON object."""
        return await self._post(body)

    def close(self) -> None:
        """Nothing is held outside an event loop; ``aclose`` closes the running loop's connections."""

    async def aclose(self) -> None:
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.aclose()

    # -- requests ------------------------------------------------------------------------------

    def payload(self, request: ModelRequest) -> tuple[dict[str, Any], bool]:
        """The JSON body for ``request``, and whether stop strings were added that cut a closing tag."""
        native = self.tool_calls == "native"
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.name,
            "messages": openai_messages(request.messages, native=native, calls_too=False),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }
        stop = list(request.stop)
        restore = False
        if native:
            stop = [s for s in stop if s != CALL_CLOSE]  # the server's tool-call parser needs the tag
            if request.tools:
                body["tools"] = [openai_tool(tool) for tool in request.tools]
                body["tool_choice"] = "auto"
        elif request.grammar and self.grammar_field != "off":
            _put_grammar(body, self.grammar_field, request.grammar)
        elif request.grammar and not stop:
            stop, restore = list(STOP_STRINGS), True
        if stop:
            body["stop"] = stop
        return body, restore

    def _response(
        self, request: ModelRequest, reply: dict[str, Any], restore: bool, seconds: float
    ) -> ModelResponse:
        choice = _first_choice(reply, self.base_url)
        text = reply_turn_text(choice.get("message") or {})
        finish: Literal["stop", "length"] = "length" if choice.get("finish_reason") == "length" else "stop"
        if restore and finish == "stop":
            text = complete_turn(text)
        return ModelResponse(text, finish, self._usage(request, reply, text), seconds)

    def _usage(self, request: ModelRequest, reply: Mapping[str, Any], text: str) -> Usage:
        raw = _dict(reply.get("usage"))
        prompt = _int(raw.get("prompt_tokens"))
        # A server that counts nothing still spends the episode's token budget: about 4 characters a token.
        completion = _int(raw.get("completion_tokens")) if "completion_tokens" in raw else len(text) // 4
        # llama-server's ``timings.cache_n``, or OpenAI's (and vLLM's) ``cached_tokens``.
        cached = _dict(reply.get("timings")).get(
            "cache_n", _dict(raw.get("prompt_tokens_details")).get("cached_tokens")
        )
        reused = min(_int(cached), prompt)
        previous = None
        if request.previous_messages > 0:
            previous = self._totals.get(request.messages[: request.previous_messages - 1])
        self._totals.put(request.messages, prompt + completion)
        return Usage(
            prompt_tokens=prompt,
            prompt_tokens_evaluated=prompt - reused,
            prompt_tokens_reused=reused,
            new_prompt_tokens=max(prompt - previous, 0) if previous is not None else prompt,
            completion_tokens=completion,
        )

    # -- transport ------------------------------------------------------------------------------

    def _find_model(self, wanted: str | None) -> dict[str, Any]:
        """The server's entry for ``wanted``, asked once at construction (blocking: nothing runs yet)."""
        with httpx.Client(**self._client_options) as client:
            for attempt in itertools.count():
                try:
                    response = client.get("/models")
                except httpx.TransportError as exc:  # fail fast: most likely a wrong address
                    raise ModelServerError(
                        f"cannot reach the model server at {self.base_url}: {_describe(exc)} (is it running?)"
                    ) from exc
                retry = self._check(response)
                if retry is None:
                    return _pick_model(_json(response, self.base_url), wanted, self.base_url)
                time.sleep(self._wait(attempt, retry))
        raise AssertionError("unreachable")

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = _LoopState(
                httpx.AsyncClient(**self._client_options), anyio.CapacityLimiter(self._max_concurrency)
            )
            self._loops[loop] = state
        return state

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        state = self._loop_state()
        for attempt in itertools.count():
            async with state.limiter:  # a request waiting out a backoff holds no slot
                try:
                    response = await state.client.post("/chat/completions", json=body)
                except httpx.TransportError as exc:
                    retry = self._transport_failure(exc)
                else:
                    checked = self._check(response)
                    if checked is None:
                        return _json(response, self.base_url)
                    retry = checked
            await anyio.sleep(self._wait(attempt, retry))
        raise AssertionError("unreachable")

    # -- what to do after a reply ----------------------------------------------------------------

    def _check(self, response: httpx.Response) -> _Retry | None:
        """None for a success, a retry for a transient failure; raises for the rest."""
        if response.is_success:
            return None
        status = response.status_code
        message, fields = server_error(response)
        context = context_error(message, fields)
        if context is not None and status not in _RETRY_STATUSES:
            raise context  # whatever the status: sending it again cannot help
        if status in _RETRY_STATUSES or status >= 500:
            return _Retry(f"HTTP {status}: {message}", retry_after(response.headers))
        raise ModelServerError(f"model server {self.base_url} refused the request: HTTP {status}: {message}")

    def _transport_failure(self, exc: httpx.TransportError) -> _Retry:
        if isinstance(exc, httpx.ReadTimeout):  # the server is still working on it: resending piles up work
            raise ModelServerError(
                f"model server {self.base_url} sent no reply within {self.timeout:g} s"
            ) from exc
        return _Retry(_describe(exc), None)

    def _wait(self, attempt: int, retry: _Retry) -> float:
        if attempt >= self._retry.retries:
            raise ModelServerError(
                f"model server {self.base_url} failed {attempt + 1} times; last: {retry.reason}"
            )
        if retry.after is not None and retry.after > self._retry.max_retry_after:
            raise ModelServerError(
                f"model server {self.base_url} asks to retry after {retry.after:g} s "
                f"(more than {self._retry.max_retry_after:g} s); last: {retry.reason}"
            )
        return self._retry.delay(attempt, retry.after, self._rng)


@dataclass(frozen=True)
class _LoopState:
    client: httpx.AsyncClient
    limiter: anyio.CapacityLimiter


@dataclass(frozen=True)
class _Retry:
    reason: str
    after: float | None


class _ContextError(ContextFullError):
    """A context overflow, with the room the server says is left for the reply when it says so."""

    def __init__(self, message: str, room: int | None) -> None:
        super().__init__(message)
        self.room = room


def _with_room(body: dict[str, Any], exc: _ContextError) -> dict[str, Any]:
    """The body again with ``max_tokens`` cut to the room left; re-raises when there is not enough."""
    if exc.room is None or exc.room < MIN_COMPLETION_TOKENS or exc.room >= body["max_tokens"]:
        raise exc
    return {**body, "max_tokens": exc.room}


# --------------------------------------------------------------------------- wire formats


def normalize_base_url(url: str) -> str:
    """``http://host:port`` or ``.../v1`` (with or without a trailing slash) -> ``.../v1``."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"model server URL must start with http:// or https://, got {url!r}")
    return url if url.endswith("/v1") else url + "/v1"


def _put_grammar(body: dict[str, Any], field_name: str, grammar: str) -> None:
    if field_name == "structured_outputs":
        body["structured_outputs"] = {"grammar": grammar}
    else:
        body[field_name] = grammar


def _grammar_field(choice: GrammarField, entry: Mapping[str, Any]) -> str:
    if choice != "auto":
        return choice
    return _GRAMMAR_OWNERS.get(_str(entry.get("owned_by")), "off")


def _pick_model(listing: dict[str, Any], wanted: str | None, base_url: str) -> dict[str, Any]:
    data = listing.get("data")
    entries = (
        [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if isinstance(data, list)
        else []
    )
    ids = [m["id"] for m in entries]
    if wanted is None:
        if not entries:
            raise ModelServerError(f"model server {base_url} lists no models; name one with --api-model")
        return entries[0]
    for entry in entries:
        if entry["id"] == wanted:
            return entry
    raise ModelServerError(f"model server {base_url} has no model {wanted!r}; it serves {ids}")


def _first_choice(reply: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelServerError(
            f"model server {base_url} sent a reply with no choices: {_snippet(json.dumps(reply))}"
        )
    return choices[0]


def _json(response: httpx.Response, base_url: str) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        value = None
    except RecursionError:  # nested deeper than the parser's stack: no reply this project can read
        raise ModelServerError(
            f"model server {base_url} sent a reply nested too deeply to read (HTTP {response.status_code}): "
            f"{_snippet(response.text)}"
        ) from None
    if not isinstance(value, dict):
        raise ModelServerError(
            f"model server {base_url} sent something that is not a JSON object "
            f"(HTTP {response.status_code}): {_snippet(response.text)}"
        )
    return value


# --------------------------------------------------------------------------- errors


def server_error(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The server's error message on one line, and the error object's fields.

    Reads OpenAI/llama-server/vLLM ``{"error": {"message": ...}}``, Ollama ``{"error": "..."}``,
    vLLM's flat ``{"message": ...}`` and FastAPI's ``{"detail": ...}``; else the body's text.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    message: Any = None
    fields: dict[str, Any] = {}
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            fields, message = error, error.get("message")
        elif isinstance(error, str):
            fields, message = body, error
        elif "message" in body:
            fields, message = body, body.get("message")
        elif "detail" in body:
            message = _detail(body["detail"])
    if not isinstance(message, str) or not message.strip():
        message = response.text or response.reason_phrase
    return _snippet(message), fields


def _detail(detail: Any) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(part) for part in first.get("loc", []))
        return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return str(detail)


_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error"}
_CONTEXT_RE = re.compile(
    r"context length|context size|context window|maximum context|n_ctx|too many tokens|"
    r"prompt is too long|input is too long",
    re.I,
)
_WINDOW_RES = (
    re.compile(r"maximum context length is (\d+)", re.I),
    re.compile(r"available context size \((\d+) tokens\)", re.I),
    re.compile(r"context window of (\d+)", re.I),
)
_PROMPT_RES = (
    re.compile(r"(\d+) input tokens", re.I),  # vLLM
    re.compile(r"\((\d+) in the messages", re.I),  # llama-cpp-python
    re.compile(r"request \((\d+) tokens\)", re.I),  # llama-server
    re.compile(r"requested tokens \((\d+)\)", re.I),
)


def context_error(message: str, fields: Mapping[str, Any]) -> _ContextError | None:
    """A context overflow read from an error reply, with the room left when the numbers are given."""
    code = {_str(fields.get("code")), _str(fields.get("type"))}
    if not (code & _CONTEXT_CODES or _CONTEXT_RE.search(message)):
        return None
    window = _int(fields.get("n_ctx")) or _first_number(_WINDOW_RES, message)
    prompt = _int(fields.get("n_prompt_tokens")) or _first_number(_PROMPT_RES, message)
    room = window - prompt if window and prompt else None
    return _ContextError(f"model server: {message}", room)


def _first_number(patterns: Sequence[re.Pattern[str]], text: str) -> int:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return 0


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        with contextlib.suppress(ValueError):
            return max(float(millis) / 1000, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _snippet(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------- shared state


class _Totals:
    """Prompt plus completion tokens per transcript (keyed by a digest), the most recent first kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(messages: Sequence[Message]) -> str:
        text = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def get(self, messages: Sequence[Message]) -> int | None:
        with self._lock:
            return self._values.get(self._key(messages))

    def put(self, messages: Sequence[Message], tokens: int) -> None:
        key = self._key(messages)
        with self._lock:
            self._values[key] = tokens
            self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)
