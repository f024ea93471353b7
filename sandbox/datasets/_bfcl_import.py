"""``sandbox import bfcl``: Berkeley Function Calling Leaderboard files as tasks, servers and ideal calls.

BFCL ships each category as two JSON-lines files. A question line::

    {"id": "simple_0", "question": [[{"role": "user", "content": "..."}]],
     "function": [{"name": "math.factorial", "description": "...", "parameters": {"type": "dict",
                   "properties": {"n": {"type": "integer"}}, "required": ["n"]}}]}

and an answer line (``possible_answer/``)::

    {"id": "simple_0", "ground_truth": [{"math.factorial": {"n": [5]}}]}

Each question becomes a :class:`Task`: the first turn's user content is the prompt (a later turn of a
multi-turn question is dropped), its system message is ``Task.system``, the ground truth becomes
``ideal_calls`` (each parameter with its acceptable values), tags are ``["bfcl", CATEGORY]`` with
the category read from the id (``parallel_multiple_3`` -> ``parallel_multiple``). Irrelevance
questions (a category naming ``irrelevance``) and questions without an answer get no ideal calls, so
the rewards read them as "the right action is no call".

Every parameter of a function that the ground truth leaves out is listed as ``[""]`` (optional, and
not to be given): the tasks' convention leaves unlisted parameters unchecked, BFCL rejects a
parameter its answer does not list, and this makes the two agree.

Functions become MCP tools. BFCL's types become JSON Schema (``dict`` -> ``object``, ``float`` ->
``number``, ``tuple`` -> ``array``, ``any`` -> no type constraint; ``integer``, ``string``,
``boolean``, ``array`` stay). A name is made of letters, digits, ``_`` and ``-`` (``math.factorial``
-> ``math_factorial``), and made unique across the file (``_2``, ``_3``, ...), because the tool hub
qualifies a name two servers share; the original name is kept beside it in the functions file, and
the server answers with it.

Three files come out: the tasks, ``<stem>.functions.json`` (every task's tools), and
``<stem>.mcp.json``, an ``mcpServers`` config with one server per task (``bfcl-<id>``, running
``python -m servers.bfcl --functions <stem>.functions.json --task <id>`` in the config's folder), so
an episode sees its own task's functions only. The hub starts every server the run's tasks name, in
turn, about 0.7 s each (measured on 2 cores: start, list tools, stop): fine for a few dozen tasks,
slow for a whole BFCL category (400 tasks, about 5 minutes before the first episode).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from sandbox.records import IdealCall, SandboxError, Task, read_text

# The functions file that ``servers.bfcl`` reads: the format is the contract between the two (the
# server names the same values; a test holds both to them), so neither imports the other.
FORMAT = "sandbox-bfcl-functions"
FORMAT_VERSION = 1
SERVER_PREFIX = "bfcl-"
OPTIONAL = ""

# BFCL's type names and JSON Schema's; None: any value.
_TYPES: dict[str, str | None] = {
    "dict": "object",
    "float": "number",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "array": "array",
    "tuple": "array",
    "any": None,
    "object": "object",
    "number": "number",
    "null": "null",
}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_CATEGORY = re.compile(r"^(?P<category>.+?)_\d+(?:[-_]\d+)*$")


class BFCLImportError(SandboxError):
    """A BFCL file that cannot be imported; the message names the file and line."""


@dataclass
class ImportReport:
    """What an import wrote, and how many tasks have ideal calls, are irrelevance or have no answer."""

    tasks: list[Task]
    tasks_path: Path
    functions_path: Path
    mcp_path: Path
    irrelevance: int = 0
    unanswered: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What was written, a note on tasks without answers, and how to run them."""
        lines = [
            f"wrote {len(self.tasks)} task(s) to {self.tasks_path} ({self.irrelevance} irrelevance, "
            f"{len(self.unanswered)} without an answer), functions to {self.functions_path}, "
            f"servers to {self.mcp_path}"
        ]
        if self.unanswered:
            shown = ", ".join(self.unanswered[:5]) + (" ..." if len(self.unanswered) > 5 else "")
            lines.append(
                f"note: no answer for {shown}: those tasks have no ideal calls, so the rewards read them "
                "as 'the right action is no call'"
            )
        lines.append(f"run them: sandbox run --tasks {self.tasks_path} --servers {self.mcp_path} --out ...")
        return lines


