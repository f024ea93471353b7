"""``sandbox export``: every format loads with ``datasets.load_dataset`` as written, SFT rows render
through the model's own chat template, pairs and groups follow the rewards, splits follow task ids.

The run is a real one (``generate`` over the stdio weather server, real rewards) with a scripted
model; a few traces are then varied by hand where a property needs a particular shape."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio
import datasets
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import score_trace
from sandbox.datasets import (
    ExportOptions,
    branch_point,
    chat_messages,
    export_run,
    group_advantages,
    split_of,
)
from sandbox.records import ConfigError, Message, Trace, read_traces, total_reward
from sandbox.runs import TRACES_FILE, generate, select_rewards
from sandbox.turns import compact_result
from tests.sandbox.run_fixtures import REWARDS, TASKS, options, scripted_model

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: 3 tasks x 4 samples, right and wrong ones, the weather task with a real call."""
    run_options = options(tmp_path_factory.mktemp("generate"))
    anyio.run(lambda: generate(run_options, model=scripted_model()))
    return run_options.out


@pytest.fixture(scope="module")
def traces(run: Path) -> list[Trace]:
    return read_traces(run / TRACES_FILE)


def _load(files: list[Path], parquet: bool) -> datasets.DatasetDict:
    data_files = {path.name.split(".")[0]: str(path) for path in files if ".provenance." not in path.name}
    data_files.pop("export", None)
    return datasets.load_dataset("parquet" if parquet else "json", data_files=data_files)


def _export(run: Path, out: Path, fmt: str, **changes: object) -> tuple[datasets.DatasetDict, list[Path]]:
    parquet = bool(changes.get("parquet", False))
    report = export_run(ExportOptions(source=run, format=fmt, out=out, **changes))  # type: ignore[arg-type]
    loaded = _load(report.files, parquet)
    assert {name: len(split) for name, split in loaded.items()} == {k: v for k, v in report.rows.items() if v}
    return loaded, report.files


COLUMNS = {
    "sft": {
        "messages", "tools", "trace_id", "task_id", "sample", "model_sha256", "reward", "reward_details",
        "run",
    },
    "openai": {"messages", "tools", "parallel_tool_calls"},
    "dpo": {
        "prompt", "chosen", "rejected", "tools", "task_id", "chosen_trace_id", "rejected_trace_id",
        "chosen_sample", "rejected_sample", "chosen_reward", "rejected_reward", "chosen_reward_details",
        "rejected_reward_details", "prompt_assistant_turns", "model_sha256", "run",
    },
    "grpo": {
        "prompt", "group_completions", "rewards", "advantages", "reward_details", "task", "tools", "task_id",
        "trace_ids", "samples", "model_sha256", "run",
    },
}  # fmt: skip


@pytest.mark.parametrize("parquet", [False, True], ids=["jsonl", "parquet"])
@pytest.mark.parametrize("fmt", ["sft", "openai", "dpo", "grpo"])
def test_every_format_loads_with_datasets(run: Path, tmp_path: Path, fmt: str, parquet: bool) -> None:
    loaded, files = _export(run, tmp_path / "out", fmt, parquet=parquet, split=0.5)
    assert set(loaded) <= {"train", "eval"} and sum(len(split) for split in loaded.values()) > 0
    for split in loaded.values():
        assert set(split.column_names) == COLUMNS[fmt]
    manifest = json.loads((tmp_path / "out" / "export.json").read_text())
    assert manifest["format"] == fmt and manifest["run_config"]["n"] == 4
    if fmt == "openai":  # provenance beside the lines the uploader takes, row for row
        suffix = "parquet" if parquet else "jsonl"
        for name, split in loaded.items():
            sidecar = tmp_path / "out" / f"{name}.provenance.{suffix}"
            loader = "parquet" if parquet else "json"
            provenance = datasets.load_dataset(loader, data_files=str(sidecar))["train"]
            assert len(provenance) == len(split)
            assert set(provenance.column_names) == COLUMNS["sft"] - {"messages", "tools"}
    assert all(path.exists() for path in files)


def _assistant_calls(messages: list[dict]) -> list[dict]:
    return [call for m in messages if m["role"] == "assistant" for call in (m.get("tool_calls") or [])]


