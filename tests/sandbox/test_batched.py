"""The batched llama.cpp backend on the real embedded model: same text as the one-sequence path,
shared prompts evaluated once, grammar-valid turns under concurrency, clear failures."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from sandbox.episodes import Limits, grammar_for, run_episode
from sandbox.hub import ToolHub
from sandbox.models import BatchedLlamaModel, LlamaModel, ModelRequest, ModelResponse
from sandbox.records import ContextFullError, Message, Sampling, Task, ToolSpec
from sandbox.turns import STOP_STRINGS, action_end, parse_turn, system_prompt

pytestmark = pytest.mark.model

PROMPTS = ["What is 2+2?", "Name three colors.", "Write a haiku about rain.", "Count to five."]


@pytest.fixture(scope="module")
def batched() -> Iterator[BatchedLlamaModel]:
    model = BatchedLlamaModel(n_seq=4, n_ctx=2048)
    yield model
    model.close()


def _request(prompt: str, *, temperature: float = 0.0, seed: int = 0, max_tokens: int = 32) -> ModelRequest:
    return ModelRequest(
        messages=[Message(role="user", content=prompt)],
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed),
    )


def test_one_sequence_writes_what_the_plain_backend_writes(llama_model: LlamaModel) -> None:
    # With one sequence the batches are the plain backend's batches, so greedy and seeded sampling
    # must give the very same text: the scheduler and the sampler chain add nothing of their own.
    single = BatchedLlamaModel(n_seq=1, n_ctx=llama_model.n_ctx)
    try:
        for prompt in PROMPTS[:2]:
            for temperature, seed in ((0.0, 0), (0.8, 7)):
                request = _request(prompt, temperature=temperature, seed=seed)
                ours, theirs = single.complete(request), llama_model.complete(request)
                assert ours.text == theirs.text
                assert ours.finish_reason == theirs.finish_reason
                assert ours.usage.completion_tokens == theirs.usage.completion_tokens
    finally:
        single.close()


def test_concurrent_turns_share_decode_steps(batched: BatchedLlamaModel) -> None:
    before = batched.stats.decode_calls
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        replies = list(pool.map(lambda p: batched.complete(_request(p, temperature=0.8)), PROMPTS))
    assert all(r.text for r in replies)
    generated = sum(r.usage.completion_tokens for r in replies)
    steps = batched.stats.decode_calls - before
    assert batched.stats.max_batch_sequences >= 2
    assert steps < generated  # several sequences advanced in the same llama_decode


def test_samples_of_one_prompt_evaluate_it_once(batched: BatchedLlamaModel) -> None:
    system = "You are a careful assistant who answers briefly. " * 20
    messages = [Message(role="system", content=system), Message(role="user", content="Say hello.")]
    requests = [
        ModelRequest(messages=messages, sampling=Sampling(temperature=0.8, max_tokens=8, seed=i))
        for i in range(4)
    ]
    copied = batched.stats.prompt_tokens_copied
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(batched.complete, requests))
    prompt = replies[0].usage.prompt_tokens
    evaluated = sorted(r.usage.prompt_tokens_evaluated for r in replies)
    # one sample evaluates the prompt (less what an earlier test left in the cache); the others copy it
    assert evaluated[:3] == [1, 1, 1]
    assert all(r.usage.prompt_tokens == prompt for r in replies)
    assert batched.stats.prompt_tokens_copied - copied >= 3 * (prompt - 1) - prompt


def test_grammar_holds_for_every_sequence(batched: BatchedLlamaModel) -> None:
    tools = [
        ToolSpec(
            name="get_weather",
            description="Weather for a city",
            input_schema={
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}},
                "required": ["city"],
            },
        )
    ]
    grammar = grammar_for(tools)
    questions = ["Weather in Paris?", "Is it raining in Oslo?", "What is 3+4?", "Hello!", "Cold in Rome?"]

    def turn(i: int) -> ModelResponse:
        messages = [
            Message(role="system", content=system_prompt(tools)),
            Message(role="user", content=questions[i]),
        ]
        request = ModelRequest(messages, Sampling(temperature=0.8, max_tokens=300, seed=i), grammar=grammar)
        return batched.complete(request)

    with ThreadPoolExecutor(len(questions)) as pool:
        replies = list(pool.map(turn, range(len(questions))))
    finished = [reply for reply in replies if reply.finish_reason == "stop"]
    assert len(finished) >= 3  # a rambling thought of 400 one-character tokens may hit max_tokens
    for reply in finished:
        parsed = parse_turn(reply.text)
        assert parsed.error is None, (reply.text, parsed.error)
        assert parsed.action in ("tool_call", "answer")
        if parsed.action == "tool_call":
            assert parsed.call is not None and parsed.call.name == "get_weather"


def test_stop_strings_end_a_free_turn(batched: BatchedLlamaModel) -> None:
    request = ModelRequest(
        messages=[Message(role="user", content="Reply with exactly: <answer>yes</answer> and then a story.")],
        sampling=Sampling(temperature=0.0, max_tokens=64),
        stop=STOP_STRINGS,
    )
    reply = batched.complete(request)
    assert not any(stop in reply.text for stop in STOP_STRINGS)


def test_a_prompt_longer_than_the_context_is_refused(batched: BatchedLlamaModel) -> None:
    huge = "word " * 3000
    with pytest.raises(ContextFullError, match="leaves"):
        batched.complete(_request(huge))
    assert batched.complete(_request("Hi", max_tokens=4)).usage.completion_tokens > 0  # still serving


def test_a_full_unified_kv_buffer_fails_one_turn_not_the_model() -> None:
    # Four sequences of ~300 tokens cannot all fit 512 cells: idle sequences are evicted first, and
    # a turn that still does not fit ends with ContextFullError while the others finish.
    model = BatchedLlamaModel(n_seq=4, n_ctx=512, kv_cells=512, kv_unified=True)
    outcomes: list[str] = []
    lock = threading.Lock()

    def turn(i: int) -> None:
        request = _request(f"Story {i}: " + "once upon a time " * 40, temperature=0.8, seed=i, max_tokens=200)
        try:
            model.complete(request)
            outcome = "ok"
        except ContextFullError:
            outcome = "full"
        with lock:
            outcomes.append(outcome)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(turn, range(4)))
        assert len(outcomes) == 4 and "ok" in outcomes
        assert model.complete(_request("Hi", max_tokens=4)).text is not None
    finally:
        model.close()


def test_separate_streams_share_the_cells_out_per_sequence() -> None:
    model = BatchedLlamaModel(n_seq=4, n_ctx=2048, kv_cells=1000)
    try:
        assert model.n_ctx == model.info.n_ctx == 250  # 1,000 cells in four streams
        with pytest.raises(ContextFullError, match="of 250"):
            model.complete(_request("word " * 300))
        assert model.complete(_request("Hi", max_tokens=4)).usage.completion_tokens > 0
    finally:
        model.close()
    with pytest.raises(ValueError, match="context of 2 tokens"):
        BatchedLlamaModel(n_seq=4, kv_cells=8)


def test_a_unified_buffer_shares_a_prompt_between_samples() -> None:
    model = BatchedLlamaModel(n_seq=3, n_ctx=1024, kv_unified=True)
    messages = [Message(role="system", content="Answer briefly. " * 30), Message(role="user", content="Hi.")]
    requests = [
        ModelRequest(messages=messages, sampling=Sampling(temperature=0.8, max_tokens=8, seed=i))
        for i in range(3)
    ]
    try:
        with ThreadPoolExecutor(3) as pool:
            replies = list(pool.map(model.complete, requests))
        assert sorted(r.usage.prompt_tokens_evaluated for r in replies)[:2] == [1, 1]
        assert model.stats.prompt_tokens_copied >= 2 * (replies[0].usage.prompt_tokens - 1)
        assert all(r.text for r in replies)
    finally:
        model.close()


def test_close_fails_waiting_turns_instead_of_hanging() -> None:
    model = BatchedLlamaModel(n_seq=1, n_ctx=1024)
    errors: list[BaseException] = []

    def turn() -> None:
        try:
            model.complete(_request("Write a long story about a dragon.", temperature=0.8, max_tokens=400))
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=turn) for _ in range(2)]
    for thread in threads:
        thread.start()
    while model.stats.tokens_generated < 2:
        threading.Event().wait(0.01)
    model.close()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors and all("closed" in str(e) for e in errors)


@pytest.mark.anyio
async def test_concurrent_episodes_over_a_real_server(batched: BatchedLlamaModel) -> None:
    from servers.calculator import server as calculator

    task = Task(id="calc", prompt="What is 17*24-39? Use the calculator.", servers=["calculator"])
    sampling = Sampling(temperature=0.8, max_tokens=300)
    traces = []
    async with ToolHub.in_memory({"calculator": calculator}) as hub:

        async def one(sample: int) -> None:
            seeded = sampling.model_copy(update={"seed": 1000 * sample})
            traces.append(
                await run_episode(task, batched, hub, Limits(max_steps=3), sampling=seeded, sample=sample)
            )

        async with anyio.create_task_group() as group:
            for sample in range(4):
                group.start_soon(one, sample)
    assert sorted(t.sample for t in traces) == [0, 1, 2, 3]
    for trace in traces:
        assert trace.stop_reason in ("answer", "max_steps", "token_budget")
        for step in trace.steps:
            assert step.finish_reason == "length" or step.parse_error is None, (
                step.raw_text,
                step.parse_error,
            )
        # every later turn of an episode reuses the KV of its earlier turns
        for step in trace.steps[1:]:
            assert step.usage.prompt_tokens_reused >= trace.steps[0].usage.prompt_tokens, step.usage


def test_a_free_turn_ends_at_its_bare_call(batched: BatchedLlamaModel) -> None:
    call = '{"name": "f", "arguments": {"a": 1}}'
    goes_on = "root ::= " + json.dumps(call) + ' "\\n<tool_response>" [a-z ]{8,40} "</tool_response>"'
    request = ModelRequest(
        [Message(role="user", content="Call f.")],
        Sampling(temperature=0.0, max_tokens=96),
        grammar=goes_on,
        stop_at=functools.partial(action_end, tool_names={"f"}),
    )
    reply = batched.complete(request)
    assert reply.text == call and reply.finish_reason == "stop"
