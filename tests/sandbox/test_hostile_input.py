"""Hostile model output through the real CLI: arguments nested past every parser's limit, numbers
JSON has not got, a lone surrogate. `sandbox generate` runs against an OpenAI-compatible server on
loopback that writes them; every command that reads the run afterwards (resume, score, export, show,
view, replay) reads it (issue 14, items 1-3)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.records import (
    MAX_JSON_DEPTH,
    ModelInfo,
    Reward,
    Step,
    Task,
    ToolCall,
    Trace,
    json_depth,
    loads_bounded,
    read_traces,
    trace_line,
    validate_line,
    write_trace,
)
from sandbox.turns import parse_turn, reply_turn_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
Done = subprocess.CompletedProcess[str]


import openai_stub as stub  # noqa: E402  (loaded by tests/conftest.py)


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def call_text(arguments: str) -> str:
    call = f'{{"name": "deep", "arguments": {{"x": {arguments}}}}}'
    return f"<think>\nhere goes\n</think>\n<tool_call>\n{call}\n</tool_call>"


# prompt -> what the model writes first (then it answers "4")
FIRST_TURN = {
    "deep 215": call_text(nested(215)),
    "deep 300": call_text(nested(300)),
    "deep 3000": call_text(nested(3000)),
    "deep 64": call_text(nested(MAX_JSON_DEPTH - 1)),  # the arguments object plus 63: exactly the bound
    "nan": call_text("NaN"),
    "infinity": call_text("-Infinity"),
    "native deep": None,  # tool_calls whose arguments string nests 3000 deep
    "surrogate": "<answer>4\ud83d</answer>",
}


def reply(body: dict[str, Any]) -> Any:
    messages = body["messages"]
    prompt = messages[1]["content"]
    if any(m["role"] == "assistant" for m in messages):
        return stub.Reply(body=stub.chat("<answer>4</answer>"))
    if prompt == "native deep":
        arguments = json.dumps({"x": 1})[:-1] + ', "y": ' + nested(3000) + "}"
        return stub.Reply(body=stub.chat("", tool_calls=[stub.call("deep", arguments)]))
    return stub.Reply(body=stub.chat(FIRST_TURN[prompt]))


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with stub.StubServer(default=reply) as running:
        yield running


@pytest.fixture(scope="module")
def run_folder(
    tmp_path_factory: pytest.TempPathFactory, server: Any, sandbox_cli: Callable[..., Done]
) -> tuple[Path, Done]:
    folder = tmp_path_factory.mktemp("hostile")
    tasks = folder / "tasks.jsonl"
    tasks.write_text(
        "".join(
            Task(id=prompt.replace(" ", "-"), prompt=prompt, expected_answer="4").model_dump_json() + "\n"
            for prompt in FIRST_TURN
        )
    )
    servers = folder / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {}}))
    done = sandbox_cli(
        "generate", "--tasks", str(tasks), "--servers", str(servers), "--out", str(folder / "run"),
        "--base-url", server.url, "--mode", "free", "--n", "1", "--rewards", "outcome,tool_syntax",
        "--api-tool-calls", "text", timeout=300,
    )  # fmt: skip
    return folder, done


def _traces(folder: Path) -> dict[str, Trace]:
    return {trace.task_id: trace for trace in read_traces(folder / "run" / "traces.jsonl")}


def test_generate_writes_every_hostile_turn_as_data(run_folder: tuple[Path, Done]) -> None:
    folder, done = run_folder
    assert done.returncode == 0, done.stderr
    traces = _traces(folder)
    assert set(traces) == {prompt.replace(" ", "-") for prompt in FIRST_TURN}
    for depth in ("215", "300", "3000"):
        first = traces[f"deep-{depth}"].steps[0]
        assert first.action == "broken_call"
        assert first.parse_error == f"tool call arguments: nested deeper than {MAX_JSON_DEPTH} levels"
        assert first.raw_text.count("[") == int(depth)  # the text is kept as the model wrote it
    bound = traces["deep-64"].steps[0]
    assert bound.action == "tool_call" and bound.call is not None
    assert json_depth(json.dumps(bound.call.arguments)) == MAX_JSON_DEPTH
    assert bound.result is not None and bound.result.error_kind == "unknown_tool"
    assert traces["nan"].steps[0].parse_error == "tool call: NaN is not a JSON number"
    assert traces["infinity"].steps[0].parse_error == "tool call: -Infinity is not a JSON number"
    native = traces["native-deep"].steps[0]
    assert native.action == "broken_call"
    assert native.parse_error == f"tool call arguments: nested deeper than {MAX_JSON_DEPTH} levels"
    surrogate = traces["surrogate"]
    assert surrogate.final_answer == "4\ufffd"
    assert surrogate.notes and "U+FFFD" in surrogate.notes[0] and "final_answer" in surrogate.notes[0]
    assert not traces["deep-3000"].notes  # nothing needed replacing there


def test_every_reader_reads_the_run(run_folder: tuple[Path, Done], sandbox_cli: Callable[..., Done]) -> None:
    folder, done = run_folder
    assert done.returncode == 0, done.stderr
    run = folder / "run"
    traces = run / "traces.jsonl"
    scored = sandbox_cli(
        "score", str(traces), "--rewards", "tool_syntax,outcome", "-o", str(folder / "s.jsonl")
    )
    assert scored.returncode == 0, scored.stderr
    assert len(read_traces(folder / "s.jsonl")) == len(FIRST_TURN)
    exported = sandbox_cli("export", str(run), "--format", "sft", "-o", str(folder / "sft.jsonl"))
    assert exported.returncode == 0, exported.stderr
    shown = sandbox_cli("show", str(traces), "--trace", _traces(folder)["deep-3000"].id)
    assert shown.returncode == 0, shown.stderr
    assert "nested deeper than 64 levels" in shown.stdout
    viewed = sandbox_cli("view", str(run), "-o", str(folder / "v.html"))
    assert viewed.returncode == 0, viewed.stderr
    replayed = sandbox_cli("replay", str(traces), "-o", str(folder / "r.jsonl"), "--rewards", "outcome")
    assert replayed.returncode == 0, replayed.stderr
    again = {trace.task_id: trace for trace in read_traces(folder / "r.jsonl")}
    assert (
        again["deep-3000"].steps[0].parse_error
        == f"tool call arguments: nested deeper than {MAX_JSON_DEPTH} levels"
    )
    assert again["surrogate"].final_answer == "4\ufffd"


def test_resume_reads_the_run_it_made(
    run_folder: tuple[Path, Done], server: Any, sandbox_cli: Callable[..., Done]
) -> None:
    folder, done = run_folder
    assert done.returncode == 0, done.stderr
    before = (folder / "run" / "traces.jsonl").read_bytes()
    asked = len(server.requests)
    resumed = sandbox_cli(
        "generate", "--tasks", str(folder / "tasks.jsonl"), "--servers", str(folder / "mcp.json"),
        "--out", str(folder / "run"), "--resume", "--base-url", server.url, "--mode", "free", "--n", "1",
        "--rewards", "outcome,tool_syntax", timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert (folder / "run" / "traces.jsonl").read_bytes() == before
    assert len(server.requests) == asked  # nothing was left to run


# --------------------------------------------------------------------------- the writer and reader


def _trace(**fields: Any) -> Trace:
    base: dict[str, Any] = {
        "id": "x",
        "task_id": "t",
        "task": Task(id="t", prompt="p"),
        "model": ModelInfo(name="m"),
        "stop_reason": "answer",
    }
    return Trace(**{**base, **fields})


def _deep_value(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [150, 215, 300, 3000])
def test_the_writer_writes_any_trace_and_the_reader_reads_what_it_wrote(tmp_path: Path, levels: int) -> None:
    """A trace built in code (not through the bounded parser) with arguments this deep: written,
    cut to what the serializer can write where needed, with a note, and read back."""
    call = ToolCall(id="c", name="n", arguments={"x": _deep_value(levels)})
    trace = _trace(steps=[Step(index=0, raw_text="", action="tool_call", call=call)])
    path = tmp_path / "t.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        write_trace(handle, trace)
    (back,) = read_traces(path)
    assert back.steps[0].call is not None
    if levels <= 150 or levels == 215:
        assert back.steps[0].call.arguments == call.arguments and not back.notes
    else:
        assert "nested deeper than 200 levels and was cut" in back.notes[0]
        assert "[cut: nested deeper than 200 levels]" in path.read_text()


def test_a_line_nested_deeper_than_any_writer_makes_is_one_error(tmp_path: Path) -> None:
    line = trace_line(_trace()).replace('"error":null', '"error":' + nested(5000))
    path = tmp_path / "t.jsonl"
    path.write_text(line + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "show", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}:1: not a valid trace: the line is nested too deeply to read"
    ]


def test_a_lone_surrogate_anywhere_is_replaced_and_named() -> None:
    trace = _trace(final_answer="4\ud83d", error="x\udc00y", task=Task(id="t", prompt="\ud83d\ude00 ok"))
    back = validate_line(Trace, trace_line(trace))
    assert back.final_answer == "4\ufffd" and back.error == "x\ufffdy"
    assert back.task.prompt == "\U0001f600 ok"  # a proper pair written as two halves is the character
    assert back.notes == [
        "lone surrogates (not text UTF-8 can hold) were replaced with U+FFFD in "
        "error, final_answer, task.prompt"
    ]
    assert trace.final_answer == "4\ud83d"  # the trace in memory is left as it was


def test_reply_turn_text_keeps_a_deep_arguments_string_for_the_parser() -> None:
    text = reply_turn_text({"tool_calls": [stub.call("f", '{"a": ' + nested(100_000) + "}")]})
    parsed = parse_turn(text)
    assert parsed.action == "broken_call"
    assert parsed.error == f"tool call arguments: nested deeper than {MAX_JSON_DEPTH} levels"


def test_the_size_bound() -> None:
    big = '{"name": "f", "arguments": {"a": "' + "x" * 8_000_000 + '"}}'
    parsed = parse_turn(f"<tool_call>{big}</tool_call>")
    assert parsed.action == "broken_call"
    assert parsed.error == f"tool call: {len(big):,} characters, more than the 8,000,000 allowed"
    fits = '{"name": "f", "arguments": {"a": "' + "x" * 1_000_000 + '"}}'
    assert parse_turn(f"<tool_call>{fits}</tool_call>").action == "tool_call"


# --------------------------------------------------------------------------- non-finite numbers


def test_a_non_finite_reward_is_null_with_its_reason_and_reads_back(tmp_path: Path) -> None:
    reward = Reward(
        name="r", version="1", value=math.inf, components={"a": math.nan, "b": 0.5}, per_step=[1.0, -math.inf]
    )
    assert reward.value is None and reward.components == {"b": 0.5} and reward.per_step == [1.0, None]
    assert reward.reason == "not a finite number: value inf, component a nan, step scores [1] [-inf]"
    path = tmp_path / "t.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        write_trace(handle, _trace(rewards={"r": reward}))
    (back,) = read_traces(path)
    assert back.rewards["r"] == reward


def test_score_on_non_finite_numbers_never_writes_what_cannot_be_read(
    tmp_path: Path, sandbox_cli: Callable[..., Done]
) -> None:
    good = trace_line(_trace())
    infinite = good.replace(
        '"rewards":{}',
        '"rewards":{"old":{"name":"old","version":"1","value":1.0,"components":{"x":Infinity}}}',
    )
    source = tmp_path / "in.jsonl"
    source.write_text(infinite + "\n")
    out = tmp_path / "out.jsonl"
    done = sandbox_cli("score", str(source), "--rewards", "outcome", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (back,) = read_traces(out)
    assert back.rewards["old"].value is None and "component x inf" in back.rewards["old"].reason
    for bad in ('"wall_seconds":NaN', '"wall_seconds":Infinity'):
        source.write_text(good.replace('"wall_seconds":0.0', bad) + "\n")
        done = sandbox_cli("score", str(source), "--rewards", "outcome", "-o", str(tmp_path / "nan.jsonl"))
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            f"error: {source}:1: not a valid trace: wall_seconds: Input should be a finite number"
        ]
        assert not (tmp_path / "nan.jsonl").exists()


def test_loads_bounded_refuses_what_json_has_not_got() -> None:
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError, match="is not a JSON number"):
            loads_bounded(text)
    assert loads_bounded('"NaN"') == "NaN"


# --------------------------------------------------------------------------- properties of the bound

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(_json_values, st.integers(min_value=0, max_value=6))
def test_the_depth_scan_counts_what_the_parser_would_nest(value: Any, bound: int) -> None:
    text = json.dumps(value)
    assert json_depth(text) == _depth(value)  # brackets inside strings do not count
    if _depth(value) <= bound:
        assert loads_bounded(text, max_depth=bound) == json.loads(text)
    else:
        with pytest.raises(ValueError, match=f"nested deeper than {bound} levels"):
            loads_bounded(text, max_depth=bound)


def test_score_writes_its_file_with_the_mode_a_plain_open_gives(
    tmp_path: Path, sandbox_cli: Callable[..., Done]
) -> None:
    """Issue 14, item 17: the file `sandbox score` writes was 0600 where the others are 0644."""
    import os
    import stat

    source = tmp_path / "in.jsonl"
    source.write_text(trace_line(_trace()) + "\n")
    out = tmp_path / "out.jsonl"
    done = sandbox_cli("score", str(source), "--rewards", "outcome", "-o", str(out))
    assert done.returncode == 0, done.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