@pytest.mark.parametrize("parquet", [False, True], ids=["jsonl", "parquet"])
def test_sft_keeps_traces_that_pass_the_threshold_in_trls_shape(
    run: Path, traces: list[Trace], tmp_path: Path, parquet: bool
) -> None:
    loaded, _ = _export(run, tmp_path / "out", "sft", min_reward=1.0, reward="outcome", parquet=parquet)
    rows = list(loaded["train"])
    passing = [t for t in traces if t.rewards["outcome"].value == 1.0]
    assert 0 < len(passing) < len(traces)
    assert sorted(row["trace_id"] for row in rows) == sorted(t.id for t in passing)
    by_id = {t.id: t for t in traces}
    for row in rows:
        trace = by_id[row["trace_id"]]
        assert row["reward"] == 1.0 and row["reward_details"]["outcome"] == 1.0
        assert (row["task_id"], row["sample"]) == (trace.task_id, trace.sample)
        assert row["model_sha256"] == trace.model.sha256 and row["run"] == str(run)
        assert [m["content"] for m in row["messages"]] == [m.content for m in trace.messages]
        for call, step in zip(
            _assistant_calls(row["messages"]), (s for s in trace.steps if s.call), strict=True
        ):
            assert call["type"] == "function"
            assert call["function"] == {"name": step.call.name, "arguments": step.call.arguments}
        for message in row["messages"]:
            if message["role"] == "tool":
                assert message["name"] == "get_hourly_forecast"
        tool_names = sorted(tool["function"]["name"] for tool in row["tools"])
        assert tool_names == sorted(spec.name for spec in trace.tools)
        assert all(tool["type"] == "function" and "parameters" in tool["function"] for tool in row["tools"])
    assert any(_assistant_calls(row["messages"]) for row in rows)  # the weather task's calls


