"""The Python side of marl's environment bridge; see `server.py`."""

from .server import Adapter, BridgeError, main, serve

__all__ = ["Adapter", "BridgeError", "main", "serve"]
