"""The engine: records, the turn format, model backends, the MCP tool hub, episodes, runs, datasets.

The package is in rooms by stage, each with its own door (``__init__``):

- ``sandbox.records`` -- the records every room shares, the error tree, task and trace files;
- ``sandbox.turns`` -- the turn format, the grammar, the OpenAI codec;
- ``sandbox.models`` -- the model backends behind one seam;
- ``sandbox.hub`` -- MCP servers from an ``mcpServers`` config;
- ``sandbox.episodes`` -- one task, one model, one hub -> one trace;
- ``sandbox.runs`` -- the run pipeline, the run folder, re-scoring and replay;
- ``sandbox.datasets`` -- exports for trainers, the next-token loss, imported benchmarks;
- ``sandbox.view`` -- the HTML trace viewer;
- ``sandbox.cli`` -- the ``sandbox`` command.

The names below are the ones most code needs, importable from ``sandbox`` itself. They load on
first use (PEP 562), so ``import sandbox`` costs nothing and a room pays only for what it uses.
Nothing here but the CLI knows a particular server or reward: rewards plug in by name (entry points)
and servers by an ``mcpServers`` config.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the room that exports it
_ROOMS = {
    "Attributes": "records",
    "ConfigError": "records",
    "ContextFullError": "records",
    "IdealCall": "records",
    "Message": "records",
    "ModelFileError": "records",
    "ModelInfo": "records",
    "ModelServerError": "records",
    "Reward": "records",
    "RewardError": "records",
    "RewardFn": "records",
    "SCHEMA_VERSION": "records",
    "Sampling": "records",
    "SandboxError": "records",
    "ServerInfo": "records",
    "ServerStartError": "records",
    "Step": "records",
    "Task": "records",
    "TaskFileError": "records",
    "ToolCall": "records",
    "ToolResult": "records",
    "ToolSpec": "records",
    "Trace": "records",
    "TraceFileError": "records",
    "Usage": "records",
    "iter_traces": "records",
    "read_tasks": "records",
    "read_traces": "records",
    "write_trace": "records",
    "ParsedTurn": "turns",
    "build_grammar": "turns",
    "parse_turn": "turns",
    "system_prompt": "turns",
    "BatchedLlamaModel": "models",
    "LlamaModel": "models",
    "Model": "models",
    "ModelRequest": "models",
    "ModelResponse": "models",
    "OpenAIModel": "models",
    "OracleModel": "models",
    "RetryPolicy": "models",
    "ScriptedModel": "models",
    "default_model_path": "models",
    "ServerConfig": "hub",
    "ToolHub": "hub",
    "load_config": "hub",
    "Limits": "episodes",
    "grammar_for": "episodes",
    "run_episode": "episodes",
    "RunSpec": "runs",
    "RunSummary": "runs",
    "generate": "runs",
    "replay_file": "runs",
    "score_file": "runs",
    "ExportOptions": "datasets",
    "export_run": "datasets",
    "trl_reward_functions": "datasets",
    "write_report": "view",
}

__all__ = [
    "Attributes",
    "BatchedLlamaModel",
    "ConfigError",
    "ContextFullError",
    "ExportOptions",
    "IdealCall",
    "Limits",
    "LlamaModel",
    "Message",
    "Model",
    "ModelFileError",
    "ModelInfo",
    "ModelRequest",
    "ModelResponse",
    "ModelServerError",
    "OpenAIModel",
    "OracleModel",
    "ParsedTurn",
    "RetryPolicy",
    "Reward",
    "RewardError",
    "RewardFn",
    "RunSpec",
    "RunSummary",
    "SCHEMA_VERSION",
    "Sampling",
    "SandboxError",
    "ScriptedModel",
    "ServerConfig",
    "ServerInfo",
    "ServerStartError",
    "Step",
    "Task",
    "TaskFileError",
    "ToolCall",
    "ToolHub",
    "ToolResult",
    "ToolSpec",
    "Trace",
    "TraceFileError",
    "Usage",
    "build_grammar",
    "default_model_path",
    "export_run",
    "generate",
    "grammar_for",
    "iter_traces",
    "load_config",
    "parse_turn",
    "read_tasks",
    "read_traces",
    "replay_file",
    "run_episode",
    "score_file",
    "system_prompt",
    "trl_reward_functions",
    "write_report",
    "write_trace",
]


def __getattr__(name: str) -> Any:
    room = _ROOMS.get(name)
    if room is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sandbox.{room}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what a type checker and an editor see; nothing is imported at run time
    from sandbox.datasets import ExportOptions, export_run, trl_reward_functions
    from sandbox.episodes import Limits, grammar_for, run_episode
    from sandbox.hub import ServerConfig, ToolHub, load_config
    from sandbox.models import (
        BatchedLlamaModel,
        LlamaModel,
        Model,
        ModelRequest,
        ModelResponse,
        OpenAIModel,
        OracleModel,
        RetryPolicy,
        ScriptedModel,
        default_model_path,
    )
    from sandbox.records import (
        SCHEMA_VERSION,
        Attributes,
        ConfigError,
        ContextFullError,
        IdealCall,
        Message,
        ModelFileError,
        ModelInfo,
        ModelServerError,
        Reward,
        RewardError,
        RewardFn,
        Sampling,
        SandboxError,
        ServerInfo,
        ServerStartError,
        Step,
        Task,
        TaskFileError,
        ToolCall,
        ToolResult,
        ToolSpec,
        Trace,
        TraceFileError,
        Usage,
        iter_traces,
        read_tasks,
        read_traces,
        write_trace,
    )
    from sandbox.runs import RunSpec, RunSummary, generate, replay_file, score_file
    from sandbox.turns import ParsedTurn, build_grammar, parse_turn, system_prompt
    from sandbox.view import write_report
