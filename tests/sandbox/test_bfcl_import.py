"""``sandbox import bfcl``: BFCL-shaped files in, tasks, functions and a server config out, and a real run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.datasets import BFCLImportError, import_bfcl
from sandbox.hub import load_config
from sandbox.records import read_tasks, read_traces


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def function(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "dict", "properties": properties, "required": required}
    return {"name": name, "description": f"{name} does it.", "parameters": parameters}


FACTORIAL = function("math.factorial", {"n": {"type": "integer", "description": "The number."}}, ["n"])
WEATHER = function(
    "get_weather",
    {"city": {"type": "string", "description": "City."}, "unit": {"type": "string", "enum": ["C", "F"]}},
    ["city"],
)
CONVERT = function(
    "convert_currency",
    {"amount": {"type": "float"}, "source": {"type": "string"}, "target": {"type": "string"}},
    ["amount", "source", "target"],
)
PLAY = function(
    "spotify.play", {"artist": {"type": "string"}, "duration": {"type": "integer"}}, ["artist", "duration"]
)
EVERY_TYPE = function(
    "record_event",
    {
        "details": {"type": "dict", "properties": {"title": {"type": "string"}, "score": {"type": "float"}}},
        "ratio": {"type": "float"},
        "count": {"type": "integer"},
        "name": {"type": "string"},
        "public": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "point": {"type": "tuple", "items": {"type": "integer"}},
        "extra": {"type": "any"},
    },
    ["name"],
)

QUESTIONS = [
    {
        "id": "simple_0",
        "question": [[message("system", "Use the tools."), message("user", "What is 5 factorial?")]],
        "function": [FACTORIAL],
    },
    {
        "id": "multiple_0",
        "question": [[message("user", "Convert 100 USD to EUR.")]],
        "function": [WEATHER, CONVERT],
    },
    {
        "id": "parallel_0",
        "question": [[message("user", "Play Adele for 20 min and Muse for 15.")]],
        "function": [PLAY],
    },
    {"id": "irrelevance_0", "question": [[message("user", "Who wrote Hamlet?")]], "function": [FACTORIAL]},
    {"id": "simple_1", "question": [[message("user", "Record the launch event.")]], "function": [EVERY_TYPE]},
]
ANSWERS = [
    {"id": "simple_0", "ground_truth": [{"math.factorial": {"n": [5]}}]},
    {
        "id": "multiple_0",
        "ground_truth": [{"convert_currency": {"amount": [100.0], "source": ["USD"], "target": ["EUR"]}}],
    },
    {
        "id": "parallel_0",
        "ground_truth": [
            {"spotify.play": {"artist": ["Adele"], "duration": [20]}},
            {"spotify.play": {"artist": ["Muse"], "duration": [15]}},
        ],
    },
    {"id": "simple_1", "ground_truth": [{"record_event": {"name": ["launch"], "public": [True, ""]}}]},
]


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture
def bfcl_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_lines(tmp_path / "questions.json", QUESTIONS), write_lines(
        tmp_path / "answers.json", ANSWERS
    )


def test_questions_and_answers_become_tasks(bfcl_files: tuple[Path, Path], tmp_path: Path) -> None:
    questions, answers = bfcl_files
    report = import_bfcl(questions, answers, tmp_path / "out" / "tasks.jsonl")
    tasks = {task.id: task for task in read_tasks(tmp_path / "out" / "tasks.jsonl")}
    assert list(tasks) == ["simple_0", "multiple_0", "parallel_0", "irrelevance_0", "simple_1"]
    simple = tasks["simple_0"]
    assert (simple.prompt, simple.system) == ("What is 5 factorial?", "Use the tools.")
    assert simple.servers == ["bfcl-simple_0"]
    assert simple.tags == ["bfcl", "simple"]
    assert [(c.name, c.arguments) for c in simple.ideal_calls] == [("math_factorial", {"n": [5]})]
    assert tasks["parallel_0"].tags == ["bfcl", "parallel"]
    assert [c.arguments["artist"] for c in tasks["parallel_0"].ideal_calls] == [["Adele"], ["Muse"]]
    # every parameter the answer leaves out is listed as optional and not to be given
    assert tasks["simple_1"].ideal_calls[0].arguments["ratio"] == [""]
    assert tasks["simple_1"].ideal_calls[0].arguments["public"] == [True, ""]
    assert tasks["irrelevance_0"].ideal_calls == []
    assert report.irrelevance == 1 and report.unanswered == []


def test_functions_become_json_schema_with_safe_unique_names(
    bfcl_files: tuple[Path, Path], tmp_path: Path
) -> None:
    report = import_bfcl(*bfcl_files, tmp_path / "tasks.jsonl")
    assert report.functions_path == tmp_path / "tasks.functions.json"
    functions = json.loads(report.functions_path.read_text(encoding="utf-8"))["tasks"]
    assert [(f["name"], f["original_name"]) for f in functions["simple_0"]] == [
        ("math_factorial", "math.factorial")
    ]
    # the same function in another task gets its own name: the hub would otherwise qualify it
    assert functions["irrelevance_0"][0]["name"] == "math_factorial_2"
    schema = functions["simple_1"][0]["input_schema"]
    assert schema["type"] == "object"
    properties = schema["properties"]
    assert properties["details"]["type"] == "object"
    assert properties["details"]["properties"]["score"] == {"type": "number"}
    assert properties["ratio"] == {"type": "number"}
    assert properties["count"] == {"type": "integer"}
    assert properties["public"] == {"type": "boolean"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["point"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["extra"] == {}


def test_the_server_config_runs_one_server_per_task(bfcl_files: tuple[Path, Path], tmp_path: Path) -> None:
    report = import_bfcl(*bfcl_files, tmp_path / "tasks.jsonl")
    config = load_config(report.mcp_path)
    assert sorted(config) == sorted(f"bfcl-{q['id']}" for q in QUESTIONS)
    entry = config["bfcl-simple_0"]
    assert entry.args == ("-m", "servers.bfcl", "--functions", "tasks.functions.json", "--task", "simple_0")
    assert entry.cwd == str(tmp_path.resolve())


def test_without_answers_every_task_is_unanswered(bfcl_files: tuple[Path, Path], tmp_path: Path) -> None:
    report = import_bfcl(bfcl_files[0], None, tmp_path / "tasks.jsonl")
    assert all(not task.ideal_calls for task in report.tasks)
    assert report.unanswered == ["simple_0", "multiple_0", "parallel_0", "simple_1"]
    assert "no answer for simple_0" in report.summary()[1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "questions.json:2: not JSON"),
        ('{"question": []}', 'questions.json:2: expected an object with a string "id"'),
        (
            json.dumps({"id": "x_0", "question": [[]], "function": [FACTORIAL]}),
            "questions.json:2: the first turn",
        ),
        (
            json.dumps(
                {"id": "x_0", "question": "hi", "function": [function("f", {"m": {"type": "HashMap"}}, [])]}
            ),
            "questions.json:2: function 'f': parameters.m: unknown BFCL type 'HashMap'",
        ),
        (
            json.dumps({"id": "simple_0", "question": "hi", "function": [FACTORIAL]}),
            "duplicate id 'simple_0'",
        ),
    ],
)
def test_a_bad_question_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(QUESTIONS[0]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(BFCLImportError, match=message):
        import_bfcl(path, None, tmp_path / "tasks.jsonl")


def test_an_answer_calling_a_function_the_task_lacks_is_named(
    bfcl_files: tuple[Path, Path], tmp_path: Path
) -> None:
    answers = write_lines(
        tmp_path / "bad.json", [{"id": "simple_0", "ground_truth": [{"math.sqrt": {"x": [4]}}]}]
    )
    with pytest.raises(
        BFCLImportError, match=r"bad.json:1: ground truth calls 'math.sqrt', which simple_0 lacks"
    ):
        import_bfcl(bfcl_files[0], answers, tmp_path / "tasks.jsonl")


CLI = Callable[..., Any]


def test_the_cli_imports_and_reports(sandbox_cli: CLI, bfcl_files: tuple[Path, Path], tmp_path: Path) -> None:
    questions, answers = bfcl_files
    out = tmp_path / "tasks.jsonl"
    done = sandbox_cli("import", "bfcl", str(questions), "--answers", str(answers), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote 5 task(s)" in done.stdout
    assert len(read_tasks(out)) == 5


def test_the_cli_names_the_bad_line_in_one_line(sandbox_cli: CLI, tmp_path: Path) -> None:
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS[0]) + "\n{oops\n", encoding="utf-8")
    done = sandbox_cli("import", "bfcl", str(questions), "-o", str(tmp_path / "tasks.jsonl"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert f"{questions}:2: not JSON" in done.stderr
    assert not (tmp_path / "tasks.jsonl").exists()


@pytest.mark.model
def test_imported_tasks_run_and_come_out_scored(
    sandbox_cli: CLI, bfcl_files: tuple[Path, Path], tmp_path: Path
) -> None:
    questions = write_lines(tmp_path / "two.json", [QUESTIONS[0], QUESTIONS[3]])
    tasks = tmp_path / "tasks.jsonl"
    assert (
        sandbox_cli(
            "import", "bfcl", str(questions), "--answers", str(bfcl_files[1]), "-o", str(tasks)
        ).returncode
        == 0
    )
    out = tmp_path / "traces.jsonl"
    done = sandbox_cli(
        "run", "--tasks", str(tasks), "--servers", str(tmp_path / "tasks.mcp.json"), "--out", str(out),
        "--max-steps", "2", "--max-tokens", "200",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    traces = read_traces(out)
    assert [trace.task_id for trace in traces] == ["simple_0", "irrelevance_0"]
    for trace in traces:
        assert {tool.name for tool in trace.tools} <= {"math_factorial", "math_factorial_2"}
        bfcl, syntax = trace.rewards["bfcl"], trace.rewards["tool_syntax"]
        assert bfcl.value in (0.0, 1.0) and bfcl.reason
        assert syntax.value is not None and syntax.reason and syntax.version == "4"
        for step in trace.steps:
            if step.action == "tool_call" and step.result is not None and not step.result.is_error:
                assert json.loads(step.result.text)["function"] == "math.factorial"
