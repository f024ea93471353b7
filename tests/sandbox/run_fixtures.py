"""Generation runs for the tests of ``sandbox generate`` and ``sandbox export``: three small tasks (one
on the real weather server over stdio), and a scripted model whose turns depend on each sample's
seed, so the samples of a task differ the way a sampled model's do (some right, some wrong)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sandbox.models import ModelRequest, ScriptedModel
from sandbox.records import IdealCall, Task
from sandbox.runs import RunSpec

ROOT = Path(__file__).resolve().parents[2]

TASKS = [
    Task(
        id="temp-8pm",
        prompt="What will the temperature be in Denver at 8pm today?",
        servers=["weather"],
        expected_answer="35",
        answer_match="number",
        ideal_calls=[IdealCall(name="get_hourly_forecast", arguments={"location": ["Denver"]})],
    ),
    Task(id="two-plus-two", prompt="What is 2 + 2?", expected_answer="4", answer_match="number"),
    Task(
        id="capital",
        prompt="What is the capital of France?",
        expected_answer="Paris",
        answer_match="contains",
    ),
]
NO_SERVER_TASKS = [task for task in TASKS if not task.servers]
REWARDS = "outcome,tool_syntax,bfcl"

CALL = (
    "<think>\nThe user asks about 8pm ({note}), so I need the hourly forecast.\n</think>\n<tool_call>\n"
    '{{"name": "get_hourly_forecast", "arguments": {{"location": "Denver", "date": "today"}}}}\n</tool_call>'
)
RIGHT = {"temp-8pm": "35", "two-plus-two": "4", "capital": "Paris"}
WRONG = {"temp-8pm": "20", "two-plus-two": "5", "capital": "Lyon"}


def scripted_turn(request: ModelRequest) -> str:
    """An even sample seed answers right (after a forecast call where tools are on offer), an odd one
    answers wrong at once. The seed of a turn is the sample's seed plus the step index."""
    step = sum(1 for message in request.messages if message.role == "assistant")
    sample_seed = request.sampling.seed - step
    task_id = next(t.id for t in TASKS if t.prompt == request.messages[1].content)
    right = sample_seed % 2 == 0
    note = f"draw {sample_seed % 997}"  # sampled text differs from sample to sample
    if right and request.tools and step == 0:
        return CALL.format(note=note)
    answer = RIGHT[task_id] if right else WRONG[task_id]
    return f"<think>\nI work it out ({note}).\n</think>\n<answer>{answer}</answer>"


def scripted_model() -> ScriptedModel:
    return ScriptedModel(scripted_turn)


def write_inputs(folder: Path, tasks: list[Task] = TASKS) -> tuple[Path, Path]:
    """A task file and an mcp.json (the bundled weather server, run from the repository root)."""
    folder.mkdir(parents=True, exist_ok=True)
    task_file = folder / "tasks.jsonl"
    task_file.write_text("".join(task.model_dump_json() + "\n" for task in tasks), encoding="utf-8")
    servers = folder / "mcp.json"
    config = {
        "mcpServers": {"weather": {"command": "python", "args": ["-m", "servers.weather"], "cwd": str(ROOT)}}
    }
    servers.write_text(json.dumps(config), encoding="utf-8")
    return task_file, servers


def options(folder: Path, tasks: list[Task] = TASKS, **changes: object) -> RunSpec:
    task_file, servers = write_inputs(folder / "inputs", tasks)
    base = RunSpec(tasks=task_file, servers=servers, out=folder / "run", n=4, rewards=REWARDS)
    return replace(base, **changes)  # type: ignore[arg-type]
