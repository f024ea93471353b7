from pathlib import Path

import pytest

from sandbox.records import (
    SCHEMA_VERSION,
    ModelInfo,
    SandboxError,
    Step,
    Task,
    Trace,
    TraceFileError,
    read_tasks,
    read_traces,
    write_trace,
)


def test_task_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"id": "a", "prompt": "p"}\n\n{"id": "a", "prompt": "q"}\n')
    with pytest.raises(SandboxError, match=r"tasks.jsonl:3: duplicate task id 'a'"):
        read_tasks(path)
    path.write_text('{"id": "a", "prompt": "p", "answer_match": "fuzzy"}\n')
    with pytest.raises(SandboxError, match=r"tasks.jsonl:1: not a valid task"):
        read_tasks(path)
    path.write_text("")
    with pytest.raises(SandboxError, match="no tasks"):
        read_tasks(path)
    with pytest.raises(SandboxError, match="cannot read"):
        read_tasks(tmp_path / "missing.jsonl")


def test_trace_round_trip(tmp_path: Path) -> None:
    trace = Trace(
        id="x",
        task_id="t",
        task=Task(id="t", prompt="p"),
        model=ModelInfo(name="m"),
        stop_reason="answer",
        steps=[Step(index=0, raw_text="<answer>4</answer>", action="answer", answer="4")],
        final_answer="4",
    )
    path = tmp_path / "traces.jsonl"
    with path.open("w") as handle:
        write_trace(handle, trace)
        write_trace(handle, trace)
    assert read_traces(path) == [trace, trace]


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    trace = Trace(
        id="x", task_id="t", task=Task(id="t", prompt="p"), model=ModelInfo(name="m"), stop_reason="answer"
    )
    path.write_text(
        trace.model_dump_json().replace(f'"schema_version":{SCHEMA_VERSION}', '"schema_version":99') + "\n"
    )
    with pytest.raises(TraceFileError, match="newer than this sandbox"):
        read_traces(path)
