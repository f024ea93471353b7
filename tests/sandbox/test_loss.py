"""Next-token loss of traces on the real model, against a direct numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox.datasets import TraceScorer, tokenize_trace
from sandbox.models import LlamaModel
from sandbox.records import Message, ModelInfo, Task, Trace

SYSTEM = Message(role="system", content="You are a helpful assistant. Use tools when you need data.")
USER = Message(role="user", content="What is 17 times 24?")


def _trace(trace_id: str, *turns: Message) -> Trace:
    return Trace(
        id=trace_id,
        task_id="t",
        task=Task(id="t", prompt=USER.content),
        model=ModelInfo(name="m"),
        stop_reason="answer",
        messages=[SYSTEM, USER, *turns],
    )


FIRST = _trace(
    "a",
    Message(
        role="assistant",
        content='<think>\nI can compute it.\n</think>\n<tool_call>\n{"name": "calculate", '
        '"arguments": {"expression": "17*24"}}\n</tool_call>',
    ),
    Message(role="tool", content='<tool_response name="calculate">\n408\n</tool_response>'),
    Message(role="assistant", content="<think>\nThe tool says 408.\n</think>\n<answer>408</answer>"),
)
SECOND = _trace(
    "b", Message(role="assistant", content="<think>\nEasy.\n</think>\n<answer>about 400</answer>")
)


def test_assistant_tokens_are_the_contents(llama_model: LlamaModel) -> None:
    tokenized = tokenize_trace(llama_model, FIRST.messages)
    picked = [t for t, mine in zip(tokenized.tokens, tokenized.assistant, strict=True) if mine]
    text = llama_model._llm.detokenize(picked, special=True).decode()
    assert text == FIRST.messages[2].content + FIRST.messages[4].content
    # the pieces, joined, are the rendered transcript
    whole = llama_model._llm.detokenize(tokenized.tokens, special=True).decode()
    assert whole == llama_model.render(FIRST.messages, add_generation_prompt=False)


def test_loss_matches_numpy_on_all_logits(llama_model: LlamaModel) -> None:
    """The same tokens through a logits_all model; cross-entropy computed with numpy."""
    from llama_cpp import Llama

    tokenized = tokenize_trace(llama_model, FIRST.messages)
    tokens = tokenized.tokens
    (result,) = TraceScorer(llama_model).score_all([FIRST])
    reference = Llama(model_path=str(llama_model.path), n_ctx=1024, logits_all=True, verbose=False)
    try:
        reference.eval(tokens)
        logits = np.asarray(reference.scores[: len(tokens) - 1], dtype=np.float64)  # inputs = tokens[:-1]
    finally:
        reference.close()
    labels = np.asarray(tokens[1:])  # labels = tokens[1:]
    log_softmax = logits - logits.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    token_lp = log_softmax[np.arange(len(labels)), labels]
    mask = np.asarray(tokenized.assistant[1:])
    expected = -token_lp[mask].mean()
    assert result.tokens == int(mask.sum())
    assert result.loss is not None and result.loss == pytest.approx(expected, abs=2e-3)
    assert result.perplexity == pytest.approx(math.exp(result.loss))


def test_shared_prompt_is_evaluated_once(llama_model: LlamaModel) -> None:
    first, second = TraceScorer(llama_model).score_all([FIRST, SECOND])
    assert first.evaluated_tokens == first.total_tokens
    shared = len(tokenize_trace(llama_model, [SYSTEM, USER]).tokens)
    assert second.evaluated_tokens <= second.total_tokens - shared + 8
    # scoring alone gives the same loss as scoring after another trace
    (alone,) = TraceScorer(llama_model).score_all([SECOND])
    assert alone.loss == pytest.approx(second.loss, abs=2e-3)


def test_generation_still_works_after_scoring(llama_model: LlamaModel) -> None:
    from sandbox.models import ModelRequest
    from sandbox.records import Sampling

    request = ModelRequest([USER], Sampling(max_tokens=8))
    before = llama_model.complete(request).text
    TraceScorer(llama_model).score_all([FIRST])
    assert llama_model.complete(request).text == before


def test_what_cannot_be_scored_says_why(llama_model: LlamaModel) -> None:
    no_assistant = _trace("n")
    huge = _trace("h", Message(role="assistant", content="word " * 6000))
    results = TraceScorer(llama_model).score_all([no_assistant, huge])
    assert results[0].loss is None and "no assistant tokens" in results[0].reason
    assert results[1].loss is None and "exceeds the context" in results[1].reason


def test_loss_command_writes_losses_and_filters_by_perplexity(sandbox_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from sandbox.records import read_traces, write_trace

    traces = tmp_path / "traces.jsonl"
    with traces.open("w") as handle:
        for trace in (FIRST, SECOND):
            write_trace(handle, trace)
    losses, kept = tmp_path / "losses.jsonl", tmp_path / "kept.jsonl"
    done = sandbox_cli("loss", str(traces), "-o", str(losses), "--max-perplexity", "1e9", "--keep", str(kept))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in losses.read_text().splitlines()]
    assert [r["trace_id"] for r in rows] == ["a", "b"] and all(r["loss"] > 0 for r in rows)
    assert [t.id for t in read_traces(kept)] == ["a", "b"]
    assert "perplexity" in done.stdout and "2/2 scored" in done.stdout
    cutoff = min(r["perplexity"] for r in rows) + 1e-6  # keeps exactly the less surprising trace
    done = sandbox_cli("loss", str(traces), "--max-perplexity", str(cutoff), "--keep", str(kept))
    assert done.returncode == 0, done.stderr
    best = min(rows, key=lambda r: r["perplexity"])["trace_id"]
    assert [t.id for t in read_traces(kept)] == [best]


def test_loss_command_bad_input(sandbox_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    done = sandbox_cli("loss", str(bad))
    assert done.returncode == 2 and f"{bad}:1" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = sandbox_cli("loss", str(bad), "--max-perplexity", "3")
    assert done.returncode == 2 and "go together" in done.stderr


@pytest.mark.model
def test_a_native_trace_is_scored_as_its_template_rendered_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A trace of a native format was prompted with the tools in the template's own argument; its
    loss is taken on that text (the tool list included), not on the transcript without it."""
    from pathlib import Path

    from sandbox.models import default_model_path, write_chat_template
    from sandbox.records import ToolSpec
    from sandbox.turns import Format

    template = Path(__file__).resolve().parents[1] / "fixtures" / "templates" / "hermes.jinja"
    gguf = write_chat_template(default_model_path(), tmp_path / "hermes.gguf", template.read_text())
    calc = ToolSpec(name="calculate", description="Exact arithmetic.", input_schema={"type": "object"})
    call = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "17*24"}}\n</tool_call>'
    trace = _trace(
        "n",
        Message(role="assistant", content=call),
        Message(role="tool", content="408"),
        Message(role="assistant", content="It is 408."),
    ).model_copy(update={"format": "hermes", "tools": [calc]})
    model = LlamaModel(gguf, n_ctx=2048)
    try:
        tools = Format("hermes", think=False).template_tools([calc])
        with_tools, without = (
            tokenize_trace(model, trace.messages, tools),
            tokenize_trace(model, trace.messages),
        )
        (scored,) = TraceScorer(model).score_all([trace])
        tags = TraceScorer(model).score_all([trace.model_copy(update={"format": "tags"})])[0]
    finally:
        model.close()
    assert scored.loss is not None and scored.total_tokens == len(with_tools.tokens)
    assert len(with_tools.tokens) > len(without.tokens) + 20  # the template's tool list
    assert tags.total_tokens == len(without.tokens)
