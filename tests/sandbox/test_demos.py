"""Demonstrations: the oracle's gold episodes with demo thoughts, through the real servers (stdio MCP)."""

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.models import OracleError, OracleModel
from sandbox.models._oracle import PlannedCall, demo_call_thought, result_excerpt
from sandbox.records import Task, Trace, read_tasks, read_traces
from sandbox.runs import TRACES_FILE, RunSpec, select_rewards, write_demos
from sandbox.turns import fit_text, text_width, turn_bounds

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "sandbox" / "data" / "seed.jsonl"


def _family_tasks(tmp_path: Path) -> Path:
    from sandbox.tasks import make_tasks, write_tasks

    path = tmp_path / "families.jsonl"
    write_tasks(make_tasks("all", 10, 0, "heldout", servers=ROOT / "servers" / "mcp.json"), path)
    return path


def _write_and_check(tmp_path: Path, task_file: Path, **spec: Any) -> list[tuple[Trace, Task]]:
    """Demos of ``task_file`` through the real servers; each reaches every declared reward maximum."""
    run = RunSpec(tasks=task_file, servers=ROOT / "servers" / "mcp.json", out=tmp_path / "demos", **spec)
    summary = anyio.run(write_demos, run)
    traces = read_traces(tmp_path / "demos" / TRACES_FILE)
    tasks = {task.id: task for task in read_tasks(task_file)}
    assert summary.written == len(traces) == len(tasks)
    rewards = select_rewards("all")
    checked = 0
    for trace in traces:
        task = tasks[trace.task_id]
        assert trace.stop_reason == "answer" and trace.model.name == "oracle-demo"
        for name, reward in rewards.items():
            maximum = getattr(reward, "maximum", None)
            best = maximum(trace, task) if callable(maximum) else None
            value = trace.rewards[name].value
            if best is not None and value is not None:
                checked += 1
                assert value >= best - 1e-9, (trace.task_id, name, value, best)
    assert checked > len(traces)  # several rewards declare a maximum on every task
    return [(trace, tasks[trace.task_id]) for trace in traces]


@pytest.mark.parametrize("source", ["seed", "families"])
def test_demos_reach_every_declared_reward_maximum_with_demo_thoughts(tmp_path: Path, source: str) -> None:
    task_file = SEED_FILE if source == "seed" else _family_tasks(tmp_path)
    for trace, task in _write_and_check(tmp_path, task_file):
        thoughts = [step.thought or "" for step in trace.steps]
        assert not any("Reference" in t or "reference" in t for t in thoughts)
        if task.solution:
            assert thoughts[0].startswith(f"I need the {task.solution[0].name} tool: ")
            last = task.solution[-1].name
            assert thoughts[-1].startswith((f"The {last} result gives ", f"The {last} call is done."))
            if not thoughts[-1].startswith(f"The {last} call is done."):  # the answer, then the excerpt
                lead, _, excerpt = thoughts[-1].partition(" It says: ")
                assert trace.final_answer and lead.endswith(f" {trace.final_answer}.") and excerpt
            assert len(set(thoughts)) == len(thoughts)
        else:
            assert thoughts == ["This needs no tool: I can answer it directly."]


@pytest.mark.parametrize("max_tokens", [256, 384])
def test_demo_thoughts_fit_the_constrained_turn_of_their_token_limit(tmp_path: Path, max_tokens: int) -> None:
    """A demonstration thinks only what a constrained turn under the same limit lets a model write
    (the grammar's thought budget), so training on it teaches a turn the decoder can produce; the
    shorter thoughts still reach every reward maximum, and a larger limit keeps more of them."""
    width = turn_bounds(max_tokens)[0]
    steps = 0
    for trace, _ in _write_and_check(tmp_path, _family_tasks(tmp_path), max_tokens=max_tokens):
        for step in trace.steps:
            steps += 1
            thought = step.thought or ""
            assert thought and text_width(thought) <= width and "<" not in thought, (trace.task_id, thought)
            assert len(step.raw_text.encode()) <= max_tokens, trace.task_id
    assert steps > 10
    unlimited = demo_call_thought(PlannedCall("calculate", {"expression": "88 / 11"}), [], [])
    assert text_width(unlimited) > turn_bounds(256)[0]  # so the 256 case above did cut it