def test_total_is_the_sum_of_a_traces_rewards(run: Path, traces: list[Trace], tmp_path: Path) -> None:
    threshold = sorted(total_reward(t) or 0.0 for t in traces)[len(traces) // 2]
    loaded, _ = _export(run, tmp_path / "out", "sft", min_reward=threshold)
    kept = {row["trace_id"]: row["reward"] for row in loaded["train"]}
    expected = {t.id: total_reward(t) for t in traces if (total_reward(t) or -math.inf) >= threshold}
    assert kept.keys() == expected.keys() and kept == pytest.approx(expected)
    for trace in traces:
        assert total_reward(trace) == pytest.approx(
            sum(r.value for r in trace.rewards.values() if r.value is not None)
        )


def test_openai_lines_carry_arguments_as_json_strings(run: Path, traces: list[Trace], tmp_path: Path) -> None:
    loaded, _ = _export(run, tmp_path / "out", "openai")
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == len(loaded["train"]) == len(traces)
    provenance = [
        json.loads(line) for line in (tmp_path / "out" / "train.provenance.jsonl").read_text().splitlines()
    ]
    by_id = {t.id: t for t in traces}
    for row, origin in zip(rows, provenance, strict=True):
        trace = by_id[origin["trace_id"]]
        assert set(row) == {"messages", "tools", "parallel_tool_calls"}
        assert "You can call these tools" not in row["messages"][0]["content"]  # the tools are in "tools"
        calls = _assistant_calls(row["messages"])
        assert [json.loads(c["function"]["arguments"]) for c in calls] == [
            c.arguments for c in trace.tool_calls
        ]
        tool_messages = [m for m in row["messages"] if m["role"] == "tool"]
        assert [m["tool_call_id"] for m in tool_messages] == [c["id"] for c in calls]
        for message in tool_messages:
            assert (
                set(message) == {"role", "content", "tool_call_id"}
                and "<tool_response" not in message["content"]
            )
        for message in row["messages"]:
            if message.get("tool_calls"):
                assert "<tool_call>" not in (message["content"] or "")


def _variant(trace: Trace, answer: str, sample: int) -> Trace:
    """``trace`` with its last answer replaced (same turns before it), scored again by the real rewards."""
    last = trace.steps[-1]
    text = f"<think>\nI work it out.\n</think>\n<answer>{answer}</answer>"
    varied = trace.model_copy(
        update={
            "id": f"{trace.task_id}:{sample}:variant",
            "sample": sample,
            "messages": [*trace.messages[:-1], Message(role="assistant", content=text)],
            "steps": [*trace.steps[:-1], last.model_copy(update={"raw_text": text, "answer": answer})],
            "final_answer": answer,
            "rewards": {},
        }
    )
    return score_trace(varied, varied.task, select_rewards(REWARDS))


def _run_of(folder: Path, traces: list[Trace]) -> Path:
    folder.mkdir(parents=True)
    (folder / TRACES_FILE).write_text("".join(t.model_dump_json() + "\n" for t in traces), encoding="utf-8")
    return folder


def test_dpo_pairs_best_and_worst_and_branch_keeps_the_shared_turns(
    traces: list[Trace], tmp_path: Path
) -> None:
    called = next(t for t in traces if t.task_id == "temp-8pm" and t.final_answer == "35")
    wrong = _variant(called, "20", sample=9)
    assert total_reward(called) > total_reward(wrong)  # type: ignore[operator]
    source = _run_of(tmp_path / "run", [called, wrong])

    plain, _ = _export(source, tmp_path / "plain", "dpo")
    (row,) = plain["train"]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"] and row["prompt_assistant_turns"] == 0
    assert (row["chosen_trace_id"], row["rejected_trace_id"]) == (called.id, wrong.id)
    assert row["chosen_reward"] - row["rejected_reward"] == pytest.approx(
        total_reward(called) - total_reward(wrong)
    )

    branched, _ = _export(source, tmp_path / "branched", "dpo", branch=True)
    (row,) = branched["train"]
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "tool"]
    assert row["prompt_assistant_turns"] == 1
    assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
    assert "<answer>35</answer>" in row["chosen"][0]["content"] and "20" in row["rejected"][0]["content"]
    assert row["prompt"] + row["chosen"] == json.loads(
        json.dumps(chat_messages(called, calls="text", arguments="dict"))
    )

    gap = row["chosen_reward"] - row["rejected_reward"]
    report = export_run(
        ExportOptions(source=source, format="dpo", out=tmp_path / "strict", min_gap=gap + 0.01)
    )
    assert report.rows == {"train": 0} and report.skipped["task whose reward gap is below --min-gap"] == 1


def test_dpo_from_the_run_prefers_the_higher_reward(run: Path, traces: list[Trace], tmp_path: Path) -> None:
    loaded, _ = _export(run, tmp_path / "out", "dpo")
    assert len(loaded["train"]) >= 2
    by_id = {t.id: t for t in traces}
    for row in loaded["train"]:
        chosen, rejected = by_id[row["chosen_trace_id"]], by_id[row["rejected_trace_id"]]
        assert chosen.task_id == rejected.task_id == row["task_id"]
        group = [total_reward(t) for t in traces if t.task_id == row["task_id"]]
        assert total_reward(chosen) == max(group) > total_reward(rejected) == min(group)  # type: ignore[type-var]


def test_grpo_groups_carry_normalised_advantages_and_the_task(
    run: Path, traces: list[Trace], tmp_path: Path
) -> None:
    loaded, _ = _export(run, tmp_path / "out", "grpo")
    rows = list(loaded["train"])
    assert sorted(row["task_id"] for row in rows) == sorted(t.id for t in TASKS)
    for row in rows:
        group = sorted((t for t in traces if t.task_id == row["task_id"]), key=lambda t: t.sample)
        assert row["samples"] == [t.sample for t in group] and row["trace_ids"] == [t.id for t in group]
        assert row["rewards"] == pytest.approx([total_reward(t) for t in group])
        assert sum(row["advantages"]) == pytest.approx(0.0, abs=1e-9)
        best = max(range(len(group)), key=lambda i: row["rewards"][i])
        assert row["advantages"][best] == max(row["advantages"])
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert all(c[0]["role"] == "assistant" for c in row["group_completions"])
        assert json.loads(row["task"])["id"] == row["task_id"]


