"""``rfc6455.pulsar.ws``: ``pulsar.apps.ws``'s ``WebSocket``, ``WS``, ``Frame``, ``FrameParser``.

Invariants:
- ``WS``, ``Frame`` and ``FrameParser`` are rfc6455's own (``rfc6455.handler``,
  ``rfc6455.frame``). ``WebSocket`` is rfc6455's middleware taking pulsar's two documented
  forms, ``WebSocket(handle=MyWS())`` and ``WebSocket("/path", MyWS())``.
- A route is one exact path (``PATH_INFO``, with or without the leading ``/``); a request on
  another path falls through to the next middleware, before the handler's ``match`` is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from ..frame import Frame, FrameParser
from ..handler import WS
from ..middleware import WebSocket as _Middleware
from ..wsgi import StartResponse

__all__ = ["WS", "Frame", "FrameParser", "WebSocket"]


class WebSocket(_Middleware):
    """rfc6455's WebSocket middleware, built as pulsar's was.

    ``WebSocket(handle=EchoWS())`` or ``WebSocket(EchoWS())`` serves every path the handler
    ``match``es; ``WebSocket("/echo", EchoWS())`` only the path ``/echo``. Other options
    (``extensions=``, ``max_message_size=``) are rfc6455's: ``rfc6455.middleware.WebSocket``.
    """

    def __init__(
        self,
        route: str | WS | None = None,
        handle: WS | None = None,
        **options: Any,
    ) -> None:
        if isinstance(route, WS):
            if handle is not None:
                raise TypeError(
                    "WebSocket(handle, ...) takes the handler once; pass extensions= by name"
                )
            route, handle = None, route
        if handle is None:
            raise TypeError("WebSocket needs a handle: a WS instance")
        super().__init__(handle, **options)
        self.route = None if route is None else _path(route)

    def __call__(
        self, environ: MutableMapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """Answer the upgrade on this route; any other path falls through (``None``)."""
        if self.route is not None and environ.get("PATH_INFO", "") != self.route:
            return None
        return super().__call__(environ, start_response)


def _path(route: str) -> str:
    """``route`` as the ``PATH_INFO`` it matches; pulsar's ``<variable>`` parts are refused
    rather than matched literally."""
    if "<" in route or ">" in route:
        raise ValueError(f"route {route!r}: route variables are not supported, only one path")
    return "/" + route.lstrip("/")
