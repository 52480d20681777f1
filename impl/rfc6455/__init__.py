"""rfc6455: a strict reference implementation of RFC 6455 (and RFC 7692)."""

__version__ = "0.1.0"