@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=32))
def test_group_advantages_sum_to_zero_and_keep_the_order(rewards: list[float]) -> None:
    advantages = group_advantages(rewards)
    assert math.fsum(advantages) == pytest.approx(0.0, abs=1e-6 * max(1.0, len(rewards)))
    for a, b in itertools.pairwise(rewards):
        ra, rb = advantages[rewards.index(a)], advantages[rewards.index(b)]
        assert (a < b) <= (ra <= rb)


@given(st.sets(st.text(min_size=1, max_size=20), min_size=1, max_size=60), st.floats(0.05, 1.0))
def test_split_is_by_task_and_deterministic(task_ids: set[str], share: float) -> None:
    splits = {task_id: split_of(task_id, share) for task_id in task_ids}
    assert splits == {task_id: split_of(task_id, share) for task_id in sorted(task_ids)}
    if share == 1.0:
        assert set(splits.values()) == {"train"}
    smaller = {task_id for task_id in task_ids if split_of(task_id, share / 2) == "train"}
    assert smaller <= {task_id for task_id, split in splits.items() if split == "train"}


def test_train_and_eval_hold_different_tasks(run: Path, traces: list[Trace], tmp_path: Path) -> None:
    many = [
        t.model_copy(update={"task_id": f"{t.task_id}-{k}", "id": f"{t.id}-{k}"})
        for t in traces
        for k in range(8)
    ]
    source = _run_of(tmp_path / "run", many)
    loaded, _ = _export(source, tmp_path / "out", "sft", split=0.6)
    train, held = ({row["task_id"] for row in loaded[name]} for name in ("train", "eval"))
    assert train and held and not train & held
    assert train | held == {t.task_id for t in many}
    assert all(split_of(task_id, 0.6) == "train" for task_id in train)


def test_identical_conversations_of_a_task_are_kept_once(traces: list[Trace], tmp_path: Path) -> None:
    first = traces[0]
    twin = first.model_copy(update={"id": f"{first.task_id}:99:twin", "sample": 99})
    source = _run_of(tmp_path / "run", [first, twin])
    loaded, _ = _export(source, tmp_path / "out", "sft")
    assert [row["trace_id"] for row in loaded["train"]] == [first.id]
    manifest = json.loads((tmp_path / "out" / "export.json").read_text())
    assert manifest["skipped"] == {"same conversation as another sample of the task": 1}


