"""The OpenAI-compatible HTTP backend.

Against a scripted server on loopback (tests/fixtures/openai_stub.py) for what a real server will not
do on demand: 429 with Retry-After, 5xx, dropped connections, 4xx errors, context overflows, native
tool calls, slow replies. Against llama-cpp-python's own server, started here on loopback with the
embedded model, for the real thing (marked ``model``).
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub
from sandbox.models import ModelRequest, OpenAIModel, RetryPolicy
from sandbox.models._http import normalize_base_url, retry_after
from sandbox.records import (
    ConfigError,
    ContextFullError,
    Message,
    ModelServerError,
    Sampling,
    Task,
    ToolCall,
    ToolSpec,
)
from sandbox.turns import STOP_STRINGS, build_grammar, parse_turn, render_call, render_result, reply_turn_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


import openai_stub as stub_module  # noqa: E402  (loaded by tests/conftest.py)

StubServer, Reply, chat, call, error = (
    stub_module.StubServer,
    stub_module.Reply,
    stub_module.chat,
    stub_module.call,
    stub_module.error,
)

FAST = RetryPolicy(retries=3, base_delay=0.01, max_delay=0.05)
CALCULATE = ToolSpec(
    name="calculate",
    description="Evaluate an arithmetic expression exactly.",
    input_schema={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
TASK = Task(
    id="t1", prompt="What is 17*24-39?", servers=["calculator"], expected_answer="369", answer_match="number"
)
CALL_TURN = "<think>\nneed data\n</think>\n<tool_call>\n" + json.dumps(
    {"name": "calculate", "arguments": {"expression": "17*24-39"}}
)


@pytest.fixture
def stub() -> Iterator[Any]:
    with StubServer() as server:
        yield server


@pytest.fixture
async def hub() -> AsyncIterator[ToolHub]:
    from servers.calculator import server as calculator

    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        yield hub


def make(stub: Any, **options: Any) -> OpenAIModel:
    return OpenAIModel(stub.url, retry=options.pop("retry", FAST), **options)


def request(
    messages: list[Message] | None = None,
    *,
    grammar: str | None = None,
    stop: tuple[str, ...] = (),
    tools: tuple[ToolSpec, ...] = (),
    **sampling: Any,
) -> ModelRequest:
    messages = messages or [Message(role="system", content="Be brief."), Message(role="user", content="Hi")]
    return ModelRequest(
        messages=tuple(messages), sampling=Sampling(**sampling), grammar=grammar, stop=stop, tools=tools
    )


# --------------------------------------------------------------------------- requests and replies


def test_text_mode_sends_the_sampling_and_reads_the_reply(stub: Any) -> None:
    stub.push(Reply(body=chat("<answer>hello</answer>", finish="length")))
    model = make(stub)
    response = model.complete(request(temperature=0.7, top_p=0.9, max_tokens=33, seed=5, stop=("</answer>",)))
    body = stub.requests[0]
    assert body["model"] == "stub-model" and body["messages"][1] == {"role": "user", "content": "Hi"}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 33, 5)
    assert body["stop"] == ["</answer>"] and "tools" not in body and "grammar" not in body
    assert response.text == "<answer>hello</answer>" and response.finish_reason == "length"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (10, 5)
    assert model.info.name == "stub-model" and model.info.backend == f"openai-http ({stub.url}/v1)"
    assert model.info.sha256 == "" and model.grammar_field == "off"  # an unknown server gets no grammar


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_or_without_v1(stub: Any, suffix: str) -> None:
    model = OpenAIModel(stub.url + suffix)
    assert model.base_url == stub.url + "/v1"
    model.complete(request())
    assert len(stub.requests) == 1


def test_bad_urls_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        normalize_base_url("localhost:8080")
    with pytest.raises(ConfigError, match="tool_calls"):
        OpenAIModel("http://127.0.0.1:9", tool_calls="json")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAIModel("http://127.0.0.1:9", max_concurrency=0)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("grammar", {"grammar": "root ::= x"}),
        ("guided_grammar", {"guided_grammar": "root ::= x"}),
        ("structured_outputs", {"structured_outputs": {"grammar": "root ::= x"}}),
    ],
)
def test_the_grammar_goes_in_the_configured_field(stub: Any, field: str, expected: dict[str, Any]) -> None:
    make(stub, grammar=field).complete(request(grammar="root ::= x"))
    body = stub.requests[0]
    assert {key: body[key] for key in expected} == expected and "stop" not in body


def test_without_a_grammar_field_stop_strings_cut_the_turn_and_its_tag_is_put_back(stub: Any) -> None:
    stub.push(Reply(body=chat(CALL_TURN)))
    response = make(stub, grammar="off").complete(request(grammar="root ::= x"))
    body = stub.requests[0]
    assert "grammar" not in body and body["stop"] == STOP_STRINGS
    assert response.text.endswith("\n</tool_call>")
    parsed = parse_turn(response.text)
    assert parsed.action == "tool_call" and parsed.call is not None
    assert parsed.call.arguments == {"expression": "17*24-39"}


@pytest.mark.parametrize(
    ("owner", "field"), [("llamacpp", "grammar"), ("me", "grammar"), ("vllm", "off"), ("library", "off")]
)
def test_auto_sends_a_grammar_only_to_llama_cpp_servers(owner: str, field: str) -> None:
    with StubServer(models=[{"id": "m", "owned_by": owner}]) as server:
        assert OpenAIModel(server.url).grammar_field == field


def test_the_model_is_picked_from_the_servers_list() -> None:
    models = [{"id": "a", "owned_by": "x"}, {"id": "b", "owned_by": "x", "max_model_len": 8192}]
    with StubServer(models=models) as server:
        assert OpenAIModel(server.url).name == "a"
        model = OpenAIModel(server.url, model="b")
        assert model.info.name == "b" and model.info.n_ctx == 8192
        model.complete(request())
        assert server.requests[0]["model"] == "b"
        with pytest.raises(ModelServerError, match=r"has no model 'c'; it serves \['a', 'b'\]"):
            OpenAIModel(server.url, model="c")
    with StubServer(models=[]) as server, pytest.raises(ModelServerError, match="lists no models"):
        OpenAIModel(server.url)


def test_an_unreachable_server_fails_at_once_with_its_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(
            ModelServerError, match=rf"cannot reach the model server at http://127.0.0.1:{port}/v1"
        ):
            OpenAIModel(f"http://127.0.0.1:{port}")


def test_the_api_key_goes_as_a_bearer_token(stub: Any) -> None:
    make(stub, api_key="sekret").complete(request())
    assert stub.headers[0]["authorization"] == "Bearer sekret"


# --------------------------------------------------------------------------- native tool calls


def test_native_mode_sends_tools_and_the_transcript_in_openai_shape(stub: Any) -> None:
    call_text = "<think>\nneed the number\n</think>\n" + render_call(
        ToolCall(id="call_0", name="calculate", arguments={"expression": "2+2"})
    )
    messages = [
        Message(role="system", content="sys"),
        Message(role="user", content="2+2?"),
        Message(
            role="assistant",
            content=call_text,
            tool_calls=[ToolCall(id="call_0", name="calculate", arguments={"expression": "2+2"})],
        ),
        Message(
            role="tool", name="calculate", tool_call_id="call_0", content=render_result("calculate", "4")
        ),
    ]
    model = make(stub, tool_calls="native", grammar="grammar")
    model.complete(
        request(messages, grammar="root ::= x", stop=("</tool_call>", "</answer>"), tools=(CALCULATE,))
    )
    body = stub.requests[0]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "calculate",
                "description": CALCULATE.description,
                "parameters": CALCULATE.input_schema,
            },
        }
    ]
    assert body["tool_choice"] == "auto" and "grammar" not in body and body["stop"] == ["</answer>"]
    assistant, tool = body["messages"][2], body["messages"][3]
    assert assistant["content"] == "need the number"
    assert assistant["tool_calls"] == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "calculate", "arguments": '{"expression": "2+2"}'},
        }
    ]
    assert tool == {"role": "tool", "content": "4", "tool_call_id": "call_0"}


def test_text_mode_sends_the_transcript_as_written(stub: Any) -> None:
    messages = [
        Message(role="user", content="2+2?"),
        Message(
            role="assistant", content="<tool_call>x</tool_call>", tool_calls=[ToolCall(id="c", name="n")]
        ),
        Message(role="tool", name="n", tool_call_id="c", content=render_result("n", "4")),
    ]
    make(stub).complete(request(messages, tools=(CALCULATE,)))
    body = stub.requests[0]
    assert body["messages"][1] == {"role": "assistant", "content": "<tool_call>x</tool_call>"}
    assert body["messages"][2]["content"] == render_result("n", "4") and "tools" not in body


def test_native_tool_calls_become_the_projects_turn_text(stub: Any) -> None:
    stub.push(
        Reply(
            body=chat(
                "I need the hourly forecast.",
                tool_calls=[call("calculate", {"expression": "1+1"})],
                finish="tool_calls",
            )
        ),
        Reply(body=chat(None, tool_calls=[call("calculate", "{not json")], reasoning="Thinking hard.")),
        Reply(body=chat("", tool_calls=[call("a", {"x": 1}), call("b", {"y": 2})])),
        Reply(body=chat("The answer is 4.", reasoning="2+2 is 4.")),
    )
    model = make(stub, tool_calls="native")
    first = model.complete(request(tools=(CALCULATE,)))
    parsed = parse_turn(first.text)
    assert first.finish_reason == "stop" and parsed.action == "tool_call" and parsed.call is not None
    assert (parsed.call.name, parsed.call.arguments) == ("calculate", {"expression": "1+1"})
    assert parsed.thought == "I need the hourly forecast."

    broken = parse_turn(model.complete(request(tools=(CALCULATE,))).text)
    assert broken.action == "broken_call" and broken.call is not None and broken.call.name == "calculate"
    assert broken.thought == "Thinking hard." and "not JSON" in (broken.error or "")

    two = model.complete(request(tools=(CALCULATE,))).text
    assert two.count("<tool_call>") == 2
    first_of_two = parse_turn(two)
    assert first_of_two.call is not None and first_of_two.call.name == "a"  # one action a turn: the first

    answer = parse_turn(model.complete(request(tools=(CALCULATE,))).text)
    assert answer.action == "answer" and answer.answer == "The answer is 4." and answer.thought == "2+2 is 4."


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,30}", fullmatch=True)
# Strings without "<": a "</tool_call>" inside an argument would end the block early (a limit of the
# text format itself, shared with every backend).
_texts = st.text(alphabet=st.characters(exclude_characters="<", exclude_categories=["Cs"]), max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)


@given(
    name=_names,
    arguments=st.dictionaries(_texts, _json_values, max_size=4),
    thought=st.text(alphabet=st.characters(exclude_characters="<", exclude_categories=["Cs"]), max_size=60),
    as_string=st.booleans(),
)
def test_any_native_call_reads_back_as_the_same_call(
    name: str, arguments: dict[str, Any], thought: str, as_string: bool
) -> None:
    wire_arguments = json.dumps(arguments) if as_string else arguments
    message = {
        "role": "assistant",
        "content": thought,
        "tool_calls": [{"function": {"name": name, "arguments": wire_arguments}}],
    }
    parsed = parse_turn(reply_turn_text(message))
    assert parsed.action == "tool_call" and parsed.call is not None
    assert (parsed.call.name, parsed.call.arguments) == (name, arguments)
    assert parsed.thought == thought.strip()


# --------------------------------------------------------------------------- usage


def test_usage_reads_cached_tokens_from_either_convention(stub: Any) -> None:
    stub.push(
        Reply(body=chat("a", usage={"prompt_tokens": 100, "completion_tokens": 7}, timings={"cache_n": 60})),
        Reply(
            body=chat(
                "b",
                usage={
                    "prompt_tokens": 100,
                    "completion_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 90},
                },
            )
        ),
        Reply(body={"choices": [{"message": {"content": "x" * 40}, "finish_reason": "stop"}]}),
    )
    model = make(stub)
    first, second, third = (model.complete(request()).usage for _ in range(3))
    assert (first.prompt_tokens_reused, first.prompt_tokens_evaluated) == (60, 40)
    assert (second.prompt_tokens_reused, second.prompt_tokens_evaluated) == (90, 10)
    assert third.completion_tokens == 10  # no usage: about four characters a token, so budgets still bind


@pytest.mark.anyio
async def test_an_episode_runs_on_acomplete_and_counts_new_prompt_tokens(stub: Any, hub: ToolHub) -> None:
    stub.push(
        Reply(body=chat(CALL_TURN + "\n</tool_call>", usage={"prompt_tokens": 100, "completion_tokens": 20})),
        Reply(
            body=chat(
                "<think>\ndone\n</think>\n<answer>369</answer>",
                usage={"prompt_tokens": 150, "completion_tokens": 9},
            )
        ),
    )
    model = make(stub)

    def no_threads(_: ModelRequest) -> Any:
        raise AssertionError("the episode should await acomplete")

    model.complete = no_threads  # type: ignore[method-assign]
    trace = await run_episode(TASK, model, hub)
    assert trace.stop_reason == "answer" and trace.final_answer == "369"
    assert trace.steps[0].result is not None and "369" in trace.steps[0].result.text
    assert trace.model.backend.startswith("openai-http")
    # the second turn's prompt holds the first (100) and its reply (20): 30 tokens are new
    assert [s.usage.new_prompt_tokens for s in trace.steps] == [100, 30]
    assert "grammar" not in stub.requests[0] and stub.requests[0]["stop"] == STOP_STRINGS
    await model.aclose()


@pytest.mark.anyio
async def test_a_native_episode_round_trips_calls(stub: Any, hub: ToolHub) -> None:
    stub.push(
        Reply(
            body=chat("Let me compute.", tool_calls=[call("calculate", {"expression": "17*24-39"}, "srv_1")])
        ),
        Reply(body=chat("<answer>369</answer>")),
    )
    model = make(stub, tool_calls="native")
    trace = await run_episode(TASK, model, hub, mode="free")
    assert trace.stop_reason == "answer" and trace.final_answer == "369"
    assert trace.steps[0].thought == "Let me compute." and trace.steps[0].call is not None
    second = stub.requests[1]
    assert second["tools"][0]["function"]["name"] == "calculate"
    assistant, tool = second["messages"][2], second["messages"][3]
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == "call_0"
    assert "369" in tool["content"] and "<tool_response" not in tool["content"]
    await model.aclose()


# --------------------------------------------------------------------------- failures


def test_429_and_5xx_are_retried_with_the_servers_retry_after(stub: Any) -> None:
    seen: list[tuple[int, float | None]] = []

    class Recorded(RetryPolicy):
        def delay(self, attempt: int, retry_after: float | None, rng: Any) -> float:
            seen.append((attempt, retry_after))
            return 0.0

    stub.push(
        Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "2.5"}),
        error(503, "Loading model"),
        Reply(body=chat("<answer>ok</answer>")),
    )
    response = make(stub, retry=Recorded()).complete(request())
    assert response.text == "<answer>ok</answer>" and len(stub.requests) == 3
    assert seen == [(0, 2.5), (1, None)]


def test_a_dropped_connection_is_retried(stub: Any) -> None:
    stub.push(Reply(drop=True), Reply(body=chat("<answer>ok</answer>")))
    assert make(stub).complete(request()).text == "<answer>ok</answer>"
    assert len(stub.requests) == 2


def test_it_gives_up_after_the_last_retry_naming_the_failure() -> None:
    with StubServer(default=error(500, "CUDA out of\nmemory")) as server:
        with pytest.raises(ModelServerError) as caught:
            make(server).complete(request())
        assert len(server.requests) == FAST.retries + 1
    message = str(caught.value)
    assert "failed 4 times; last: HTTP 500: CUDA out of memory" in message and "\n" not in message


def test_a_retry_after_longer_than_allowed_fails_at_once(stub: Any) -> None:
    stub.push(Reply(429, {"error": {"message": "quota"}}, headers={"Retry-After": "3600"}))
    with pytest.raises(ModelServerError, match=r"asks to retry after 3600 s \(more than 120 s\)"):
        make(stub).complete(request())
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error(400, "failed to parse grammar: missing ::= at line 3"), "HTTP 400: failed to parse grammar"),
        (Reply(401, {"error": "unauthorized"}), "HTTP 401: unauthorized"),  # Ollama's shape
        (Reply(404, {"object": "error", "message": "The model `x` does not exist."}), "HTTP 404: The model"),
        (
            Reply(422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}),
            "body.messages: field",
        ),
        (Reply(403, "<html><body>Forbidden</body></html>"), "HTTP 403: <html><body>Forbidden"),
    ],
)
def test_other_4xx_is_one_line_with_the_servers_message(stub: Any, reply: Any, expected: str) -> None:
    stub.push(reply)
    with pytest.raises(ModelServerError) as caught:
        make(stub).complete(request())
    message = str(caught.value)
    assert expected in message and f"model server {stub.url}/v1 refused the request" in message
    assert "\n" not in message and len(stub.requests) == 1  # never retried


@pytest.mark.parametrize(
    "reply",
    [
        # llama-server
        error(
            400,
            "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
            type="exceed_context_size_error",
            n_prompt_tokens=4476,
            n_ctx=4096,
        ),
        # llama-cpp-python's server
        error(
            400,
            "This model's maximum context length is 2048 tokens. However, you requested 2547 tokens "
            "(2531 in the messages, 16 in the completion).",
            code="context_length_exceeded",
        ),
        # vLLM, the prompt alone too long
        Reply(
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 1536 tokens. "
                "However, your request has 4176 input tokens.",
                "code": 400,
            },
        ),
        # a server that says it with a 500
        error(500, "the request exceeds the available context size, try increasing it"),
    ],
)
def test_context_overflow_is_context_full(stub: Any, reply: Any) -> None:
    stub.push(reply)
    with pytest.raises(ContextFullError) as caught:
        make(stub).complete(request(max_tokens=64))
    assert not isinstance(caught.value, ModelServerError) and len(stub.requests) == 1


def test_a_reply_too_long_for_the_room_left_is_asked_again_shorter(stub: Any) -> None:
    stub.push(
        error(
            400,
            "'max_tokens' or 'max_completion_tokens' is too large: 512. This model's maximum context "
            "length is 4096 tokens and your request has 3800 input tokens (512 > 4096 - 3800).",
        ),
        Reply(body=chat("<answer>ok</answer>")),
    )
    assert make(stub).complete(request(max_tokens=512)).text == "<answer>ok</answer>"
    assert [r["max_tokens"] for r in stub.requests] == [512, 296]


@pytest.mark.parametrize(
    "reply", [Reply(body="not json at all"), Reply(body={"choices": []}), Reply(body=["a", "list"])]
)
def test_a_malformed_reply_is_a_server_error(stub: Any, reply: Any) -> None:
    stub.push(reply)
    with pytest.raises(ModelServerError, match="model server"):
        make(stub).complete(request())


def test_a_reply_slower_than_the_timeout_is_not_sent_again(stub: Any) -> None:
    stub.push(Reply(body=chat("late"), hold=2.0))
    with pytest.raises(ModelServerError, match=r"sent no reply within 0.3 s"):
        make(stub, timeout=0.3).complete(request())
    assert len(stub.requests) == 1


@pytest.mark.anyio
async def test_a_refusal_stops_the_episode_loop(stub: Any, hub: ToolHub) -> None:
    stub.push(Reply(401, {"error": {"message": "invalid api key"}}))
    model = make(stub)
    with pytest.raises(ModelServerError, match="invalid api key"):
        await run_episode(TASK, model, hub)
    await model.aclose()


# --------------------------------------------------------------------------- retry timing and limits


@given(
    attempt=st.integers(0, 12),
    after=st.none() | st.floats(0, 500, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_backoff_grows_is_capped_jittered_and_honours_retry_after(
    attempt: int, after: float | None, seed: int
) -> None:
    import random

    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    delay = policy.delay(attempt, after, random.Random(seed))
    backoff = min(30.0, 0.5 * 2**attempt)
    assert backoff / 2 <= delay or (after is not None and delay >= after)
    assert delay <= max(backoff, after or 0.0)
    assert delay >= (after or 0.0)


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = 1_700_000_000.0
    assert retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:40 GMT"}, now=now) == pytest.approx(20.0)
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


@pytest.mark.anyio
async def test_the_concurrency_limit_holds_across_tasks() -> None:
    with StubServer(default=Reply(body=chat("<answer>ok</answer>"), hold=0.3)) as server:
        model = make(server, max_concurrency=2)
        texts: list[str] = []

        async def one() -> None:
            texts.append((await model.acomplete(request())).text)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for _ in range(6):
                    group.start_soon(one)
        assert texts == ["<answer>ok</answer>"] * 6
        assert server.peak == 2
        await model.aclose()


def test_a_blocking_call_from_a_thread_gets_a_reply_and_closes_its_connection() -> None:
    with StubServer(default=Reply(body=chat("<answer>ok</answer>"))) as server:
        model = make(server)
        for _ in range(2):
            assert model.complete(request()).text == "<answer>ok</answer>"
        assert not model._loops  # each call's loop and connection are gone


# --------------------------------------------------------------------------- the CLI


Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_sandbox_run_against_an_http_server(
    sandbox_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(TASK.model_dump_json() + "\n")
    out = tmp_path / "traces.jsonl"
    monkeypatch.setenv("STUB_KEY", "k-123")
    with StubServer(default=Reply(body=chat("<think>\neasy\n</think>\n<answer>369</answer>"))) as server:
        options = "--servers servers/mcp.json --rewards outcome --api-grammar grammar --api-key-env STUB_KEY"
        done = sandbox_cli(
            "run", "--tasks", str(tasks), "--out", str(out), "--base-url", server.url, *options.split()
        )
        assert done.returncode == 0, done.stderr
        assert "grammar" in server.requests[0] and server.headers[0]["authorization"] == "Bearer k-123"
    trace = json.loads(out.read_text().splitlines()[0])
    assert trace["model"]["backend"] == f"openai-http ({server.url}/v1)" and trace["final_answer"] == "369"
    assert trace["rewards"]["outcome"]["value"] == 1.0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("--base-url http://127.0.0.1:9 --model x.gguf", "--model and --base-url exclude each other"),
        ("--base-url http://127.0.0.1:9 --api-key-env NO_SUCH_VAR_XYZ", "NO_SUCH_VAR_XYZ, which is not set"),
        ("--base-url http://127.0.0.1:9 --api-tool-calls json", "--api-tool-calls must be"),
        ("--base-url http://127.0.0.1:9", "cannot reach the model server at http://127.0.0.1:9/v1"),
        ("--api-model m", "go with --base-url"),
    ],
)
def test_sandbox_run_http_options_are_checked(
    sandbox_cli: Cli, tmp_path: Path, extra: str, expected: str
) -> None:
    options = f"--tasks seed --servers servers/mcp.json {extra}"
    done = sandbox_cli("run", "--out", str(tmp_path / "t.jsonl"), *options.split(), timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr


# --------------------------------------------------------------------------- llama-cpp-python's server


@pytest.mark.model
@pytest.mark.anyio
async def test_real_server_completes_the_same_way_blocking_and_awaited(llama_server: str) -> None:
    model = OpenAIModel(llama_server)
    assert model.info.name == "smollm2" and model.grammar_field == "grammar"
    turn = request(max_tokens=8, temperature=0.0)
    blocking = await anyio.to_thread.run_sync(model.complete, turn)
    awaited = await model.acomplete(turn)
    assert blocking.finish_reason == "length" and blocking.usage.completion_tokens == 8
    assert blocking.usage.prompt_tokens > 10 and blocking.text and awaited.text == blocking.text
    await model.aclose()
    model.close()


@pytest.mark.model
@pytest.mark.anyio
async def test_real_server_context_overflow_ends_the_episode(llama_server: str, hub: ToolHub) -> None:
    model = OpenAIModel(llama_server)
    task = TASK.model_copy(update={"prompt": "word " * 2500})
    trace = await run_episode(task, model, hub)
    assert trace.stop_reason == "context_full" and "2048" in (trace.error or "")
    await model.aclose()


@pytest.mark.model
@pytest.mark.anyio
async def test_real_server_text_episode_under_the_grammar(llama_server: str, hub: ToolHub) -> None:
    model = OpenAIModel(llama_server)
    limits = Limits(max_steps=2, max_completion_tokens=400)
    trace = await run_episode(TASK, model, hub, limits, sampling=Sampling(max_tokens=120))
    assert trace.stop_reason in ("answer", "max_steps", "token_budget"), trace.error
    for step in trace.steps:
        assert step.raw_text.startswith("<think>\n")  # only the grammar writes exactly this
        if step.finish_reason == "stop":
            assert step.action in ("tool_call", "answer"), step.raw_text
        if step.call is not None:
            assert step.call.name == "calculate" and set(step.call.arguments) <= {"expression"}
        assert step.usage.prompt_tokens > 0 and step.usage.completion_tokens > 0
    await model.aclose()


@pytest.mark.model
@pytest.mark.anyio
async def test_real_server_native_tool_calls(llama_server: str, hub: ToolHub) -> None:
    # llama-cpp-python answers a forced tool choice with OpenAI tool_calls: read them as a turn.
    body = {
        "model": "smollm2",
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "17*24?"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "calculate", "parameters": CALCULATE.input_schema}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "calculate"}},
        "max_tokens": 48,
        "temperature": 0.0,
    }
    async with httpx.AsyncClient(timeout=300) as client:
        reply = (await client.post(f"{llama_server}/v1/chat/completions", json=body)).json()
    message = reply["choices"][0]["message"]
    assert message["tool_calls"]
    parsed = parse_turn(reply_turn_text(message))
    assert parsed.action in ("tool_call", "broken_call") and parsed.call is not None
    assert parsed.call.name == "calculate"

    # A native episode: tools, assistant tool_calls and tool messages are accepted by the real server.
    model = OpenAIModel(llama_server, tool_calls="native")
    trace = await run_episode(
        TASK, model, hub, Limits(max_steps=2, max_completion_tokens=200), mode="free",
        sampling=Sampling(max_tokens=64),
    )  # fmt: skip
    assert trace.stop_reason in ("answer", "max_steps", "token_budget"), trace.error
    grammar = build_grammar([CALCULATE])
    transcript = request(
        [
            Message(role="system", content="You can call tools."),
            Message(role="user", content="17*24?"),
            Message(
                role="assistant",
                content=render_call(
                    ToolCall(id="call_0", name="calculate", arguments={"expression": "17*24"})
                ),
                tool_calls=[ToolCall(id="call_0", name="calculate", arguments={"expression": "17*24"})],
            ),
            Message(
                role="tool",
                name="calculate",
                tool_call_id="call_0",
                content=render_result("calculate", "408"),
            ),
        ],
        grammar=grammar,
        tools=(CALCULATE,),
        max_tokens=16,
    )
    response = await model.acomplete(transcript)
    assert response.usage.prompt_tokens > 0
    await model.aclose()