def test_the_answer_thought_quotes_the_mention_that_fits_the_question() -> None:
    hours = ", ".join(
        f'{{"time": "{h:02d}:00", "temp_f": {t}, "feels_like_f": {f}}}'
        for h, t, f in [(17, 44, 40), (18, 41, 35), (19, 38, 33), (20, 35, 30), (21, 33, 28)]
    )
    result = f'<tool_response name="get_hourly_forecast">\n{{"hours": [{hours}]}}\n</tool_response>'
    excerpt = result_excerpt(result, "35", "What will the temperature be at 8pm?", limit=40)
    assert '"20:00", "temp_f": 35' in excerpt and "tool_response" not in excerpt
    assert len(excerpt) <= 48  # the window and its two ellipses
    assert result_excerpt(result, "99", "", limit=20).endswith(" ...")  # not found: the start
    assert result_excerpt('{"exact": "369"}', "369") == '{"exact": "369"}'


def test_an_unknown_thought_style_is_one_clear_error() -> None:
    with pytest.raises(OracleError, match="thoughts must be one of"):
        OracleModel([], thoughts="chatty")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=200))
def test_fit_text_is_a_prefix_within_its_width(text: str, width: int) -> None:
    fitted = fit_text(text, width)
    assert text_width(fitted) <= width and "<" not in fitted
    assert text.replace("<", "(").startswith(fitted)
    if text_width(text) <= width and "<" not in text:
        assert fitted == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=160), st.sampled_from(["10", "Hello", "café", "Done."]))
def test_demo_thoughts_fit_any_width(width: int, answer: str) -> None:
    from sandbox.models._oracle import DONE_ANSWER, demo_answer_thought

    result = '{"exact": "10", "title": "Hello", "note": "café <b>"}'
    call = PlannedCall("write_file", {"path": "a/b.txt", "content": "pack for London"})
    for thought in (
        demo_call_thought(call, [], [], width),
        demo_call_thought(call, [], ["write_file"], width),
        demo_answer_thought("write_file", result, DONE_ANSWER if answer == "Done." else answer, "q", width),
        demo_answer_thought(None, None, answer, width=width),
    ):
        assert text_width(thought) <= width and "<" not in thought
    lead = f"The calculate result gives {answer}."
    if answer != "Done." and text_width(lead) <= width:  # the answer is never what a cut drops
        assert demo_answer_thought("calculate", result, answer, "q", width).startswith(lead)


NATIVE_LABELS = ["hermes", "hermes+think", "llama3", "mistral", "functiongemma"]
PICKS = (
    "calc-pens-word-problem",
    "no-tool-two-plus-two",
    "music-play-toxic",
    "weather-denver-outfit-tonight",
)


@pytest.mark.parametrize("label", NATIVE_LABELS)
def test_demos_in_a_native_format_are_written_in_its_syntax_and_score_as_the_tag_ones(
    tmp_path: Path, label: str
) -> None:
    from sandbox.turns import format_from_label

    def demos(turn_format: str, out: str) -> list:
        spec = RunSpec(
            tasks=SEED_FILE,
            servers=ROOT / "servers" / "mcp.json",
            out=tmp_path / out,
            only=PICKS,
            turn_format=turn_format,
            rewards="outcome,tool_syntax,bfcl,process",
        )
        anyio.run(write_demos, spec)
        return sorted(read_traces(tmp_path / out / TRACES_FILE), key=lambda t: t.task_id)

    tags, native = demos("auto", "tags"), demos(label, "native")
    fmt = format_from_label(label)
    assert {t.format for t in tags} == {"tags"} and {t.format for t in native} == {label}
    for before, after in zip(tags, native, strict=True):
        assert after.stop_reason == "answer" and after.final_answer == before.final_answer
        assert [s.call for s in after.steps] == [s.call for s in before.steps]  # read back as the same calls
        assert {n: r.value for n, r in after.rewards.items()} == {
            n: r.value for n, r in before.rewards.items()
        }
        written = [m.content for m in after.messages if m.role == "assistant"]
        assert all("<answer>" not in text for text in written)
        assert all(("<think>" in text) == fmt.think for text in written)
        for step, text in zip(after.steps, written, strict=True):
            if step.call is not None:
                assert fmt.render_call(step.call) in text  # the family's own call syntax