def test_branch_point_is_an_assistant_turn_both_conversations_have() -> None:
    system, user = {"role": "system", "content": "s"}, {"role": "user", "content": "u"}
    a1, a2 = {"role": "assistant", "content": "a1"}, {"role": "assistant", "content": "a2"}
    t1, t2 = {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"}
    assert branch_point([system, user, a1], [system, user, a2]) == 2
    assert branch_point([system, user, a1, t1, a1], [system, user, a1, t1, a2]) == 4
    # tool results differ after the same call: the pair is cut before that call
    assert branch_point([system, user, a1, t1, a1], [system, user, a1, t2, a1]) == 2
    # one conversation is the other one cut short: both must still have the turn the cut starts at
    assert branch_point([system, user, a1, t1, a2], [system, user, a1, t1]) == 2


def test_bad_export_requests_say_what_to_fix(run: Path, tmp_path: Path) -> None:
    cases = [
        ({"format": "dpo", "min_reward": 1.0}, "--min-reward filters sft and openai"),
        ({"format": "sft", "branch": True}, "--branch applies to dpo"),
        ({"format": "sft", "split": 0.0}, "--split"),
        ({"format": "csv"}, "--format must be one of"),
        ({"format": "sft", "reward": "nope"}, "--reward 'nope' is on no trace"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError, match=message):
            export_run(ExportOptions(source=run, out=tmp_path / "x", **changes))  # type: ignore[arg-type]
    export_run(ExportOptions(source=run, format="sft", out=tmp_path / "out"))
    with pytest.raises(ConfigError, match="not empty; pass --overwrite"):
        export_run(ExportOptions(source=run, format="sft", out=tmp_path / "out"))
    export_run(ExportOptions(source=run, format="grpo", out=tmp_path / "out", overwrite=True))
    with pytest.raises(ConfigError, match="no run folder or trace file"):
        export_run(ExportOptions(source=tmp_path / "missing", format="sft", out=tmp_path / "y"))


def test_the_command_line_exports_and_reports(sandbox_cli: Cli, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = sandbox_cli("export", str(run), "--format", "sft", "-o", str(out), "--split", "0.5", "--parquet")
    assert done.returncode == 0, done.stderr
    assert "12 trace(s) -> sft rows" in done.stdout and (out / "export.json").exists()
    again = sandbox_cli("export", str(run), "--format", "sft", "-o", str(out))
    assert (
        again.returncode == 2
        and "--overwrite" in again.stderr
        and len(again.stderr.strip().splitlines()) == 1
    )


# --------------------------------------------------------------------------- the model's own template


@pytest.mark.model
@pytest.mark.parametrize("calls", ["text", "native"])
def test_sft_rows_render_through_the_models_chat_template(
    llama_model: object, run: Path, traces: list[Trace], tmp_path: Path, calls: str
) -> None:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from sandbox.models import LlamaModel, default_model_path

    assert isinstance(llama_model, LlamaModel)
    vocab = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    template = vocab.metadata["tokenizer.chat_template"]
    eos = vocab.detokenize([vocab.token_eos()], special=True).decode()
    bos = vocab.detokenize([vocab.token_bos()], special=True).decode()
    formatter = Jinja2ChatFormatter(
        template=template, eos_token=eos, bos_token=bos, add_generation_prompt=False
    )
    loaded, _ = _export(run, tmp_path / "out", "sft", calls=calls)
    by_id = {t.id: t for t in traces}
    for row in loaded["train"]:
        trace = by_id[row["trace_id"]]
        rendered = formatter(messages=row["messages"], tools=row["tools"]).prompt
        if calls == "text":  # exactly the text the model read and wrote in the episode
            assert rendered == llama_model.render(trace.messages, add_generation_prompt=False)
        else:
            assert "<tool_call>" not in rendered and trace.task.prompt in rendered
            for step in trace.steps:
                if step.result is not None:  # as the model read it (JSON shown compact)
                    assert compact_result(step.result.text) in rendered


def test_a_run_cut_short_exports_its_complete_traces(traces: list[Trace], tmp_path: Path) -> None:
    source = _run_of(tmp_path / "run", traces[:3])
    with (source / TRACES_FILE).open("ab") as handle:
        handle.write(traces[3].model_dump_json().encode()[:150])  # killed while writing this line
    report = export_run(ExportOptions(source=source, format="sft", out=tmp_path / "out"))
    assert report.traces == 3 and report.rows == {"train": 3}
    assert any(reason.startswith("half-written last line") for reason in report.skipped)


def test_the_default_ranking_leaves_out_the_rewards_that_grow_with_the_steps() -> None:
    """A looping trace with a big step sum ranks below a short right one unless 'total' is asked for."""
    from rewards import outcome_reward, process_reward
    from sandbox.datasets import ranking_value
    from sandbox.records import Reward, Task
    from tests.rewards._reward_builders import answer, call, trace

    task = Task(id="four", prompt="What is 2 + 2?", expected_answer="4", answer_match="number")
    looping = trace(task, [call(i, "add", {"a": 2, "b": 2}) for i in range(6)], final_answer=None)
    right = trace(task, [answer(0, "4")], final_answer="4")

    def scored(t: Trace, process: float) -> Trace:
        rewards = {
            "outcome": outcome_reward(t, task),
            "process": Reward(name="process", version="x", value=process),
            "process_mean": process_reward(t, task).model_copy(update={"name": "process_mean", "value": 0.5}),
        }
        return t.model_copy(update={"rewards": rewards})

    loop, short = scored(looping, 6.0), scored(right, 1.0)
    assert ranking_value(loop, "total") > ranking_value(short, "total")  # type: ignore[operator]
    assert ranking_value(loop, "length_free") < ranking_value(short, "length_free")  # type: ignore[operator]
    assert ranking_value(short, "length_free") == pytest.approx(1.5)
    assert ranking_value(short, "outcome") == 1.0
    assert ExportOptions(source=Path("x"), format="sft", out=Path("y")).reward == "length_free"
