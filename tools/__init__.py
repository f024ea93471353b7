"""Kit for writing and testing MCP tools.

``list_tools`` and ``call_tool`` open a real MCP session (in memory for a server object, stdio for
a command, streamable HTTP for a URL) -- the helpers the bundled servers' tests use, and the start of
the contract checker.
"""

from tools._session import call_tool, list_tools

__all__ = ["call_tool", "list_tools"]
