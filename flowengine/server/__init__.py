"""The shared HTTP server: http-in routes, websocket paths, static files, the admin API."""

from flowengine.server.app import HttpServer
from flowengine.server.routes import RouteTable, compile_pattern

__all__ = ["HttpServer", "RouteTable", "compile_pattern"]
