"""The MCP server for AI agents: tools generated from the mapping, answered by the REST routes.

``endpoint`` (``/mcp`` in the app) loads the SDK only when it is first called; ``server`` and
``stdio`` import it.
"""

from __future__ import annotations

from gateway.mcp.endpoint import McpEndpoint

__all__ = ("McpEndpoint",)
