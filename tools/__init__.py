"""Kit for writing and testing MCP tools.

- :func:`new_tool` writes a new server with an example tool, its test, an ``mcpServers`` config and
  a task file (``sandbox new-tool NAME``).
- :func:`check_server` connects to any server through a real MCP session and calls every tool with
  arguments generated from its input schema and with invalid ones; :func:`assert_contract` fails a
  test on a violation (``sandbox check-tool CONFIG`` prints the report).
- ``list_tools`` and ``call_tool`` open a one-shot session (in memory for a server object, stdio for
  a command, streamable HTTP for a URL) -- the helpers the bundled servers' tests use.
"""

from tools._contract import (
    ContractReport,
    Finding,
    ToolReport,
    assert_contract,
    check_server,
    generate_arguments,
    select_servers,
)
from tools._scaffold import Scaffold, new_tool
from tools._session import call_tool, list_tools

__all__ = [
    "ContractReport",
    "Finding",
    "Scaffold",
    "ToolReport",
    "assert_contract",
    "call_tool",
    "check_server",
    "generate_arguments",
    "list_tools",
    "new_tool",
    "select_servers",
]
