"""The scaffold: what ``sandbox new-tool`` writes works at once, in a fresh folder, and is written the way
the bundled servers are."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from sandbox.hub import ToolHub, load_config
from sandbox.records import SandboxError, read_tasks, read_traces
from tools import Scaffold, assert_contract, check_server, new_tool

ROOT = Path(__file__).resolve().parents[2]
NAME = "unit_tool"


@pytest.fixture
def scaffold(tmp_path: Path) -> Scaffold:
    return new_tool(NAME, tmp_path / "fresh")


def test_writes_the_four_files(scaffold: Scaffold, tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    assert scaffold.folder == folder
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{NAME}.py", f"test_{NAME}.py", "mcp.json", "tasks.jsonl"]
    )
    assert "__NAME__" not in "".join(path.read_text(encoding="utf-8") for path in scaffold.files)


def test_the_generated_tests_pass_in_a_fresh_folder(scaffold: Scaffold) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"],
        cwd=scaffold.folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "7 passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]


def test_the_generated_code_passes_the_projects_lint_and_format(scaffold: Scaffold) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this interpreter (pip install -e '.[test]')")
    # The project's settings, with the folder as the source root (the server is a first-party module).
    config = ["--config", str(ROOT / "pyproject.toml"), "--config", f"src = [{str(scaffold.folder)!r}]"]
    for command in (["check", *config], ["format", "--check", *config]):
        done = subprocess.run(
            [str(ruff), *command, "--no-cache", "."],
            cwd=scaffold.folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_config_and_the_tasks_load_as_the_sandbox_reads_them(scaffold: Scaffold) -> None:
    servers = load_config(scaffold.config)
    assert list(servers) == [NAME]
    assert servers[NAME].cwd == str(scaffold.folder.resolve())
    tasks = read_tasks(scaffold.tasks)
    assert len(tasks) == 2
    for task in tasks:
        assert task.servers == [NAME]
        assert task.expected_answer and task.answer_match == "number"
        assert [call.name for call in task.ideal_calls] == ["convert_units"]


@pytest.mark.anyio
async def test_the_config_starts_the_server_with_python_dash_m(scaffold: Scaffold) -> None:
    with anyio.fail_after(60):
        async with ToolHub(load_config(scaffold.config)) as hub:
            assert [tool.name for tool in hub.tools()] == ["convert_units"]
            result = await hub.call("convert_units", {"value": 2.5, "from_unit": "kg", "to_unit": "g"})
    assert not result.is_error, result.text
    assert result.structured is not None and result.structured["result"] == 2500


@pytest.mark.anyio
async def test_the_generated_server_keeps_the_contract_over_stdio(scaffold: Scaffold) -> None:
    with anyio.fail_after(120):
        report = await check_server(load_config(scaffold.config)[NAME], examples=10)
    assert_contract(report)
    # Mass-to-length pairs are schema-valid and refused: the one expected warning.
    assert {f.check for f in report.warnings} <= {"valid_call"}


# --------------------------------------------------------------------------- refusals


def test_never_overwrites_and_writes_nothing_when_one_file_exists(tmp_path: Path) -> None:
    (tmp_path / "mcp.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SandboxError, match=r"refusing to overwrite .*mcp\.json"):
        new_tool(NAME, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mcp.json"]
    assert (tmp_path / "mcp.json").read_text(encoding="utf-8") == "{}"


def test_a_second_scaffold_into_the_same_folder_is_refused(scaffold: Scaffold) -> None:
    before = scaffold.server.read_text(encoding="utf-8")
    with pytest.raises(SandboxError, match="refusing to overwrite"):
        new_tool(NAME, scaffold.folder)
    assert scaffold.server.read_text(encoding="utf-8") == before


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("", encoding="utf-8")
    with pytest.raises(SandboxError, match="not a folder"):
        new_tool(NAME, tmp_path / "taken")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("2fast", "not a usable server name"),
        ("unit-tool", "not a usable server name"),
        ("", "not a usable server name"),
        ("class", "not a usable server name"),
        ("ünits", "not a usable server name"),
        ("test_units", "pytest would collect"),
        ("json", "standard-library module"),
        ("pydantic", "already an importable module"),
    ],
)
def test_names_that_cannot_be_a_module_are_refused(name: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=message):
        new_tool(name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- house style


def _shape(path: Path) -> set[str]:
    """What a server module defines at its top level, of the parts every server module has."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    if ast.get_docstring(tree):
        found.add("docstring")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "make_server":
            found.add("make_server")
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            found.add("main")
    return found


def test_the_bundled_servers_have_the_scaffolds_shape(scaffold: Scaffold) -> None:
    expected = {"docstring", "make_server", "main"}
    assert _shape(scaffold.server) == expected
    modules = sorted(path for path in (ROOT / "servers").glob("*.py") if path.name != "__init__.py")
    assert modules
    for module in modules:
        assert _shape(module) == expected, module.name


# --------------------------------------------------------------------------- the command


def test_command_writes_then_refuses(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    folder = tmp_path / "cli"
    done = sandbox_cli("new-tool", NAME, "--dir", str(folder), timeout=120)
    assert done.returncode == 0, done.stderr
    assert (folder / f"{NAME}.py").exists() and f"sandbox run --tasks {folder / 'tasks.jsonl'}" in done.stdout
    again = sandbox_cli("new-tool", NAME, "--dir", str(folder), timeout=120)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    bad = sandbox_cli("new-tool", "no-dashes", "--dir", str(tmp_path / "bad"), timeout=120)
    assert bad.returncode == 2 and "not a usable server name" in bad.stderr


@pytest.mark.model
def test_sandbox_run_uses_the_new_server_at_once(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], scaffold: Scaffold
) -> None:
    out = scaffold.folder / "traces.jsonl"
    done = sandbox_cli(
        "run",
        "--tasks",
        str(scaffold.tasks),
        "--servers",
        str(scaffold.config),
        "--out",
        str(out),
        "--task",
        f"{NAME}-kg-to-g",
        "--max-steps",
        "2",
        "--max-tokens",
        "96",
        "--rewards",
        "outcome,tool_syntax",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [trace] = read_traces(out)
    assert trace.task_id == f"{NAME}-kg-to-g"
    assert [server.name for server in trace.servers] == [NAME]
    assert [tool.name for tool in trace.tools] == ["convert_units"]
    for step in trace.steps:
        if step.call is not None:
            assert step.result is not None
            assert step.result.error_kind in (None, "tool_error"), step.result.text
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["task"]["id"] == trace.task_id
