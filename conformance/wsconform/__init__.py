"""wsconform: drive WebSocket implementations through the Autobahn fuzzer, gate, report."""

__version__ = "0.1.0"
