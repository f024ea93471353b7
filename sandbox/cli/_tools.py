"""The tool-writing commands: ``new-tool``, ``check-tool``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import anyio
import typer

from sandbox.cli._app import app, console
from sandbox.hub import ServerConfig, outside_temp
from sandbox.records import ConfigError, SandboxError


@app.command("new-tool")
def new_tool(
    name: Annotated[str, typer.Argument(help="Server name, a Python module name (e.g. unit_converter).")],
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Folder to write into (default: ./NAME).")
    ] = None,
) -> None:
    """Write a new MCP server with an example tool, its pytest test, an mcp.json and a task file."""
    from tools import new_tool as write_scaffold

    made = write_scaffold(name, folder)
    for path in made.files:
        console.print(f"wrote {path}", highlight=False, markup=False)
    traces = made.folder / "traces.jsonl"
    console.print(
        f"next: python -m pytest {made.folder}\n"
        f"      sandbox check-tool {made.config}\n"
        f"      sandbox run --tasks {made.tasks} --servers {made.config} --out {traces}",
        highlight=False,
        markup=False,
    )


@app.command("check-tool")
def check_tool(
    config: Annotated[str, typer.Argument(help="MCP config (mcp.json), or a streamable HTTP server's URL.")],
    server: Annotated[
        list[str] | None, typer.Option("--server", help="Check only this server of the config (repeatable).")
    ] = None,
    examples: Annotated[int, typer.Option(help="Calls per tool with arguments made from its schema.")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds a call may take.")] = 10.0,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Check servers whose args or env name a fixed path outside the temporary folder."
        ),
    ] = False,
) -> None:
    """Call every tool with generated, invalid and huge arguments; exit 1 if any tool breaks its contract.

    The calls are real: point it at a test instance of a server, never at one holding data that matters.
    A config whose stdio servers name a fixed path outside the temporary folder in their args or env
    (where the calls could write) is refused unless --yes.
    """
    from sandbox.cli._render import print_report
    from tools import check_server, select_servers

    if examples < 0 or timeout <= 0:
        raise SandboxError("--examples must be 0 or more and --timeout positive")
    entries = select_servers(config, server or ())
    _refuse_fixed_paths(entries, yes)
    console.print(
        f"check-tool makes real calls: every tool is called with generated, invalid and huge arguments "
        f"({examples} generated per tool); whatever the tools do, they do",
        highlight=False,
        markup=False,
    )
    violations = 0
    for entry in entries:
        with console.status(f"checking {entry.name} ..."):
            report = anyio.run(partial(check_server, entry, examples=examples, timeout=timeout))
        print_report(report, console)
        violations += len(report.violations)
    if violations:
        console.print(f"{violations} violation(s)", style="bold red", highlight=False)
        raise typer.Exit(1)


def _refuse_fixed_paths(entries: list[ServerConfig], yes: bool) -> None:
    """One line, unless ``yes``, naming a server whose args or env name a fixed path outside the
    temporary folder: check-tool's calls could write there."""
    import tempfile

    for entry in entries:
        found = outside_temp(entry)
        if found and not yes:
            named = ", ".join(f"{where} {path}" for where, path in found)
            raise ConfigError(
                f"server {entry.name!r} names a fixed path outside {tempfile.gettempdir()} ({named}), and "
                "check-tool's calls are real and could write there: point it at a copy under the "
                "temporary folder (or {state_dir}), or pass --yes"
            )
