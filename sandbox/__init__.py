"""The engine: records, model backends, the turn format, the MCP tool hub, episodes and the CLI.

Nothing here knows a particular server or reward; rewards plug in by name (entry points) and servers
by an ``mcpServers`` config.
"""

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

__all__ = [
    "SCHEMA_VERSION",
    "Attributes",
    "IdealCall",
    "Message",
    "ModelInfo",
    "Reward",
    "Sampling",
    "ServerInfo",
    "Step",
    "Task",
    "TaskFileError",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Trace",
    "TraceFileError",
    "Usage",
    "iter_traces",
    "read_tasks",
    "read_traces",
    "write_trace",
]
