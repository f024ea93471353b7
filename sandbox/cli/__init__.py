"""The ``sandbox`` command: a thin shell over the library, the one place that wires the rooms and the
only one that renders (rich). One module per command group; :func:`main` is the entry point."""

from sandbox.cli import _data, _improve, _models, _runs, _tasks, _tools, _train
from sandbox.cli._app import app, main

# The command groups register themselves on ``app`` when imported.
_COMMANDS = (_data, _improve, _models, _runs, _tasks, _tools, _train)

__all__ = ["app", "main"]