@dataclass
class _Question:
    task_id: str
    prompt: str
    system: str | None
    functions: list[dict[str, Any]]  # exposed name, original name, description, input schema


def import_bfcl(questions: Path, answers: Path | None, out: Path) -> ImportReport:
    """Read BFCL question (and answer) files; write tasks, functions and server config beside ``out``."""
    parsed = _read_questions(questions)
    truths = _read_answers(answers) if answers is not None else {}
    tasks: list[Task] = []
    report = ImportReport(tasks, out, _sibling(out, ".functions.json"), _sibling(out, ".mcp.json"))
    for question in parsed:
        category = _category(question.task_id)
        ideal_calls: list[IdealCall] = []
        if "irrelevance" in category:
            report.irrelevance += 1
        elif question.task_id in truths:
            line, truth = truths[question.task_id]
            ideal_calls = _ideal_calls(truth, question, f"{answers}:{line}")
        else:
            report.unanswered.append(question.task_id)
        tasks.append(
            Task(
                id=question.task_id,
                prompt=question.prompt,
                system=question.system,
                servers=[SERVER_PREFIX + question.task_id],
                ideal_calls=ideal_calls,
                tags=["bfcl", category],
            )
        )
    _write(report, parsed)
    return report


def _sibling(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix)


def _category(task_id: str) -> str:
    match = _CATEGORY.match(task_id)
    return match.group("category") if match else task_id


# --------------------------------------------------------------------------- reading


