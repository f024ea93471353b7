"""The engine: records, model backends, the turn format, the MCP tool hub, episodes and the CLI.

Nothing here knows a particular server or reward; rewards plug in by name (entry points) and servers
by an ``mcpServers`` config. llama.cpp is loaded only when a model is made.
"""

from sandbox._episode import Limits, grammar_for, run_episode
from sandbox._errors import (
    ConfigError,
    ContextFullError,
    ModelFileError,
    SandboxError,
    ServerStartError,
    TaskFileError,
    TraceFileError,
)
from sandbox._hub import ServerConfig, ToolHub, load_config
from sandbox._models import LlamaModel, Model, ModelRequest, ModelResponse, ScriptedModel, default_model_path
from sandbox._plugins import load_rewards, score
from sandbox._records import (
    SCHEMA_VERSION,
    Attributes,
    IdealCall,
    Message,
    ModelInfo,
    Reward,
    Sampling,
    ServerInfo,
    Step,
    Task,
    ToolCall,
    ToolResult,
    ToolSpec,
    Trace,
    Usage,
    iter_traces,
    read_tasks,
    read_traces,
    write_trace,
)
from sandbox._turn import ParsedTurn, build_grammar, parse_turn, system_prompt

__all__ = [
    "Attributes",
    "ConfigError",
    "ContextFullError",
    "IdealCall",
    "Limits",
    "LlamaModel",
    "Message",
    "Model",
    "ModelFileError",
    "ModelInfo",
    "ModelRequest",
    "ModelResponse",
    "ParsedTurn",
    "Reward",
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
    "grammar_for",
    "iter_traces",
    "load_config",
    "load_rewards",
    "parse_turn",
    "read_tasks",
    "read_traces",
    "run_episode",
    "score",
    "system_prompt",
    "write_trace",
]
