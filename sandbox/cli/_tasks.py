"""The ``tasks`` command: task families with held-out splits, made from the servers' data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import anyio
import typer

from sandbox.cli._app import app, console


@app.command()
def tasks(
    family: Annotated[
        str, typer.Option(help="weather, music, calculator, files, direct, or all (round-robin).")
    ],
    n: Annotated[int, typer.Option("--n", help="How many tasks to make.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Task JSONL file to write.")],
    seed: Annotated[int, typer.Option(help="Which draw: the same seed gives the same file.")] = 0,
    split: Annotated[
        str, typer.Option(help="train, or heldout (values no train task uses: places, titles, numbers).")
    ] = "train",
    servers: Annotated[Path, typer.Option(help="MCP config the tasks' data is read from.")] = Path(
        "servers/mcp.json"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing -o file.")] = False,
) -> None:
    """Make N tasks of a family (answers, ideal calls, reference solutions, state checks) from what
    the real servers return, for the train or the held-out split."""
    from sandbox.tasks import check_output, check_request, generate_tasks, write_tasks

    check_request(family, n, split)  # both before any server starts
    check_output(out, overwrite=overwrite)
    made = anyio.run(lambda: generate_tasks(family, n, seed, split, servers=servers))
    write_tasks(made, out, overwrite=overwrite)
    kinds = Counter(task.id.split("-")[0] for task in made)
    shown = ", ".join(f"{name} {count}" for name, count in sorted(kinds.items()))
    console.print(f"wrote {len(made)} {split} task(s) to {out} ({shown})", highlight=False, markup=False)
