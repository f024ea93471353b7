"""The scaffold: a new MCP server that works before its author writes a line.

:func:`new_tool` writes four files into a folder (by default ``./NAME``):

- ``NAME.py`` -- the server, in the shape of the bundled ones in ``servers/``: a module docstring,
  records, the logic as plain functions, a ``make_server()`` that builds an ``MCPServer`` with its
  tools, a module-level ``server`` and ``server.run()`` under ``__main__`` (``python -m NAME`` or
  ``python NAME.py``). Its one example tool converts units, and shows typed and described
  parameters, a docstring, a structured result and a ``ToolError``;
- ``test_NAME.py`` -- pytest tests: in memory, over stdio, the task file's ideal calls, and the
  contract checker;
- ``mcp.json`` -- the ``mcpServers`` config that starts it (``sandbox run --servers``);
- ``tasks.jsonl`` -- two tasks that need the tool (``sandbox run --tasks``).

The templates are files in ``tools/templates/``, where ``__NAME__`` stands for the name. Nothing is
ever overwritten: if any of the four files exists, nothing is written.
"""

from __future__ import annotations

import importlib.util
import keyword
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from sandbox.records import SandboxError

_PLACEHOLDER = "__NAME__"


@dataclass(frozen=True)
class Scaffold:
    """The files :func:`new_tool` wrote."""

    name: str
    folder: Path
    server: Path
    test: Path
    config: Path
    tasks: Path

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.server, self.test, self.config, self.tasks)


def new_tool(name: str, folder: str | Path | None = None) -> Scaffold:
    """Write a new MCP server named ``name`` with its test, config and tasks into ``folder``.

    ``folder`` defaults to ``./name`` and is created if missing. Raises :class:`SandboxError` for a
    name that is not a usable module name and when any of the files exists already.
    """
    _check_name(name)
    where = Path(name) if folder is None else Path(folder)
    made = Scaffold(
        name=name,
        folder=where,
        server=where / f"{name}.py",
        test=where / f"test_{name}.py",
        config=where / "mcp.json",
        tasks=where / "tasks.jsonl",
    )
    if where.exists() and not where.is_dir():
        raise SandboxError(f"{where} exists and is not a folder; give --dir a folder")
    existing = [str(path) for path in made.files if path.exists() or path.is_symlink()]
    if existing:
        raise SandboxError(
            f"refusing to overwrite {', '.join(existing)}; choose another --dir (or another name)"
        )
    _check_not_shadowing(name)
    where.mkdir(parents=True, exist_ok=True)
    templates = {
        made.server: "server.py.tmpl",
        made.test: "test_server.py.tmpl",
        made.config: "mcp.json.tmpl",
        made.tasks: "tasks.jsonl.tmpl",
    }
    for path, template in templates.items():
        text = render(template, name)
        with path.open("x", encoding="utf-8") as out:  # "x": never replaces a file made meanwhile
            out.write(text)
    return made


def render(template: str, name: str) -> str:
    """The text of one template (a file name in ``tools/templates/``) for a server called ``name``."""
    text = (files("tools") / "templates" / template).read_text(encoding="utf-8")
    return text.replace(_PLACEHOLDER, name)


def _check_name(name: str) -> None:
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        raise SandboxError(
            f"{name!r} is not a usable server name: it becomes a Python module name, so use letters, "
            "digits and underscores, not starting with a digit (e.g. unit_converter)"
        )
    if name.startswith("test_"):
        raise SandboxError(f"{name!r} starts with 'test_', so pytest would collect the server as a test")
    if name in sys.stdlib_module_names:
        raise SandboxError(f"{name!r} is a standard-library module; a server of that name would hide it")


def _check_not_shadowing(name: str) -> None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    # A namespace package (a bare folder, such as the one the scaffold writes into) hides nothing.
    if spec is not None and spec.origin is not None:
        raise SandboxError(
            f"{name!r} is already an importable module ({spec.origin}); a server of that name would hide it "
            "or be hidden by it: choose another name"
        )
