"""The error tree. Two channels under one root:

    SandboxError                 a person must fix something; fail fast, say how
    ├── ConfigError              bad mcpServers config, missing server command
    ├── ModelFileError           missing, unreadable or non-GGUF model file
    ├── TaskFileError            a bad task file, with file and line
    ├── TraceFileError           a bad trace file, with file and line
    ├── ServerStartError         a configured server could not be started or listed
    ├── ModelServerError         an HTTP model server refused a request, or stayed unreachable
    ├── JudgeError               a judge model that cannot answer as asked (a score option of two tokens)
    └── RewardError              a reward that failed to load or crashed on a trace (a bug, never a score)

    ContextFullError             the transcript no longer fits the model's context: an episode
                                 stop reason, recorded in the trace, never shown to a person

A model's mistake (a broken call, an unknown tool, bad arguments) and a tool's failure (an error
result, a timeout, a crashed server) are not exceptions: they are data in the trace.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Something a person must fix. The message says what and where."""


class ConfigError(SandboxError):
    """An ``mcpServers`` configuration that cannot be used."""


class ModelFileError(SandboxError):
    """A model file that is missing, unreadable or not a GGUF file."""


class ServerStartError(SandboxError):
    """A configured MCP server that could not be started or did not answer."""


class ModelServerError(SandboxError):
    """An OpenAI-compatible model server that refused a request (4xx) or failed past every retry."""


class JudgeError(SandboxError):
    """A judge model that cannot be used as asked (its score options are not single tokens, or a
    question does not fit its context)."""


class ContextFullError(Exception):
    """The prompt leaves no room for a reply in the model's context window."""


class TaskFileError(SandboxError, ValueError):
    """A task file that cannot be read; the message names the file and line."""


class TraceFileError(SandboxError, ValueError):
    """A trace file that cannot be read; the message names the file and line."""


class OutputError(SandboxError):
    """An output that cannot be written (a read-only folder, a full disk); the message names the
    file and what the system said."""

    @classmethod
    def of(cls, path: object, exc: OSError, kept: str = "") -> OutputError:
        """The error for ``exc`` raised while writing ``path``; ``kept`` says what survived."""
        message = f"cannot write {path}: {exc.strerror or exc}"
        return cls(f"{message}; {kept}" if kept else message)


class RewardError(SandboxError):
    """A reward that failed to load or crashed on a trace: a bug for a person to fix.

    A crash is never turned into a score: a 0.0 would pass a reward's bug off as a fact about the
    model.
    """