def _json_lines(path: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    lines = read_text(path, f"{kind} file", BFCLImportError).splitlines()
    records: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BFCLImportError(f"{path}:{number}: not JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
            raise BFCLImportError(f'{path}:{number}: expected an object with a string "id"')
        records.append((number, record))
    if not records:
        raise BFCLImportError(f"{path}: no records in file")
    return records


def _read_questions(path: Path) -> list[_Question]:
    questions: list[_Question] = []
    seen: set[str] = set()
    taken: dict[str, str] = {}  # exposed tool name -> the task that has it
    for number, record in _json_lines(path, "questions"):
        where = f"{path}:{number}"
        task_id = record["id"]
        if task_id in seen:
            raise BFCLImportError(f"{where}: duplicate id {task_id!r}")
        seen.add(task_id)
        prompt, system = _first_turn(record.get("question"), where)
        functions = _functions(record.get("function"), where)
        for function in functions:
            function["name"] = _unique_name(function["original_name"], task_id, taken)
        questions.append(_Question(task_id, prompt, system, functions))
    return questions


def _first_turn(question: Any, where: str) -> tuple[str, str | None]:
    """The prompt and system message of the first turn (BFCL: a list of turns, each a list of messages;
    a flat list of messages or a string also read)."""
    if isinstance(question, str):
        return question, None
    turn = (
        question[0] if isinstance(question, list) and question and isinstance(question[0], list) else question
    )
    if not isinstance(turn, list) or not all(isinstance(m, dict) for m in turn):
        raise BFCLImportError(f'{where}: "question" must be a list of turns, each a list of messages')
    users = [str(m.get("content", "")) for m in turn if m.get("role") == "user"]
    systems = [str(m.get("content", "")) for m in turn if m.get("role") == "system"]
    if not users:
        raise BFCLImportError(f"{where}: the first turn has no user message")
    return "\n\n".join(users), ("\n\n".join(systems) if systems else None)


def _functions(raw: Any, where: str) -> list[dict[str, Any]]:
    entries = [raw] if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise BFCLImportError(f'{where}: "function" must be a non-empty list of functions')
    functions = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise BFCLImportError(f"{where}: every function needs a string name")
        parameters = entry.get("parameters") or {"type": "dict", "properties": {}}
        schema = _schema(parameters, f"{where}: function {name!r}", "parameters")
        if schema.get("type") != "object":
            raise BFCLImportError(f"{where}: function {name!r}: parameters must be of type dict")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise BFCLImportError(f"{where}: function {name!r}: bad parameters: {exc.message}") from exc
        description = entry.get("description", "")
        functions.append(
            {"name": name, "original_name": name, "description": str(description), "input_schema": schema}
        )
    return functions


def _schema(node: Any, where: str, path: str) -> dict[str, Any]:
    """A BFCL parameter schema as JSON Schema, all the way down."""
    if not isinstance(node, dict):
        raise BFCLImportError(f"{where}: {path} must be an object, got {type(node).__name__}")
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kinds = [
                _json_type(kind, where, path) for kind in (value if isinstance(value, list) else [value])
            ]
            if None not in kinds:
                converted["type"] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "properties" and isinstance(value, dict):
            converted[key] = {name: _schema(sub, where, f"{path}.{name}") for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            converted[key] = _schema(value, where, f"{path}.{key}")
        else:
            converted[key] = value
    return converted


def _json_type(kind: Any, where: str, path: str) -> str | None:
    if not isinstance(kind, str) or kind not in _TYPES:
        known = ", ".join(sorted(_TYPES))
        raise BFCLImportError(f"{where}: {path}: unknown BFCL type {kind!r} (known: {known})")
    return _TYPES[kind]


def _unique_name(original: str, task_id: str, taken: dict[str, str]) -> str:
    base = _NAME_CHARS.sub("_", original)
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    taken[name] = task_id
    return name


def _read_answers(path: Path) -> dict[str, tuple[int, Any]]:
    return {
        record["id"]: (number, record.get("ground_truth")) for number, record in _json_lines(path, "answers")
    }


def _ideal_calls(truth: Any, question: _Question, where: str) -> list[IdealCall]:
    if not isinstance(truth, list) or not all(isinstance(call, dict) and len(call) == 1 for call in truth):
        raise BFCLImportError(f'{where}: "ground_truth" must be a list of {{"function": {{...}}}} objects')
    exposed = {function["original_name"]: function for function in question.functions}
    calls = []
    for call in truth:
        ((original, arguments),) = call.items()
        function = exposed.get(original)
        if function is None:
            raise BFCLImportError(f"{where}: ground truth calls {original!r}, which {question.task_id} lacks")
        if not isinstance(arguments, dict) or not all(isinstance(v, list) for v in arguments.values()):
            raise BFCLImportError(f"{where}: {original}: each parameter needs a list of acceptable values")
        unlisted = {name: [OPTIONAL] for name in function["input_schema"].get("properties", {})}
        calls.append(IdealCall(name=function["name"], arguments={**unlisted, **arguments}))
    return calls


# --------------------------------------------------------------------------- writing


def _write(report: ImportReport, questions: list[_Question]) -> None:
    functions = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tasks": {question.task_id: question.functions for question in questions},
    }
    # One server per line, as people write these configs by hand.
    entries = [
        f"  {json.dumps(SERVER_PREFIX + q.task_id)}: {json.dumps(_server_entry(report, q.task_id))}"
        for q in questions
    ]
    config = '{"mcpServers": {\n' + ",\n".join(entries) + "\n}}\n"
    try:
        report.tasks_path.parent.mkdir(parents=True, exist_ok=True)
        with report.tasks_path.open("w", encoding="utf-8") as handle:
            for task in report.tasks:
                handle.write(task.model_dump_json(exclude_defaults=True) + "\n")
        report.functions_path.write_text(json.dumps(functions, indent=1) + "\n", encoding="utf-8")
        report.mcp_path.write_text(config, encoding="utf-8")
    except OSError as exc:
        raise BFCLImportError(f"cannot write the import: {exc}") from exc


def _server_entry(report: ImportReport, task_id: str) -> Mapping[str, Any]:
    # Relative to the config's folder (the hub resolves "cwd" there), so the three files move together.
    args = ["-m", "servers.bfcl", "--functions", report.functions_path.name, "--task", task_id]
    return {"command": "python", "args": args, "cwd": "."}
