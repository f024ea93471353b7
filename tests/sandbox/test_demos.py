"""Demonstrations: the oracle's gold episodes with demo thoughts, through the real servers (stdio MCP)."""

from pathlib import Path

import anyio
import pytest

from sandbox.models import OracleError, OracleModel
from sandbox.models._oracle import result_excerpt
from sandbox.records import read_tasks, read_traces
from sandbox.runs import TRACES_FILE, RunSpec, select_rewards, write_demos

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "sandbox" / "data" / "seed.jsonl"


def _family_tasks(tmp_path: Path) -> Path:
    from sandbox.tasks import make_tasks, write_tasks

    path = tmp_path / "families.jsonl"
    write_tasks(make_tasks("all", 10, 0, "heldout", servers=ROOT / "servers" / "mcp.json"), path)
    return path


@pytest.mark.parametrize("source", ["seed", "families"])
def test_demos_reach_every_declared_reward_maximum_with_demo_thoughts(tmp_path: Path, source: str) -> None:
    task_file = SEED_FILE if source == "seed" else _family_tasks(tmp_path)
    spec = RunSpec(tasks=task_file, servers=ROOT / "servers" / "mcp.json", out=tmp_path / "demos")
    summary = anyio.run(write_demos, spec)
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
        thoughts = [step.thought or "" for step in trace.steps]
        assert not any("Reference" in t or "reference" in t for t in thoughts)
        if task.solution:
            assert thoughts[0].startswith(f"I need the {task.solution[0].name} tool: ")
            assert thoughts[-1].startswith(f"The {task.solution[-1].name} result says: ")
            assert len(set(thoughts)) == len(thoughts)
        else:
            assert thoughts == ["This needs no tool: I can answer it directly."]
    assert checked > len(traces)  # several rewards declare a maximum on every task


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
